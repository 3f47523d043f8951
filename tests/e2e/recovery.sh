#!/usr/bin/env bash
# recovery.sh: a lost, stale or corrupt metadata.db never deletes data, and
# a leftover that cannot be deleted never stops the daemon. Real containerd
# 1.6, our daemon as proxy snapshotter "guest-pull", a loopback registry.
#
# With an image pulled through containerd, the daemon is stopped and its
# root damaged (metadata.db deleted; truncated to 0 bytes; its -wal lost
# after writes; an old copy restored; bytes corrupted). Each start must:
# change no byte of snapshots/ (checksummed listing), exit 65 with the
# documented message, and the documented recovery (--reset-store, remove
# the image in containerd, pull again) must bring back a working image.
# Then trash directories that cannot be deleted (a tmpfs mounted below one,
# an immutable file in another): the daemon starts and serves, logs them,
# shows them in guest_pull_undeletable_entries, deletes nothing through the
# mount, and a later Cleanup (containerd's GC) deletes them once the
# obstacles are gone. docs/operations.md, "Metadata database lost or
# stale", describes every case. Then roots an operator gets wrong (a
# directory of other files, another user's, an address inside the root,
# --reset-store of a missing or empty root): refused or answered, unchanged.
# Last, the two sides disagreeing (docs/operations.md, "containerd and the
# snapshotter disagree"): our whole root wiped (rm -rf, and --reset-store)
# while containerd keeps its records (Stat and Mounts of those records answer NotFound, a pull over the
# stale records fails with NotFound instead of hanging, `ctr image rm` +
# pull + run works, records agree after containerd's GC and Cleanup), and
# containerd's metadata wiped while ours is kept (containerd's GC removes
# our now unknown snapshots through Remove, the journal proves them ours,
# nothing goes to quarantine, pull + run works).
#
# Usage (as root): tests/e2e/recovery.sh   (GUEST_PULL_DAEMON=PATH: prebuilt
# daemon; RECOVERY_CASES="root_wiped root_reset containerd_wiped": only those cases
# after the initial pull). Last line: "N passed, M failed, K skipped".
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../harness/harness.sh
source "$E2E_REPO/tests/harness/harness.sh"
# shellcheck source-path=SCRIPTDIR source=suite_lib.sh
source "$E2E_LIB_DIR/suite_lib.sh"

readonly IMAGE=recovery
# Printed in one write (with cat's status): under load, ctr run has been
# seen to pass on only a container's first write.
readonly SHOW_CMD='out=$(cat /etc/layer1 /data/layer2 /data/layer3 2>&1); s=$?; echo "$out"; exit $s'
RECOVERY_FINISHED=0

# ------------------------------------------------------------------ helpers

# snapshot_listing: every entry below snapshots/ with type, mode and, for
# files, a sha256 of the content; sorted.
snapshot_listing() {
  local dir="${1:-$GP_ROOT/snapshots}"
  (cd "$dir" && find . -mindepth 1 -printf '%y %m %p\n' | sort |
    while read -r type mode path; do
      if [[ "$type" == f ]]; then
        echo "$type $mode $path $(sha256sum <"$path" | cut -c1-64)"
      else
        echo "$type $mode $path"
      fi
    done)
}

# snapshot_dirs: number of snapshot directories (<id>) in snapshots/.
snapshot_dirs() { find "$GP_ROOT/snapshots" -mindepth 1 -maxdepth 1 -regex '.*/[0-9]+' | wc -l; }

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics"; }
metric() { scrape | awk -v k="$1" '$1 == k { print $2 }'; }

# run_daemon_once OUT FLAGS...: the daemon in the foreground (bounded), for
# runs that must end by themselves (a refusal, --reset-store).
run_daemon_once() {
  local out="$1"
  shift
  timeout 30 "$GP_DAEMON" --address="$GP_SOCK" --root="$GP_ROOT" \
    --config="$GP_CONFIG" --log-level=debug "$@" >"$out" 2>&1
}

# pull_and_run WHAT: pulls image v1 and runs it with runc; every layer's
# content must show.
pull_and_run() {
  local what="$1" out n
  h_check "$what: ctr image pull through guest-pull" ctr_pull "$REF1"
  if out="$(ctr_run "$REF1" "rec-$RANDOM" sh -c "$SHOW_CMD" 2>&1)"; then
    for n in 1 2 3; do
      if [[ "$out" != *"layer$n $IMAGE:v1 $NONCE1"* ]]; then
        h_fail "$what: ctr run shows layer $n" "$out"
        return 0
      fi
    done
    h_pass "$what: ctr run with runc shows every layer's content"
  else
    h_fail "$what: ctr run" "$out"
  fi
}

# expect_refusal CASE NEEDLE LISTING: starting the daemon on the damaged
# root must exit 65 with a message naming what was found (NEEDLE) and the
# recovery, and leave snapshots/ exactly as LISTING.
expect_refusal() {
  local c="$1" needle="$2" before="$3" out="$E2E_DIR/logs/refused-$1.log" status=0
  run_daemon_once "$out" || status=$?
  if ((status == 65)); then h_pass "$c: the daemon refuses to start (exit 65)"
  else h_fail "$c: the daemon exited $status, not 65" "$(tail -n 5 "$out")"; fi
  if grep -qF -- "$needle" "$out" && grep -qF -- "Nothing was changed" "$out" &&
      grep -qF -- "--reset-store" "$out"; then
    h_pass "$c: the message says what was found ('$needle') and how to recover"
  else
    h_fail "$c: message lacks '$needle', 'Nothing was changed' or '--reset-store'" "$(tail -n 3 "$out")"
  fi
  if [[ "$(snapshot_listing)" == "$before" ]]; then
    h_pass "$c: no snapshot directory deleted or changed ($(snapshot_dirs) directories, checksummed)"
  else
    h_fail "$c: snapshots/ changed" "$(diff <(echo "$before") <(snapshot_listing) | head -n 20)"
  fi
}

# recover CASE LISTING REFS...: the documented recovery: --reset-store
# (everything to quarantine, intact), start, remove the images in
# containerd, pull and run again; then the operator deletes the quarantine.
recover() {
  local c="$1" before="$2" out="$E2E_DIR/logs/reset-$1.log" moved ref
  shift 2
  h_check "$c: --reset-store exits 0" run_daemon_once "$out" --reset-store
  moved="$(find "$GP_ROOT/quarantine" -mindepth 1 -maxdepth 1 -name '*-reset-store*' | sort | tail -n 1)"
  if [[ -n "$moved" && "$(snapshot_listing "$moved/snapshots")" == "$before" ]]; then
    h_pass "$c: the reset moved every snapshot directory to ${moved#"$GP_ROOT"/}, intact"
  else
    h_fail "$c: quarantined copy differs from the snapshots before the damage" "$(ls -la "$GP_ROOT/quarantine" 2>&1)"
  fi
  start_daemon
  if containerd_wait_snapshotter; then h_pass "$c: containerd reaches the recovered daemon"
  else h_fail "$c: containerd cannot reach the recovered daemon" "$E2E_OUT"; fi
  for ref in "$@"; do
    h_check "$c: ctr image rm --sync $ref (containerd drops its stale records)" ctr_cmd image rm --sync "$ref"
  done
  pull_and_run "$c: after recovery"
  rm -rf "$GP_ROOT/quarantine"
}

# containerd_gc: a synchronous containerd GC that calls Cleanup on our
# daemon (containerd only cleans snapshotters with a removal since its last
# GC, hence the throwaway snapshot).
containerd_gc() {
  local snap=(ctr_cmd -n recovery-gc snapshots --snapshotter "$GP_SNAPSHOTTER") lease
  "${snap[@]}" prepare gc-probe >/dev/null && "${snap[@]}" rm gc-probe &&
    lease="$(ctr_cmd leases create)" && ctr_cmd leases delete --sync "$lease"
}

# wait_metric NAME VALUE: bounded wait until the metric has VALUE.
wait_metric() {
  local deadline=$((SECONDS + 20))
  until [[ "$(metric "$1")" == "$2" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# ------------------------------------------------------------------ cases

case_deleted() {
  stop_daemon
  local before
  before="$(snapshot_listing)"
  rm -f "$GP_ROOT/metadata.db"
  expect_refusal deleted "metadata.db is missing" "$before"
  recover deleted "$before" "$REF1"
}

case_truncated() {
  stop_daemon
  local before
  before="$(snapshot_listing)"
  : >"$GP_ROOT/metadata.db"
  expect_refusal truncated "is empty (0 bytes)" "$before"
  recover truncated "$before" "$REF1"
}

case_wal_lost() {
  stop_daemon  # a clean stop checkpoints everything into metadata.db
  start_daemon
  containerd_wait_snapshotter || h_fail "wal-lost: containerd reaches the daemon" "$E2E_OUT"
  h_check "wal-lost: pull a second image (its records are in metadata.db-wal only)" ctr_pull "$REF2"
  kill9_daemon
  h_check "wal-lost: metadata.db-wal holds the writes" test -s "$GP_ROOT/metadata.db-wal"
  local before
  before="$(snapshot_listing)"
  rm -f "$GP_ROOT/metadata.db-wal" "$GP_ROOT/metadata.db-shm"
  expect_refusal wal-lost "the database is stale (an old copy or a lost -wal)" "$before"
  recover wal-lost "$before" "$REF1" "$REF2"
}

case_stale_copy() {
  stop_daemon
  cp "$GP_ROOT/metadata.db" "$E2E_DIR/metadata.db.old"
  start_daemon
  containerd_wait_snapshotter || h_fail "stale: containerd reaches the daemon" "$E2E_OUT"
  h_check "stale: remove the image (containerd's GC removes its snapshots)" ctr_cmd image rm --sync "$REF1"
  h_check "stale: pull a second image" ctr_pull "$REF2"
  stop_daemon
  cp "$E2E_DIR/metadata.db.old" "$GP_ROOT/metadata.db"
  local before
  before="$(snapshot_listing)"
  expect_refusal stale "records whose snapshot directories are missing" "$before"
  recover stale "$before" "$REF2"
}

case_corrupt() {
  stop_daemon
  local before
  before="$(snapshot_listing)"
  dd if=/dev/urandom of="$GP_ROOT/metadata.db" bs=4096 seek=1 count=2 conv=notrunc status=none
  expect_refusal corrupt "cannot be read" "$before"
  recover corrupt "$before" "$REF1"
}

case_undeletable() {
  local busy="$GP_ROOT/snapshots/trash-e2ebusy" immutable="$GP_ROOT/snapshots/trash-e2eimmutable"
  local expected=1
  stop_daemon
  mkdir -p "$busy/mnt" "$immutable"
  mount -t tmpfs -o size=1m recovery-busy "$busy/mnt"
  echo "not ours" >"$busy/mnt/file"
  echo "immutable" >"$immutable/file"
  if chattr +i "$immutable/file" 2>/dev/null; then
    expected=2
  else
    h_skip "undeletable: an immutable file" "chattr +i is not supported on $(df --output=fstype "$GP_ROOT" | tail -n 1)"
    rm -rf "$immutable"
  fi
  start_daemon  # aborts the suite if the daemon exits
  h_pass "undeletable: the daemon starts with $expected leftovers it cannot delete"
  if containerd_wait_snapshotter; then h_pass "undeletable: the daemon serves containerd"
  else h_fail "undeletable: containerd cannot reach the daemon" "$E2E_OUT"; fi
  if wait_metric guest_pull_undeletable_entries "$expected"; then
    h_pass "undeletable: guest_pull_undeletable_entries is $expected"
  else
    h_fail "undeletable: guest_pull_undeletable_entries is '$(metric guest_pull_undeletable_entries)', not $expected"
  fi
  h_check "undeletable: the log names the busy trash directory" grep -q "cannot delete $busy" "$GP_LOG"
  if ((expected == 2)); then
    h_check "undeletable: the log names the immutable one" grep -q "cannot delete $immutable" "$GP_LOG"
  fi
  h_check "undeletable: nothing deleted through the mount" grep -qx "not ours" "$busy/mnt/file"
  pull_and_run "undeletable: while the leftovers stay"
  umount "$busy/mnt"
  [[ ! -e "$immutable/file" ]] || chattr -i "$immutable/file"
  h_check "undeletable: containerd's GC calls Cleanup" containerd_gc
  if [[ ! -e "$busy" && ! -e "$immutable" ]]; then
    h_pass "undeletable: Cleanup deleted them once the obstacles were gone"
  else
    h_fail "undeletable: leftovers still there after Cleanup" "$(ls -la "$GP_ROOT/snapshots")"
  fi
  if wait_metric guest_pull_undeletable_entries 0; then h_pass "undeletable: the metric is back to 0"
  else h_fail "undeletable: metric still $(metric guest_pull_undeletable_entries)"; fi
}

# not_found WHAT CMD...: CMD fails and says "not found" (containerd's
# rendering of NotFound).
not_found() {
  local what="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    h_fail "$what: answered instead of NotFound" "$out"
  elif grep -qi "not found" <<<"$out"; then
    h_pass "$what: NotFound"
  else
    h_fail "$what: failed without NotFound" "$out"
  fi
}

quarantined() { find "$GP_ROOT/quarantine" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# case_wrong_root: roots and addresses an operator gets wrong are refused
# and left as they were; --reset-store says what it did, or that there was
# nothing, whatever the log level.
case_wrong_root() {
  local c="wrong root" dir="$E2E_DIR/wrong-root" out="$E2E_DIR/logs/wrong-root.log" rc
  rm -rf "$dir"
  mkdir -p "$dir/shared" "$dir/nobodys" "$dir/empty"
  echo keep >"$dir/shared/notes.txt"
  chmod 1777 "$dir/shared"
  chown 65534:65534 "$dir/nobodys"
  # Beside the running daemon: an address and a config (no metrics) of their own.
  : >"$dir/c.toml"
  rc=0; run_daemon_once "$out" --root="$dir/shared" --address="$dir/gp.sock" --config="$dir/c.toml" || rc=$?
  if [[ $rc -eq 65 ]] && grep -q 'holds no store of this daemon but 1 other entry ("notes.txt")' "$out" &&
     [[ "$(stat -c %a "$dir/shared")" == 1777 && "$(ls -A "$dir/shared")" == notes.txt ]]; then
    h_pass "$c: a root of other files (mode 1777) is refused (exit $rc), its mode and entries kept"
  else
    h_fail "$c: a root of other files" "exit $rc, mode $(stat -c %a "$dir/shared"), entries: $(ls -A "$dir/shared" | tr '\n' ' '); $(tail -n 2 "$out")"
  fi
  rc=0; run_daemon_once "$out" --root="$dir/nobodys" --address="$dir/gp.sock" --config="$dir/c.toml" || rc=$?
  if [[ $rc -eq 65 ]] && grep -q 'belongs to uid 65534' "$out" && [[ -z "$(ls -A "$dir/nobodys")" ]]; then
    h_pass "$c: a root of another user is refused (exit $rc), left empty"
  else
    h_fail "$c: a root of another user" "exit $rc; $(tail -n 2 "$out")"
  fi
  # Entries of the daemon's of the wrong kind, put there by hand: refused
  # before anything is made (a lock directory failed every start with exit
  # 1; a guest-pull file failed one only after a store was created).
  local entry kind
  for entry in lock guest-pull; do
    rm -rf "$dir/kinds"
    mkdir -p "$dir/kinds"
    if [[ $entry == lock ]]; then mkdir "$dir/kinds/lock"; kind="is a directory, not a regular file"
    else : >"$dir/kinds/guest-pull"; kind="is a regular file, not a directory"; fi
    rc=0; run_daemon_once "$out" --root="$dir/kinds" --address="$dir/gp.sock" --config="$dir/c.toml" || rc=$?
    if [[ $rc -eq 65 ]] && grep -qF "$dir/kinds/$entry $kind" "$out" && grep -qF 'move it away and start again' "$out" &&
       [[ "$(ls -A "$dir/kinds")" == "$entry" ]]; then
      h_pass "$c: a $entry that $kind is refused (exit 65), nothing made"
    else
      h_fail "$c: a $entry of the wrong kind" "exit $rc, entries: $(find "$dir/kinds" -mindepth 1 -printf '%f '); $(tail -n 2 "$out")"
    fi
  done
  # containerd's own overlayfs root (a bolt metadata.db and snapshots/).
  local ovl="$CONTAINERD_DIR/root/io.containerd.snapshotter.v1.overlayfs" before
  # One snapshot through it, so that it has its metadata.db, as any used one.
  h_check "$c: a snapshot on containerd's overlayfs (its root gets its metadata.db)" \
    ctr_cmd snapshots --snapshotter overlayfs prepare gp-wrong-root-probe
  before="$(ls -A "$ovl" | tr '\n' ' ')"
  rc=0; run_daemon_once "$out" --root="$ovl" --address="$dir/gp.sock" --config="$dir/c.toml" || rc=$?
  if [[ $rc -eq 65 ]] && grep -q 'holds no store of this daemon but 1 other entry ("metadata.db")' "$out" &&
     [[ "$(ls -A "$ovl" | tr '\n' ' ')" == "$before" ]]; then
    h_pass "$c: containerd's overlayfs root is refused (exit 65), nothing made in it"
  else
    h_fail "$c: containerd's overlayfs root" "exit $rc, entries before: $before, after: $(ls -A "$ovl" | tr '\n' ' '); $(tail -n 2 "$out")"
  fi
  ctr_cmd snapshots --snapshotter overlayfs rm gp-wrong-root-probe >/dev/null 2>&1 || true
  rc=0; run_daemon_once "$out" --root="$dir/empty" --address="$dir/empty/snapshots/gp.sock" || rc=$?
  if [[ $rc -eq 2 ]] && grep -q 'is inside root' "$out" && [[ -z "$(ls -A "$dir/empty")" ]]; then
    h_pass "$c: an address inside the root is a configuration error (exit 2)"
  else
    h_fail "$c: an address inside the root" "exit $rc; $(tail -n 2 "$out")"
  fi
  rc=0; run_daemon_once "$out" --root="$dir/missing" --reset-store --log-level=error || rc=$?
  if [[ $rc -eq 1 ]] && grep -q 'does not exist: there is no store to reset' "$out" && [[ ! -e "$dir/missing" ]]; then
    h_pass "$c: --reset-store of a root that does not exist fails (exit 1) and creates nothing"
  else
    h_fail "$c: --reset-store of a missing root" "exit $rc; $(tail -n 2 "$out")"
  fi
  rc=0; run_daemon_once "$out" --root="$dir/empty" --reset-store --log-level=error || rc=$?
  if [[ $rc -eq 0 ]] && grep -q 'nothing to move' "$out" && [[ ! -e "$dir/empty/quarantine" ]]; then
    h_pass "$c: --reset-store of an empty root says there was nothing to move (at log level error), makes no quarantine"
  else
    h_fail "$c: --reset-store of an empty root" "exit $rc; $(tail -n 2 "$out")"
  fi
  rm -rf "$dir"
}

# root_lost CASE HOW: our root lost while containerd keeps its records, HOW
# being "wipe" (rm -rf, daemon stopped) or "reset" (--reset-store, as
# docs/operations.md says, everything moved to quarantine).
root_lost() {
  local c="$1" how="$2" top out
  top="$(image_chain_ids "$IMAGE" v1 | tail -n 1)"
  h_check "$c: containerd lists the image's top layer $top" \
    ctr_cmd snapshots --snapshotter "$GP_SNAPSHOTTER" info "$top"
  stop_daemon
  if [[ "$how" == reset ]]; then
    h_check "$c: --reset-store exits 0" run_daemon_once "$E2E_DIR/logs/reset-$c.log" --reset-store
  else
    rm -rf "$GP_ROOT"
  fi
  start_daemon
  if containerd_wait_snapshotter; then h_pass "$c: the daemon starts on an empty store and serves"
  else h_fail "$c: containerd cannot reach the daemon" "$E2E_OUT"; fi
  not_found "$c: Stat of a record containerd kept" \
    ctr_cmd snapshots --snapshotter "$GP_SNAPSHOTTER" info "$top"
  not_found "$c: Mounts of a record containerd kept" \
    ctr_cmd snapshots --snapshotter "$GP_SNAPSHOTTER" mounts /mnt "$top"
  not_found "$c: a container on the image (Prepare on a missing parent)" \
    ctr_run "$REF1" "rec-wiped-$RANDOM" true
  # containerd's metadata still names the layers: its unpacker finds a
  # committed record it cannot use; the pull must end, with NotFound.
  if out="$(ctr_pull "$REF1" 2>&1)"; then
    if ctr_run "$REF1" "rec-wiped-$RANDOM" true >/dev/null 2>&1; then
      h_pass "$c: a pull over containerd's stale records works"
    else
      h_pass "$c: a pull over containerd's stale records ends (containerd skips layers it has records of; the image stays unusable until removed)"
    fi
  elif grep -qi "not found" <<<"$out"; then
    h_pass "$c: a pull over containerd's stale records fails with NotFound (no hang)"
  else
    h_fail "$c: a pull over stale records failed otherwise" "$(tail -n 3 <<<"$out")"
  fi
  h_check "$c: ctr image rm --sync (containerd's GC drops its stale records)" \
    ctr_cmd image rm --sync "$REF1"
  pull_and_run "$c: pulled again"
  check_consistent "$c"
  if [[ "$how" == reset ]]; then
    assert_eq "$c: the quarantine holds the reset store only" 1 "$(quarantined)"
    rm -rf "$GP_ROOT/quarantine"
  else
    assert_eq "$c: nothing quarantined" 0 "$(quarantined)"
  fi
}

case_root_wiped() { root_lost "root wiped" wipe; }
case_root_reset() { root_lost "root reset" reset; }

# containerd's metadata wiped while our root is kept.
case_containerd_wiped() {
  local before after
  before="$(daemon_records | grep -c . || true)"
  containerd_stop
  rm -rf "$CONTAINERD_DIR/root"
  containerd_start
  if containerd_wait_snapshotter; then h_pass "containerd wiped: containerd reaches the daemon ($before records it no longer knows)"
  else h_fail "containerd wiped: containerd cannot reach the daemon" "$E2E_OUT"; fi
  ((before > 0)) || h_fail "containerd wiped: the daemon had no records to orphan"
  h_check "containerd wiped: containerd's GC (Walk, Remove of what it does not know, Cleanup)" force_gc
  after="$(daemon_records | grep -c . || true)"
  assert_eq "containerd wiped: the daemon's records after the GC" 0 "$after"
  assert_eq "containerd wiped: snapshot directories left" 0 "$(snapshot_dirs)"
  assert_eq "containerd wiped: nothing quarantined (each removal journalled)" 0 "$(quarantined)"
  pull_and_run "containerd wiped: pulled again"
  check_consistent "containerd wiped"
}

# ----------------------------------------------------------------- teardown

# The daemon's exit status at teardown is asserted here; lib.sh's
# e2e_stop_all does the rest (peers, mounts, logs, temp dir).
recovery_teardown() {
  local status=$? st=0
  set +e
  if ((status != 0 && RECOVERY_FINISHED == 0)); then h_fail "suite aborted (exit $status; see FATAL above)"; fi
  containerd_stop
  if [[ -n "$GP_PID" ]]; then
    stop_daemon || st=$?
    ((st == 0)) || h_fail "daemon exits 0 on SIGTERM at teardown (exit $st)"
  fi
  e2e_stop_all
  h_finish
}

main() {
  e2e_init recovery
  h_on_exit recovery_teardown
  registry_start
  METRICS_PORT="$(e2e_free_port)"
  daemon_write_config
  printf '\n[metrics]\naddress = "127.0.0.1:%s"\n' "$METRICS_PORT" | daemon_config_append
  start_daemon
  containerd_start
  image_build_busybox "$IMAGE" v1 3
  NONCE1="$IMAGE_NONCE"
  image_push "$IMAGE" v1
  image_build_busybox "$IMAGE" v2 3
  image_push "$IMAGE" v2
  REF1="$(image_ref "$IMAGE" v1)"
  REF2="$(image_ref "$IMAGE" v2)"
  h_check "the systemd unit does not restart exit status 65" \
    grep -qx 'RestartPreventExitStatus=65' "$E2E_REPO/deploy/systemd/guest-pull-snapshotter.service"
  pull_and_run "initial"
  local t0=$SECONDS c
  if [[ -n "${RECOVERY_CASES:-}" ]]; then
    for c in $RECOVERY_CASES; do "case_$c"; done
  else
    case_deleted
    case_truncated
    case_wal_lost
    case_stale_copy
    case_corrupt
    h_figure "recovery cases (refusal, reset, re-pull)" "$((SECONDS - t0))" s
    case_undeletable
    case_wrong_root
    t0=$SECONDS
    case_root_wiped
    case_root_reset
    case_containerd_wiped
    h_figure "containerd/snapshotter disagreement cases" "$((SECONDS - t0))" s
  fi
  RECOVERY_FINISHED=1
}

main "$@"
