#!/usr/bin/env bash
# Fault suite: the real daemon under an LD_PRELOAD shim
# (tests/faults/fault_inject.c, built by Bazel) that fails the 1st, 2nd, …
# fsync/fdatasync/syncfs (EIO), rename/renameat (EIO), write/pwrite (ENOSPC)
# and mkdir/mkdtemp (ENOSPC) made during one RPC: Commit, Prepare, Remove
# and a CRI-labelled guest-pull Prepare, until the RPC makes no more calls
# of that kind (tests/crash/workload/fault.go). Each RPC must fail with the
# right gRPC code (ENOSPC: ResourceExhausted naming the path; EIO: not
# Unknown), the daemon keeps serving (but for a failed fsync of the WAL at
# a commit, whose outcome is unknown: the daemon must exit at once with
# status 75), and after a restart without the fault
# nothing acknowledged is lost, the failed mutation happened entirely or not
# at all, and records and directories agree after Cleanup (the crash
# suite's checks, tests/crash/workload/verify.go). Then a real full
# filesystem: the daemon's root on an 8 MiB tmpfs, filled; Prepare answers
# ResourceExhausted with the path, and the state after freeing space and a
# restart is consistent. Then the same faults at start-up (fault_start.go):
# on the store the cases left and on a root being created, the start serves
# or exits by itself with an error, and the next start serves everything
# acknowledged.
#
# About 2-3 min in both modes (every case is enumerated in the default mode).
# GUEST_PULL_DAEMON skips the daemon's bazel build; keep=1 keeps the work
# dir (faults.log lists every injection, daemon.log every answer).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../harness/harness.sh
source "$HERE/../harness/harness.sh"
# shellcheck source=../tools/peers.sh
source "$HERE/../tools/peers.sh"
# shellcheck source=../crash/lib.sh
source "$HERE/../crash/lib.sh"

crash_begin "fault suite" /tmp/gpfault.XXXXXX

build_shim() {
  (cd "$CRASH_REPO" && bazel build //tests/faults:fault_inject.so) &&
    cp "$CRASH_REPO/bazel-bin/tests/faults/fault_inject.so" "$work/fault_inject.so"
}

# run_workload NAME MODE DIR [ARGS...]: runs the driver, counts its output.
run_workload() {
  local name="$1" mode="$2" dir="$3" status=0
  shift 3
  "$work/workload" -mode "$mode" -daemon "$work/daemon" -work "$dir" "$@" \
    >"$dir.out" 2>&1 || status=$?
  grep -E '^(seed|FINDING|full filesystem)' "$dir.out" | head -n 40 || true
  crash_count "$dir.out" "$name: "
  if ((status != 0)); then
    h_fail "$name: driver ran to the end" "$(tail -n 5 "$dir.out"; echo '--- daemon.log:'; tail -n 20 "$dir/daemon.log" 2>/dev/null)"
  fi
}

h_setup "build the daemon and the workload client" crash_build "$work" || exit 1
h_setup "build the fault shim" build_shim || exit 1

mkdir -p "$work/inj"
run_workload injected faults "$work/inj" -shim "$work/fault_inject.so"
echo "injections by call:"
sed -E 's/#[0-9]+//; s/(new|trash)-[A-Za-z0-9]+/\1-X/; s,/[0-9]+(/|\)),/ID\1,' "$work/inj/faults.log" |
  sort | uniq -c || true

mkdir -p "$work/full/root"
if h_setup "an 8 MiB tmpfs as the daemon root" mount -t tmpfs -o size=8m tmpfs "$work/full/root"; then
  run_workload "full tmpfs" fullfs "$work/full"
  umount "$work/full/root" || true
fi
