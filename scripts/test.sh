#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test suite:
# the gtest unit tests (bazel test //...), containerd's snapshotter
# conformance suite against the daemon, the CRI client and image checks,
# the deployment suite, the end-to-end suites on real containerd, runc,
# a loopback registry and the guest stand-in, and the benchmarks (figures
# against containerd's overlayfs and veritysetup, no thresholds). Must run
# as root (real mounts, containerd). Every suite counts through
# tests/harness/harness.sh (setup steps are not passes, a skip always has a
# reason and is never a pass). It prints, first, the mode and what each
# suite runs in it and, last, a table per suite, every skip with its reason
# and the total over every suite:
#   N passed, M failed, K skipped
# Environment: GUEST_PULL_TEST_MODE=long runs the long mode (the rest of the
# matrix, long runs; decided here, once, for every suite); E2E_SKIP_LARGE=1
# skips the 300 MB image; TEST_SUITES limits the suites (space-separated
# names from SUITES below); GUEST_PULL_PREBUILD=0 turns off the background
# builds (scripts/prebuild.sh); GUEST_PULL_SUITE_TIMEOUT sets the time limit
# of each suite in seconds (run_suite below). The newest go on PATH or in
# /usr/local/go/bin runs every suite (choose_go below).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=../tests/harness/harness.sh
source tests/harness/harness.sh

readonly SUITES=(harness unit conformance crash faults cri images deploy config_merge
                 foundation recovery rolling_update stalls standin_selftest functional
                 compatibility stability deployments kata_patch
                 layer_cache_formats guest_vm deployments_vm sanitizers fuzz powercut
                 peers_bench cri_pull_bench verity_bench)
# The script of each suite (unit is bazel test, run_unit below).
declare -A SUITE_SCRIPT=(
  [harness]=tests/harness/selftest.sh
  [conformance]=tests/conformance/run.sh
  [cri]=tests/tools/cri/cri_client_test.sh
  [images]=tests/e2e/images_selftest.sh
  [deploy]=tests/deploy/run.sh
  [config_merge]=tests/deploy/config_merge.sh
  [foundation]=tests/e2e/foundation.sh
  [standin_selftest]=tests/e2e/standin_selftest.sh
  [functional]=tests/e2e/functional.sh
  [compatibility]=tests/e2e/compatibility.sh
  [stability]=tests/e2e/stability.sh
  [recovery]=tests/e2e/recovery.sh
  [rolling_update]=tests/e2e/rolling_update.sh
  [deployments]=tests/e2e/deployments.sh
  [crash]=tests/crash/crash.sh
  [faults]=tests/faults/faults.sh
  [stalls]=tests/e2e/stalls.sh
  [kata_patch]=tests/kata/kata_patch.sh
  [layer_cache_formats]=tests/e2e/layer_cache_formats.sh
  [guest_vm]=tests/vm/guest_vm.sh
  [deployments_vm]=tests/e2e/deployments_vm.sh
  [powercut]=tests/powercut/powercut.sh
  [sanitizers]=tests/sanitizers/run.sh
  [fuzz]=tests/fuzz/run.sh
  [peers_bench]=tests/bench/peers_bench.sh
  [cri_pull_bench]=tests/bench/cri_pull_bench.sh
  [verity_bench]=tests/bench/verity_bench.sh
)
# What each suite runs in the default mode, and what the long mode adds
# (printed at the start; a suite's own header has the details).
declare -A PLAN_DEFAULT=(
  [harness]="the counting itself on stand-in suites: no total line, a crash after a clean total, a suite past its time limit, stale unit test.xml, the ASan count, the go the suites get"
  [unit]="every gtest case of every cc_test (bazel test //...)"
  [conformance]="containerd 1.6 snapshotter conformance suite + TestProxyContract on the daemon"
  [cri]="cri-client against containerd 1.6's CRI and a loopback registry"
  [images]="the five small e2e test images: contents, umoci, containerd+runc"
  [config_merge]="our containerd config edits on real 1.6/1.7.35/2.4.2 default configs, alone and beside a kata-deploy stand-in, both orders, uninstall"
  [deploy]="unit, configs, install/uninstall on containerd v2/v3 configs, bundle, Makefile, k8s manifests"
  [foundation]="pull, run, SIGKILL restart, removal, sd_notify, metrics with containerd 1.6 + runc"
  [recovery]="lost, empty, WAL-lost, stale and corrupt metadata.db refused untouched, --reset-store, undeletable leftovers (busy mount, immutable file), our root wiped under containerd's records and containerd's metadata wiped under ours"
  [rolling_update]="one node's DaemonSet rolling update (install.sh of the new pod while the old daemon serves, preStop of the old pod) under 2 clients and a running container: only retried Unavailable, no lost Commit"
  [standin_selftest]="the guest stand-in's refusals and runs"
  [functional]="CRI guest pull of every image (OCI, Docker; the 300 MiB one unless E2E_SKIP_LARGE=1), negative cases, restart, removal"
  [compatibility]="guest pull next to overlayfs and host pulls, the image policy"
  [stability]="12 interruption cases (signals idle and mid-pull, containerd restart, daemon down)"
  [deployments]="crictl pods through the kata-shaped shim on containerd 1.7.35 and 2.4.2 (runtime-specific snapshotter, make -C deploy install), scenarios 1-8, Z (a tar+zstd image), B (a base image pulled after an image built on it), U (pods in a user namespace: runc through overlayfs and guest-pull, kata refused) and K (every guest-pull rootfs of a CreateTask through patched kata's own CheckGuestPullRootFS; a tampered volume refused with kata's message), patched kata; stock kata on 2.4.2"
  [crash]="120 SIGKILLs of a 4-client workload (Prepare, write, Commit, View, Remove, Update, guest-pull layers and views on them); every acknowledged mutation verified"
  [faults]="EIO/ENOSPC injected (LD_PRELOAD) at every fsync/rename/write/mkdir of Prepare, Commit, Remove, guest-pull Prepare (a failed WAL fsync must stop the daemon with status 75) and of the start on a store and on a new root (it serves or exits with an error; the next start serves it all); a full tmpfs"
  [stalls]="watchdog pings, a Commit stuck in fsync (others answer, DEADLINE_EXCEEDED, pings stop), SIGSTOPped daemon vs containerd 1.6 overlayfs"
  [kata_patch]="kata's src/runtime from the Go proxy at one release (4.1.0, else 3.29.0 while the proxy refuses 4.1.0): patch applies, shim builds, kata's own tests and katacheck"
  [layer_cache_formats]="tardev and genpolicy 3.20+ layer caches: tool -> daemon -> volume -> the stand-in's check"
  [guest_vm]="a real Linux guest (QEMU TCG) verifies every layer with dm-verity; tamper cases refused by the guest kernel"
  [deployments_vm]="crictl kata pods on containerd 2.4.2 with the deploy configs, the shim in VM mode (a real guest, dm-verity): scenarios 1, 4, 7, Z (a tar+zstd image), tamper cases refused by the guest kernel, boot figures"
  [sanitizers]="every cc_test under ASan+UBSan, a daemon smoke run under ASan, the core stress and layer cache tests under TSan, a release build (-c opt) of the shipped binaries and the guest agent"
  [powercut]="6 power cuts (SIGKILLed QEMU guest: unsynced writes lost) of the daemon under the 4-client workload; every acknowledged mutation verified; lost-unsynced canary and no-op sync/syncfs daemons must fail"
  [fuzz]="six libFuzzer targets, 20 s each"
  [peers_bench]="figures: ours, containerd 1.6/2.4 overlayfs, nydus proxy mode, same client interleaved: pull chains, lookups, data chain, big Commit, Remove, 1000 snapshots, noisy neighbour (800 MiB dirty) (no thresholds)"
  [cri_pull_bench]="figures: CRI pull host time of a 40-layer image on containerd 2.4.2, guest pull (ours, and nydus-snapshotter proxy mode as the peer) vs overlayfs, 1 and 16 MiB layers (no thresholds)"
  [verity_bench]="figures: verity of 64 and 256 MiB layers vs veritysetup (no thresholds)"
)
declare -A PLAN_LONG=(
  [unit]="every target run again (none of Bazel's cached results)"
  [crash]="1000 SIGKILLs"
  [kata_patch]="every supported kata release"
  [guest_vm]="a 42-layer image"
  [deployments_vm]="containerd 1.7.35, 2.3.7 and 2.2.9"
  [sanitizers]="every conformance case under the ASan daemon, each TSan test 5 times, every target run again (none of Bazel's cached results), the release build of every target"
  [powercut]="100 power cuts"
  [fuzz]="600 s per target"
  [peers_bench]="5 rounds, List of 10,000 snapshots, a 200-layer data chain, restart to serving + full Walk and RSS after it (3 restarts of each server per store, the median shown)"
  [cri_pull_bench]="100 MiB layers (a 4 GiB image) instead of 16 MiB"
  [config_merge]="containerd 2.3.7's and 2.2.9's default configs"
  [deployments]="containerd 2.3.7 and 2.2.9; stock kata on every version"
  [images]="the 300 MiB image (unless E2E_SKIP_LARGE=1)"
)
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
SUMMARY=()

log() { printf '\n=== %s\n' "$*"; }

# Adds a suite's "N passed, M failed, K skipped" (its last such line) to the
# totals and its SKIP lines to the skip list;
# a suite that printed none counts as one failure, whatever its exit status
# (it did not say what it checked).
record() {
  local name="$1" status="$2" output="$3" line p=0 f=0 s=0
  line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$output" | tail -n 1)
  if [[ -n "$line" ]]; then
    p=$(sed -E 's/^([A-Za-z_-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    f=$(sed -E 's/^([A-Za-z_-]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line")
    if [[ "$line" =~ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
  fi
  if ((status != 0 && f == 0)) || [[ -z "$line" ]]; then f=$((f > 0 ? f : 1)); fi
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
  SUMMARY+=("$(printf '%-14s %4d passed, %3d failed, %3d skipped (exit %d)' "$name" "$p" "$f" "$s" "$status")")
  grep -E '^SKIP: ' "$output" | sed "s/^/  $name /" >>"$SKIP_LOG" || true
}

# run_unit: bazel test //...; counts every gtest case of the targets it
# reported (tests/harness/bazel_test_totals.py: a crash without a gtest XML
# is a failure, GTEST_SKIP a skip). The default mode takes Bazel's cached
# result of a target whose inputs have not changed (and says how many); the
# long mode runs every one. Bazel bounds each test; the suite's time limit
# (LIMIT, seconds) bounds the whole `bazel test`, builds included
# (--foreground: a terminal's Ctrl-C still reaches the bazel client).
run_unit() {
  local limit="$1" out logs status=0 fresh=()
  h_long && fresh=(--nocache_test_results)
  out=$(mktemp /tmp/gp-unit.XXXXXX)
  timeout --foreground --kill-after=120 "$limit" bazel test --test_output=errors "${fresh[@]}" //... 2>&1 </dev/null | tee "$out"
  status=${PIPESTATUS[0]}
  # Bounded too: after a timeout the server may still hold its lock.
  logs=$(timeout 30 bazel info bazel-testlogs 2>/dev/null </dev/null || echo bazel-testlogs)
  if ! python3 tests/harness/bazel_test_totals.py "$out" "$logs" && ((status == 0)); then
    status=1
  fi
  rm -f "$out"
  return "$status"
}

# print_plan SUITE...: what each mode runs and skips.
print_plan() {
  local name
  log "mode: $(h_mode) (GUEST_PULL_TEST_MODE=long adds the long parts)"
  echo "time limit per suite: $(suite_limit) s (GUEST_PULL_SUITE_TIMEOUT; bazel test bounds each unit test itself)"
  local unknown="its h_long parts (see the header of its script)" extra
  for name in "$@"; do
    printf '%-17s default: %s\n' "$name" "${PLAN_DEFAULT[$name]:-see the header of its script}"
    extra="${PLAN_LONG[$name]:-nothing}"
    [[ -n "${PLAN_DEFAULT[$name]+set}" ]] || extra="$unknown"
    if h_long; then
      printf '%-17s long adds: %s\n' "" "$extra"
    else
      printf '%-17s left out in this mode: %s\n' "" "$extra"
    fi
  done
}

# The background builds (scripts/prebuild.sh), started before the main
# build; the suites in QUIET_SUITES wait for them: the sanitizer suite uses
# what they build, the others' figures and timing must not share the CPU.
# GUEST_PULL_PREBUILD=0 turns them off (every suite builds its own).
readonly QUIET_SUITES=" sanitizers fuzz powercut peers_bench cri_pull_bench verity_bench "
PREBUILD_PID=""

prebuild_start() {
  if [[ "${GUEST_PULL_PREBUILD:-1}" == 0 ]]; then
    echo "background builds: off (GUEST_PULL_PREBUILD=0)"
    return
  fi
  PREBUILD_LOG=$(mktemp /tmp/gp-prebuild.XXXXXX)
  PREBUILD_STARTED=$SECONDS
  # Its own session, so an interrupted run stops all of it (prebuild_stop).
  nice -n 19 setsid bash scripts/prebuild.sh "$@" >"$PREBUILD_LOG" 2>&1 &
  PREBUILD_PID=$!
  echo "background builds: started at nice 19 (scripts/prebuild.sh, log $PREBUILD_LOG)"
}

prebuild_wait() {
  [[ -n "$PREBUILD_PID" ]] || return 0
  log "waiting for the background builds"
  local status=0 deadline=$((SECONDS + $(suite_limit)))
  # Bounded like a suite: what is not built then, its suite builds.
  while kill -0 "$PREBUILD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
  if kill -0 "$PREBUILD_PID" 2>/dev/null; then
    echo "background builds: still running after $(suite_limit) s; stopped"
    prebuild_stop
  fi
  wait "$PREBUILD_PID" || status=$?
  PREBUILD_PID=""
  grep '^prebuild: ' "$PREBUILD_LOG"
  echo "background builds: done $((SECONDS - PREBUILD_STARTED)) s after their start (status $status; not a test: a suite builds what they could not)"
  if ((status != 0)); then tail -n 30 "$PREBUILD_LOG"; fi
  rm -f "$PREBUILD_LOG"
}

prebuild_stop() {
  # The whole session: `timeout` puts the Go builds in groups of their own.
  if [[ -n "$PREBUILD_PID" ]]; then pkill -TERM -s "$PREBUILD_PID" 2>/dev/null; fi
}

# The time limit of every suite script (seconds): a suite still running
# then is stopped and counts as failed. Half the default mode's hour (the
# longest default-mode suite took 17 min on a fresh machine, session 18);
# the long mode's 2 h leave room for its 1000 SIGKILLs (47 min, session 23).
suite_limit() {
  if [[ -n "${GUEST_PULL_SUITE_TIMEOUT:-}" ]]; then echo "$GUEST_PULL_SUITE_TIMEOUT"
  elif h_long; then echo 7200
  else echo 1800; fi
}

# run_bounded LIMIT SCRIPT: bash SCRIPT under `timeout` (TERM at LIMIT s,
# KILL 120 s later; exit 124 or 137). timeout puts the suite in a process
# group of its own, so every process of it is stopped, and a terminal's
# Ctrl-C no longer reaches it: this (foreground) subshell passes INT and
# TERM on. Stdin is /dev/null (a background group must not read a terminal).
run_bounded() {
  local pid status
  timeout --kill-after=120 "$1" bash "$2" </dev/null &
  pid=$!
  trap 'kill -INT "$pid" 2>/dev/null' INT
  trap 'kill -TERM "$pid" 2>/dev/null' TERM
  wait "$pid"
  status=$?
  # A signal passed on ends `wait` early: wait for the suite itself (timeout
  # bounds it).
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; status=$?; done
  return "$status"
}

# go_min_version: the newest `go` directive of the repository's go.mod
# files (tests/): the oldest Go that builds every Go module of the suites.
go_min_version() {
  find tests -name go.mod -exec sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' {} + | sort -V | tail -n 1
}

# go_version_of GO: the version GO says it is, without the "go" prefix
# (1.26.6, 1.27-abcdef for a devel build); nothing if it says none. `go env
# GOVERSION` first, `go version` for a go older than 1.16 (which prints an
# empty GOVERSION); bounded, stdin closed: a wrapper named go may wait.
go_version_of() {
  local go="$1" out
  out=$(timeout 30 "$go" env GOVERSION </dev/null 2>/dev/null) || out=""
  out=${out%%$'\n'*}
  if [[ -z "$out" ]]; then
    out=$(timeout 30 "$go" version </dev/null 2>/dev/null) || return 0
    out=${out%%$'\n'*}
    out=${out#go version }
  fi
  out=${out#devel }
  out=${out%% *}
  out=${out#go}
  if [[ "$out" =~ ^[0-9]+\.[0-9]+ ]]; then echo "$out"; fi
}

# choose_go: puts the newest `go` in GO_SEARCH_PATH (default: PATH, then
# /usr/local/go/bin, where Go's own archive installs it) first on PATH for
# every suite and scripts/prebuild.sh, and says which. Debian 12's
# golang-go (1.19, /usr/bin/go), which install-deps.sh installs, cannot
# build the Go modules the suites build (containerd 1.7/2.x, crictl, nydus,
# kata's runtime, the benchmarks' tools: go_min_version), and
# /usr/local/go/bin is not on Debian's PATH, or after /usr/bin when
# appended as Go's install guide says: 1.19 was the `go` every suite ran.
# The GOPATH-mode builds on Debian's Go sources take either
# (tests/tools/peers.sh). A newest Go older than go_min_version is a
# warning: the suites that need it fail, the others run.
choose_go() {
  local search="${GO_SEARCH_PATH:-$PATH:/usr/local/go/bin}" dirs dir real version
  local best="" best_version="" found=() need first
  local -A seen=()
  IFS=: read -r -a dirs <<<"$search"
  for dir in "${dirs[@]}"; do
    # An empty entry is the working directory, which the suites change.
    [[ -n "$dir" && -f "$dir/go" && -x "$dir/go" ]] || continue
    # Absolute: it goes first on PATH for suites that change directory.
    dir=$(CDPATH='' cd -- "$dir" && pwd) || continue
    real=$(readlink -f "$dir/go") || continue
    [[ -z "${seen[$real]:-}" ]] || continue
    seen[$real]=1
    version=$(go_version_of "$dir/go")
    [[ -n "$version" ]] || continue
    found+=("$dir/go go$version")
    if [[ -z "$best" || "$(printf '%s\n' "$best_version" "$version" | sort -V | tail -n 1)" != "$best_version" ]]; then
      best="$dir/go" best_version="$version"
    fi
  done
  if [[ -z "$best" ]]; then
    echo "go: none that says its version in ${search}: the suites that build Go code fail"
    return 0
  fi
  # A relative entry first on PATH names another directory once a suite
  # changes directory: the absolute one goes before it.
  first=$(command -v go) || first=""
  if [[ "$first" != /* || "$(readlink -f "$first")" != "$(readlink -f "$best")" ]]; then
    PATH="$(dirname "$best"):$PATH"
    export PATH
  fi
  echo "go: $best (go$best_version), first on PATH for every suite; found: $(printf '%s, ' "${found[@]}" | sed 's/, $//')"
  need=$(go_min_version)
  if [[ -n "$need" && "$(printf '%s\n' "$need" "$best_version" | sort -V | head -n 1)" != "$need" ]]; then
    echo "WARNING: go$best_version is older than go$need, which the suites' Go modules need (go.mod under tests/): the suites that build them fail; install Go $need or later (e.g. in /usr/local/go)"
  fi
}

run_suite() {
  local name="$1" out status limit
  out=$(mktemp "/tmp/gp-suite-$name.XXXXXX")
  limit=$(suite_limit)
  log "suite $name"
  if [[ "$name" == unit ]]; then
    echo "time limit: ${limit}s"
    run_unit "$limit" 2>&1 | tee "$out"
  elif [[ -n "${SUITE_SCRIPT[$name]:-}" ]]; then
    echo "time limit: ${limit}s"
    run_bounded "$limit" "${SUITE_SCRIPT[$name]}" 2>&1 | tee "$out"
  else
    echo "FAIL: unknown suite $name (known: ${SUITES[*]})" | tee "$out"
    false
  fi
  status=${PIPESTATUS[0]}
  if ((status == 124)); then
    echo "FAIL: suite $name stopped at its time limit of ${limit}s" | tee -a "$out"
  elif ((status == 137)); then
    echo "FAIL: suite $name killed (SIGKILL: its time limit's, ${limit}s + 120 s, or another)" | tee -a "$out"
  fi
  record "$name" "$status" "$out"
  rm -f "$out"
}

main() {
  SKIP_LOG=$(mktemp /tmp/gp-skips.XXXXXX)
  # The one place the mode is decided: every suite reads it (harness.sh h_long).
  GUEST_PULL_TEST_MODE="$(h_mode)"
  export GUEST_PULL_TEST_MODE
  local wanted=("${SUITES[@]}")
  if [[ -n "${TEST_SUITES:-}" ]]; then read -r -a wanted <<<"$TEST_SUITES"; fi
  print_plan "${wanted[@]}"
  if ((EUID != 0)); then
    echo "test.sh: run as root (the suites mount filesystems and run containerd)" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  log "installing dependencies"
  if ! scripts/install-deps.sh; then
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  choose_go
  h_on_exit prebuild_stop
  prebuild_start "${wanted[@]}"
  log "building"
  if ! bazel build //...; then
    echo "build failed"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  local started=$SECONDS name
  for name in "${wanted[@]}"; do
    [[ "$QUIET_SUITES" == *" $name "* ]] && prebuild_wait
    local t0=$SECONDS
    run_suite "$name"
    SUMMARY[-1]+=" in $((SECONDS - t0))s"
  done
  prebuild_wait
  log "summary ($((SECONDS - started))s, mode $(h_mode))"
  printf '%s\n' "${SUMMARY[@]}"
  if [[ -s "$SKIP_LOG" ]]; then
    echo "skipped, with reasons (never counted as passed):"
    cat "$SKIP_LOG"
  fi
  if ((TOTAL_PASSED + TOTAL_FAILED + TOTAL_SKIPPED == 0)); then
    echo "FAIL: no suite ran (TEST_SUITES='${TEST_SUITES:-}')"
    TOTAL_FAILED=1
  fi
  echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed, ${TOTAL_SKIPPED} skipped"
  ((TOTAL_FAILED == 0))
}

# Sourced (tests/harness/selftest.sh): the functions only.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
