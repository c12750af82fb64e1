#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo fuzz, libFuzzer) for SECONDS each
# (default 20), one after the other, and prints how many inputs each one
# ran. Fails on the first crash; the input that crashed it is kept in
# fuzz/artifacts/<target>/ (replay it with `cargo +nightly fuzz run
# <target> <file>`). The committed seeds in fuzz/corpus/<target>/ are only
# read: what the run finds goes to a temporary folder.
#
# Installs what it needs when missing: the nightly toolchain (rustup) and
# cargo-fuzz; a C++ compiler (for libFuzzer) from Debian when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
case $seconds in '' | *[!0-9]*) echo "usage: ci/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac

if ! command -v c++ >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci/fuzz.sh: libFuzzer needs a C++ compiler: apt-get install g++" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
rustup run nightly rustc --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd fuzz
cargo +nightly fuzz build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target" "corpus/$target"
  log="$work/$target.log"
  echo "== $target: ${seconds}s"
  # The first folder gets what the run finds; the seeds are the second.
  if ! cargo +nightly fuzz run "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>"$log"; then
    tail -n 60 "$log" >&2
    echo "ci/fuzz.sh: $target failed (crash input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  line=$(printf '%-20s %12s executions in %ss' "$target" "${execs:-?}" "$seconds")
  echo "$line"
  summary+=("$line")
done
echo "== every target ran without a crash"
printf '%s\n' "${summary[@]}"
