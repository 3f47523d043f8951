#!/usr/bin/env bash
# Sanitizer suite: every unit test built with ASan+UBSan
# (`bazel test --config=asan //...`, see .bazelrc; its own output directory,
# no bazel-* symlinks, so the normal build's outputs stay), one pass or
# failure per test target; then a daemon smoke run: the ASan daemon serves
# containerd's snapshotter conformance cases (tests/conformance/run.sh with
# GUEST_PULL_DAEMON) and is stopped with SIGTERM; any ASan/UBSan/LSan report
# (written to a log_path we check) fails it. The default mode runs a subset
# of the conformance cases, the long mode all of them. Then the concurrency
# tests under ThreadSanitizer (`bazel test --config=tsan`): the core's stress
# (snapshotter/stress_test.cc), the threads below the gRPC edge (spare
# directories, call pool, group commit, watchdog) and the layer cache's; the
# long mode runs each 5 times. The default mode takes Bazel's cached result
# of a test whose inputs have not changed (its line says so); the long mode
# runs every test again. (The service's own tests stay out: TSan sees
# no happens-before through Debian's uninstrumented gRPC transport.) Debian's absl::Mutex is annotated for TSan by
# base/tsan_absl_mutex.cc; tests/sanitizers/tsan.supp says what is
# suppressed and why. Last, a release build (`-c opt`) of the shipped
# binaries and the guest agent, of every target in the long mode.
#
# The sanitizer builds use an output base of their own
# ($GUEST_PULL_SANITIZER_OUTPUT_BASE, default under ~/.cache, one per
# checkout), so `run.sh --build-only` (scripts/prebuild.sh) can build them
# in the background while other suites use the main bazel server.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
cd "$REPO" || exit 1

SANITIZER_OUTPUT_BASE="${GUEST_PULL_SANITIZER_OUTPUT_BASE:-${XDG_CACHE_HOME:-$HOME/.cache}/guest-pull-sanitizers/$(printf %s "$REPO" | md5sum | cut -c1-32)}"
readonly SANITIZER_OUTPUT_BASE

# bazel on the sanitizer builds' output base.
readonly SBAZEL=(bazel --output_base="$SANITIZER_OUTPUT_BASE")

# The packages of //... : with another output base, //... would descend
# into the main build's convenience symlinks (bazel-<dir> holds bazel's
# own external packages), which .bazelignore can name only for known
# checkout names. So: the root package and every real top-level directory
# with a BUILD file.
all_targets() {
  local d
  echo "//:all"
  for d in "$REPO"/*/; do
    d=${d%/}
    [[ -L "$d" ]] && continue
    [[ -n "$(find "$d" -path '*/node_modules' -prune -o \( -name BUILD -o -name BUILD.bazel \) -print -quit)" ]] &&
      echo "//${d##*/}/..."
  done
}
mapfile -t ALL_TARGETS < <(all_targets)
readonly ALL_TARGETS

# test_output TARGET LOG: what `--test_output=errors` printed of TARGET's
# failed runs in LOG, from its first gtest failure, sanitizer report or
# crash on (30 lines; the log lines of the tests that passed before it are
# left out); bazel's errors when there is none (a target that did not
# build). Bazel closes the block with a line of exactly 80 '=', sanitizer
# reports open and close theirs with shorter ones.
test_output() {
  local out from
  out=$(awk -v t="Test output for $1" '
    index($0, t ":") || index($0, t " (run ") { on = 1; next }
    on && length($0) == 80 && /^=+$/ { on = 0; next }
    on' "$2" | grep -vE '^\[( RUN      |       OK |----------|==========)\]')
  from=$(grep -nE -m 1 ': Failure$|\[  FAILED  \]|Sanitizer|runtime error|FATAL|CHECK failed' <<<"$out" | cut -d: -f1)
  if [[ -n "$from" ]]; then out=$(tail -n +"$from" <<<"$out"); fi
  out=$(head -n 30 <<<"$out")
  if [[ -z "$out" ]]; then out=$(grep -m 10 -E '^ERROR:' "$2"); fi
  printf '%s\n' "$out"
}

# FRESH: in the long mode, no test result from Bazel's cache.
FRESH=()
h_long && FRESH=(--nocache_test_results)
readonly FRESH

# cached_note LINE: what a PASS line adds when Bazel did not run the test.
cached_note() { [[ "$1" == *"(cached)"* ]] && echo " (Bazel's cached result: same inputs, not run again)"; }

unit_tests() {
  local log status=0
  log=$(mktemp /tmp/gp-asan-unit.XXXXXX)
  nice -n 10 "${SBAZEL[@]}" test --config=asan --keep_going --test_output=errors "${FRESH[@]}" \
    "${ALL_TARGETS[@]}" >"$log" 2>&1 || status=$?
  local line target result count=0 failed=0
  while IFS= read -r line; do
    target=$(awk '{print $1}' <<<"$line")
    count=$((count + 1))
    if [[ "$line" =~ PASSED ]]; then
      h_pass "asan $target$(cached_note "$line")"
    else
      failed=$((failed + 1))
      result=$(sed -E 's/^[^ ]+ +(\(cached\) )?//' <<<"$line")
      h_fail "asan $target: $result" "$(test_output "$target" "$log")"
    fi
  done < <(grep -E '^//[^ ]+ +(\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|FAILED TO BUILD|INCOMPLETE)' "$log")
  h_figure "asan test targets" "$count"
  if ((count == 0)); then h_fail "asan unit tests: no test result" "$(tail -n 30 "$log")"
  # --keep_going: a target that is no test and did not build under ASan is
  # in no test line, only in bazel's exit status.
  elif ((status != 0 && failed == 0)); then
    h_fail "asan: bazel test exited $status with every test passed (a target did not build?)" \
      "$(grep -m 10 -E '^ERROR:' "$log")"
  fi
  rm -f "$log"
}

daemon_smoke() {
  local bin reports regex='Conformance/(Basic|Walk|Remove|View|Update)'
  bin="$("${SBAZEL[@]}" info --config=asan bazel-bin 2>/dev/null)/snapshotter/containerd-guest-pull-grpc"
  if [[ ! -x "$bin" ]]; then h_fail "asan daemon smoke: $bin missing"; return; fi
  h_long && regex='.'
  reports=$(mktemp -d /tmp/gp-asan-reports.XXXXXX)
  local out status=0
  out=$(ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
        GUEST_PULL_DAEMON="$bin" bash tests/conformance/run.sh --run "$regex" 2>&1) || status=$?
  h_figure "asan daemon smoke conformance" "$(tail -n 1 <<<"$out")"
  if ((status == 0)) && [[ -z "$(ls -A "$reports")" ]]; then
    h_pass "asan daemon smoke (conformance $regex, SIGTERM, no sanitizer report)"
  else
    h_fail "asan daemon smoke (exit $status)" "$(cat "$reports"/* 2>/dev/null | head -n 40; tail -n 20 <<<"$out")"
  fi
  rm -rf "$reports"
}

readonly TSAN_TESTS=(//snapshotter:snapshotter_stress_test
                     //snapshotter:spare_dirs_test
                     //snapshotter:call_pool_test
                     //snapshotter:group_commit_test
                     //snapshotter:watchdog_test
                     //kata_volume/verity:layer_cache_index_test
                     //snapshotter/guest_pull:layer_cache_source_test)

tsan_tests() {
  local log runs=1 start=$SECONDS
  h_long && runs=5
  log=$(mktemp /tmp/gp-tsan.XXXXXX)
  nice -n 10 "${SBAZEL[@]}" test --config=tsan --keep_going --test_output=errors "${FRESH[@]}" \
    --runs_per_test="$runs" "${TSAN_TESTS[@]}" >"$log" 2>&1
  local target line
  for target in "${TSAN_TESTS[@]}"; do
    line=$(grep -E "^$target +(\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|FAILED TO BUILD)" "$log")
    if [[ "$line" =~ PASSED ]]; then
      h_pass "tsan $target (x$runs, no ThreadSanitizer report)$(cached_note "$line")"
    else
      h_fail "tsan $target: ${line:-no result}" "$(test_output "$target" "$log")"
    fi
  done
  local logs
  logs="$("${SBAZEL[@]}" info --config=tsan bazel-testlogs 2>/dev/null)/snapshotter/snapshotter_stress_test"
  h_figure "tsan stress" "$(find "$logs" -name test.log -exec grep -ho 'stress: .*' {} + 2>/dev/null | head -n 1)"
  h_figure "tsan build and runs (s)" "$((SECONDS - start))"
  rm -f "$log"
}

# The binaries the nodes run (and the test guest's agent), built as a
# packager's release build would (`-c opt`: -O2 everywhere, NDEBUG and
# _FORTIFY_SOURCE, whose warn_unused_result and maybe-uninitialized checks
# the default build never meets with -Werror on); the long mode builds
# every target so. On this suite's output base, without bazel-* symlinks.
readonly RELEASE_BINARIES=(//snapshotter:containerd-guest-pull-grpc
  //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity
  //guest_agent:guest-agent)
readonly RELEASE_FLAGS=(-c opt --symlink_prefix=/ --keep_going)
release_targets() {
  if h_long; then printf '%s\n' "${ALL_TARGETS[@]}"; else printf '%s\n' "${RELEASE_BINARIES[@]}"; fi
}

release_build() {
  local log status=0 targets what
  mapfile -t targets < <(release_targets)
  what=$(h_long && echo "every target" || echo "the shipped binaries")
  log=$(mktemp /tmp/gp-release.XXXXXX)
  nice -n 10 "${SBAZEL[@]}" build "${RELEASE_FLAGS[@]}" "${targets[@]}" >"$log" 2>&1 || status=$?
  if ((status == 0)); then
    h_pass "release build (-c opt, -Werror) of $what"
  else
    h_fail "release build (-c opt, -Werror) of $what: bazel exited $status" \
      "$(grep -m 20 -E ': error: |^ERROR: ' "$log")"
  fi
  rm -f "$log"
}

# build_only: what the suite runs, built (ASan: every target; TSan: its
# tests; the release build); no test runs, nothing counted.
build_only() {
  local status=0 pid targets
  # The bazel server runs in a session of its own: under autogroup
  # scheduling the caller's nice would not reach its compiles, so its
  # session gets the caller's nice (scripts/prebuild.sh runs at 19).
  pid=$("${SBAZEL[@]}" info server_pid 2>/dev/null) &&
    nice 2>/dev/null >"/proc/$pid/autogroup"
  "${SBAZEL[@]}" build --config=asan --keep_going "${ALL_TARGETS[@]}" || status=1
  "${SBAZEL[@]}" build --config=tsan --keep_going "${TSAN_TESTS[@]}" || status=1
  mapfile -t targets < <(release_targets)
  "${SBAZEL[@]}" build "${RELEASE_FLAGS[@]}" "${targets[@]}" || status=1
  return "$status"
}

main() {
  if [[ "${1:-}" == --build-only ]]; then build_only; exit; fi
  echo "sanitizers: mode $(h_mode)"
  unit_tests
  daemon_smoke
  tsan_tests
  release_build
  # Its server (and memory) is not needed by the suites after this one.
  "${SBAZEL[@]}" shutdown >/dev/null 2>&1
  h_finish
}

# Sourced (tests/harness/selftest.sh): the functions only.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
