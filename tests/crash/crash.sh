#!/usr/bin/env bash
# Crash suite: the real daemon on a temp root, 4 concurrent clients through
# containerd's snapshots proxy client (Prepare, writes through the real
# overlay mounts, Commit, View, Remove, Update of labels, CRI-labelled
# guest-pull layer Prepares and views on those layers), each journaling
# (fsync'd) every mutation in flight and every one acknowledged; SIGKILL at
# a random moment (20-300 ms into a round; one round in ten kills during
# startup recovery instead), restart, and verify through the API and the
# filesystem only (tests/crash/workload/verify.go): every acknowledged
# mutation survived with its content, a mutation cut by the kill happened
# entirely or not at all, the records match the journals, and after a
# Cleanup the snapshot directories match the records with no new-*/trash-*
# left and nothing quarantined.
#
# Default mode: 120 SIGKILLs (about 3 minutes on a shared 2-core
# machine; the default mode has an hour on a fresh machine). Long mode
# (GUEST_PULL_TEST_MODE=long): 1000. CRASH_KILLS=N
# overrides; CRASH_SEED=S replays a run (the seed is printed).
# GUEST_PULL_DAEMON skips the bazel build. keep=1 keeps the work dir
# (journals, daemon.log, root).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../harness/harness.sh
source "$HERE/../harness/harness.sh"
# shellcheck source=../tools/peers.sh
source "$HERE/../tools/peers.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

crash_begin "crash suite" /tmp/gpcrash.XXXXXX
kills=120
if h_long; then kills=1000; fi
kills="${CRASH_KILLS:-$kills}"

h_setup "build the daemon and the workload client" crash_build "$work" || exit 1

mkdir -p "$work/run"
echo "crash: $kills SIGKILLs of the daemon, work dir $work"
status=0
"$work/workload" -daemon "$work/daemon" -work "$work/run" -kills "$kills" \
  -min-ms 20 -max-ms 300 ${CRASH_SEED:+-seed "$CRASH_SEED"} >"$work/out.txt" 2>&1 || status=$?
grep -E '^(seed|FINDING)' "$work/out.txt" | head -n 60 || true
crash_count "$work/out.txt"
if ((status != 0)); then
  h_fail "workload ran to the end" "$(tail -n 5 "$work/out.txt"; echo '--- daemon.log:'; tail -n 20 "$work/run/daemon.log" 2>/dev/null)"
fi
