#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test suite:
# the gtest unit tests (bazel test //...), containerd's snapshotter
# conformance suite against the daemon, the CRI client and image checks,
# the deployment suite, the end-to-end suites on real containerd, runc,
# a loopback registry and the guest stand-in, and the benchmarks (figures
# against containerd's overlayfs and veritysetup, no thresholds). Must run
# as root (real mounts, containerd). The last line is the total over every
# suite:
#   N passed, M failed, K skipped
# Environment: GUEST_PULL_TEST_MODE=long runs the long mode (the rest of the
# matrix, long runs); E2E_SKIP_LARGE=1 skips the 300 MB image; TEST_SUITES
# limits the suites (space-separated names from SUITES below).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO="$PWD"
# shellcheck source=../tests/harness/harness.sh
source tests/harness/harness.sh

readonly SUITES=(unit conformance cri images deploy foundation
                 standin_selftest functional compatibility stability
                 snapshots_bench verity_bench
                 sanitizers fuzz)
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
SUMMARY=()

log() { printf '\n=== %s\n' "$*"; }

# Adds a suite's "N passed, M failed" (its last such line) to the totals;
# a suite that printed none but failed counts as one failure.
record() {
  local name="$1" status="$2" output="$3" line p=0 f=0 s=0
  line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$output" | tail -n 1)
  if [[ -n "$line" ]]; then
    p=$(sed -E 's/^([A-Za-z_-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    f=$(sed -E 's/^([A-Za-z_-]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line")
    if [[ "$line" =~ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
  fi
  if ((status != 0 && f == 0)); then f=1; fi
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
  SUMMARY+=("$(printf '%-14s %4d passed, %3d failed, %3d skipped (exit %d)' "$name" "$p" "$f" "$s" "$status")")
  grep -E '^SKIP: ' "$output" | sed "s/^/  $name /" >>"$SKIP_LOG" || true
}

# Sums the gtest cases of every cc_test from Bazel's test.xml files.
unit_totals() {
  local xml tests=0 failures=0 t f e
  while IFS= read -r xml; do
    t=$(grep -o -m1 '<testsuites[^>]*' "$xml" | grep -o 'tests="[0-9]*"' | grep -o '[0-9]*')
    f=$(grep -o -m1 '<testsuites[^>]*' "$xml" | grep -o 'failures="[0-9]*"' | grep -o '[0-9]*')
    e=$(grep -o -m1 '<testsuites[^>]*' "$xml" | grep -o 'errors="[0-9]*"' | grep -o '[0-9]*')
    tests=$((tests + ${t:-0}))
    failures=$((failures + ${f:-0} + ${e:-0}))
  done < <(find -L bazel-testlogs/ -name test.xml 2>/dev/null)
  echo "$((tests - failures)) passed, $failures failed"
}

run_unit() {
  bazel test --test_output=errors //... || return 1
}

run_suite() {
  local name="$1" out status
  out=$(mktemp "/tmp/gp-suite-$name.XXXXXX")
  log "suite $name"
  case "$name" in
    unit)
      run_unit 2>&1 | tee "$out"
      status=${PIPESTATUS[0]}
      unit_totals | tee -a "$out"
      ;;
    conformance) bash tests/conformance/run.sh 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    cri) bash tests/tools/cri/cri_client_test.sh 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    images) bash tests/e2e/images_selftest.sh 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    deploy)
      { npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error &&
          bash tests/deploy/run.sh; } 2>&1 | tee "$out"
      status=${PIPESTATUS[0]}
      ;;
    sanitizers) bash tests/sanitizers/run.sh 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    fuzz) bash tests/fuzz/run.sh 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    *_bench) bash "tests/bench/$name.sh" 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
    *) bash "tests/e2e/$name.sh" 2>&1 | tee "$out"; status=${PIPESTATUS[0]} ;;
  esac
  record "$name" "$status" "$out"
  rm -f "$out"
}

main() {
  SKIP_LOG=$(mktemp /tmp/gp-skips.XXXXXX)
  log "mode: $(h_mode) (GUEST_PULL_TEST_MODE=long adds the long matrix and runs)"
  if ((EUID != 0)); then
    echo "test.sh: run as root (the suites mount filesystems and run containerd)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  log "installing dependencies"
  if ! scripts/install-deps.sh; then
    echo "0 passed, 1 failed"
    exit 1
  fi
  log "building"
  if ! bazel build //...; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
  local wanted=("${SUITES[@]}")
  if [[ -n "${TEST_SUITES:-}" ]]; then read -r -a wanted <<<"$TEST_SUITES"; fi
  local started=$SECONDS name
  for name in "${wanted[@]}"; do
    local t0=$SECONDS
    run_suite "$name"
    SUMMARY[-1]+=" in $((SECONDS - t0))s"
  done
  log "summary ($((SECONDS - started))s, mode $(h_mode))"
  printf '%s\n' "${SUMMARY[@]}"
  if [[ -s "$SKIP_LOG" ]]; then
    echo "skipped (never counted as passed):"
    cat "$SKIP_LOG"
  fi
  echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed, ${TOTAL_SKIPPED} skipped"
  ((TOTAL_FAILED == 0))
}

main "$@"
