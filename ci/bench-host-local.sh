#!/usr/bin/env bash
# Side-by-side ADD latency of upstream host-local and ours on a crowded
# store: a /16 with 60,000 addresses taken and last_reserved_ip at the start
# of the range, so the next free address is 60,000 steps away.
#
#   ci/bench-host-local.sh [RUNS]        (default 21 runs per binary)
#
# Each binary gets its own identical store (ours keeps an index beside the
# files; sharing one store would make every upstream write invalidate it).
# Reported: median and p90 of warm runs, ours' first (cold: full rescan)
# run, and the ratio of medians. Timing includes process start, as a
# runtime sees it.
set -euo pipefail
runs=${1:-21}
root=$(cd "$(dirname "$0")/.." && pwd)
upstream=${UPSTREAM_HOST_LOCAL:-/usr/lib/cni/host-local}
[ -x "$upstream" ] || { echo "missing $upstream: apt-get install containernetworking-plugins" >&2; exit 2; }
cargo build --release -q -p cni-reference --manifest-path "$root/Cargo.toml"
ours="$root/target/release/host-local"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fill() { # fill DIR: 60,000 reservations 10.50.0.2 .. 10.50.234.97
  mkdir -p "$1/bench"
  local n=0 a b
  for ((a = 0; a < 256 && n < 60000; a++)); do
    for ((b = 0; b < 256 && n < 60000; b++)); do
      ((a == 0 && b < 2)) && continue
      printf 'seed%d\r\neth0' "$n" >"$1/bench/10.50.$a.$b"
      n=$((n + 1))
    done
  done
}

ns_now() { date +%s%N; }

# bench NAME BINARY DATADIR: prints one duration (µs) per run
bench() {
  local bin=$2 dir=$3 i t0 t1
  local conf="{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"host-local\",\"ipam\":{\"type\":\"host-local\",\"subnet\":\"10.50.0.0/16\",\"dataDir\":\"$dir\"}}"
  for ((i = 0; i < runs; i++)); do
    # Rewritten in place: the cursor moves back, the directory is untouched.
    printf '10.50.0.1' >"$dir/bench/last_reserved_ip.0"
    t0=$(ns_now)
    echo "$conf" | env -i CNI_COMMAND=ADD CNI_CONTAINERID="$1-$i" CNI_NETNS=/dev/null CNI_IFNAME=eth0 \
      CNI_PATH=/nonexistent "$bin" >"$work/out" || { cat "$work/out" >&2; exit 1; }
    t1=$(ns_now)
    echo $(((t1 - t0) / 1000))
  done
}

stats() { # median p90 of the numbers on stdin
  sort -n | awk '{v[NR]=$1} END {printf "%d %d\n", v[int((NR+1)/2)], v[int(NR*0.9+0.5)]}'
}

echo "filling two stores with 60,000 reservations each..."
fill "$work/up"
cp -a "$work/up" "$work/rs"

up_all=$(bench up "$upstream" "$work/up")
rs_all=$(bench rs "$ours" "$work/rs")
rs_cold=$(echo "$rs_all" | head -n1)
read -r up_med up_p90 < <(echo "$up_all" | tail -n +2 | stats)
read -r rs_med rs_p90 < <(echo "$rs_all" | tail -n +2 | stats)

printf '%-28s %10s %10s\n' "ADD, 60k taken (µs)" median p90
printf '%-28s %10d %10d\n' "upstream host-local" "$up_med" "$up_p90"
printf '%-28s %10d %10d\n' "cni-reference host-local" "$rs_med" "$rs_p90"
printf 'cni-reference first run (cold, full rescan): %d µs\n' "$rs_cold"
awk -v u="$up_med" -v r="$rs_med" 'BEGIN {printf "speed-up (median): %.1fx (target: 30x)\n", u / r}'
