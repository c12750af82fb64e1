#!/usr/bin/env bash
# Builds a release tarball: the harness and the reference plugins linked
# statically, shell completions, man pages and SHA256SUMS. Prints the
# tarball's path.
#   ci/package.sh            # dist/cni-conformance-<version>-<target>.tar.gz
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
host=$(rustc -vV | sed -n 's/^host: //p')
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
flags=()
case "$host" in *-linux-gnu) flags=(-C target-feature=+crt-static) ;; esac
RUSTFLAGS="${RUSTFLAGS:-} ${flags[*]}" cargo build --release -q --workspace --target "$host" \
  --manifest-path "$root/Cargo.toml" >&2
name="cni-conformance-$version-$host"
stage="$root/dist/$name"
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/completions" "$stage/man"
for b in cni-conformance macvlan host-local; do
  install -m 0755 "$root/target/$host/release/$b" "$stage/bin/$b"
done
for shell in bash zsh fish; do
  "$stage/bin/cni-conformance" generate completions "$shell" > "$stage/completions/cni-conformance.$shell"
done
"$stage/bin/cni-conformance" generate man "$stage/man"
cp "$root/README.md" "$stage/"
(cd "$stage" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
tar -C "$root/dist" -czf "$root/dist/$name.tar.gz" "$name"
echo "$root/dist/$name.tar.gz"
