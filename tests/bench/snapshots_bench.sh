#!/usr/bin/env bash
# Snapshotter benchmark: containerd-guest-pull-grpc vs containerd's own
# overlayfs snapshotter (tests/conformance/refserver), both driven in the
# same run through containerd's gRPC proxy client by tests/bench/snapbench.
# Prints a table (operation, ours, overlayfs, ratio ours/overlayfs) and
# one harness figure per row (h_figure). There are no thresholds: a row
# passes when both sides completed it, and one a side could not measure
# only because its time budget ran out is a skip (nothing timed is
# asserted); builds and server starts are setup steps.
#
# Usage: tests/bench/snapshots_bench.sh [snapbench flags...]
#   e.g. --layers 100 --list 500 --big-mb 50 (see tests/bench/README.md)
# Environment:
#   GUEST_PULL_DAEMON  daemon binary (skips the bazel build)
#   GOCACHE            Go build cache (default /tmp/guest-pull-gocache)
# Counts with tests/harness/harness.sh: the last line is always "N passed,
# M failed, K skipped".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
readonly HERE REPO
# shellcheck source=../tools/peers.sh
source "$REPO/tests/tools/peers.sh"
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
readonly SOCKET_WAIT_S=20
readonly STOP_WAIT_S=15
readonly BENCH_TIMEOUT_S=110

work=""
bench_pid=""
pids=()

log() { printf 'snapshots_bench: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; h_fail "setup: $*"; exit 1; }

setup_gopath() {
  peers_gopath "$work/gopath" bench="$HERE" conformance="$REPO/tests/conformance"
}

build() {
  local daemon="${GUEST_PULL_DAEMON:-$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc}"
  if [[ -z "${GUEST_PULL_DAEMON:-}" && ! -x "$daemon" ]]; then
    log "bazel build //snapshotter:containerd-guest-pull-grpc"
    (cd "$REPO" && bazel build //snapshotter:containerd-guest-pull-grpc) >&2 \
      || die "bazel build of the daemon failed"
  fi
  [[ -x "$daemon" ]] || die "daemon binary $daemon is not executable"
  # A private copy: a concurrent bazel build must not swap it mid-run.
  cp "$daemon" "$work/daemon"
  echo "SETUP: build the overlayfs reference server and snapbench"
  (cd "$work/gopath/src/guestpull/conformance" && go build -o "$work/refserver" ./refserver) \
    || die "go build refserver failed"
  (cd "$work/gopath/src/guestpull/bench" && go build -o "$work/snapbench" ./snapbench) \
    || die "go build snapbench failed"
}

# start NAME BINARY SOCKET: starts a server with the daemon's flags.
start() {
  local name="$1" bin="$2" socket="$3"
  mkdir -p "$work/$name"
  "$bin" --address="$socket" --root="$work/$name" --config="$work/config.toml" \
    --log-level=warn >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local deadline=$((SECONDS + SOCKET_WAIT_S))
  until [[ -S "$socket" ]]; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; die "$name exited during startup"; }
    ((SECONDS < deadline)) || die "$name: socket $socket did not appear within ${SOCKET_WAIT_S}s"
    sleep 0.1
  done
  log "$name (pid $pid) serving on $socket"
}

stop_all() {
  local pid deadline status
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_WAIT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for ${STOP_WAIT_S}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" 2>/dev/null || status=$?
    ((status == 0)) || log "pid $pid exited with status $status"
  done
  pids=()
}

# unmount_leftovers unmounts everything below $work (peers.sh).
unmount_leftovers() { peers_umount_under "$work" 3 || true; }

teardown() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "${bench_pid:-}" ]]; then
    # timeout(1) passes TERM on to snapbench.
    kill -TERM "$bench_pid" 2>/dev/null || true
    local n=0
    while kill -0 "$bench_pid" 2>/dev/null && ((n < 100)); do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  stop_all
  if [[ -n "$work" ]]; then
    unmount_leftovers
    if ((status != 0 || H_FAILED != 0)); then
      local f
      for f in "$work"/ours.log "$work"/ref.log; do
        [[ -s "$f" ]] && { log "$(basename "$f") (last 30 lines):"; tail -n 30 "$f" >&2; }
      done
    fi
    rm -rf "$work"
  fi
  if ((status != 0 && H_FAILED == 0)); then h_fail "suite aborted (status $status)"; fi
  h_finish
}

# budget_only OUT SIDE: every ERROR snapbench printed for SIDE (ours, ref)
# is its time budget running out (-timeout, default 50 s per server), and
# there is at least one.
budget_only() {
  local errors
  errors="$(grep "^ERROR $2: " "$1" || true)"
  [[ -n "$errors" ]] && ! grep -qv 'context deadline exceeded' <<<"$errors"
}

# count_rows OUT: per table row of snapbench's output, one pass (both
# servers completed it; its figures follow) or failure. A benchmark asserts
# nothing timed: a row a server could not measure only because its time
# budget ran out (a busy machine) is a skip with that reason.
#   operation [unit]        ours   overlayfs   ratio
count_rows() {
  local line label ours ref ratio in_table=0 rows=0 budget_ours=0 budget_ref=0
  budget_only "$1" ours && budget_ours=1
  budget_only "$1" ref && budget_ref=1
  while IFS= read -r line; do
    if [[ "$line" == ------* ]]; then in_table=1; continue; fi
    ((in_table)) || continue
    [[ "$line" != measurements:* ]] || break
    read -r ours ref ratio <<<"$(awk '{ print $(NF - 2), $(NF - 1), $NF }' <<<"$line")"
    label="$(sed -E 's/([[:space:]]+[^[:space:]]+){3}[[:space:]]*$//' <<<"$line")"
    rows=$((rows + 1))
    if [[ "$ours" != FAILED && "$ref" != FAILED ]]; then
      h_pass "$label: measured on both servers"
      h_figure "$label" "ours $ours, overlayfs $ref, ratio ours/overlayfs $ratio"
    elif { [[ "$ours" != FAILED ]] || ((budget_ours)); } &&
         { [[ "$ref" != FAILED ]] || ((budget_ref)); }; then
      h_skip "$label: measured on both servers" \
        "not measured: the time budget per server ran out first (context deadline exceeded; machine busy)"
    else
      h_fail "$label: measured on both servers" "ours $ours, overlayfs $ref"
    fi
  done <"$1"
  ((rows > 0)) || h_fail "snapbench printed no table" "$(tail -n 20 "$1")"
}

main() {
  trap teardown EXIT
  trap 'exit 130' INT TERM
  work="$(mktemp -d /tmp/gpb.XXXXXX)"
  setup_gopath
  : >"$work/config.toml"  # empty: every setting at its default
  build
  local ours_sock="$work/o.sock" ref_sock="$work/r.sock"
  echo "SETUP: start both servers"
  start ours "$work/daemon" "$ours_sock"
  start ref "$work/refserver" "$ref_sock"
  mkdir -p "$work/mnt"
  log "running snapbench (limit ${BENCH_TIMEOUT_S}s)"
  local status=0
  timeout -s KILL "$BENCH_TIMEOUT_S" "$work/snapbench" -ours "$ours_sock" -ref "$ref_sock" \
    -scratch "$work/mnt" "$@" >"$work/bench.out" &
  bench_pid=$!
  wait "$bench_pid" || status=$?
  bench_pid=""
  cat "$work/bench.out"
  count_rows "$work/bench.out"
  # Exit status 1 means "a row failed", counted above; anything else (2:
  # usage, 137: killed at the limit) is a failure of its own.
  if ((status != 0 && status != 1)); then
    h_fail "snapbench exited with status $status" "$(grep '^ERROR' "$work/bench.out" || true)"
  fi
}

main "$@"
