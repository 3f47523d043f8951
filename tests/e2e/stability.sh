#!/usr/bin/env bash
# stability.sh: the daemon and containerd interrupted, idle and in the middle
# of a CRI guest pull of the 42-layer image, must leave nothing corrupt.
#
# Cases (each with its own copy of the deep image, images.sh VARIANT):
#   idle-{int,term,kill,hup}   signal to the idle daemon
#   pull-{int,term,kill,hup}   signal once a few layers of a CRI pull were
#                              decided (daemon log), the pull in background
#   pull-kill-repeat           SIGKILL mid-pull, restart, and again during
#                              the retry, KILL_REPEAT times in a row
#   hostpull-kill              SIGKILL once a few layers of a plain
#                              `ctr image pull` (host unpack: Prepare, apply,
#                              Commit with real data) were committed
#   containerd-restart         containerd stopped and started mid-pull
#   daemon-down                the daemon stopped while containerd pulls:
#                              containerd must report an error, not hang
# SIGINT/SIGTERM: the daemon exits 0 in time. SIGKILL: restart on the same
# root. SIGHUP: the daemon keeps serving and a pull in flight completes.
# A round that interrupted nothing (the pull had already ended when the
# signal came, or the kill did not land because the daemon had already
# exited) is a skip with that reason (harness.sh h_skip), never a pass;
# that the pull was in progress is the round's precondition, not a pass.
# After every case:
#   - the (interrupted) pull completes on retry and every layer is a
#     committed snapshot;
#   - after a synchronous containerd GC (which calls the daemon's Remove and
#     Cleanup), containerd's records (ctr snapshots ls, every namespace) and
#     the daemon's own records (its metadata.db, read-only with sqlite3) are
#     the same set, and `ctr snapshots info` (a Stat through the daemon)
#     succeeds for each record;
#   - the daemon's snapshots/ dir holds exactly one dir per record (no
#     leaked or interrupted creation dirs) and nothing is mounted under its
#     root;
#   - a new CRI pull (guest pull), a new `ctr image pull` + `ctr run` (runc)
#     through the daemon and the guest stand-in on the retried deep image
#     all work.
#
# Usage (as root): tests/e2e/stability.sh [CASE...]
#   CASE               run only these cases (default: all, in the order above)
#   E2E_IMAGES_CACHE   image cache dir (default /tmp/gp-e2e-images)
#   GUEST_PULL_DAEMON  prebuilt daemon binary; E2E_KEEP=1 keeps the temp dir
# Needs the sqlite3 CLI (Debian package sqlite3).
# Last line: "N passed, M failed, K skipped"; exit status non-zero on any
# failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=suite_lib.sh
source "$E2E_LIB_DIR/suite_lib.sh"

readonly ALL_CASES=(idle-int idle-term idle-kill idle-hup pull-int pull-term pull-kill pull-hup
                    pull-kill-repeat hostpull-kill containerd-restart daemon-down)
# Signal a pull once this many of its layers were decided.
readonly MIDPULL_LAYERS=3
# Kills in a row in pull-kill-repeat.
readonly KILL_REPEAT=4
# Bound (s) for a background pull to end after the interruption.
readonly PULL_END_TIMEOUT=60

declare -A DEEP=() DEEP_REF=() FRESH=() FRESH_REF=()
PULL_PID=""
PULL_LOG=""

# ------------------------------------------------------------------ setup

prepare_images() {
  local c
  for c in "$@"; do
    DEEP[$c]="$(suite_image deep "stab-$c")"
    DEEP_REF[$c]="$(suite_push "${DEEP[$c]}" stab-deep "$c" oci)"
    suite_cache_add "${DEEP[$c]}"
    FRESH[$c]="$(suite_image multilayer "stab-$c")"
    FRESH_REF[$c]="$(suite_push "${FRESH[$c]}" stab-fresh "$c" oci)"
    suite_cache_add "${FRESH[$c]}"
  done
}

write_daemon_config() {
  daemon_write_config
  daemon_config_append <<EOF

[verity]
mode = "required"
layer_cache = "$SUITE_LAYER_CACHE"
EOF
}

# --------------------------------------------------------------- daemon

# signal_daemon SIG: sends SIG to the daemon. For INT/TERM/KILL waits
# (bounded) for it to exit and returns its exit status (124 if it did not
# exit in time; it is then SIGKILLed); GP_PID is cleared. HUP returns 0.
signal_daemon() {
  local sig="$1" pid="$GP_PID"
  [[ -n "$pid" ]] || { e2e_log "signal_daemon: daemon not running"; return 1; }
  if [[ "$sig" == HUP ]]; then
    kill -HUP "$pid"
    e2e_log "sent SIGHUP to the daemon (pid $pid)"
    return 0
  fi
  GP_PID=""
  e2e_log "sending SIG$sig to the daemon (pid $pid)"
  e2e_stop_pid daemon "$pid" "$sig"
}

# wait_backend DESC: containerd reaches the daemon again (bounded).
wait_backend() {
  if e2e_wait_until "$E2E_START_TIMEOUT" "containerd to reach the daemon" backend_ping; then
    pass "$1: containerd reaches the daemon"
  else
    fail "$1: containerd does not reach the daemon within ${E2E_START_TIMEOUT}s"
  fi
}

# wait_cri DESC: containerd's CRI plugin answers again (after a start it
# says "server is not initialized yet" for a moment).
wait_cri() {
  if e2e_wait_until "$E2E_START_TIMEOUT" "the CRI plugin" cri_cmd images; then
    pass "$1: CRI plugin ready"
  else
    fail "$1: CRI plugin not ready within ${E2E_START_TIMEOUT}s" "$(cri_cmd images 2>&1 | tail -n 3)"
  fi
}

# restart_after CASE SIG: after the daemon died of SIG, start it again.
restart_after() {
  start_daemon
  pass "$1: daemon restarted on the same root after SIG$2"
  wait_backend "$1"
}

# --------------------------------------------------------- pulls

# pull_in_background REF: starts a CRI pull; PULL_PID, output in PULL_LOG.
pull_in_background() {
  PULL_LOG="$E2E_DIR/logs/pull-$(date +%s%N).out"
  cri_cmd pull "$1" >"$PULL_LOG" 2>&1 &
  PULL_PID=$!
}

# wait_decisions REF N: until N layers of REF were decided (bounded by the
# background pull ending, and 60 s). Prints the count reached.
wait_decisions() {
  local ref="$1" want="$2" deadline=$((SECONDS + 60)) n=0
  while ((SECONDS < deadline)); do
    n="$(decision_count "$ref" skip)"
    ((n >= want)) && break
    kill -0 "$PULL_PID" 2>/dev/null || break
    sleep 0.02
  done
  echo "$n"
}

# wait_pull: waits (bounded) for the background pull; returns its status,
# 124 if it had to be killed.
wait_pull() {
  local pid="$PULL_PID" deadline=$((SECONDS + PULL_END_TIMEOUT)) status=0
  PULL_PID=""
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 124
  fi
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}

# start_midpull CASE WHAT: starts the CRI pull of the case's deep image and
# waits until MIDPULL_LAYERS layers were decided. Returns 0 if the pull is
# then in progress; else WHAT (the round's mid-pull checks) is a skip when
# the pull had already ended or decided every layer (nothing left to
# interrupt), a failure when it made no progress at all; returns 1.
start_midpull() {
  local c="$1" what="$2" n layers
  layers="$(images_layer_count "${DEEP[$c]}")"
  pull_in_background "${DEEP_REF[$c]}"
  n="$(wait_decisions "${DEEP_REF[$c]}" "$MIDPULL_LAYERS")"
  if ((n >= MIDPULL_LAYERS && n < layers)) && kill -0 "$PULL_PID" 2>/dev/null; then
    e2e_log "$c: pull in progress ($n of $layers layers decided) when interrupted"
    return 0
  fi
  if kill -0 "$PULL_PID" 2>/dev/null && ((n < MIDPULL_LAYERS)); then
    fail "$c: the pull decided only $n of $layers layers in 60s" "$(cat "$PULL_LOG")"
  else
    h_skip "$c: $what" "the pull had already ended or decided every layer ($n of $layers) when the interruption came: nothing mid-pull was interrupted"
  fi
  return 1
}

# --------------------------------------------------------- consistency

# check_layers_committed CASE NAMESPACE: every chain ID of the deep image
# is a committed snapshot in NAMESPACE.
check_layers_committed() {
  local c="$1" ns="$2" chain missing="" n=0
  while read -r chain; do
    n=$((n + 1))
    ctr_cmd -n "$ns" snapshots --snapshotter "$GP_SNAPSHOTTER" info "$chain" 2>/dev/null |
      jq -e '.Kind == "Committed"' >/dev/null 2>&1 || missing+="layer $n $chain"$'\n'
  done < <(suite_chain_ids "${DEEP[$c]}")
  if ((n == 0)); then fail "$c: no chain ID read for the image: nothing checked"
  elif [[ -z "$missing" ]]; then pass "$c: all $n layers committed ($ns)"; else
    fail "$c: layers not committed in $ns after the pull" "$missing"
  fi
}

# check_works CASE: new pulls, runc and the guest stand-in work.
check_works() {
  local c="$1" ref="${FRESH_REF[$1]}" layers
  layers="$(images_layer_count "${FRESH[$c]}")"
  check "$c: new CRI pull" cri_cmd pull "$ref"
  assert_eq "$c: new CRI pull guest-pulled every layer" "$layers" "$(decision_count "$ref" skip guest-pull)"
  check "$c: new ctr image pull through the daemon" ctr_cmd image pull --plain-http \
    --snapshotter "$GP_SNAPSHOTTER" "$ref"
  check "$c: ctr run (runc) through the daemon" ctr_run "$ref" "stab-$c"
  if last_ok; then assert_contains "$c: runc output" "$E2E_OUT" "$(images_expected_output multilayer "$SUITE_IMAGES_CACHE")"; fi
  check "$c: guest stand-in verifies and runs the retried deep image" \
    standin_stdout "$E2E_DIR/logs/standin-$c.log" "$(suite_top_chain "${DEEP[$c]}")"
  if last_ok; then assert_contains "$c: stand-in output" "$E2E_OUT" "$(images_expected_output deep "$SUITE_IMAGES_CACHE")"; fi
}

# after_case CASE: the retry and every check above.
after_case() {
  local c="$1"
  if [[ "$c" == hostpull-* ]]; then
    check "$c: ctr image pull of the deep image completes (retry)" ctr_pull "${DEEP_REF[$c]}"
    check_layers_committed "$c" default
    check "$c: ctr run (runc) of the retried deep image" ctr_run "${DEEP_REF[$c]}" "stab-$c-deep"
    if last_ok; then assert_contains "$c: runc output of the deep image" "$E2E_OUT" \
      "$(images_expected_output deep "$SUITE_IMAGES_CACHE")"; fi
  fi
  check "$c: CRI pull of the deep image completes (retry)" cri_cmd pull "${DEEP_REF[$c]}"
  check_layers_committed "$c" k8s.io
  check_consistent "$c"
  check_works "$c"
}

# --------------------------------------------------------------- cases

# assert_exit CASE SIG STATUS: INT/TERM must exit 0 in time.
assert_exit() {
  case "$2" in
    INT | TERM) assert_status "$1: daemon exits 0 on SIG$2 within ${E2E_STOP_TIMEOUT}s" 0 "$3" ;;
    KILL) assert_status "$1: daemon killed by SIGKILL" 137 "$3" ;;
  esac
}

# hup_lines: how many SIGHUP lines the daemon logged so far.
hup_lines() { grep -c 'SIGHUP received' "$GP_LOG" || true; }

# hup_logged_after N: the daemon logged more than N SIGHUP lines.
# shellcheck disable=SC2317  # invoked through e2e_wait_until
hup_logged_after() { (($(hup_lines) > $1)); }

# assert_hup_serving CASE BEFORE: the daemon survived SIGHUP, logged it
# (more than BEFORE SIGHUP lines) and serves.
assert_hup_serving() {
  local c="$1" before="$2"
  if e2e_wait_until 5 "the SIGHUP log line" hup_logged_after "$before"; then
    pass "$c: daemon logged the SIGHUP"
  else
    fail "$c: no SIGHUP line in the daemon log within 5s"
  fi
  if [[ -n "$GP_PID" ]] && kill -0 "$GP_PID" 2>/dev/null; then pass "$c: daemon alive after SIGHUP"; else
    fail "$c: daemon died on SIGHUP"; return 0
  fi
  check "$c: daemon serves after SIGHUP" backend_ping
}

case_idle() {
  local c="$1" sig="$2" status=0 hups
  backend_ping || true
  hups="$(hup_lines)"
  signal_daemon "$sig" || status=$?
  if [[ "$sig" == HUP ]]; then
    assert_hup_serving "$c" "$hups"
  else
    assert_exit "$c" "$sig" "$status"
    check_fails "$c: containerd reports an error while the daemon is down" \
      ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" prepare "stab-$c-down"
    restart_after "$c" "$sig"
  fi
  after_case "$c"
}

case_midpull() {
  local c="$1" sig="$2" status=0 pull=0 hups midpull=1
  hups="$(hup_lines)"
  if [[ "$sig" == HUP ]]; then
    start_midpull "$c" "the pull in flight completes despite SIGHUP" || midpull=0
  else
    start_midpull "$c" "the pull interrupted by SIG$sig fails with an error" || midpull=0
  fi
  signal_daemon "$sig" || status=$?
  if [[ "$sig" == HUP ]]; then
    assert_hup_serving "$c" "$hups"
    wait_pull || pull=$?
    if ((midpull)); then
      assert_status "$c: the pull in flight completes despite SIGHUP" 0 "$pull"
      ((pull == 0)) || e2e_log "pull output: $(cat "$PULL_LOG")"
    fi
  else
    assert_exit "$c" "$sig" "$status"
    wait_pull || pull=$?
    if ((!midpull)); then
      e2e_log "$c: the pull (not interrupted) exited $pull"
    elif ((pull != 0 && pull != 124)); then
      pass "$c: the interrupted pull fails with an error ($(tail -n 1 "$PULL_LOG" | cut -c1-200))"
    else
      fail "$c: the interrupted pull exited $pull (expected an error, not success or a hang)" "$(cat "$PULL_LOG")"
    fi
    restart_after "$c" "$sig"
  fi
  after_case "$c"
}

# case_kill_repeat CASE: SIGKILL mid-pull, restart, retry, SIGKILL again a
# few layers further, KILL_REPEAT times; then the usual checks.
case_kill_repeat() {
  local c="$1" ref="${DEEP_REF[$1]}" round n want status layers pull
  layers="$(images_layer_count "${DEEP[$c]}")"
  for ((round = 1; round <= KILL_REPEAT; round++)); do
    want=$(($(decision_count "$ref" skip) + MIDPULL_LAYERS))
    pull_in_background "$ref"
    n="$(wait_decisions "$ref" "$want")"
    if ! kill -0 "$PULL_PID" 2>/dev/null; then
      pull=0
      wait_pull || pull=$?
      e2e_log "$c: round $round: pull ended (status $pull) before the kill ($n decisions)"
      if ((pull == 0)); then
        h_skip "$c: rounds $round to $KILL_REPEAT: SIGKILL mid-pull" \
          "the pull completed ($n decisions) before round $round's kill: nothing left to interrupt"
      else
        fail "$c: round $round: pull failed without an interruption" "$(cat "$PULL_LOG")"
      fi
      break
    fi
    status=0
    signal_daemon KILL || status=$?
    pull=0
    wait_pull || pull=$?
    if ((status != 137)); then
      h_skip "$c: round $round: SIGKILL mid-pull" \
        "the kill did not land: the daemon had already exited (status $status)"
    elif ((pull == 0)); then
      h_skip "$c: round $round: SIGKILL mid-pull" \
        "the pull completed anyway ($n decisions when killed): the kill interrupted nothing"
    elif ((pull != 124)); then
      pass "$c: round $round: SIGKILL at $n decisions for a $layers-layer image, pull ended with status $pull"
    else
      fail "$c: round $round: the pull hung after the SIGKILL" "$(cat "$PULL_LOG")"
    fi
    restart_after "$c round $round" KILL
  done
  after_case "$c"
}

# commits_since LINE: Commit RPCs of the default namespace the daemon
# logged after line LINE of its log.
commits_since() {
  tail -n "+$(($1 + 1))" "$GP_LOG" | grep -c 'Commit key="default/' || true
}

# case_hostpull_kill CASE: SIGKILL during a host unpack with real layer data.
case_hostpull_kill() {
  local c="$1" start n=0 deadline status=0 pull=0 layers
  layers="$(images_layer_count "${DEEP[$c]}")"
  start="$(wc -l <"$GP_LOG")"
  PULL_LOG="$E2E_DIR/logs/pull-$c.out"
  ctr_pull "${DEEP_REF[$c]}" >"$PULL_LOG" 2>&1 &
  PULL_PID=$!
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)) && kill -0 "$PULL_PID" 2>/dev/null; do
    n="$(commits_since "$start")"
    ((n < MIDPULL_LAYERS)) || break
    sleep 0.02
  done
  local midpull=0
  if ((n >= MIDPULL_LAYERS && n < layers)) && kill -0 "$PULL_PID" 2>/dev/null; then
    e2e_log "$c: host unpack in progress ($n of $layers layers committed) when interrupted"
    midpull=1
  elif kill -0 "$PULL_PID" 2>/dev/null && ((n < MIDPULL_LAYERS)); then
    fail "$c: the host unpack committed only $n of $layers layers in 60s" "$(cat "$PULL_LOG")"
  else
    h_skip "$c: the ctr pull interrupted by SIGKILL fails with an error" \
      "the host unpack had already ended or committed every layer ($n of $layers) when the kill came: nothing mid-pull was interrupted"
  fi
  signal_daemon KILL || status=$?
  assert_exit "$c" KILL "$status"
  wait_pull || pull=$?
  if ((!midpull)); then
    e2e_log "$c: the ctr pull (not interrupted) exited $pull"
  elif ((pull != 0 && pull != 124)); then
    pass "$c: the interrupted ctr pull fails with an error ($(tail -n 1 "$PULL_LOG" | cut -c1-200))"
  else
    fail "$c: the interrupted ctr pull exited $pull (expected an error, not success or a hang)" "$(cat "$PULL_LOG")"
  fi
  restart_after "$c" KILL
  after_case "$c"
}

case_containerd_restart() {
  local c="$1" pull=0 midpull=1
  start_midpull "$c" "the pull ends (no hang) after containerd restarted under it" || midpull=0
  containerd_restart
  e2e_log "$c: containerd restarted"
  wait_cri "$c"
  wait_pull || pull=$?
  if ((!midpull)); then
    e2e_log "$c: the pull (not interrupted) exited $pull"
  elif ((pull != 124)); then pass "$c: the pull ended (status $pull) after containerd restarted"; else
    fail "$c: the pull hung after containerd restarted" "$(cat "$PULL_LOG")"
  fi
  wait_backend "$c"
  after_case "$c"
}

case_daemon_down() {
  local c="$1" status=0
  stop_daemon || status=$?
  assert_status "$c: daemon stopped (SIGTERM, exit 0)" 0 "$status"
  check_fails "$c: CRI pull with the daemon down reports an error" cri_cmd pull "${DEEP_REF[$c]}"
  e2e_log "$c: containerd said: $(tail -n 1 <<<"$E2E_OUT" | cut -c1-300)"
  check "$c: containerd still answers" ctr_cmd version
  start_daemon
  wait_backend "$c"
  after_case "$c"
}

run_case() {
  local c="$1" t0=$SECONDS
  e2e_log "==== case $c"
  case "$c" in
    idle-int) case_idle "$c" INT ;;
    idle-term) case_idle "$c" TERM ;;
    idle-kill) case_idle "$c" KILL ;;
    idle-hup) case_idle "$c" HUP ;;
    pull-int) case_midpull "$c" INT ;;
    pull-term) case_midpull "$c" TERM ;;
    pull-kill) case_midpull "$c" KILL ;;
    pull-hup) case_midpull "$c" HUP ;;
    pull-kill-repeat) case_kill_repeat "$c" ;;
    hostpull-kill) case_hostpull_kill "$c" ;;
    containerd-restart) case_containerd_restart "$c" ;;
    daemon-down) case_daemon_down "$c" ;;
    *) e2e_die "unknown case $c (known: ${ALL_CASES[*]})" ;;
  esac
  e2e_log "==== case $c took $((SECONDS - t0))s"
}

main() {
  local cases=("$@") c status=0 t0=$SECONDS
  ((${#cases[@]})) || cases=("${ALL_CASES[@]}")
  e2e_init stabil
  e2e_require_cmds sqlite3
  suite_install_tools
  registry_start
  prepare_images "${cases[@]}"
  write_daemon_config
  start_daemon
  containerd_start
  h_setup_here "CRI plugin ready" \
    e2e_wait_until "$E2E_START_TIMEOUT" "the CRI plugin" cri_cmd images || exit 1
  e2e_log "setup took $((SECONDS - t0))s"
  for c in "${cases[@]}"; do run_case "$c"; done
  stop_daemon || status=$?
  assert_status "daemon exits 0 on SIGTERM at the end" 0 "$status"
  e2e_log "stability took $((SECONDS - t0))s"
  finish
}

main "$@"
