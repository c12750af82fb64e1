#!/usr/bin/env bash
# Rebuilds the seed corpus of every fuzz target, fuzz/corpus/<target>/,
# from the repository's data: the vectors (their configs, CNI_ARGS and the
# reference transcripts in vectors/snapshots/), the schema examples, the
# built-in profiles, plus a few hand-written seeds. Needs python3.
#
#   fuzz/seed.sh            # every target
#
# Seeds are named after their source; identical seeds are written once.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf fuzz/corpus
python3 - <<'PY'
import glob, hashlib, ipaddress, json, os, re, struct, zlib

OUT = "fuzz/corpus"
seen = {}

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    key = (target, hashlib.sha1(data).hexdigest())
    if key in seen:
        return
    seen[key] = True
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def dump(v):
    return json.dumps(v, indent=1)

def base(path):
    return os.path.splitext(os.path.basename(path))[0]

def example(path):
    # schemas/examples/<kind>/<valid|invalid>/<name>.json -> kind-valid-name
    parts = path.split(os.sep)
    return "-".join(parts[-3:-1] + [base(path)])

# Vectors: configs (as given, with each step's patch, capability arguments
# as runtimeConfig, and the ADD result as prevResult), CNI_ARGS, raw stdin.
def transcript(name):
    # An insta snapshot: a header between `---` lines, then the JSON.
    p = f"vectors/snapshots/{name}.snap"
    if not os.path.exists(p):
        return None
    text = open(p).read()
    return json.loads(text.split("\n---\n", 1)[1])

for path in sorted(glob.glob("vectors/*.json")):
    name = base(path)
    vec = json.load(open(path))
    config = vec.get("config")
    if not isinstance(config, dict):
        continue
    configs = [("", config)]
    args = []
    for i, step in enumerate(vec.get("steps", [])):
        c = dict(config)
        if isinstance(step.get("patch"), dict):
            c.update(step["patch"])
        if isinstance(step.get("capabilityArgs"), dict):
            c["runtimeConfig"] = step["capabilityArgs"]
        if c != config:
            configs.append((f"-step{i}", c))
        if isinstance(step.get("args"), str):
            args.append((f"-step{i}", step["args"]))
        if isinstance(step.get("stdin"), str):
            put("netconf", f"vector-{name}-step{i}-stdin", step["stdin"])
    t = transcript(name)
    if t:
        added = [s["output"] for s in t["steps"]
                 if s.get("verb") == "ADD" and s.get("exit") == 0 and s.get("output")]
        if added:
            configs.append(("-prev", dict(config, prevResult=added[0])))
    for suffix, c in configs:
        text = dump(c)
        put("netconf", f"vector-{name}{suffix}.json", text)
        if c.get("type") == "macvlan" or name.startswith("macvlan"):
            put("macvlan_config", f"vector-{name}{suffix}.json", text)
        if isinstance(c.get("ipam"), dict):
            put("host_local_config", f"vector-{name}{suffix}.json", text)
    for suffix, a in args:
        put("cni_args", f"vector-{name}{suffix}", a)
        # Config targets read `CNI_ARGS`, a NUL byte, then the config.
        put("host_local_config", f"vector-{name}{suffix}-args", a + "\0" + dump(config))
        if config.get("type") == "macvlan":
            put("macvlan_config", f"vector-{name}{suffix}-args", a + "\0" + dump(config))

# The reference transcripts: every output a plugin printed (results of
# every version, errors, VERSION answers).
for path in sorted(glob.glob("vectors/snapshots/*.snap")):
    name = base(path)
    t = transcript(name)
    for i, step in enumerate(t.get("steps", [])):
        out = step.get("output")
        if not isinstance(out, dict):
            continue
        text = dump(out)
        put("harness_stdout", f"snap-{name}-step{i}.json", text)
        put("harness_schema", f"snap-{name}-step{i}.json", text)
        if step.get("exit") == 0 and step.get("verb") == "ADD":
            put("result_decode", f"snap-{name}-step{i}.json", text)
            if name.startswith("host-local"):
                put("ipam_answer", f"snap-{name}-step{i}.json", text)
        elif "code" in out and name.startswith("host-local"):
            put("ipam_answer", f"snap-{name}-step{i}.json", text)

# Schema examples, valid and invalid.
for path in sorted(glob.glob("schemas/examples/*/*/*.json")):
    kind = path.split(os.sep)[-3]
    text = open(path).read()
    name = f"example-{example(path)}.json"
    if kind == "config":
        put("netconf", name, text)
        put("macvlan_config", name, text)
        put("host_local_config", name, text)
        prev = json.loads(text).get("prevResult")
        if prev is not None:
            put("result_decode", f"example-{example(path)}-prevResult.json", dump(prev))
    if kind.startswith("result-") or kind.startswith("ipam-result-"):
        put("result_decode", name, text)
        put("harness_stdout", name, text)
        put("harness_schema", name, text)
    if kind.startswith("ipam-result-"):
        put("ipam_answer", name, text)
    if kind in ("error", "version"):
        put("harness_stdout", name, text)
        put("harness_schema", name, text)
    if kind == "error":
        put("ipam_answer", name, text)

# Profiles.
for path in sorted(glob.glob("harness/profiles/*.toml")):
    put("harness_profile", f"profile-{base(path)}.toml", open(path).read())

# CNI_ARGS.
for i, a in enumerate([
    "IgnoreUnknown=1;IP=10.1.2.3",
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a=b;K8S_POD_INFRA_CONTAINER_ID=c1",
    "MAC=c2:00:00:00:00:01",
    "IP=2001:db8::5/64;",
    "IP",
    ";;",
    "",
]):
    put("cni_args", f"hand-{i}", a)

# Address files (host_local::owner).
for i, c in enumerate([b"c1\r\neth0", b"  c1\r\neth0\n", b"legacy-id", b"", b" \n",
                       b"?unreadable", b"c1\r\n", b"\r\neth0"]):
    put("host_local_owner", f"hand-{i}", c)

# resolv.conf.
for path in sorted(glob.glob("vectors/data/*.conf")):
    put("host_local_resolv", f"vector-data-{base(path)}.conf", open(path).read())
put("host_local_resolv", "hand-0.conf",
    "# comment\n; comment\nnameserver 10.0.0.1\nnameserver 2001:db8::1\n"
    "domain a.example\ndomain b.example\nsearch x.example y.example\n"
    "options ndots:2 edns0\n")

# The index file (host_local::index): whole files as the plugin writes them.
MAGIC = b"cni-reference-index 2\n"
def index(sec, nsec, records):
    body = MAGIC + struct.pack("<qqI", sec, nsec, len(records))
    for ip, owner in records:
        if ":" in ip:
            body += b"\x06" + ipaddress.IPv6Address(ip).packed
        else:
            body += b"\x04" + bytes(int(x) for x in ip.split("."))
        body += struct.pack("<H", len(owner)) + owner
    return body + struct.pack("<I", zlib.crc32(body))
put("host_local_index", "hand-empty", index(5, 7, []))
put("host_local_index", "hand-two", index(1700000000, 123456789,
    [("10.0.0.2", b"c1\r\neth0"), ("fd00::2", b"legacy-id")]))
PY
for d in fuzz/corpus/*/; do
  printf '%-20s %3d seeds\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)"
done
