#!/usr/bin/env bash
# What a vendor's CI runs (the GitHub action and the GitLab template call
# exactly this): judge PLUGIN, write JUnit, JSON and HTML reports into
# OUT, append the Markdown summary to GITHUB_STEP_SUMMARY when it is set.
# Environment: PLUGIN (required), PROFILE, EXPECTATIONS, CNI_PATH, OUT
# (default cni-conformance-report), ARGS (more `run` arguments).
# Exit status: the harness's (0 pass, 1 a MUST failed, 2 could not judge).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${PLUGIN:?PLUGIN names the plugin binary to judge}"
out=${OUT:-cni-conformance-report}
mkdir -p "$out"
harness=${CNI_CONFORMANCE:-}
if [ -z "$harness" ]; then
  cargo build --release -q -p cni-conformance --manifest-path "$root/Cargo.toml"
  harness="$root/target/release/cni-conformance"
fi
args=(run --plugin "$PLUGIN" --format json --output "$out/report.json" --bundle "$out/replay")
[ -n "${PROFILE:-}" ] && args+=(--profile "$PROFILE")
[ -n "${EXPECTATIONS:-}" ] && args+=(--expectations "$EXPECTATIONS")
[ -n "${CNI_PATH:-}" ] && args+=(--cni-path "$CNI_PATH")
# shellcheck disable=SC2206
[ -n "${ARGS:-}" ] && args+=($ARGS)
status=0
"$harness" "${args[@]}" || status=$?
if [ -s "$out/report.json" ]; then
  # The other formats come from the same results.
  GITHUB_STEP_SUMMARY='' "$harness" report --format junit --output "$out/junit.xml" "$out/report.json" >/dev/null
  GITHUB_STEP_SUMMARY='' "$harness" report --format html --output "$out/report.html" "$out/report.json" >/dev/null
fi
exit "$status"
