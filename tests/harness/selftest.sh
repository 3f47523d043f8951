#!/usr/bin/env bash
# selftest.sh: the counting itself, checked with stand-in suites in a temp
# dir (a few seconds, no root): harness.sh (a suite that ran nothing fails,
# a skip is no pass), scripts/test.sh (a suite that prints no total line,
# exits non-zero after a clean total, or runs past its time limit counts as
# failed; the unit suite's bazel test too; the newest go found runs the
# suites), bazel_test_totals.py (a target
# that did not build or run counts no stale test.xml cases), the sanitizer suite's unit count (bazel
# failing with every listed test passed is a failure) and the conformance
# suite's count of `go test -v` results.
# Counts with harness.sh: last line "N passed, M failed, K skipped".
# shellcheck disable=SC2016  # bash -c programs take $1..
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=harness.sh
source "$HERE/harness.sh"

TMP=$(mktemp -d /tmp/gp-harness-selftest.XXXXXX)
h_on_exit 'rm -rf "$TMP"'

# suite NAME BODY: a stand-in suite script counting with harness.sh.
suite() {
  printf 'source %q\n%s\n' "$HERE/harness.sh" "$2" >"$TMP/$1.sh"
}

# totals NAME...: runs the stand-in suites through scripts/test.sh's
# run_suite (sourced, in a subshell; 3 s time limit, itself bounded) and
# prints its total "P F S".
totals() {
  timeout 60 bash -c '
    source "$1/scripts/test.sh"
    SKIP_LOG="$2/skips"
    GUEST_PULL_SUITE_TIMEOUT=3
    dir=$2
    shift 2
    for name in "$@"; do SUITE_SCRIPT[$name]="$dir/$name.sh"; run_suite "$name"; done
    echo "TOTALS $TOTAL_PASSED $TOTAL_FAILED $TOTAL_SKIPPED"' _ "$REPO" "$TMP" "$@" >"$TMP/out" 2>&1
  sed -n 's/^TOTALS //p' "$TMP/out"
}

# expect WHAT GOT WANT
expect() {
  if [[ "$2" == "$3" ]]; then h_pass "$1"; else h_fail "$1" "got '$2', want '$3'; output:"$'\n'"$(tail -n 20 "$TMP/out" 2>/dev/null)"; fi
}

# ---- harness.sh
out=$(bash -c 'source "$1"; h_finish' _ "$HERE/harness.sh" 2>&1)
expect "harness: a suite that ran nothing fails" "$?:$(tail -n 1 <<<"$out")" "1:0 passed, 1 failed, 0 skipped"
out=$(bash -c 'source "$1"; h_skip x "why"; h_finish' _ "$HERE/harness.sh" 2>&1)
expect "harness: a skip is no pass and says why" "$?:$(tr '\n' '|' <<<"$out")" "0:SKIP: x (why)|0 passed, 0 failed, 1 skipped|"
# h_on_exit: subshells TERMed right after their fork (bash 5.2 runs a
# plain `trap ... EXIT` in them) leave the suite's work dir alone; the
# suite's own exit runs the trap, with its status in $? (under set -e).
out=$(timeout 60 bash -c 'set -euo pipefail; source "$1"; W=$(mktemp -d "$2/onexit.XXXXXX")
  h_on_exit "rm -rf \"\$W\""
  for ((i = 0; i < 200; i++)); do (sleep 10) 2>/dev/null & kill $! 2>/dev/null || true; done
  wait || true; [[ -d $W ]] && echo kept || echo removed' _ "$HERE/harness.sh" "$TMP" 2>/dev/null)
expect "harness: h_on_exit's trap runs in no TERMed subshell (200 forks)" "$out" "kept"
expect "harness: h_on_exit's trap runs at the suite's exit" "$(find "$TMP" -maxdepth 1 -name 'onexit.*' | wc -l)" "0"
out=$(bash -c 'set -euo pipefail; source "$1"; h_on_exit '"'"'echo "status $?"'"'"'; exit 3' _ "$HERE/harness.sh" 2>&1)
expect "harness: h_on_exit's command sees the exit status, which stays the suite's" "$?:$out" "3:status 3"

# ---- scripts/test.sh
suite clean 'h_pass a; h_pass b; h_skip c why; h_finish'
expect "test.sh: a clean suite counts as it says" "$(totals clean)" "2 0 1"
suite silent 'echo "no total line"; exit 0'
expect "test.sh: a suite with no total line, exit 0, is a failure" "$(totals silent)" "0 1 0"
suite crashed 'h_pass a; echo "1 passed, 0 failed, 0 skipped"; exit 2'
expect "test.sh: a non-zero exit after a clean total is a failure" "$(totals crashed)" "1 1 0"
suite hangs 'trap h_finish EXIT; h_pass "before"; sleep 600'
start=$SECONDS
expect "test.sh: a suite past its time limit is stopped and fails" "$(totals hangs)" "1 1 0"
expect "test.sh: the time limit is said" \
  "$(grep -c '^FAIL: suite hangs stopped at its time limit of 3s' "$TMP/out")" 1
if ((SECONDS - start < 30)); then h_pass "test.sh: the stopped suite took $((SECONDS - start)) s"; else
  h_fail "test.sh: the stopped suite took $((SECONDS - start)) s"; fi
expect "test.sh: every suite adds to the total" "$(totals clean silent crashed)" "3 2 1"
# The unit suite (bazel test) is under the same limit: a stand-in bazel
# whose `test` reports one target, then hangs, is stopped: the target
# counts, and the suite fails.
mkdir -p "$TMP/bin"
printf '%s\n' '#!/usr/bin/env bash' \
  'if [[ "$1" == info ]]; then echo "$STANDIN_LOGS"; exit 0; fi' \
  'echo "//pkg:t   PASSED in 0.1s"; exec sleep 600' >"$TMP/bin/bazel"
chmod +x "$TMP/bin/bazel"
start=$SECONDS
expect "test.sh: the unit suite past its time limit is stopped and fails" \
  "$(PATH="$TMP/bin:$PATH" STANDIN_LOGS="$TMP/nologs" totals unit)" "1 1 0"
expect "test.sh: the unit suite's time limit is said" \
  "$(grep -c '^FAIL: suite unit stopped at its time limit of 3s' "$TMP/out")" 1
if ((SECONDS - start < 30)); then h_pass "test.sh: the stopped unit suite took $((SECONDS - start)) s"; else
  h_fail "test.sh: the stopped unit suite took $((SECONDS - start)) s"; fi

# Which go the suites get (choose_go): the newest found, not the first on
# PATH (Debian's 1.19 there, Go 1.26 in /usr/local/go/bin); stand-in gos.
mkdir -p "$TMP/go-old" "$TMP/go-new"
printf '%s\n' '#!/bin/sh' '[ "$1 $2" = "env GOVERSION" ] && echo go1.19.8' >"$TMP/go-old/go"
printf '%s\n' '#!/bin/sh' '[ "$1 $2" = "env GOVERSION" ] && echo "go99.0.1 X:stand-in"' >"$TMP/go-new/go"
chmod +x "$TMP/go-old/go" "$TMP/go-new/go"
# choose_go_with DIRS [FIRST]: choose_go searching DIRS with FIRST (default
# go-old) first on PATH; prints its output and the go then first on PATH,
# and the suites' minimum.
choose_go_with() {
  PATH="${2:-$TMP/go-old}:$PATH" GO_SEARCH_PATH="$1" timeout 60 bash -c \
    'source "$1/scripts/test.sh"; choose_go; echo "FIRST $(command -v go)"; echo "NEED $(go_min_version)"' _ "$REPO" 2>&1
}
out=$(choose_go_with "$TMP/go-old:$TMP/go-new")
expect "test.sh: the newest go found goes first on PATH, not the first one there" \
  "$(sed -n 's/^FIRST //p' <<<"$out")|$(grep -c '^WARNING' <<<"$out")" "$TMP/go-new/go|0"
expect "test.sh: the go chosen is said" "$(grep -c "^go: $TMP/go-new/go (go99.0.1), first on PATH" <<<"$out")" 1
out=$(choose_go_with "$TMP/go-old")
need=$(sed -n 's/^NEED //p' <<<"$out")
expect "test.sh: a go older than the suites' go.mod files ask for is a warning naming both" \
  "$([[ -n "$need" ]] && grep -c "^WARNING: go1.19.8 is older than go$need," <<<"$out")" 1
# Gos that say their version otherwise: one older than 1.16 prints an empty
# GOVERSION (only `go version` says it), a devel build prefixes it, a
# wrapper named go may say something else. The first two were skipped:
# the newest (a devel go) was never chosen, and an old go alone was "none".
mkdir -p "$TMP/go-115" "$TMP/go-devel" "$TMP/go-odd"
printf '%s\n' '#!/bin/sh' 'case "$1 $2" in' '"env GOVERSION") echo ;;' \
  '"version ") echo "go version go1.15.15 linux/amd64" ;;' 'esac' >"$TMP/go-115/go"
printf '%s\n' '#!/bin/sh' \
  '[ "$1 $2" = "env GOVERSION" ] && echo "devel go100.1-abcdef Tue Dec 1 00:00:00 2026 +0000"' >"$TMP/go-devel/go"
printf '%s\n' '#!/bin/sh' 'echo "hello from a wrapper"' >"$TMP/go-odd/go"
chmod +x "$TMP/go-115/go" "$TMP/go-devel/go" "$TMP/go-odd/go"
out=$(choose_go_with "$TMP/go-odd:$TMP/go-115:$TMP/go-new:$TMP/go-devel")
expect "test.sh: a devel go says its version and is the newest; one before 1.16 is found by go version" \
  "$(sed -n 's/^FIRST //p' <<<"$out")|$(grep -c "^go: $TMP/go-devel/go (go100.1-abcdef), first on PATH for every suite; found: .*$TMP/go-115/go go1.15.15" <<<"$out")" \
  "$TMP/go-devel/go|1"
out=$(choose_go_with "$TMP/go-115")
expect "test.sh: a go before 1.16 alone is chosen and warned about, not \"none\"" \
  "$(grep -c "^go: $TMP/go-115/go (go1.15.15)" <<<"$out")|$(grep -c "^WARNING: go1.15.15 is older" <<<"$out")" "1|1"
out=$(choose_go_with "::$TMP/go-odd:")
expect "test.sh: no go that says its version (empty entries, a wrapper) is said" \
  "$(grep -c "^go: none that says its version in ::$TMP/go-odd:" <<<"$out")" 1
# A relative PATH entry first names another directory once a suite changes
# directory: the go goes first on PATH by its absolute name.
rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$TMP/go-new" "$REPO")
out=$(choose_go_with "$rel:$TMP/go-old" "$rel")
expect "test.sh: a go found by a relative PATH entry goes first by its absolute name" \
  "$(sed -n 's/^FIRST //p' <<<"$out")|$(grep -c "^go: $TMP/go-new/go (go99.0.1)" <<<"$out")" "$TMP/go-new/go|1"

# ---- bazel_test_totals.py
mkdir -p "$TMP/logs/pkg/stale" "$TMP/logs/pkg/ok"
printf '%s\n' '<testsuites><testsuite name="S">' \
  '<testcase name="a" classname="S" status="run" result="completed"/>' \
  '<testcase name="b" classname="S" status="run" result="completed"/>' \
  '</testsuite></testsuites>' | tee "$TMP/logs/pkg/stale/test.xml" >"$TMP/logs/pkg/ok/test.xml"
printf '%s\n' '//pkg:stale                     FAILED TO BUILD' '//pkg:ok                 PASSED in 0.1s' >"$TMP/bazel.out"
out=$(python3 "$HERE/bazel_test_totals.py" "$TMP/bazel.out" "$TMP/logs")
expect "unit totals: a target that did not build counts no stale test.xml cases" \
  "$?:$(tail -n 1 <<<"$out")" "1:2 passed, 1 failed, 0 skipped"
: >"$TMP/empty.out"
out=$(python3 "$HERE/bazel_test_totals.py" "$TMP/empty.out" "$TMP/logs")
expect "unit totals: no test target is a failure" "$?:$(tail -n 1 <<<"$out")" "1:0 passed, 1 failed, 0 skipped"

# ---- tests/sanitizers/run.sh: the ASan unit count, bazel faked
mkdir -p "$TMP/bin"
printf '%s\n' '#!/bin/sh' 'echo "//pkg:a_test      PASSED in 0.1s"' \
  'echo "ERROR: /x/BUILD:1:1: Compiling tool.cc failed"' 'exit 1' >"$TMP/bin/bazel"
chmod +x "$TMP/bin/bazel"
out=$(PATH="$TMP/bin:$PATH" timeout 60 bash -c \
  'source "$1/tests/sanitizers/run.sh"; H_PASSED=0 H_FAILED=0; unit_tests; echo "TOTALS $H_PASSED $H_FAILED"' \
  _ "$REPO" 2>&1)
expect "sanitizers: bazel failing with every test passed is a failure" "$(sed -n 's/^TOTALS //p' <<<"$out")" "1 1"

# ---- tests/conformance/run.sh: the `go test -v` results, its count_cases
printf '%s\n' '=== RUN   TestA' '=== RUN   TestA/one' '=== RUN   TestA/two' \
  '    a_test.go:5: not here' '--- PASS: TestA (0.00s)' '    --- PASS: TestA/one (0.00s)' \
  '    --- SKIP: TestA/two (0.00s)' '=== RUN   TestB' '    b_test.go:9: needs root' \
  '--- SKIP: TestB (0.00s)' '=== RUN   TestC' '--- PASS: TestC (0.01s)' >"$TMP/go.log"
out=$(bash -c 'h_pass() { echo "P $1"; }; h_fail() { echo "F $1"; }; h_skip() { echo "S $1 ($2)"; }
  eval "$(sed -n "/^count_cases() {/,/^}/p" "$1/tests/conformance/run.sh")"; count_cases "$2"' \
  _ "$REPO" "$TMP/go.log" 2>&1 | tr '\n' '|')
expect "conformance: subtests count, not their parent; a test without subtests counts, a skip with its reason" \
  "$out" "P TestA/one|S TestA/two (not here)|S TestB (needs root)|P TestC|"

h_finish
