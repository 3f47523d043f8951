# shellcheck shell=bash
# The watch install.sh keeps while its pod sleeps: every WATCH_SECONDS it
# works out what an install would write into containerd's config now
# (containerd-setup.sh, desired_containerd_config) and, when the files have
# differed from that the same way for two checks in a row, applies it under
# the host lock and restarts containerd. What it catches: kata's runtimes
# removed on a node that keeps this pod (our drop-in would keep a runtime
# table per handler holding only `snapshotter`, which containerd 2.x runs
# with runc) or registered again, our edits undone by another tool (on
# containerd 1.x kata-deploy's cleanup puts back a config without them), a
# containerd restart still due.
# A state (what is wanted, what the files hold) that comes back within a
# hold-off after it was applied is reported, not applied again: a tool
# that keeps writing its version back costs one containerd restart per
# hold-off, which doubles each time (3 checks, up to 64).
# The watch pauses while another pod's install has started and not
# finished (INSTALLING_PATH), and stops once another pod's install is the
# current one or the install record is gone (OWNER_PATH: a rolling update,
# an uninstall). When such an install is given up instead (its pod deleted,
# a rollback: its preStop removes INSTALLING_PATH; or its pod is gone from
# the node without a preStop, pod_gone: deleted while its container was not
# running), the watch installs this pod's files again (install_again,
# install.sh) over those it replaced. Stopped by another pod's finished
# install, it stands by (STANDBY_PATH_PREFIX, lib.sh): that pod's preStop,
# while this pod still runs (a rollback, or that pod deleted during the
# update), hands the install back (OWNER_PATH names this pod again), or that
# pod is gone without a preStop, and the watch installs this pod's files
# again the same way.
# Sourced by install.sh after lib.sh and containerd-setup.sh.

readonly WATCH_HOLDOFF_MIN=3 WATCH_HOLDOFF_MAX=64
watch_round_no=0     # checks made
watch_pending=""     # digest of the state seen last round, not applied yet
watch_applied=""     # digest of the state applied last ...
watch_applied_at=0   # ... at this check
watch_holdoff=$WATCH_HOLDOFF_MIN
watch_reported=""    # the last thing reported once (a failure, a fight, a pause)
watch_locked_rc=0    # watch_locked's outcome (apply_watched_change, install_again)
watch_reinstall=false  # this pod's install is to be made again (install_again) ...
watch_reinstall_at=0   # ... the round of its last failed attempt
watch_reinstall_holdoff=0  # rounds until the next attempt (0: at once)
watch_standby=""     # the pod whose finished install this pod's stands by for

# holdoff_doubled ROUNDS: twice ROUNDS, at most WATCH_HOLDOFF_MAX.
holdoff_doubled() { echo $(( $1 * 2 > WATCH_HOLDOFF_MAX ? WATCH_HOLDOFF_MAX : $1 * 2 )); }

# install_owner: prints the pod OWNER_PATH names (empty: none).
install_owner() { head -n 1 "$HOST_ROOT$OWNER_PATH" 2>/dev/null || true; }

# watch_stop_reason: prints why this pod's watch must stop: another pod's
# install is the current one (a pod that is gone, pod_gone, aside), or the
# install record is gone.
watch_stop_reason() {
    [[ -n "$POD_ID" ]] || return 1
    local owner
    owner="$(install_owner)"
    if [[ -z "$owner" ]]; then
        echo "the install record $OWNER_PATH is gone (uninstalled)"
    elif [[ "$owner" != "$POD_ID" ]] && ! pod_gone "$owner"; then
        echo "pod $owner installed after this one"
    else
        return 1
    fi
}

# installing_record: prints the pod INSTALLING_PATH names, if not this one.
installing_record() {
    [[ -n "$POD_ID" ]] || return 1
    local pod
    pod="$(head -n 1 "$HOST_ROOT$INSTALLING_PATH" 2>/dev/null)" || pod=""
    [[ -n "$pod" && "$pod" != "$POD_ID" ]] || return 1
    echo "$pod"
}

# other_pod_installing: prints the pod, not this one, whose install has
# started since this pod's (and which is not gone, pod_gone).
other_pod_installing() {
    local pod
    pod="$(installing_record)" && ! pod_gone "$pod" || return 1
    echo "$pod"
}

# stand_by OWNER: this pod's watch stands by while pod OWNER's install is
# the current one (its standby record, lib.sh); logged once. Fails (the
# watch then stops) once this pod's preStop has started: it is being
# deleted, and a newer pod must not hand the install back to it.
stand_by() {
    local owner="$1" path tmp me start
    [[ -n "$watch_standby" ]] && { watch_standby="$owner"; return 0; }
    prestop_started && return 1
    path="$(standby_path "$POD_ID")"
    # Whole or not at all (a reader takes a record it cannot read as one
    # of a process that no longer runs); the temporary name is not one of
    # a record.
    me=$BASHPID  # this watch's process ($BASHPID in $(...) is its own)
    start="$(process_start "$me")" || return 1
    tmp="$HOST_ROOT/run/.guest-pull-standby.$me"
    if ! { printf '%s %s\n' "$me" "$start" > "$tmp" \
            && mv -f -- "$tmp" "$path"; } 2> /dev/null; then
        rm -f -- "$tmp"
        return 1
    fi
    # (Against this pod's preStop: it marks, then removes the record.)
    if prestop_started; then rm -f -- "$path"; return 1; fi
    watch_standby="$owner"
    log "pod $owner installed after this one: the config watch stops; this pod stands by to install its files again if pod $owner is deleted while this pod still runs (its preStop then hands the install back to this pod)"
}

# end_standby: this pod's watch no longer stands by.
end_standby() {
    [[ -n "$watch_standby" ]] || return 0
    rm -f -- "$(standby_path "$POD_ID")"
    watch_standby=""
}

# report_once TEXT: logs TEXT unless it was the last thing reported.
report_once() {
    [[ "$1" == "$watch_reported" ]] && return 0
    watch_reported="$1"
    log "$1"
}

# watch_state_digest MERGED DROPIN: what is wanted and what the files hold
# (and whether a restart is due), as one digest.
watch_state_digest() {
    {
        cat "$1" "$2"
        echo "--- files"
        cat "$(config_host_path)" "$(dropin_host_path)" 2> /dev/null
        if restart_marker_due; then echo "--- restart due"; fi
    } | sha256sum | cut -d' ' -f1
}

# watch_locked WHAT STEP: the function STEP in a subshell with errexit,
# under the host lock, unless another pod's install came first or this
# pod's is no longer the current one. Sets watch_locked_rc: 0 done, 3 not
# done for that reason (logged as "not WHAT: ..."), else failed. bash
# ignores errexit in a function called as a condition (if, while, !) or
# before the last command of a && / || list: call it as a plain command (it
# returns 0). The lock names the subshell ($BASHPID), which has no TERM
# trap: this pod's preStop finding it holding the lock ends it at once
# (lib.sh, hold_host_lock).
watch_locked() {
    local what="$1" step="$2" rc=0
    set +e
    (
        set -e
        TMPDIR="$(mktemp -d)"
        export TMPDIR
        trap 'rm -rf "$TMPDIR"' EXIT
        hold_host_lock
        if reason="$(watch_stop_reason)" || reason="$(other_pod_installing)"; then
            log "not $what: $reason"
            exit 3
        fi
        "$step"
        release_host_lock
    )
    rc=$?
    set -e
    watch_locked_rc=$rc
}

# reapply_containerd_config: the install's containerd part again; restarts
# containerd when a file changed or a restart was due.
reapply_containerd_config() {
    reconcile_containerd
    if [[ "$containerd_changed" == true ]]; then
        host_systemctl restart "$CONTAINERD_SERVICE"
        wait_active "$CONTAINERD_SERVICE" 9>&-
        rm -f "$(restart_marker_path)"
        log "containerd runs the re-applied config"
    fi
}

# apply_watched_change: reapply_containerd_config under the host lock
# (watch_locked). Sets watch_locked_rc: 0 applied, 3 another pod's install
# came first, else failed. Call it as a plain command.
apply_watched_change() {
    containerd_changed=false  # set by reconcile_containerd in the subshell
    watch_locked applying reapply_containerd_config
    if [[ $watch_locked_rc -ne 0 && $watch_locked_rc -ne 3 ]]; then
        log "WARNING: the config watch could not apply the change (see above)"
    fi
}

# watch_apply DIGEST MERGED DROPIN: applies the state DIGEST and checks the
# result; a state that is applied again gets a longer hold-off.
watch_apply() {
    local digest="$1" merged="$2" dropin="$3"
    if [[ "$digest" == "$watch_applied" ]]; then
        watch_holdoff=$(holdoff_doubled "$watch_holdoff")
    else
        watch_holdoff=$WATCH_HOLDOFF_MIN
    fi
    watch_applied="$digest" watch_applied_at=$watch_round_no watch_pending="" watch_reported=""
    log "re-applying the install's containerd settings"
    apply_watched_change
    # Another pod's install came first: the next check pauses or stops.
    [[ $watch_locked_rc -ne 3 ]] || return 0
    if desired_containerd_config "$merged" "$dropin" 2> /dev/null \
        && [[ "$(watch_state_digest "$merged" "$dropin")" == "$digest" ]]; then
        report_once "WARNING: containerd's config still differs from this install after re-applying it; the watch tries this state again in $(( watch_holdoff * WATCH_SECONDS ))s at the earliest (restart this pod to install again now)"
    fi
}

# watch_round: one check; clears `watching` once the watch should stop.
watch_round() {
    local merged dropin err digest reason owner rc=0
    watch_round_no=$(( watch_round_no + 1 ))
    if reason="$(watch_stop_reason)"; then
        owner="$(install_owner)"
        if [[ -n "$owner" ]] && stand_by "$owner"; then return 0; fi
        end_standby
        log "$reason: the config watch stops"
        watching=false
        return 0
    fi
    # The current install is this pod's again, handed back by the preStop
    # of the pod this one stood by for (uninstall.sh), or another pod's
    # whose pod is gone without a preStop: either may have replaced this
    # pod's files.
    owner="$(install_owner)"
    if [[ -n "$POD_ID" && "$watch_reinstall" == false ]]; then
        if [[ -n "$watch_standby" && "$owner" == "$POD_ID" ]]; then
            log "pod $watch_standby handed the install back to this pod (its preStop: it was deleted while this pod still runs): installing this pod's files again"
            watch_reinstall=true
        elif [[ "$owner" != "$POD_ID" ]]; then
            log "pod $owner, whose install is the current one, is gone from this node without its preStop (deleted while its container was not running): installing this pod's files again"
            watch_reinstall=true
        fi
    fi
    end_standby
    if reason="$(other_pod_installing)"; then
        report_once "pod $reason is installing: the config watch pauses until it is done"
        watch_pending=""
        return 0
    fi
    # This pod's install left its name in INSTALLING_PATH, and only the
    # preStop of a later pod whose install did not finish removes it
    # (uninstall.sh; a full uninstall removes OWNER_PATH too, which stops
    # the watch above): that install may have replaced this pod's files.
    # The same when that pod is gone from the node without a preStop
    # (deleted while its container was not running, pod_gone): its record
    # stays, and would pause this watch for good.
    if [[ -n "$POD_ID" && "$watch_reinstall" == false ]]; then
        if [[ ! -e "$HOST_ROOT$INSTALLING_PATH" ]]; then
            log "another pod's install started after this pod's and did not finish (its record $INSTALLING_PATH is gone, this pod's install is still the current one): installing this pod's files again, which it may have replaced"
            watch_reinstall=true
        elif reason="$(installing_record)"; then
            log "pod $reason, whose install started after this pod's and did not finish, is gone from this node without its preStop (deleted while its container was not running: its record $INSTALLING_PATH stays): installing this pod's files again, which it may have replaced"
            watch_reinstall=true
        fi
    fi
    if [[ "$watch_reinstall" == true ]]; then
        watch_pending=""
        # A failed attempt is tried again after a hold-off that doubles
        # (WATCH_HOLDOFF_MIN to _MAX rounds): each attempt may restart the
        # snapshotter and hold the host lock while it waits for it.
        (( watch_round_no - watch_reinstall_at >= watch_reinstall_holdoff )) || return 0
        install_again
        if [[ $watch_locked_rc -eq 0 || $watch_locked_rc -eq 3 ]]; then
            watch_reinstall=false watch_reported="" watch_reinstall_holdoff=0
        else
            watch_reinstall_at=$watch_round_no
            if (( watch_reinstall_holdoff == 0 )); then
                watch_reinstall_holdoff=$WATCH_HOLDOFF_MIN
            else
                watch_reinstall_holdoff=$(holdoff_doubled "$watch_reinstall_holdoff")
            fi
            report_once "WARNING: the config watch could not install this pod's files again (see above); it tries again after $(( watch_reinstall_holdoff * WATCH_SECONDS ))s, then less often (restart this pod to install again now)"
        fi
        return 0
    fi
    merged="$(mktemp)" dropin="$(mktemp)" err="$(mktemp)"
    desired_containerd_config "$merged" "$dropin" 2> "$err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        # The same failure every round is logged once (its log lines'
        # times aside).
        reason="$(sed -E 's/^[0-9T:-]+Z //' "$err")"
        if [[ "$reason" != "$watch_reported" ]]; then
            watch_reported="$reason"
            log "WARNING: the config watch cannot work out containerd's config (nothing changed; checked again every ${WATCH_SECONDS}s):"
            cat "$err" >&2
        fi
        watch_pending=""
    elif containerd_config_matches "$merged" "$dropin" && ! restart_marker_due; then
        watch_pending="" watch_reported=""
    else
        digest="$(watch_state_digest "$merged" "$dropin")"
        if [[ "$digest" == "$watch_applied" ]] \
            && (( watch_round_no - watch_applied_at <= watch_holdoff )); then
            report_once "WARNING: containerd's config went back to what it was before the watch applied this install; something else writes it (a config management tool?). Make the two agree; the watch applies it again in $(( watch_holdoff * WATCH_SECONDS ))s at the earliest"
        elif [[ "$digest" != "$watch_pending" ]]; then
            watch_pending="$digest"
            log "containerd's config no longer matches this install (kata's runtimes removed or registered, our edits changed, or a restart due): applying it again in ${WATCH_SECONDS}s unless it changes meanwhile"
            cat "$err" >&2
        else
            watch_apply "$digest" "$merged" "$dropin"
        fi
    fi
    rm -f "$merged" "$dropin" "$err"
    return 0
}

# sleep_and_watch: until the pod is terminated.
sleep_and_watch() {
    local watching=true
    (( WATCH_SECONDS > 0 )) || watching=false
    while true; do
        if [[ "$watching" == true ]]; then sleep "$WATCH_SECONDS" & else sleep 3600 & fi
        wait $! || true
        if [[ "$watching" == true ]]; then watch_round; fi
    done
}
