# shellcheck shell=bash
# The watch install.sh keeps while its pod sleeps: every WATCH_SECONDS it
# works out what an install would write into containerd's config now
# (containerd-setup.sh, desired_containerd_config) and, when that differs
# from the files twice in a row with the same result, applies it under the
# host lock and restarts containerd. What it catches: kata-deploy's cleanup
# on containerd 2.x (our drop-in would keep a runtime table per handler
# holding only `snapshotter`, which containerd would run with runc), kata's
# runtimes registered again, our edits removed by hand. Twice in a row: a
# tool still writing the config is not raced. It stops once another pod's
# install is the current one (OWNER_PATH, a rolling update). Sourced by
# install.sh after lib.sh and containerd-setup.sh.

watch_pending=""     # digest of the change seen last round, not applied yet
watch_failure=""     # the merge error last logged (logged once)

# owned_by_this_pod: no other pod's install ran after this one.
owned_by_this_pod() {
    [[ -z "$POD_ID" ]] && return 0
    [[ "$(cat "$HOST_ROOT$OWNER_PATH" 2>/dev/null)" == "$POD_ID" ]]
}

# apply_watched_change: the install's containerd part again, under the host
# lock; restarts containerd when a file changed. In a subshell with errexit
# (so called as a plain command, never after || or in an if): a lock
# timeout or a failed step ends the round, not the pod.
apply_watched_change() {
    local rc=0
    containerd_changed=false  # set by reconcile_containerd in the subshell
    set +e
    (
        set -e
        hold_host_lock
        if ! owned_by_this_pod; then
            log "another pod's install is now the current one: not applying"
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
    [[ $rc -eq 0 ]] || log "WARNING: the config watch could not apply the change (see above); checked again in ${WATCH_SECONDS}s"
}

# watch_round: one check; clears `watching` once the watch should stop.
watch_round() {
    local merged dropin err digest rc=0
    if ! owned_by_this_pod; then
        log "another pod's install is now the current one: the config watch stops"
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
            log "WARNING: the config watch cannot work out containerd's config (nothing changed; checked again in ${WATCH_SECONDS}s):"
            cat "$err" >&2
        fi
        watch_pending=""
    elif containerd_config_matches "$merged" "$dropin"; then
        watch_pending="" watch_failure=""
    else
        watch_failure=""
        digest="$(cat "$merged" "$dropin" | sha256sum | cut -d' ' -f1)"
        if [[ "$digest" != "$watch_pending" ]]; then
            watch_pending="$digest"
            log "containerd's config no longer matches this install (kata's runtimes removed or registered, or our edits changed): applying it again in ${WATCH_SECONDS}s unless it changes meanwhile"
            cat "$err" >&2
        else
            watch_pending=""
            log "re-applying the install's containerd settings"
            apply_watched_change
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
        [[ "$watching" == true ]] && watch_round
    done
}
