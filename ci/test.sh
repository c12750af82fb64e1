#!/usr/bin/env bash
# The README's test command. Installs what the tests need when it is
# missing (as root, from Debian: the upstream plugins, iproute2, ping,
# util-linux, and podman, buildah, containerd, runc, busybox for judging
# runtimes), builds the release binaries the README's commands use, then
# runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
{ [ -x /usr/lib/cni/macvlan ] && [ -x /usr/lib/cni/host-local ]; } || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
{ command -v unshare >/dev/null && command -v setpriv >/dev/null; } || need+=(util-linux)
command -v ping >/dev/null || need+=(iputils-ping)
# The runtimes `cni-conformance runtime` judges, and the busybox its containers run.
for p in podman buildah containerd runc conmon; do command -v $p >/dev/null || need+=($p); done
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci/test.sh: the tests need ${need[*]}: run this as root, or apt-get install ${need[*]}" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --workspace
ci/build-plugins.sh >/dev/null
cargo test --workspace "$@"
