#!/usr/bin/env bash
# A full run against a plugin that prints 1 GiB on stdout on every call and
# fails: the harness's peak memory, the wall time and the report's size.
#   ci/flood.sh [BYTES]     (default 1073741824)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bytes=${1:-1073741824}
cargo build --release -q --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/macvlan" <<SCRIPT
#!/bin/sh
head -c $bytes /dev/zero
exit 1
SCRIPT
chmod +x "$work/macvlan"
status=0
/usr/bin/time -v -o "$work/time" "$root/target/release/cni-conformance" run \
  --plugin "$work/macvlan" --format json --output "$work/report.json" >/dev/null || status=$?
echo "exit status: $status (1: failures found)"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/time" | sed 's/^\s*//'
echo "report: $(stat -c %s "$work/report.json") bytes"
