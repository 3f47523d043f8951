#!/usr/bin/env bash
# Fuzzing suite: builds the libFuzzer targets (tests/fuzz/build.sh, Debian's
# clang) and runs each from its checked-in seed corpus
# (tests/fuzz/corpus/<target>/) for a bounded time: 20 s per target in the
# default mode, 600 s in the long mode (GUEST_PULL_FUZZ_SECONDS overrides).
# New inputs go to a temp corpus, never into the repository. A crash, leak,
# timeout or sanitizer report fails the target and keeps the reproducer in
# $GUEST_PULL_FUZZ_ARTIFACTS (default /tmp/guest-pull-fuzz-artifacts).
# The targets run side by side, one per CPU, so that each has a core of its
# own (GUEST_PULL_FUZZ_JOBS overrides the count). Prints the executions per
# target (FIGURE lines); ends with the harness line.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"

readonly TARGETS=(volume_option mount_helper config filters tar labels)
if h_long; then seconds=${GUEST_PULL_FUZZ_SECONDS:-600}; else seconds=${GUEST_PULL_FUZZ_SECONDS:-20}; fi
readonly OUT="${GUEST_PULL_FUZZ_OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/guest-pull-fuzz}"
readonly ARTIFACTS="${GUEST_PULL_FUZZ_ARTIFACTS:-/tmp/guest-pull-fuzz-artifacts}"

JOBS="${GUEST_PULL_FUZZ_JOBS:-$(nproc)}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || JOBS=1
readonly JOBS
declare -A WORK=() PID=()

# start_target TARGET: runs it in the background, in a work dir of its own.
start_target() {
  local target="$1" work
  work=$(mktemp -d "/tmp/gp-fuzz-$target.XXXXXX")
  mkdir -p "$work/corpus" "$ARTIFACTS/$target"
  timeout --kill-after=10 $((seconds + 120)) nice -n 10 "$OUT/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$target/" "$work/corpus" "$HERE/corpus/$target" \
    >"$work/log" 2>&1 &
  WORK[$target]=$work
  PID[$target]=$!
}

# finish_target TARGET: waits for it and counts it.
finish_target() {
  local target="$1" work="${WORK[$1]}" execs status=0
  wait "${PID[$target]}" || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | grep -o '[0-9]*$' | tail -n 1)
  h_figure "fuzz executions $target" "${execs:-0}" "in ${seconds}s"
  if ((status == 0)); then
    h_pass "fuzz $target (${execs:-0} executions, no crash)"
  else
    h_fail "fuzz $target (exit $status; reproducer in $ARTIFACTS/$target/)" "$(tail -n 40 "$work/log")"
  fi
  rm -rf "$work"
}

main() {
  # scripts/prebuild.sh: the targets only, nothing run or counted.
  if [[ "${1:-}" == --build-only ]]; then exec bash "$HERE/build.sh" "$OUT"; fi
  echo "fuzz: mode $(h_mode), ${seconds}s per target"
  if ! command -v clang++ >/dev/null; then
    h_fail "setup: clang++" "clang is missing: run scripts/install-deps.sh (clang libclang-rt-14-dev)"
    h_finish
  fi
  h_setup "build the fuzz targets (tests/fuzz/build.sh)" nice -n 10 bash "$HERE/build.sh" "$OUT" || h_finish
  echo "fuzz: $JOBS target(s) at a time"
  local i j
  for ((i = 0; i < ${#TARGETS[@]}; i += JOBS)); do
    for ((j = i; j < i + JOBS && j < ${#TARGETS[@]}; j++)); do start_target "${TARGETS[j]}"; done
    for ((j = i; j < i + JOBS && j < ${#TARGETS[@]}; j++)); do finish_target "${TARGETS[j]}"; done
  done
  h_finish
}

main "$@"
