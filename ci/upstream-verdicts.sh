#!/usr/bin/env bash
# Judges every upstream plugin in /usr/lib/cni that this kernel can run,
# RUNS times each (default 1), and prints per plugin the counts of each
# verdict, the hash of its verdict set (sorted id, version, status) in every
# run, and every FAIL with the MUST it breaks. The README's table comes
# from `ci/upstream-verdicts.sh 10`. Needs python3 for the summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-1}
cargo build --release -q --manifest-path "$root/Cargo.toml"
harness="$root/target/release/cni-conformance"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
plugins=(bridge ptp macvlan host-local static tuning portmap bandwidth firewall sbr host-device loopback)
for i in $(seq "$runs"); do
  for p in "${plugins[@]}"; do
    "$harness" run --plugin "/usr/lib/cni/$p" --cni-path /usr/lib/cni \
      --format json --output "$out/$p.$i.json" >/dev/null 2>&1 || true
  done
done
python3 - "$out" "$runs" "${plugins[@]}" <<'PY'
import hashlib, json, sys
out, runs, plugins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| plugin | pass | fail | warn | note | n/a | blocked | error | verdict hash (every run) |")
print("|---|---|---|---|---|---|---|---|---|")
fails = []
for p in plugins:
    hashes, counts = set(), None
    for i in range(1, runs + 1):
        d = json.load(open(f"{out}/{p}.{i}.json"))
        key = sorted(f"{r['id']} {r['version']} {r['status']}" for r in d["results"])
        hashes.add(hashlib.sha256("\n".join(key).encode()).hexdigest()[:12])
        if counts is None:
            s = d["summary"]
            counts = [s["passed"], s["failed"], s["warned"], s["noted"],
                      s["notApplicable"], s["blocked"], s["errors"]]
            fails += [(p, r) for r in d["results"] if r["status"] == "fail"]
    same = "same" if len(hashes) == 1 else "DIFFERS"
    print(f"| {p} | " + " | ".join(map(str, counts)) + f" | {', '.join(sorted(hashes))} ({same} in {runs}) |")
print()
seen = set()
for p, r in fails:
    k = (p, r["id"], r["quote"])
    if k in seen:
        continue
    seen.add(k)
    versions = sorted({x["version"] for q, x in fails if q == p and x["id"] == r["id"] and x["quote"] == r["quote"]})
    print(f"- {p} `{r['id']}` ({', '.join(versions)}): {r['message'].splitlines()[0][:140]} — {r['clause']}: \"{r['quote']}\"")
PY
