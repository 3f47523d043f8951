#!/usr/bin/env bash
# Install containerd-guest-pull-grpc onto the host from the DaemonSet pod.
#
# Copies the binaries, the systemd unit and (if absent) the daemon config onto
# the host root ($HOST_ROOT), merges the proxy snapshotter into containerd's
# config (original backed up once, next to it, as <config>.guest-pull-backup),
# then reloads/enables/restarts the services through the host's systemctl
# ($SYSTEMCTL) and waits, bounded, until both are active. Finally it sleeps
# until the pod is terminated (GUEST_PULL_SLEEP=false returns instead).
# Idempotent: running it twice leaves the host exactly as running it once.
# Settings: see lib.sh. Undo: uninstall.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUEST_PULL_SLEEP="${GUEST_PULL_SLEEP:-true}"
snapshotter_changed=false
containerd_changed=false

preflight() {
    [[ -d "$HOST_ROOT" ]] || die "host root $HOST_ROOT does not exist (mount the host's / there)"
    local name
    for name in "${BINARIES[@]}"; do
        [[ -f "$PAYLOAD_DIR/bin/$name" ]] || die "missing payload binary $PAYLOAD_DIR/bin/$name"
    done
    [[ -f "$PAYLOAD_DIR/systemd/$UNIT_NAME" ]] || die "missing payload unit $PAYLOAD_DIR/systemd/$UNIT_NAME"
    [[ -f "$CONFIG_SOURCE" ]] || die "missing daemon config $CONFIG_SOURCE"
    [[ -f "$CONFIG_TOOL" ]] || die "missing $CONFIG_TOOL"
    command -v python3 >/dev/null || die "python3 is required to merge the containerd config"
    command -v "${SYSTEMCTL_CMD[0]}" >/dev/null || die "systemctl command not found: $SYSTEMCTL"
}

install_binaries() {
    local name
    for name in "${BINARIES[@]}"; do
        if write_file_atomic "$PAYLOAD_DIR/bin/$name" "$HOST_ROOT$PREFIX/bin/$name" 0755; then
            log "installed $PREFIX/bin/$name"
            snapshotter_changed=true
        fi
    done
}

install_unit() {
    local rendered
    rendered="$(mktemp)"
    # The unit names /usr/local/bin; follow a different PREFIX.
    sed "s|/usr/local/bin/|$PREFIX/bin/|g" "$PAYLOAD_DIR/systemd/$UNIT_NAME" > "$rendered"
    if write_file_atomic "$rendered" "$HOST_ROOT$UNIT_PATH" 0644; then
        log "installed $UNIT_PATH"
        snapshotter_changed=true
    fi
    rm -f "$rendered"
}

install_daemon_config() {
    local dst="$HOST_ROOT$CONFIG_DIR/config.toml"
    if [[ -f "$dst" && "$CONFIG_OVERWRITE" != "true" ]]; then
        cmp -s "$CONFIG_SOURCE" "$dst" || log "keeping the host's own $CONFIG_DIR/config.toml"
        return 0
    fi
    if write_file_atomic "$CONFIG_SOURCE" "$dst" 0644; then
        log "installed $CONFIG_DIR/config.toml"
        snapshotter_changed=true
    fi
}

# Save the original containerd config once; later installs keep that copy.
backup_containerd_config() {
    local cfg="$HOST_ROOT$CONTAINERD_CONFIG"
    [[ -f "$(backup_path)" ]] && return 0
    cp -p "$cfg" "$(backup_path)"
    log "saved the original containerd config as $CONTAINERD_CONFIG.guest-pull-backup"
}

# merge_containerd_config OUT: merged config into OUT; waits (bounded) while
# the kata runtime is not yet in containerd's config (kata-deploy still busy).
merge_containerd_config() {
    local out="$1" waited=0 rc
    local -a tool_args
    mapfile -t tool_args < <(config_tool_args)
    while true; do
        rc=0
        if [[ ! -f "$HOST_ROOT$CONTAINERD_CONFIG" ]]; then
            # kata-deploy writes it; its runtime is needed anyway.
            log "$CONTAINERD_CONFIG does not exist (yet)"
            rc=3
        else
            python3 "$CONFIG_TOOL" merge "$HOST_ROOT$CONTAINERD_CONFIG" \
                --config-path "$CONTAINERD_CONFIG" --dropin "$CONTAINERD_DROPIN" \
                --host-root "$HOST_ROOT" "${tool_args[@]}" > "$out" || rc=$?
        fi
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -ne 3 ]] || (( waited >= RUNTIME_WAIT_SECONDS )); then
            die "cannot merge $CONTAINERD_CONFIG (see the message above); nothing was changed"
        fi
        log "waiting for runtime $RUNTIME_HANDLER to appear in containerd's config (${waited}s/${RUNTIME_WAIT_SECONDS}s)"
        sleep "$POLL_SECONDS"
        waited=$(( waited + POLL_SECONDS ))
    done
}

configure_containerd() {
    local cfg="$HOST_ROOT$CONTAINERD_CONFIG" merged dropin version mode
    local -a tool_args
    merged="$(mktemp)"
    dropin="$(mktemp)"
    # Nothing on the host changes before the merge has succeeded.
    merge_containerd_config "$merged"
    version="$(python3 "$CONFIG_TOOL" version "$cfg")" || die "unsupported containerd config $CONTAINERD_CONFIG"
    backup_containerd_config
    mapfile -t tool_args < <(config_tool_args)
    python3 "$CONFIG_TOOL" dropin --version "$version" "${tool_args[@]}" > "$dropin"
    if write_file_atomic "$dropin" "$HOST_ROOT$CONTAINERD_DROPIN" 0644; then
        log "installed the containerd drop-in $CONTAINERD_DROPIN (config version $version)"
        containerd_changed=true
    fi
    mode="$(stat -c %a "$cfg")"
    if write_file_atomic "$merged" "$cfg" "$mode"; then
        log "merged the guest-pull settings into $CONTAINERD_CONFIG"
        containerd_changed=true
    fi
    rm -f "$merged" "$dropin"
}

start_services() {
    host_systemctl daemon-reload
    host_systemctl enable "$UNIT_NAME"
    if [[ "$snapshotter_changed" == true ]] \
        || ! "${SYSTEMCTL_CMD[@]}" is-active --quiet "$UNIT_NAME"; then
        host_systemctl restart "$UNIT_NAME"
    fi
    wait_active "$UNIT_NAME" || die "$UNIT_NAME did not become active (journalctl -u $UNIT_NAME on the node)"
    if [[ "$containerd_changed" == true ]]; then
        host_systemctl restart "$CONTAINERD_SERVICE"
    fi
    wait_active "$CONTAINERD_SERVICE" || die "$CONTAINERD_SERVICE did not become active"
}

sleep_until_terminated() {
    log "installed; sleeping until the pod is terminated"
    trap 'log "terminated"; exit 0' TERM INT
    while true; do
        sleep 3600 &
        wait $! || true
    done
}

main() {
    preflight
    install_binaries
    install_unit
    install_daemon_config
    configure_containerd
    start_services
    log "containerd-guest-pull-grpc is installed (data directory $DATA_DIR)"
    [[ "$GUEST_PULL_SLEEP" == "true" ]] && sleep_until_terminated
    return 0
}

main "$@"
