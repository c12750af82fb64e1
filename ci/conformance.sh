#!/usr/bin/env bash
# The main job: build everything and run the conformance suite against the
# reference plugins. Extra arguments go to `cni-conformance run`, e.g.
#   ci/conformance.sh --plugin /usr/lib/cni/macvlan
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q --manifest-path "$root/Cargo.toml"
exec "$root/target/release/cni-conformance" run "$@"
