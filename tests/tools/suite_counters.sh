# Pass/fail counting for the standalone test scripts built on peers.sh
# (tests/tools/cri/cri_client_test.sh, tests/e2e/images_selftest.sh):
#   check NAME CMD...   runs CMD and counts it as passed or failed
# peers_teardown_suite prints the totals.
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# check NAME CMD...: runs CMD, records pass/fail.
check() {
  local name="$1"
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
