# shellcheck shell=bash
# harness.sh: the one way every test suite counts, skips and reports.
# Source it from a suite (bash), then:
#
#   h_long                      true in the long mode (GUEST_PULL_TEST_MODE=long)
#   h_mode                      prints the mode: "default" or "long"
#   h_setup NAME CMD...         runs a setup step; it is not a test: success
#                               counts nothing, failure counts one failure
#                               ("setup: NAME") and returns 1
#   h_setup_here NAME CMD...    h_setup in the current shell: CMD may set
#                               variables and start processes; its output
#                               is not captured
#   h_check NAME CMD...         runs CMD: one pass or one failure (the last
#                               lines of its output are shown on failure)
#   h_pass NAME                 counts one pass
#   h_fail NAME [DETAIL]        counts one failure
#   h_skip NAME REASON          counts one skip; a skip is never a pass
#   h_figure NAME VALUE [UNIT]  prints a measured figure ("FIGURE NAME: VALUE UNIT")
#   h_finish                    prints "N passed, M failed, K skipped" and
#                               exits 1 if anything failed (or nothing ran
#                               and nothing was skipped), else 0
#   h_on_exit CMD               sets the EXIT trap CMD for this shell only
#                               (CMD sees the exit status in $?)
#
# h_pass/h_fail/h_skip/h_check always return 0 (h_check: 0 as well), so a
# suite under `set -e` keeps going after a failed assertion.
# Every line a suite counts starts with PASS:, FAIL: or SKIP:, so logs grep
# the same way everywhere; scripts/test.sh adds up the last lines.

H_PASSED=${H_PASSED:-0}
H_FAILED=${H_FAILED:-0}
H_SKIPPED=${H_SKIPPED:-0}

h_mode() {
  case "${GUEST_PULL_TEST_MODE:-default}" in
    long) echo long ;;
    *) echo default ;;
  esac
}
h_long() { [[ "$(h_mode)" == long ]]; }

h_pass() { H_PASSED=$((H_PASSED + 1)); echo "PASS: $1"; }
h_fail() {
  H_FAILED=$((H_FAILED + 1))
  echo "FAIL: $1"
  if [[ -n "${2:-}" ]]; then sed 's/^/    | /' <<<"$2" | tail -n 30; fi
  return 0
}
h_skip() { H_SKIPPED=$((H_SKIPPED + 1)); echo "SKIP: $1 (${2:-no reason given})"; }

h_check() {
  local name="$1" out
  shift
  if out=$("$@" 2>&1); then h_pass "$name"; else h_fail "$name" "$out"; fi
  return 0
}

h_setup() {
  local name="$1" out
  shift
  echo "SETUP: $name"
  if out=$("$@" 2>&1); then return 0; fi
  h_fail "setup: $name" "$out"
  return 1
}

h_setup_here() {
  local name="$1"
  shift
  echo "SETUP: $name"
  if "$@"; then return 0; fi
  h_fail "setup: $name"
  return 1
}

# A subshell of the suite (`( ... ) &`) that gets a TERM right after its
# fork, before bash has reset its traps, runs the suite's EXIT trap (bash
# 5.2): a trap `rm -rf "$WORK"` then removes the work directory under the
# cases still running. h_on_exit's trap does nothing in any shell but the
# one that set it. Its `if ... else` hands the status on to CMD as $?
# without a failing command that `set -e` would act on.
h_return() { return "$1"; }
h_on_exit() {
  # shellcheck disable=SC2064,SC2154  # expanded now on purpose: this shell's pid
  trap "h_exit_status=\$?; if [[ \$BASHPID != $BASHPID ]]; then :; elif h_return \$h_exit_status; then $1; else $1; fi" EXIT
}

h_figure() { echo "FIGURE $1: $2${3:+ $3}"; }

h_finish() {
  echo "$H_PASSED passed, $H_FAILED failed, $H_SKIPPED skipped"
  if ((H_FAILED > 0)); then exit 1; fi
  if ((H_PASSED + H_SKIPPED == 0)); then
    echo "FAIL: the suite ran nothing"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  exit 0
}
