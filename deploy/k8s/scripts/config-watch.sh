# shellcheck shell=bash
# The watch install.sh keeps while its pod sleeps: every WATCH_SECONDS it
# works out what an install would write into containerd's config now
# (containerd-setup.sh, desired_containerd_config) and, when the files have
# differed from that the same way for two checks in a row, applies it under
# the host lock and restarts containerd. What it catches: kata's runtimes
# removed on a node that keeps this pod (our drop-in would keep a runtime
# table per handler holding only `snapshotter`, which containerd 2.x runs
# with runc) or registered again, our edits undone by another tool, a
# containerd restart still due. A state (what is wanted, what the files
# hold) that comes back right after it was applied is not applied again: a
# tool that puts its version back is reported, not fought with containerd
# restarts. The watch stops once another
# pod has started an install (INSTALLING_PATH, OWNER_PATH: a rolling update).
# Sourced by install.sh after lib.sh and containerd-setup.sh.

watch_pending=""     # digest of the state seen last round, not applied yet
watch_applied=""     # digest of the state applied last
watch_failure=""     # the merge error last logged (logged once)

# other_pod_installing: prints the pod, not this one, that installed or
# started to install after this pod's install.
other_pod_installing() {
    [[ -n "$POD_ID" ]] || return 1
    local path pod
    for path in "$HOST_ROOT$INSTALLING_PATH" "$HOST_ROOT$OWNER_PATH"; do
        pod="$(head -n 1 "$path" 2>/dev/null)" || pod=""
        if [[ "$path" == "$HOST_ROOT$OWNER_PATH" && -z "$pod" ]]; then
            printf '(none: the install record %s is gone)\n' "$OWNER_PATH"
            return 0
        fi
        [[ -z "$pod" || "$pod" == "$POD_ID" ]] || { printf '%s\n' "$pod"; return 0; }
    done
    return 1
}

# watch_state_digest MERGED DROPIN: what is wanted and what the files hold
# (and whether a restart is due), as one digest.
watch_state_digest() {
    {
        cat "$1" "$2"
        echo "--- files"
        cat "$(config_host_path)" "$HOST_ROOT$CONTAINERD_DROPIN" 2> /dev/null
        if [[ -f "$(restart_marker_path)" ]]; then echo "--- restart due"; fi
    } | sha256sum | cut -d' ' -f1
}

# apply_watched_change: the install's containerd part again, under the host
# lock; restarts containerd when a file changed or a restart was due. In a
# subshell with errexit; call it as a plain command (errexit is ignored in
# anything run after || or && or in an if condition). The lock names the
# subshell ($BASHPID), which has no TERM trap: a preStop of this pod that
# finds it holding the lock ends it at once (lib.sh, hold_host_lock).
apply_watched_change() {
    local rc=0
    containerd_changed=false  # set by reconcile_containerd in the subshell
    set +e
    (
        set -e
        TMPDIR="$(mktemp -d)"
        export TMPDIR
        trap 'rm -rf "$TMPDIR"' EXIT
        hold_host_lock
        if pod="$(other_pod_installing)"; then
            log "pod $pod installed after this one: not applying"
            exit 0
        fi
        reconcile_containerd
        if [[ "$containerd_changed" == true ]]; then
            host_systemctl restart "$CONTAINERD_SERVICE"
            wait_active "$CONTAINERD_SERVICE"
            rm -f "$(restart_marker_path)"
            log "containerd runs the re-applied config"
        fi
        release_host_lock
    )
    rc=$?
    set -e
    [[ $rc -eq 0 ]] || log "WARNING: the config watch could not apply the change (see above); it does not try the same change again"
}

# watch_round: one check; clears `watching` once the watch should stop.
watch_round() {
    local merged dropin err digest pod rc=0
    if pod="$(other_pod_installing)"; then
        log "pod $pod installed after this one: the config watch stops"
        watching=false
        return 0
    fi
    merged="$(mktemp)" dropin="$(mktemp)" err="$(mktemp)"
    desired_containerd_config "$merged" "$dropin" 2> "$err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        # The same failure every round is logged once (its log lines'
        # times aside).
        if [[ "$(sed -E 's/^[0-9T:-]+Z //' "$err")" != "$watch_failure" ]]; then
            watch_failure="$(sed -E 's/^[0-9T:-]+Z //' "$err")"
            log "WARNING: the config watch cannot work out containerd's config (nothing changed; checked again every ${WATCH_SECONDS}s):"
            cat "$err" >&2
        fi
        watch_pending=""
    elif containerd_config_matches "$merged" "$dropin" && [[ ! -f "$(restart_marker_path)" ]]; then
        watch_pending="" watch_failure=""
    else
        watch_failure=""
        digest="$(watch_state_digest "$merged" "$dropin")"
        if [[ "$digest" == "$watch_applied" ]]; then
            if [[ "$watch_pending" != fought ]]; then
                log "WARNING: containerd's config went back to what it was before the watch applied this install; something else writes it (a config management tool?). The watch leaves it alone: make the two agree, then restart this pod"
                watch_pending=fought
            fi
        elif [[ "$digest" != "$watch_pending" ]]; then
            watch_pending="$digest"
            log "containerd's config no longer matches this install (kata's runtimes removed or registered, our edits changed, or a restart due): applying it again in ${WATCH_SECONDS}s unless it changes meanwhile"
            cat "$err" >&2
        else
            watch_pending=""
            watch_applied="$digest"
            log "re-applying the install's containerd settings"
            apply_watched_change
            # Checked again: a file that cannot be replaced, or a tool that
            # writes its version back, must not make a restart loop.
            if desired_containerd_config "$merged" "$dropin" 2> /dev/null \
                && { ! containerd_config_matches "$merged" "$dropin" || [[ -f "$(restart_marker_path)" ]]; } \
                && [[ "$(watch_state_digest "$merged" "$dropin")" == "$digest" ]]; then
                log "WARNING: containerd's config still differs from this install after re-applying it; the watch leaves this state alone (restart this pod to install again)"
                watch_pending=fought
            fi
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
        # In an if body, not after &&: errexit must hold in watch_round.
        if [[ "$watching" == true ]]; then watch_round; fi
    done
}
