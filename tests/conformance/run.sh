#!/usr/bin/env bash
# Runs containerd's snapshotter conformance suite (snapshots/testsuite, from
# Debian's containerd 1.6 sources) against containerd-guest-pull-grpc served
# on a temporary unix socket, or against the overlayfs reference server,
# plus TestProxyContract (contract_test.go: error codes, Walk filters of the
# remote-snapshot lookup, labels, Usage, Mounts).
#
# Usage: tests/conformance/run.sh [--reference] [--run REGEX] [--keep-going]
#   --reference   test tests/conformance/refserver (containerd's overlayfs)
#   --run REGEX   only run cases whose name matches (go test -run syntax,
#                 e.g. 'Conformance/(Basic|Walk)$')
# Environment:
#   GUEST_PULL_DAEMON  daemon binary to test (skips the bazel build)
#   GUEST_PULL_CONFIG  daemon config file (default: an empty one, defaults)
#   GOCACHE            Go build cache (default /tmp/guest-pull-gocache)
# Each `go test -v` case result (--- PASS/FAIL/SKIP) is counted through
# tests/harness/harness.sh (a Go skip is a skip, with the reason Go logged);
# the builds and the daemon start are setup steps. The last line of output
# is always "N passed, M failed, K skipped"; the exit status is non-zero
# unless every case passed or skipped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
readonly HERE REPO
# shellcheck source=../tools/peers.sh
source "$REPO/tests/tools/peers.sh"
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
readonly GO_IMPORT="guestpull/conformance"
readonly SOCKET_WAIT_S=20
readonly STOP_WAIT_S=15
readonly TEST_TIMEOUT="10m"

use_reference=0
run_regex=""
work=""
daemon_pid=""

log() { printf 'conformance: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; h_fail "setup: $*"; exit 1; }

parse_args() {
  while (($#)); do
    case "$1" in
      --reference) use_reference=1 ;;
      --run) [[ $# -ge 2 ]] || die "--run needs a regular expression"; run_regex="$2"; shift ;;
      -h|--help) trap - EXIT; sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}"; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
    shift
  done
}

setup_gopath() { peers_gopath "$work/gopath" "${GO_IMPORT#guestpull/}=$HERE"; }

# build_binaries sets $daemon (the server to start) and $test_bin.
build_binaries() {
  local pkg="$work/gopath/src/$GO_IMPORT"
  if ((use_reference)); then
    log "building the overlayfs reference server"
    (cd "$pkg" && go build -o "$work/refserver" ./refserver) || die "go build refserver failed"
    daemon="$work/refserver"
  elif [[ -n "${GUEST_PULL_DAEMON:-}" ]]; then
    daemon="$GUEST_PULL_DAEMON"
  else
    log "bazel build //snapshotter:containerd-guest-pull-grpc"
    (cd "$REPO" && bazel build //snapshotter:containerd-guest-pull-grpc) \
      || die "bazel build of the daemon failed"
    daemon="$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
  fi
  [[ -x "$daemon" ]] || die "daemon binary $daemon is not executable (set GUEST_PULL_DAEMON?)"
  # A private copy: a concurrent bazel build must not swap it mid-run.
  if [[ "$daemon" != "$work/refserver" ]]; then
    cp "$daemon" "$work/daemon"
    daemon="$work/daemon"
  fi
  log "compiling the conformance test"
  (cd "$pkg" && go test -c -o "$work/conformance.test" .) || die "go test -c failed"
  test_bin="$work/conformance.test"
}

start_daemon() {
  local config="${GUEST_PULL_CONFIG:-$work/config.toml}"
  if [[ -z "${GUEST_PULL_CONFIG:-}" ]]; then
    printf '# conformance run: every setting at its default\nversion = 1\n' >"$config"
  fi
  mkdir -p "$work/root"
  log "starting $daemon on $socket"
  "$daemon" --address="$socket" --root="$work/root" --config="$config" \
    --log-level=debug >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  local deadline=$((SECONDS + SOCKET_WAIT_S))
  until [[ -S "$socket" ]]; do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
      local status=0
      wait "$daemon_pid" || status=$?
      daemon_pid=""
      die "daemon exited with status $status during startup (log below)"
    fi
    ((SECONDS < deadline)) || die "socket $socket did not appear within ${SOCKET_WAIT_S}s"
    sleep 0.1
  done
}

# stop_daemon sends SIGTERM and expects a clean exit 0 within STOP_WAIT_S.
stop_daemon() {
  [[ -n "$daemon_pid" ]] || return 0
  local pid="$daemon_pid" status=0 deadline=$((SECONDS + STOP_WAIT_S))
  daemon_pid=""
  kill -0 "$pid" 2>/dev/null || { wait "$pid" || status=$?; h_fail "daemon still running after the suite (it had exited with status $status)"; return 0; }
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    h_fail "daemon ignored SIGTERM for ${STOP_WAIT_S}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || status=$?
  if ((status != 0)); then
    h_fail "daemon exited with status $status on SIGTERM (expected 0)"
  fi
}

run_suite() {
  local args=(-test.v -test.parallel 1 -test.timeout "$TEST_TIMEOUT" -test.run "${run_regex:-.}")
  mkdir -p "$work/tmp"
  local status=0
  (cd "$work" && TMPDIR="$work/tmp" GUEST_PULL_SOCKET="$socket" "$test_bin" "${args[@]}") \
    2>&1 | tee "$work/test.log" || status=$?
  local failed_before=$H_FAILED
  count_cases "$work/test.log"
  if ((status != 0 && H_FAILED == failed_before)); then
    h_fail "the test binary exited with status $status without a failed case"
  fi
}

# count_cases LOG: one h_pass/h_fail/h_skip per subtest result line of
# `go test -v` ("    --- PASS: Test/Case (0.01s)"); a top-level Test line
# ("--- SKIP: Test (0.00s)") counts only for a test that ran no subtest
# ("=== RUN   Test/Case" lines come before every result line; a parent's
# result only sums its subtests'). A skip's
# reason is the last line Go logged for that case ("    file.go:12:
# reason" after its "=== RUN/CONT" line).
count_cases() {
  local line current="" name
  local -A said=() parent=()
  while IFS= read -r line; do
    if [[ "$line" =~ ^===\ (RUN|CONT|PAUSE)\ +([^ ]+) ]]; then
      current="${BASH_REMATCH[2]}"
      [[ "$current" != */* ]] || parent[${current%%/*}]=1
    elif [[ -n "$current" && "$line" =~ ^[[:space:]]+[A-Za-z0-9_]+\.go:[0-9]+:\ (.*) ]]; then
      said[$current]="${BASH_REMATCH[1]}"
    elif [[ "$line" =~ ^([[:space:]]*)---\ (PASS|FAIL|SKIP):\ ([^ ]+) ]]; then
      name="${BASH_REMATCH[3]}"
      [[ -n "${BASH_REMATCH[1]}" || -z "${parent[$name]:-}" ]] || continue
      case "${BASH_REMATCH[2]}" in
        PASS) h_pass "$name" ;;
        FAIL) h_fail "$name" "${said[$name]:-}" ;;
        SKIP) h_skip "$name" "${said[$name]:-skipped by the Go test}" ;;
      esac
    fi
  done <"$1"
}

# unmount_leftovers unmounts everything below $work (peers.sh).
unmount_leftovers() { peers_umount_under "$work" 3 || true; }

teardown() {
  local status=$?
  stop_daemon
  if ((status != 0 && H_FAILED == 0)); then h_fail "suite aborted (status $status)"; fi
  if [[ -n "$work" ]]; then
    unmount_leftovers
    if ((H_FAILED != 0)) && [[ -f "$work/daemon.log" ]]; then
      log "daemon log (last 200 lines):"
      tail -n 200 "$work/daemon.log" >&2
    fi
    rm -f "$socket"
    rm -rf "$work"
  fi
  h_finish
}

main() {
  h_on_exit teardown
  parse_args "$@"
  work="$(mktemp -d /tmp/gpconf.XXXXXX)"
  socket="/tmp/gpconf-$$.sock"
  setup_gopath
  build_binaries
  start_daemon
  run_suite
}

main "$@"
