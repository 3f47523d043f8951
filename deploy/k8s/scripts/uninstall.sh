#!/usr/bin/env bash
# Remove containerd-guest-pull-grpc from the host (DaemonSet preStop hook).
#
# Restores containerd's original config byte for byte from the backup that
# install.sh made, removes the drop-in, restarts containerd, stops and
# disables the snapshotter, removes its unit, binaries, bundled libraries
# ($PREFIX/lib/containerd-guest-pull-grpc and the hidden directory it links
# to) and (if unmodified) its config. The data directory
# (/var/lib/containerd-guest-pull-grpc) is KEPT: containerd's metadata still refers to the snapshots in it, and
# deleting it behind containerd's back desynchronises the two (see
# docs/operations.md). Idempotent; safe to run when nothing is installed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

containerd_changed=false

restore_containerd_config() {
    local cfg="$HOST_ROOT$CONTAINERD_CONFIG" expected
    local -a tool_args
    if [[ -f "$(backup_path)" ]]; then
        if [[ -f "$cfg" ]] && ! cmp -s "$(backup_path)" "$cfg"; then
            # Keep edits someone made after the install instead of losing them.
            expected="$(mktemp)"
            mapfile -t tool_args < <(config_tool_args)
            if ! python3 "$CONFIG_TOOL" merge "$(backup_path)" --config-path "$CONTAINERD_CONFIG" \
                    --dropin "$CONTAINERD_DROPIN" --host-root "$HOST_ROOT" "${tool_args[@]}" \
                    > "$expected" 2>/dev/null || ! cmp -s "$expected" "$cfg"; then
                cp -p "$cfg" "$cfg.guest-pull-uninstalled"
                log "WARNING: $CONTAINERD_CONFIG was changed after the install; that version is kept as $CONTAINERD_CONFIG.guest-pull-uninstalled"
            fi
            rm -f "$expected"
        fi
        if ! cmp -s "$(backup_path)" "$cfg" 2>/dev/null; then
            cp -p "$(backup_path)" "$cfg.guest-pull-restore"
            mv -f "$cfg.guest-pull-restore" "$cfg"
            containerd_changed=true
        fi
        rm -f "$(backup_path)"
        log "restored the original $CONTAINERD_CONFIG"
    fi
    if [[ -f "$HOST_ROOT$CONTAINERD_DROPIN" ]]; then
        rm -f "$HOST_ROOT$CONTAINERD_DROPIN"
        rmdir --ignore-fail-on-non-empty "$(dirname "$HOST_ROOT$CONTAINERD_DROPIN")" 2>/dev/null || true
        containerd_changed=true
        log "removed $CONTAINERD_DROPIN"
    fi
}

stop_snapshotter() {
    if [[ -f "$HOST_ROOT$UNIT_PATH" ]]; then
        host_systemctl disable --now "$UNIT_NAME" || log "WARNING: could not stop $UNIT_NAME"
        rm -f "$HOST_ROOT$UNIT_PATH"
        host_systemctl daemon-reload || true
        log "removed $UNIT_PATH"
    fi
}

remove_libraries() {
    local parent="$HOST_ROOT$HOST_LIB_PARENT" path removed=false
    for path in "$HOST_ROOT$HOST_LIB_DIR" "$parent/.$LIB_NAME".*; do
        if [[ -e "$path" || -L "$path" ]]; then
            rm -rf -- "$path"
            removed=true
        fi
    done
    [[ "$removed" == true ]] && log "removed the library bundle $HOST_LIB_DIR"
    return 0
}

remove_files() {
    local name cfg="$HOST_ROOT$CONFIG_DIR/config.toml"
    for name in "${BINARIES[@]}"; do
        if [[ -e "$HOST_ROOT$PREFIX/bin/$name" ]]; then
            rm -f "$HOST_ROOT$PREFIX/bin/$name"
            log "removed $PREFIX/bin/$name"
        fi
    done
    if [[ -L "$HOST_ROOT$PREFIX/bin/$STOCK_HELPER_NAME" ]]; then
        rm -f "$HOST_ROOT$PREFIX/bin/$STOCK_HELPER_NAME"
        log "removed $PREFIX/bin/$STOCK_HELPER_NAME"
    fi
    remove_libraries
    if [[ -f "$cfg" ]]; then
        if [[ -f "$CONFIG_SOURCE" ]] && { cmp -s "$cfg" <(render_daemon_config patched) ||
                                          cmp -s "$cfg" <(render_daemon_config stock); }; then
            rm -f "$cfg"
            log "removed $CONFIG_DIR/config.toml"
        else
            log "keeping $CONFIG_DIR/config.toml: it differs from the shipped one (operator changes)"
        fi
    fi
    rmdir "$HOST_ROOT$CONFIG_DIR" 2>/dev/null || true
}

main() {
    # containerd's restart can cut the exec stream of a preStop hook: make a
    # write to a closed stdout/stderr fail quietly instead of killing us.
    trap '' PIPE
    [[ -d "$HOST_ROOT" ]] || die "host root $HOST_ROOT does not exist"
    restore_containerd_config
    stop_snapshotter
    remove_files
    log "uninstalled; the data directory $DATA_DIR is kept on purpose (containerd still has records of its snapshots)"
    # Last step: containerd comes back with the original config. Until then it
    # merely fails calls to the stopped proxy; nothing is lost.
    if [[ "$containerd_changed" == true ]]; then
        host_systemctl restart "$CONTAINERD_SERVICE" || log "WARNING: could not restart $CONTAINERD_SERVICE"
    fi
}

main "$@"
