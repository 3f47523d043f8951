#!/usr/bin/env bash
# stalls.sh: the daemon under stalls, with containerd 1.6 + runc.
#  1. systemd watchdog: with WATCHDOG_USEC set the daemon sends WATCHDOG=1 to
#     NOTIFY_SOCKET (a python3 datagram listener stands in for systemd).
#  2. stuck fsync (tests/stalls/stallsync.c, LD_PRELOAD; fsync of the
#     daemon's metadata database blocks while a flag file exists): a Commit stuck in it
#     answers its client's deadline (ctr --timeout) with "deadline exceeded",
#     while Stat and List of other clients still answer (time printed as a
#     figure; the only bound asserted is "answered within 10 s"); the
#     watchdog stops pinging while the writer is stuck and resumes after.
#  3. SIGSTOPped daemon: containerd still pulls and runs a runc container
#     through overlayfs, and a guest-pull call with a timeout fails clearly.
# A List client that stops reading is covered by //snapshotter:service_test
# (ListClientThatStopsReadingBlocksNoOne; ctr always drains its stream).
#
# Usage (as root): tests/e2e/stalls.sh    (about 1 minute)
# Last line: "N passed, M failed, K skipped" (tests/harness/harness.sh).
# shellcheck disable=SC2317  # helpers run through check, e2e_wait_until, traps
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly NS=stalls
# The daemon's watchdog period (WATCHDOG_USEC): pings every ~0.67 s, stops
# once the store has not answered for 1 s.
readonly WATCHDOG_USEC_TEST=2000000

NOTIFY_PID=""

# start_notify_listener: stands in for systemd's notify socket; appends
# "<unix time> <message>" per line to $NOTIFY_LOG (bounded: 300 s).
start_notify_listener() {
  NOTIFY_LOG="$E2E_DIR/notify.log"
  NOTIFY_SOCK="$E2E_DIR/notify.sock"
  : >"$NOTIFY_LOG"
  python3 - "$NOTIFY_SOCK" "$NOTIFY_LOG" <<'PY' &
import socket, sys, time
path, log = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1)
deadline = time.time() + 300
with open(log, "a", buffering=1) as out:
    while time.time() < deadline:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        for line in msg.splitlines():
            out.write("%.3f %s\n" % (time.time(), line))
PY
  NOTIFY_PID=$!
  e2e_wait_until 10 "the notify listener" test -S "$NOTIFY_SOCK"
}

pings() { grep -c ' WATCHDOG=1$' "$NOTIFY_LOG" || true; }
pings_at_least() { (($(pings) >= $1)); }

# pings_stop: true once no WATCHDOG=1 arrived for 3 s (bounded: 20 s).
pings_stop() {
  local deadline=$((SECONDS + 20)) last now
  last="$(pings)"
  while ((SECONDS < deadline)); do
    sleep 3
    now="$(pings)"
    ((now == last)) && return 0
    last="$now"
  done
  return 1
}

# pings_resume: true once a new WATCHDOG=1 arrives (bounded: 15 s).
pings_resume() {
  local before deadline=$((SECONDS + 15))
  before="$(pings)"
  while ((SECONDS < deadline)); do
    (($(pings) > before)) && return 0
    sleep 0.2
  done
  return 1
}

snap() { timeout 30 ctr -a "$CONTAINERD_SOCK" -n "$NS" "$@"; }

# timed_ms OUT CMD...: runs CMD, prints its duration in ms on stdout; the
# command's output goes to the file OUT; returns its status.
timed_ms() {
  local out="$1" t0 t1 status=0
  shift
  t0="$(date +%s%N)"
  "$@" >"$out" 2>&1 || status=$?
  t1="$(date +%s%N)"
  echo $(((t1 - t0) / 1000000))
  return "$status"
}

teardown_extra() {
  rm -f "${STALL_FLAG:-/nonexistent}"
  [[ -z "${GP_PID:-}" ]] || kill -CONT "$GP_PID" 2>/dev/null || true
  [[ -z "$NOTIFY_PID" ]] || kill "$NOTIFY_PID" 2>/dev/null || true
}

test_stuck_fsync() {
  check "prepare an active snapshot" snap snapshots --snapshotter "$GP_SNAPSHOTTER" prepare active-1
  check "prepare another" snap snapshots --snapshotter "$GP_SNAPSHOTTER" prepare other-1
  touch "$STALL_FLAG"
  local commit_out="$E2E_DIR/commit.out" commit_pid ms status=0
  (timed_ms "$commit_out" snap --timeout 5s snapshots --snapshotter "$GP_SNAPSHOTTER" \
     commit committed-1 active-1 >"$commit_out.ms" || rc=$?; echo "${rc:-0}" >"$commit_out.rc") &
  commit_pid=$!
  # The Commit is in fsync once the daemon logs nothing more for it; give it
  # a moment to get there.
  sleep 1
  ms="$(timed_ms "$E2E_DIR/timed.out" timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$NS" snapshots \
        --snapshotter "$GP_SNAPSHOTTER" info other-1)" || status=$?
  if ((status == 0)); then
    pass "Stat of another snapshot answers while a Commit is stuck in fsync"
    h_figure "stat_during_stuck_fsync_ms" "$ms" ms
  else
    fail "Stat of another snapshot did not answer within 10 s while a Commit is stuck in fsync" "$(cat "$E2E_DIR/timed.out")"
  fi
  status=0
  ms="$(timed_ms "$E2E_DIR/timed.out" timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$NS" snapshots \
        --snapshotter "$GP_SNAPSHOTTER" ls)" || status=$?
  if ((status == 0)); then
    pass "List answers while a Commit is stuck in fsync"
    h_figure "list_during_stuck_fsync_ms" "$ms" ms
  else
    fail "List did not answer within 10 s while a Commit is stuck in fsync" "$(cat "$E2E_DIR/timed.out")"
  fi
  if pings_stop; then
    pass "watchdog: WATCHDOG=1 pings stop while the store's writer is stuck"
  else
    fail "watchdog: pings go on while the store's writer is stuck" "$(tail -5 "$NOTIFY_LOG")"
  fi
  wait "$commit_pid" || true
  local rc
  rc="$(cat "$commit_out.rc")"
  if ((rc != 0)) && grep -qi "deadline exceeded" "$commit_out"; then
    pass "the stuck Commit answers its client's 5 s deadline with DEADLINE_EXCEEDED"
    h_figure "stuck_commit_answered_after_ms" "$(cat "$commit_out.ms")" ms
    h_figure "stuck_commit_error" "\"$(tr '\n' ' ' <"$commit_out")\""
  else
    fail "the stuck Commit did not fail with deadline exceeded (status $rc)" "$(cat "$commit_out")"
  fi
  rm -f "$STALL_FLAG"
  if pings_resume; then
    pass "watchdog: pings resume once fsync returns"
  else
    fail "watchdog: no ping after fsync returned" "$(tail -5 "$NOTIFY_LOG")"
  fi
  # The daemon finished the Commit after containerd gave up on it: its record
  # is whole (one committed snapshot), containerd's garbage collection owns it.
  check "the daemon still serves Prepare after the stall" \
    snap snapshots --snapshotter "$GP_SNAPSHOTTER" prepare after-stall
}

test_sigstop() {
  local ref ms status=0
  image_build_busybox stallsimg v1 3
  image_push stallsimg v1
  ref="$(image_ref stallsimg v1)"
  kill -STOP "$GP_PID"
  check "SIGSTOPped daemon: containerd pulls through overlayfs" \
    ctr_cmd image pull --plain-http --snapshotter overlayfs "$ref"
  check "SIGSTOPped daemon: runc runs a container through overlayfs" \
    ctr_cmd run --rm --runc-root "$CONTAINERD_DIR/runc" --snapshotter overlayfs \
      "$ref" stalls-overlay cat /etc/layer1
  ms="$(timed_ms "$E2E_DIR/timed.out" timeout 60 ctr -a "$CONTAINERD_SOCK" -n "$NS" --timeout 10s snapshots \
        --snapshotter "$GP_SNAPSHOTTER" prepare while-stopped)" || status=$?
  if ((status != 0 && status != 124)) && grep -qi "deadline exceeded" "$E2E_DIR/timed.out"; then
    pass "SIGSTOPped daemon: a guest-pull call with a 10 s timeout fails with deadline exceeded"
    h_figure "stopped_daemon_call_failed_after_ms" "$ms" ms
    h_figure "stopped_daemon_error" "\"$(tr '\n' ' ' <"$E2E_DIR/timed.out")\""
  else
    fail "SIGSTOPped daemon: guest-pull call did not fail clearly (status $status)" "$(cat "$E2E_DIR/timed.out")"
  fi
  kill -CONT "$GP_PID"
  check "the daemon serves again after SIGCONT" \
    snap snapshots --snapshotter "$GP_SNAPSHOTTER" prepare after-cont
}

main() {
  e2e_init stalls
  registry_start
  daemon_binary
  local shim="$E2E_DIR/stallsync.so"
  h_setup "build the fsync-stall shim" \
    gcc -shared -fPIC -O2 -Wall -o "$shim" "$E2E_REPO/tests/stalls/stallsync.c" -ldl
  STALL_FLAG="$E2E_DIR/stall.flag"
  start_notify_listener
  export NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC="$WATCHDOG_USEC_TEST" \
    LD_PRELOAD="$shim" STALL_FLAG STALL_PREFIX="$GP_ROOT/metadata.db"
  start_daemon
  unset NOTIFY_SOCKET WATCHDOG_USEC LD_PRELOAD STALL_PREFIX
  # shellcheck disable=SC2016  # expanded when the trap runs
  h_on_exit 'STALLS_STATUS=$?; teardown_extra; e2e_teardown "$STALLS_STATUS"'
  containerd_start

  if e2e_wait_until 10 "3 watchdog pings" pings_at_least 3; then
    pass "watchdog: the daemon sends WATCHDOG=1 when WATCHDOG_USEC is set"
  else
    fail "watchdog: no WATCHDOG=1 pings" "$(cat "$NOTIFY_LOG")"
  fi
  test_stuck_fsync
  test_sigstop
  finish
}

main "$@"
