#!/usr/bin/env bash
# Remove containerd-guest-pull-grpc from the host (DaemonSet preStop hook).
# Does nothing when another pod's install.sh ran after this pod's (a rolling
# update with maxSurge starts the new pod first; lib.sh, OWNER_PATH): the
# snapshotter stays installed and serving. When this pod's install is the
# current one but an older pod still runs and stands by (its config watch,
# config-watch.sh: a rollback, or this pod deleted during the update), it
# hands the install back to that pod, whose watch installs its own files
# again, instead of uninstalling.
#
# Undoes our edits of containerd's config (containerd-setup.sh: byte for byte
# the backup install.sh made when nobody else changed the file since; else
# only our marked lines, so kata-deploy's entries stay), removes the drop-in,
# restarts containerd, stops and
# disables the snapshotter, removes its unit, binaries, bundled libraries
# ($PREFIX/lib/containerd-guest-pull-grpc and the hidden directory it links
# to) and (if unmodified) its config. The data directory
# (/var/lib/containerd-guest-pull-grpc) is KEPT: containerd's metadata still refers to the snapshots in it, and
# deleting it behind containerd's back desynchronises the two (see
# docs/operations.md). Idempotent; safe to run when nothing is installed
# (also on a read-only /etc/containerd: nothing of ours there to undo).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# restore_containerd_config, containerd_changed.
# shellcheck source-path=SCRIPTDIR source=containerd-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/containerd-setup.sh"
# A containerd restart our config changes need is remembered until done.
TRACK_CONTAINERD_RESTART=true

stop_snapshotter() {
    if [[ -f "$HOST_ROOT$UNIT_PATH" ]]; then
        host_systemctl disable --now "$UNIT_NAME" || log "WARNING: could not stop $UNIT_NAME"
        rm -f "$HOST_ROOT$UNIT_PATH"
        host_systemctl daemon-reload || true
        log "removed $UNIT_PATH"
    fi
    remove_write_leftovers "$HOST_ROOT$UNIT_PATH"  # also of an earlier run
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
        remove_write_leftovers "$HOST_ROOT$PREFIX/bin/$name"
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
    # The docs (install.sh, install_docs; `make -C deploy install` puts
    # them there too), and the directories above them the install made,
    # once empty.
    if [[ -d "$HOST_ROOT$HOST_DOC_DIR" ]]; then
        local -a made=()
        [[ ! -f "$HOST_ROOT$HOST_DOC_DIR/.made-dirs" ]] || mapfile -t made < "$HOST_ROOT$HOST_DOC_DIR/.made-dirs" || true
        rm -rf "$HOST_ROOT$HOST_DOC_DIR"
        log "removed $HOST_DOC_DIR"
        for name in "$PREFIX/share/doc" "$PREFIX/share"; do
            [[ " ${made[*]} " != *" $name "* ]] || rmdir "$HOST_ROOT$name" 2> /dev/null || true
        done
    fi
    if [[ -f "$cfg" ]]; then
        if [[ -f "$CONFIG_SOURCE" ]] && { cmp -s "$cfg" <(render_daemon_config patched) ||
                                          cmp -s "$cfg" <(render_daemon_config stock); }; then
            rm -f "$cfg"
            log "removed $CONFIG_DIR/config.toml"
        elif [[ ! -f "$CONFIG_SOURCE" ]]; then
            log "keeping $CONFIG_DIR/config.toml: the shipped config $CONFIG_SOURCE to compare it with is missing here (set PAYLOAD_DIR or CONFIG_SOURCE; remove it by hand if it is unchanged)"
        else
            log "keeping $CONFIG_DIR/config.toml: it differs from the shipped one (operator changes)"
        fi
    fi
    remove_write_leftovers "$cfg"
    remove_write_leftovers "$HOST_ROOT$OWNER_PATH"
    remove_old_form_leftovers
    rmdir "$HOST_ROOT$CONFIG_DIR" 2>/dev/null || true
}

# taken_over: another pod's install is the current one (a rolling update
# started it before stopping this pod), and that pod is not gone from the
# node (pod_gone: deleted without its preStop): print its id.
taken_over() {
    local owner
    [[ -n "$POD_ID" && -f "$HOST_ROOT$OWNER_PATH" ]] || return 1
    owner="$(head -n 1 "$HOST_ROOT$OWNER_PATH")"
    [[ -n "$owner" && "$owner" != "$POD_ID" ]] && ! pod_gone "$owner" || return 1
    printf '%s\n' "$owner"
}

# hand_back: this pod's install is the current one and an older pod still
# runs whose config watch stands by (standby_heir, lib.sh): the install
# becomes that pod's again (OWNER_PATH), and this pod's record of its
# install goes (INSTALLING_PATH), so that its watch installs its own files
# again over this pod's at its next check. Prints that pod's id.
hand_back() {
    local heir tmp
    [[ -n "$POD_ID" && "$(head -n 1 "$HOST_ROOT$OWNER_PATH" 2> /dev/null)" == "$POD_ID" ]] || return 1
    heir="$(standby_heir)" || return 1
    tmp="$(mktemp)"
    printf '%s\n' "$heir" > "$tmp"
    write_file_atomic "$tmp" "$HOST_ROOT$OWNER_PATH" 0644 > /dev/null || :  # (changed)
    rm -f "$tmp" "$HOST_ROOT$INSTALLING_PATH"
    printf '%s\n' "$heir"
}

# node_shutting_down: logind has announced the node's shutdown or reboot
# (PreparingForShutdown). The kubelet's graceful node shutdown terminates
# the pods, with their preStop, while it holds off the shutdown: an
# uninstall then would restart containerd on the way down, boot the node
# without guest-pull (Kata pods started before this pod's install fail) and
# cost another containerd restart when the pod installs again.
node_shutting_down() {
    [[ "$BUSCTL" != none ]] || return 1
    # (Bounded: a bus that does not answer on the way down must not eat the
    # grace period; no answer uninstalls as before.)
    [[ "$(timeout 5 "${BUSCTL_CMD[@]}" get-property org.freedesktop.login1 /org/freedesktop/login1 \
            org.freedesktop.login1.Manager PreparingForShutdown 2> /dev/null)" == "b true" ]]
}

main() {
    # containerd's restart can cut the exec stream of a preStop hook: make a
    # write to a closed stdout/stderr fail quietly instead of killing us.
    trap '' PIPE
    [[ -d "${HOST_ROOT:-/}" ]] || die "host root ${HOST_ROOT:-/} does not exist"
    mark_prestop  # this pod's install then installs nothing (install.sh)
    # This pod is being deleted: no newer pod's preStop hands the install
    # back to it (after the mark: its watch checks it after writing this).
    [[ -z "$POD_ID" ]] || rm -f -- "$(standby_path "$POD_ID")"
    if node_shutting_down; then
        log "the node is shutting down (logind's PreparingForShutdown: the kubelet's graceful node shutdown): leaving guest-pull installed for the next boot, where this DaemonSet's pod finds it in place"
        return 0
    fi
    hold_host_lock  # a new pod's install finishes first
    local successor
    if successor="$(taken_over)"; then
        # This pod's own install started and did not finish (a rollback, or
        # a delete during a rolling update): the current install is an
        # earlier pod's, whose config watch, once the record is gone,
        # installs that pod's files again over what this one replaced. Not
        # a watch of a release before that (a rollback of the upgrade from
        # it) nor none (WATCH_SECONDS=0): the message says what to do then.
        if [[ "$(head -n 1 "$HOST_ROOT$INSTALLING_PATH" 2>/dev/null)" == "$POD_ID" ]]; then
            rm -f "$HOST_ROOT$INSTALLING_PATH"
            log "this pod's install did not finish; pod $successor's install is the current one: leaving it installed. Its config watch installs that pod's files again over any this install replaced, if it has one that does (WATCH_SECONDS > 0 and a release whose watch logs 'installing this pod's files again'); else the node keeps what this install left: delete pod $successor (its preStop uninstalls, and the DaemonSet's next pod on this node installs again)"
        else
            log "pod $successor installed the snapshotter after this pod $POD_ID (rolling update): leaving it installed and serving"
        fi
        return 0
    fi
    local heir
    if heir="$(hand_back)"; then
        log "pod $heir, whose install this pod's took over, still runs and its config watch stands by: handing the install back to it (it installs its own files again at its next check) instead of uninstalling"
        return 0
    fi
    restore_containerd_config
    stop_snapshotter
    rm -f "$HOST_ROOT$OWNER_PATH" "$HOST_ROOT$INSTALLING_PATH" "$HOST_ROOT$SNAPSHOTTER_RESTART_PATH"
    remove_files
    rm -f -- "$HOST_ROOT$STANDBY_PATH_PREFIX"*  # watches standing by for this install
    log "uninstalled; the data directory $DATA_DIR is kept on purpose (containerd still has records of its snapshots)"
    # Last step: containerd comes back with the original config. Until then it
    # merely fails calls to the stopped proxy; nothing is lost.
    if [[ "$containerd_changed" == true ]]; then
        if host_systemctl restart "$CONTAINERD_SERVICE"; then
            rm -f "$(restart_marker_path)"
        else
            log "WARNING: could not restart $CONTAINERD_SERVICE: it runs with guest-pull in its config (calls to the stopped snapshotter fail) until it restarts; the next install or uninstall restarts it, and if none follows (the DaemonSet deleted), run 'systemctl restart $CONTAINERD_SERVICE' on the node and remove $CONTAINERD_CONFIG.guest-pull-restart-pending there"
        fi
    fi
}

no_arguments "removes guest-pull from the host root (the DaemonSet's preStop)" "$@"
main "$@"
