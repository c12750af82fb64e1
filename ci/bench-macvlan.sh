#!/usr/bin/env bash
# Side-by-side ADD and DEL latency: upstream macvlan + upstream host-local
# against ours + ours, on a veth master, container namespace held by a
# process (CNI_NETNS=/proc/<pid>/ns/net), as a runtime drives them.
#
#   ci/bench-macvlan.sh [RUNS]        (default 50 per measurement)
#
# Runs inside a private network and mount namespace it creates, so the
# machine's own network is never touched. Needs hyperfine and the upstream
# plugins (apt-get install hyperfine containernetworking-plugins).
# ADD is timed with DEL as hyperfine's --prepare, DEL with ADD as prepare;
# hyperfine subtracts its shell's start-up. Ours is the static build of
# ci/build-plugins.sh, as installed. Times include both processes
# (macvlan and the host-local it executes).
set -euo pipefail
runs=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${BENCH_SANDBOX:-}" ]; then
  command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 2; }
  [ -x /usr/lib/cni/macvlan ] || { echo "needs /usr/lib/cni: apt-get install containernetworking-plugins" >&2; exit 2; }
  BENCH_PLUGINS=$("$root/ci/build-plugins.sh")
  export BENCH_PLUGINS
  userns=()
  [ "$(id -u)" -eq 0 ] || userns=(--user --map-root-user)
  exec env BENCH_SANDBOX=1 unshare "${userns[@]}" --net --mount --propagation private -- "$0" "$@"
fi

work=$(mktemp -d)
unshare --net sleep infinity &
holder=$!
trap 'kill $holder 2>/dev/null; rm -rf "$work"' EXIT
ip link set lo up
ip link add m0 type veth peer name m0p
ip link set m0 up
ip link set m0p up
# unshare forks before it enters the namespace: wait until it has.
while [ "$(readlink /proc/$holder/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do :; done
ctr=/proc/$holder/ns/net

conf() { # conf NAME: writes the network config for NAME
  printf '{"cniVersion":"1.0.0","name":"%s","type":"macvlan","master":"m0","ipam":{"type":"host-local","subnet":"10.60.0.0/24","dataDir":"%s","routes":[{"dst":"0.0.0.0/0"}]}}' \
    "$1" "${BENCH_STORE:-$work/store}" >"$work/$1.json"
}
conf upstream
conf ours

call() { # call VERB PLUGIN CNI_PATH NAME
  echo "CNI_COMMAND=$1 CNI_CONTAINERID=bench CNI_NETNS=$ctr CNI_IFNAME=eth0 CNI_PATH=$3 $2 <$work/$4.json >/dev/null"
}
up_add=$(call ADD /usr/lib/cni/macvlan /usr/lib/cni upstream)
up_del=$(call DEL /usr/lib/cni/macvlan /usr/lib/cni upstream)
rs_add=$(call ADD "$BENCH_PLUGINS/macvlan" "$BENCH_PLUGINS" ours)
rs_del=$(call DEL "$BENCH_PLUGINS/macvlan" "$BENCH_PLUGINS" ours)

hyperfine --style basic --runs "$runs" --warmup 3 --export-json "$work/add.json" \
  --prepare "$up_del; sleep 0.05" -n "upstream ADD" "$up_add" \
  --prepare "$rs_del; sleep 0.05" -n "ours ADD" "$rs_add" >/dev/null
eval "$up_del"; eval "$rs_del"
# A link deleted within milliseconds of its creation is removed faster by
# the kernel than a settled one (measured: 13 ms against 23 ms), which
# would reward the slower ADD; DEL is timed on links that are 100 ms old.
hyperfine --style basic --runs "$runs" --warmup 3 --export-json "$work/del.json" \
  --prepare "$up_add; sleep 0.1" -n "upstream DEL" "$up_del" \
  --prepare "$rs_add; sleep 0.1" -n "ours DEL" "$rs_del" >/dev/null
eval "$up_del"; eval "$rs_del"

medians() { grep -o '"median": *[0-9.e-]*' "$1" | awk '{print $2 * 1000}'; }
read -r up_a rs_a < <(medians "$work/add.json" | xargs)
read -r up_d rs_d < <(medians "$work/del.json" | xargs)
printf '%-10s %14s %14s %10s\n' "median ms" upstream ours speed-up
printf '%-10s %14.2f %14.2f %9.1fx\n' ADD "$up_a" "$rs_a" "$(awk -v u="$up_a" -v r="$rs_a" 'BEGIN{print u/r}')"
printf '%-10s %14.2f %14.2f %9.1fx\n' DEL "$up_d" "$rs_d" "$(awk -v u="$up_d" -v r="$rs_d" 'BEGIN{print u/r}')"
echo "targets: ADD at least 4x faster; DEL no slower"
