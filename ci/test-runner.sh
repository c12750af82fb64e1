#!/bin/sh
# Cargo starts every test binary through this script (.cargo/config.toml).
# Tests get a network and mount namespace of their own, so they can never
# touch the machine's network or mounts. As root they stay real root (a
# test drops to an unprivileged user to prove the harness works rootless);
# as anyone else they become root inside a new user namespace.
if [ "$(id -u)" -eq 0 ]; then
  exec unshare --net --mount --propagation private -- "$@"
fi
exec unshare --user --map-root-user --net --mount --propagation private -- "$@"
