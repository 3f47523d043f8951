#!/usr/bin/env bash
# Install containerd-guest-pull-grpc onto the host from the DaemonSet pod.
#
# Refuses, before changing anything, a host whose glibc is older than the
# binaries and their bundled libraries need (see check_glibc). Copies the
# bundled libraries ($PREFIX/lib/containerd-guest-pull-grpc, swapped in
# atomically), the binaries, the systemd unit and (if absent) the daemon
# config onto the host root ($HOST_ROOT), merges the proxy snapshotter and the
# runtime handlers of SNAPSHOTTER_HANDLER_MAPPING into containerd's config
# (containerd-setup.sh: original backed up once, next to it, as
# <config>.guest-pull-backup), then reloads/enables/restarts the services
# through the host's systemctl ($SYSTEMCTL) and waits, bounded, until both
# are active. Finally it sleeps until the pod is terminated, re-applying
# the containerd settings when kata's runtimes come or go (config-watch.sh;
# GUEST_PULL_SLEEP=false returns instead).
# Idempotent: running it twice leaves the host exactly as running it once.
# Settings: see lib.sh. Undo: uninstall.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# configure_containerd, containerd_changed.
# shellcheck source-path=SCRIPTDIR source=containerd-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/containerd-setup.sh"
# sleep_and_watch.
# shellcheck source-path=SCRIPTDIR source=config-watch.sh
source "$(dirname "${BASH_SOURCE[0]}")/config-watch.sh"
# A containerd restart our config changes need is remembered until done.
TRACK_CONTAINERD_RESTART=true

GUEST_PULL_SLEEP="${GUEST_PULL_SLEEP:-true}"
# In the pod (not on the host): made once the install is done.
READY_MARKER="${READY_MARKER:-/tmp/guest-pull-installed}"
snapshotter_changed=false
snapshotter_refused=false

# manifest_ok DIR: every file listed in DIR/MANIFEST has its sha256 (an
# empty MANIFEST, static binaries, lists nothing).
manifest_ok() {
    [[ -s "$1/MANIFEST" ]] || return 0
    (cd "$1" && sha256sum --quiet --strict -c MANIFEST >&2)
}

preflight() {
    [[ "$KATA_MODE" == patched || "$KATA_MODE" == stock ]] || die "KATA_MODE must be patched or stock, not '$KATA_MODE'"
    [[ -d "${HOST_ROOT:-/}" ]] || die "host root ${HOST_ROOT:-/} does not exist (mount the host's / there)"
    local name
    for name in "${BINARIES[@]}"; do
        [[ -f "$PAYLOAD_DIR/bin/$name" ]] || die "missing payload binary $PAYLOAD_DIR/bin/$name"
    done
    [[ -f "$PAYLOAD_LIB_DIR/MANIFEST" ]] || die "missing payload library bundle $PAYLOAD_LIB_DIR/MANIFEST (deploy/bundle-libs.sh)"
    manifest_ok "$PAYLOAD_LIB_DIR" || die "payload library bundle $PAYLOAD_LIB_DIR does not match its MANIFEST"
    [[ -f "$PAYLOAD_DIR/systemd/$UNIT_NAME" ]] || die "missing payload unit $PAYLOAD_DIR/systemd/$UNIT_NAME"
    # The unit's Documentation= names it (systemctl help).
    [[ -f "$PAYLOAD_DOC_DIR/operations.md" ]] || die "missing payload docs $PAYLOAD_DOC_DIR/operations.md"
    [[ -f "$CONFIG_SOURCE" ]] || die "missing daemon config $CONFIG_SOURCE"
    [[ -f "$CONFIG_TOOL" ]] || die "missing $CONFIG_TOOL"
    command -v python3 >/dev/null || die "python3 is required to merge the containerd config"
    command -v "${SYSTEMCTL_CMD[0]}" >/dev/null \
        || die "SYSTEMCTL='$SYSTEMCTL': command '${SYSTEMCTL_CMD[0]}' not found in this container: set SYSTEMCTL to a command that runs the host's systemctl (default 'nsenter --target 1 --mount -- systemctl'); nothing was changed"
    command -v flock >/dev/null || die "flock (util-linux) is required for the host lock"
    check_install_dirs
    check_mount_fuse
}

# check_install_dirs: the directories the install writes into are reached
# from this pod as on the host. They are written as "$HOST_ROOT<path>", so
# the pod's kernel follows their links, and an absolute link (the host's
# /usr/local/bin -> /opt/bin) or one climbing above the host's / leads into
# the pod's own file system: the files would land there, not on the host.
check_install_dirs() {
    local dir resolved root
    root="$(realpath -m -- "${HOST_ROOT:-/}")"
    root="${root%/}"
    for dir in "$PREFIX/bin" "$HOST_LIB_PARENT" "$(dirname "$UNIT_PATH")" "$CONFIG_DIR" "$HOST_DOC_DIR"; do
        resolved="$(host_realpath "$dir")" || die "$dir: more than 40 symbolic links on the host (a loop?); nothing was changed"
        [[ "$(realpath -m -- "$HOST_ROOT$dir")" == "$root${resolved%/}" ]] \
            || die "$dir is reached through a symbolic link that this pod would follow out of the host's / (an absolute target, or one above /): on the host it is $resolved; set PREFIX, UNIT_PATH or CONFIG_DIR to host paths without such links; nothing was changed"
        writable_on_host "$dir" \
            || die "$dir cannot be written on the host (a read-only file system, as /usr on Flatcar and other image-based systems?): set PREFIX (e.g. /opt), UNIT_PATH or CONFIG_DIR to writable host paths; nothing was changed"
    done
}

# check_mount_fuse: containerd mounts a fuse.* rootfs (ours) with the node's
# mount.fuse, which runs the helper; without it only that mount fails (at a
# container's start, for the /etc/passwd lookup), so a warning, not a refusal.
check_mount_fuse() {
    local dir
    for dir in /usr/sbin /sbin /usr/bin /bin; do
        [[ -e "$HOST_ROOT$dir/mount.fuse" || -L "$HOST_ROOT$dir/mount.fuse" ]] && return 0
    done
    log "WARNING: the node has no mount.fuse (package fuse3 on Debian and Ubuntu): containerd cannot mount a Kata container's rootfs on guest-pulled layers on the host, which its /etc/passwd lookup needs; such containers may fail to start"
}

# check_systemd: the snapshotter runs as a systemd service; on a node whose
# systemd cannot be reached the install would point containerd at a socket
# no service ever serves, then fail at its first systemctl call.
check_systemd() {
    local out
    out="$("${SYSTEMCTL_CMD[@]}" show --property=Version 2>&1)" \
        || die "cannot reach the host's systemd through '$SYSTEMCTL' ($(head -c 300 <<< "$out" | tr '\n' ' ')): the snapshotter runs as a systemd service, so the node needs systemd (and this pod hostPID and privileged, to reach it); nothing was changed"
}

# check_containerd_service: containerd runs as the host's unit
# CONTAINERD_SERVICE. The install restarts it last, after containerd's config
# and the snapshotter changed: on a node whose containerd runs under another
# unit name (or outside systemd) that restart failed with the host changed,
# and every later run of the pod failed the same way. Only a unit systemd
# says is missing or masked is refused (an older systemctl may print
# nothing here).
check_containerd_service() {
    local state
    state="$("${SYSTEMCTL_CMD[@]}" show --property=LoadState --value "$CONTAINERD_SERVICE" 2>/dev/null)" || state=""
    case "$state" in
        not-found | masked)
            local embedded
            for embedded in /var/lib/rancher/k3s /var/lib/rancher/rke2; do
                [[ -e "$HOST_ROOT$embedded/agent/etc/containerd/config.toml" ]] || continue
                die "the host's systemd has no usable unit $CONTAINERD_SERVICE (LoadState=$state), and the node has ${embedded##*/}'s containerd config $embedded/agent/etc/containerd/config.toml: ${embedded##*/} runs its own containerd and writes that config anew from a template at every start, so the install's edits would not last; k3s and rke2 nodes are not supported (docs/setup.md). (If a containerd of its own runs here under another unit, set CONTAINERD_SERVICE to that unit.) Nothing was changed"
            done
            die "the host's systemd has no usable unit $CONTAINERD_SERVICE (LoadState=$state), which the install restarts to load its config: set CONTAINERD_SERVICE (daemonset.yaml env) to the unit that runs containerd on this node ('systemctl status \$(pidof containerd)' names it); nothing was changed" ;;
    esac
}

# required_glibc: highest GLIBC_x.y[.z] symbol version named in the payload
# binaries and bundled libraries (empty if none). A plain byte scan, so the
# installer image needs no binutils: the names live in .gnu.version_r as
# strings, and nothing else in these files looks like GLIBC_<digits>. The
# test suite checks that it agrees with `readelf -V`.
required_glibc() {
    local name
    {
        for name in "${BINARIES[@]}"; do cat "$PAYLOAD_DIR/bin/$name"; done
        find "$PAYLOAD_LIB_DIR" -maxdepth 1 -type f ! -name MANIFEST -exec cat {} +
    } | { grep -aoE 'GLIBC_[0-9]+(\.[0-9]+)+' || true; } | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}

# find_host_libc: host path of the node's libc.so.6 (HOST_LIBC, or the first
# one found in the usual directories, symlinks resolved inside the host root).
find_host_libc() {
    local dir path
    if [[ -n "$HOST_LIBC" ]]; then
        # Its links followed within the host root, as the searched ones.
        path="$(host_realpath "$HOST_LIBC")" && [[ -f "$HOST_ROOT$path" ]] || return 1
        printf '%s\n' "$path"
        return 0
    fi
    for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
        path="$(host_realpath "$dir/libc.so.6")" || continue
        if [[ -f "$HOST_ROOT$path" ]]; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

# libc_version FILE: glibc release of a libc.so.6, from its banner ("... stable
# release version 2.36."), else its highest GLIBC_x.y version definition.
libc_version() {
    local file="$1" version
    version="$(grep -aoE -m 1 'release version [0-9]+\.[0-9]+' "$file" || true)"
    if [[ -z "$version" ]]; then
        version="$({ grep -aoE 'GLIBC_[0-9]+(\.[0-9]+)+' "$file" || true; } | sed 's/^GLIBC_//' | sort -uV | tail -n 1)"
    fi
    printf '%s\n' "${version##* }"
}

# version_le A B: A <= B in version order.
version_le() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | sed -n 1p)" == "$1" ]]; }

# check_glibc: refuse a node without the ELF interpreter or with an older
# glibc than the payload requires (the binaries would not start there).
check_glibc() {
    local need libc have interp
    interp="$(host_realpath "$ELF_INTERPRETER")" || interp="$ELF_INTERPRETER"
    [[ -e "$HOST_ROOT$interp" ]] \
        || die "the host has no $ELF_INTERPRETER: the binaries need an x86_64 glibc system; nothing was changed"
    need="$(required_glibc)"
    if ! libc="$(find_host_libc)"; then
        [[ -z "$HOST_LIBC" ]] \
            || die "HOST_LIBC=$HOST_LIBC is not a file on the host (looked for under ${HOST_ROOT:-/}): set it to the host path of the node's libc.so.6, or unset it to search the usual directories; nothing was changed"
        die "cannot find the host's libc.so.6 under ${HOST_ROOT:-/} (set HOST_LIBC to its host path); nothing was changed"
    fi
    have="$(libc_version "$HOST_ROOT$libc")"
    [[ -n "$have" ]] || die "cannot read the glibc version of $libc (not glibc?); nothing was changed"
    if [[ -n "$need" ]] && ! version_le "$need" "$have"; then
        die "the host's glibc $have ($libc) is older than the $need the binaries need; nothing was changed (docs/setup.md, 'Requirements')"
    fi
    log "host glibc $have ($libc); the payload needs ${need:-none}"
}

# lib_dir_current DIR: DIR holds exactly the payload's bundle (same MANIFEST,
# every file matching it, nothing else).
lib_dir_current() {
    local dir="$1"
    [[ -d "$dir" ]] && cmp -s "$PAYLOAD_LIB_DIR/MANIFEST" "$dir/MANIFEST" || return 1
    manifest_ok "$dir" 2> /dev/null || return 1
    [[ "$(find "$dir" -mindepth 1 | wc -l)" -eq "$(( $(wc -l < "$dir/MANIFEST") + 1 ))" ]]
}

# remove_other_bundles PARENT VERSION: every .LIB_NAME.* in PARENT but
# VERSION (the one the link names): older bundles, and the leftovers of an
# install cut short (temporary and set-aside directories). One that cannot
# be removed (a mount inside it) is named, and the install goes on.
remove_other_bundles() {
    local stale
    for stale in "$1/.$LIB_NAME".*; do
        [[ "$stale" == "$1/$2" || ! -e "$stale" ]] && continue
        rm -rf -- "$stale" || log "WARNING: cannot remove the old library bundle ${stale#"$HOST_ROOT"} (remove it by hand)"
    done
}

# install_libraries: copy the bundle into a new hidden directory next to the
# link, then replace the link $PREFIX/lib/$LIB_NAME with rename(2): a binary
# started at any moment sees either the old or the new complete bundle.
install_libraries() {
    local parent="$HOST_ROOT$HOST_LIB_PARENT" link="$HOST_ROOT$HOST_LIB_DIR" id version tmp
    id="$(sha256sum < "$PAYLOAD_LIB_DIR/MANIFEST" | cut -c1-16)"
    version=".$LIB_NAME.$id"
    if [[ -L "$link" && "$(readlink "$link")" == "$version" ]] && lib_dir_current "$parent/$version"; then
        # Also after an install cut short between the link's swap and this.
        remove_other_bundles "$parent" "$version"
        return 0
    fi
    local err
    # A copy cut short (a full disk) is removed with its directory: a bare
    # "cp: error writing" named no way out, and the partial copy kept the
    # space until the next install.
    { mkdir -p "$parent" && tmp="$(mktemp -d "$parent/.$LIB_NAME.tmp.XXXXXX")"; } 2> /dev/null \
        || die "cannot make a directory in $HOST_LIB_PARENT for the library bundle (full or read-only?): free space on the host, or set PREFIX to a writable host directory; the installed files were left as they were"
    if ! err="$( { cp -- "$PAYLOAD_LIB_DIR"/* "$tmp/" && chmod 0644 "$tmp"/* && chmod 0755 "$tmp"; } 2>&1 )" \
        || ! manifest_ok "$tmp"; then
        rm -rf -- "$tmp"
        err="${err##*: }"
        die "cannot copy the library bundle to $HOST_LIB_PARENT (${err:-the copy does not match its MANIFEST}): free space on the host's file system, or set PREFIX to a writable host directory; the installed files were left as they were"
    fi
    # A damaged directory of the same id (the link may point at it) goes aside.
    if [[ -e "$parent/$version" ]]; then mv -T "$parent/$version" "$tmp.old"; fi
    mv -T "$tmp" "$parent/$version"
    ln -sfn "$version" "$tmp.link"
    # A real directory (make install) cannot be renamed over: move it aside.
    if [[ -d "$link" && ! -L "$link" ]]; then mv -T "$link" "$tmp.olddir"; fi
    mv -T "$tmp.link" "$link"
    remove_other_bundles "$parent" "$version"
    log "installed the library bundle $HOST_LIB_DIR -> $version"
    snapshotter_changed=true
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
    # The unit names /usr/local/bin, the docs under /usr/local and the
    # default config directory; follow a different PREFIX and CONFIG_DIR.
    sed -e "s|/usr/local/bin/|$PREFIX/bin/|g" -e "s|/usr/local/share/doc/$LIB_NAME/|$HOST_DOC_DIR/|g" \
        -e "s|/etc/containerd-guest-pull-grpc/|$CONFIG_DIR/|g" \
        "$PAYLOAD_DIR/systemd/$UNIT_NAME" > "$rendered"
    if write_file_atomic "$rendered" "$HOST_ROOT$UNIT_PATH" 0644; then
        log "installed $UNIT_PATH"
        snapshotter_changed=true
    fi
    rm -f "$rendered"
}

# install_docs: the docs (PAYLOAD_DOC_DIR, docs/*.md) in HOST_DOC_DIR, as
# make install puts them: the unit's Documentation= names operations.md
# there, which `systemctl help` opened as a missing file after an install
# by the DaemonSet. Docs an earlier release shipped and this one does not
# go. The directories above it the install makes ($PREFIX/share/doc, on
# most nodes) are recorded in HOST_DOC_DIR/.made-dirs, for uninstall.sh to
# remove once empty. Restarts nothing.
install_docs() {
    local dst="$HOST_ROOT$HOST_DOC_DIR" doc dir changed=false
    local -a made=()
    if [[ ! -d "$dst" ]]; then
        for dir in "$PREFIX/share" "$PREFIX/share/doc"; do
            [[ -e "$HOST_ROOT$dir" || -L "$HOST_ROOT$dir" ]] || made+=("$dir")
        done
        mkdir -p "$dst" || die "cannot make $HOST_DOC_DIR on the host"
        if (( ${#made[@]} > 0 )); then
            printf '%s\n' "${made[@]}" > "$dst/.made-dirs" || die "cannot write $HOST_DOC_DIR/.made-dirs on the host"
        fi
    fi
    for doc in "$PAYLOAD_DOC_DIR"/*.md; do
        if write_file_atomic "$doc" "$dst/${doc##*/}" 0644; then changed=true; fi
    done
    for doc in "$dst"/*.md; do
        [[ -f "$doc" && ! -e "$PAYLOAD_DOC_DIR/${doc##*/}" ]] || continue
        rm -f "$doc"
        changed=true
    done
    [[ "$changed" == false ]] || log "installed the docs in $HOST_DOC_DIR"
}

# KATA_MODE=stock: the helper under the name stock kata's shim recognizes
# (a symlink; the helper works under either name). patched: no such link.
install_stock_helper() {
    local link="$HOST_ROOT$PREFIX/bin/$STOCK_HELPER_NAME"
    case "$KATA_MODE" in
        stock)
            [[ "$(readlink "$link" 2>/dev/null)" == guest-pull-overlayfs ]] && return 0
            ln -sfn guest-pull-overlayfs "$link.new" && mv -T "$link.new" "$link"
            log "installed $PREFIX/bin/$STOCK_HELPER_NAME -> guest-pull-overlayfs (KATA_MODE=stock)"
            snapshotter_changed=true ;;
        patched)
            if [[ -L "$link" ]]; then rm -f "$link"; log "removed $PREFIX/bin/$STOCK_HELPER_NAME"; fi ;;
        *) die "KATA_MODE must be patched or stock, not '$KATA_MODE'" ;;
    esac
}

# daemon_config_kept SHIPPED: the host's daemon config stays as it is
# (SHIPPED: this mode's rendering of the shipped one). The shipped config of
# the other mode, unchanged, is ours as well (as uninstall.sh judges it): a
# switched KATA_MODE replaces it; CONFIG_OVERWRITE=true replaces any.
daemon_config_kept() {
    local dst="$HOST_ROOT$CONFIG_DIR/config.toml" other=stock
    [[ "$KATA_MODE" != stock ]] || other=patched
    [[ -f "$dst" && "$CONFIG_OVERWRITE" != "true" ]] \
        && { cmp -s "$1" "$dst" || ! cmp -s "$dst" <(render_daemon_config "$other"); }
}

# check_daemon_config: before any change, this release's daemon (the
# payload's, run in this pod: its libraries are beside it) takes the daemon
# config the install leaves: the host's own it keeps, or the one it writes
# (CONFIG_SOURCE: the image's or a ConfigMap's) (--check-config). A config
# an upgrade's daemon refuses (a value it now checks) would otherwise stop
# the snapshotter at the restart, with the old daemon's files already
# replaced. One it cannot run here is left to the start on the node (a
# WARNING). The file only: paths are resolved in this pod, and the unit's
# flags and environment are the node's.
check_daemon_config() {
    local config dst="$HOST_ROOT$CONFIG_DIR/config.toml" what out rc=0
    config="$(mktemp)"
    render_daemon_config "$KATA_MODE" > "$config"
    if daemon_config_kept "$config"; then
        rm -f "$config"
        config="$dst" what="the host's own $CONFIG_DIR/config.toml, which the install keeps"
    else
        what="the daemon config the install would write to $CONFIG_DIR/config.toml (from $CONFIG_SOURCE)"
    fi
    out="$(env -i "$PAYLOAD_DIR/bin/containerd-guest-pull-grpc" --check-config --config "$config" 2>&1)" || rc=$?
    out="${out//"$dst"/"$CONFIG_DIR/config.toml"}"
    [[ "$config" == "$dst" ]] || { out="${out//"$config"/"$CONFIG_SOURCE"}"; rm -f "$config"; }
    case "$rc" in
        0) log "this release's daemon takes $what (--check-config)" ;;
        2) if [[ "$config" == "$dst" ]]; then
               die "this release's daemon refuses $what: ${out#containerd-guest-pull-grpc: }; correct it (docs/configuration.md), or set CONFIG_OVERWRITE=true to have it replaced by the shipped one; nothing was changed"
           fi
           die "this release's daemon refuses $what: ${out#containerd-guest-pull-grpc: }; correct it (docs/configuration.md); nothing was changed" ;;
        *) log "WARNING: cannot run this release's daemon in this pod to check $what (exit $rc: $(head -c 300 <<< "$out")); its start on the node will check it" ;;
    esac
}

install_daemon_config() {
    local dst="$HOST_ROOT$CONFIG_DIR/config.toml" src
    src="$(mktemp)"
    render_daemon_config "$KATA_MODE" > "$src"
    if daemon_config_kept "$src"; then
        if ! cmp -s "$src" "$dst"; then
            log "keeping the host's own $CONFIG_DIR/config.toml (KATA_MODE=$KATA_MODE: check guest_pull.mount_type)"
            local warning
            warning="$(warn_other_mode_config "$KATA_MODE" "$dst")"
            [[ -z "$warning" ]] || log "$warning"
        fi
        rm -f "$src"
        return 0
    fi
    if write_file_atomic "$src" "$dst" 0644; then
        log "installed $CONFIG_DIR/config.toml"
        snapshotter_changed=true
    fi
    rm -f "$src"
}

# check_daemon_address: containerd is told SOCKET; the unit starts the daemon
# with the installed config, whose address (a host's own config is kept)
# must be the same, or containerd would dial a socket nobody serves.
check_daemon_address() {
    local address
    address="$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("address", ""))' "$HOST_ROOT$CONFIG_DIR/config.toml" 2>/dev/null)" || return 0
    if [[ -n "$address" && "$address" != "$SOCKET" ]]; then
        log "WARNING: $CONFIG_DIR/config.toml says address = \"$address\" but containerd is configured for $SOCKET: containerd cannot reach the daemon started by $UNIT_NAME; set SOCKET=$address (daemonset.yaml env) or change the config's address"
    fi
}

# refused_to_start: true if the daemon's last run exited with the status it
# uses to refuse an inconsistent data directory (65, RestartPreventExitStatus
# of the unit): restarting cannot help, the operator must recover.
refused_to_start() {
    [[ "$(main_status)" == 65 ]]
}

# main_status: the exit status of the daemon's last run (ExecMainStatus).
# 2: its configuration or command line was refused (RestartPreventExitStatus
# of the unit too: a restart would read the same file).
main_status() {
    "${SYSTEMCTL_CMD[@]}" show -p ExecMainStatus --value "$UNIT_NAME" 2>/dev/null
}

start_services() {
    host_systemctl daemon-reload
    host_systemctl enable "$UNIT_NAME"
    if [[ "$snapshotter_changed" == true ]] \
        || ! "${SYSTEMCTL_CMD[@]}" is-active --quiet "$UNIT_NAME"; then
        # A failed start is judged below (refused, or a bounded wait).
        host_systemctl restart "$UNIT_NAME" || true
    fi
    if "${SYSTEMCTL_CMD[@]}" is-active --quiet "$UNIT_NAME"; then
        log "$UNIT_NAME is active"
    elif refused_to_start; then
        snapshotter_refused=true
        log "ERROR: $UNIT_NAME refused to start (exit status 65): its data directory $DATA_DIR is not one it can use as it is (its metadata database does not match it, or the directory is another user's or holds others' files), and nothing was changed. The reason and what to do are in 'journalctl -u $UNIT_NAME' on the node; see docs/operations.md, \"Metadata database lost or stale\", and docs/troubleshooting.md, \"The daemon does not start\". This pod stays running and not Ready until the service is active."
    elif [[ "$(main_status)" == 2 ]]; then
        die "$UNIT_NAME refused its configuration (exit status 2, not restarted): 'journalctl -u $UNIT_NAME' on the node shows the line 'containerd-guest-pull-grpc: configuration error: ...' naming the key and line of $CONFIG_DIR/config.toml; fix the config (docs/configuration.md, \"Errors\")"
    else
        wait_active "$UNIT_NAME" || die "$UNIT_NAME did not become active (journalctl -u $UNIT_NAME on the node)"
    fi
    # The service was started on the files as they are. Also when it
    # refused its data directory (65): that start ran these files, no
    # process runs older ones, and whatever starts it later (the operator,
    # or the next run, which restarts an inactive unit anyway) runs these.
    rm -f "$HOST_ROOT$SNAPSHOTTER_RESTART_PATH"
    if [[ "$containerd_changed" == true ]]; then
        host_systemctl restart "$CONTAINERD_SERVICE"
    fi
    wait_active "$CONTAINERD_SERVICE" || die "$CONTAINERD_SERVICE did not become active"
    rm -f "$(restart_marker_path)"  # containerd runs the config as it now is
}

# note_snapshotter_restart_pending: before the snapshotter's files are
# replaced (SNAPSHOTTER_RESTART_PATH, lib.sh); a restart still due from a
# run that was cut short or failed after replacing them counts as a change.
note_snapshotter_restart_pending() {
    if [[ -f "$HOST_ROOT$SNAPSHOTTER_RESTART_PATH" ]]; then
        log "the restart of $UNIT_NAME after an earlier run's changes is still due"
        snapshotter_changed=true
    fi
    : > "$HOST_ROOT$SNAPSHOTTER_RESTART_PATH" \
        || die "cannot write $SNAPSHOTTER_RESTART_PATH; nothing was changed"
}

# record_install_start: this pod installs now (INSTALLING_PATH, lib.sh),
# under the host lock and before any change: an older pod's config watch
# then leaves containerd's config to this install, even one that fails.
record_install_start() {
    [[ -n "$POD_ID" ]] || return 0
    local made_dir=false err
    [[ -d "$HOST_ROOT$CONFIG_DIR" ]] || made_dir=true
    if ! err="$( { mkdir -p "$HOST_ROOT$CONFIG_DIR" && printf '%s\n' "$POD_ID" > "$HOST_ROOT$INSTALLING_PATH"; } 2>&1 )"; then
        # What the failed write made goes (a full disk leaves an empty file).
        rm -f "$HOST_ROOT$INSTALLING_PATH"
        [[ "$made_dir" == false ]] || rmdir "$HOST_ROOT$CONFIG_DIR" 2> /dev/null || true
        die "cannot write $INSTALLING_PATH (${err##*: }): free space on the host's file system, or set CONFIG_DIR to a writable host directory; nothing was changed"
    fi
}

# record_owner: this pod's install is the current one (see lib.sh).
record_owner() {
    [[ -n "$POD_ID" ]] || return 0
    local tmp
    tmp="$(mktemp)"
    printf '%s\n' "$POD_ID" > "$tmp"
    write_file_atomic "$tmp" "$HOST_ROOT$OWNER_PATH" 0644 >/dev/null || :  # unchanged
    rm -f "$tmp"
}

# install_again: this pod's install once more, under the host lock, for
# the config watch (config-watch.sh, watch_round): another pod's install
# started after this one's and was given up before it finished (its preStop
# removed its record, a rollback or a delete during a rolling update), and
# it may have replaced this pod's files (the library bundle, the binaries,
# the unit, the daemon config) with its own and restarted the snapshotter
# on them. What is already this pod's is left alone (nothing restarted).
# Sets watch_locked_rc: 0 done, 3 another pod's install came first or
# this pod's is no longer the current one, else failed (the reason logged).
# Call it as a plain command (watch_locked, config-watch.sh).
install_again() {
    # Set in the subshell by the install's steps, as by main's.
    snapshotter_changed=false containerd_changed=false snapshotter_refused=false
    watch_locked "installing again" reinstall_files
}

# shellcheck disable=SC2317  # run by watch_locked
# reinstall_files: install_again's steps, under the lock.
reinstall_files() {
    install_files
    RUNTIME_WAIT_SECONDS=0 MISSING_RUNTIME=skip configure_containerd
    start_services
    record_owner
    log "installed this pod's files again"
}

# install_files: the install's steps up to containerd's config (main,
# install_again), under the host lock.
install_files() {
    record_install_start
    note_snapshotter_restart_pending
    remove_old_form_leftovers  # earlier releases' writes cut short
    install_libraries
    install_binaries
    install_stock_helper
    install_unit
    install_docs
    install_daemon_config
    check_daemon_address
}

sleep_until_terminated() {
    # The readiness probe's first condition (daemonset.yaml): until now the
    # pod is not Ready, so a rolling update does not stop the old pod
    # before this install is done.
    : > "$READY_MARKER"
    if (( WATCH_SECONDS > 0 )); then
        log "installed; sleeping until the pod is terminated, checking containerd's config every ${WATCH_SECONDS}s"
    else
        log "installed; sleeping until the pod is terminated"
    fi
    trap 'log "terminated"; exit 0' TERM INT
    sleep_and_watch
}

main() {
    preflight
    check_glibc
    check_systemd
    check_containerd_service
    # Read-only, before the lock and before any change: the wait for
    # kata-deploy's runtimes, and the refusals of containerd's config.
    check_containerd_config
    check_daemon_config
    hold_host_lock
    # The pod's preStop ran while this install waited for the lock or for
    # kata's runtimes: the pod is being deleted, and its uninstall is done.
    if prestop_started; then
        release_host_lock
        log "this pod is being deleted (its preStop has started): not installing"
        return 0
    fi
    install_files
    # The wait is over (check_containerd_config): a runtime still missing
    # under MISSING_RUNTIME=skip is left out at once, not waited for again
    # under the lock, which a preStop waits for LOCK_TIMEOUT_SECONDS only.
    RUNTIME_WAIT_SECONDS=0 configure_containerd
    start_services
    if [[ "$snapshotter_refused" == false ]]; then
        log "containerd-guest-pull-grpc is installed (data directory $DATA_DIR)"
    else
        log "containerd-guest-pull-grpc is installed but not running (see the ERROR above)"
    fi
    # Under the lock: an old pod's preStop waiting for it then finds this
    # pod's install the current one. A failed install never gets here.
    record_owner
    release_host_lock  # the host is as this install leaves it
    [[ "$GUEST_PULL_SLEEP" == "true" ]] && sleep_until_terminated
    return 0
}

# run_install: main in a child process, this one (the container's first
# process) waiting for it. A pod deleted while it installs has its preStop
# stop the install that holds the host lock, with SIGTERM (lib.sh,
# hold_host_lock), or, if the install has not taken the lock yet, keep it
# from installing (PRESTOP_MARKER, main). Were the install this process,
# its end would end the container while the preStop runs, and with hostPID
# containerd's shim then kills every process left in the container (its
# kill-all when the first process exits): the preStop's uninstall too, at
# any point of it. An install that ends after this pod's preStop started
# leaves this process waiting for the pod's TERM, which comes once the
# preStop is done; stopped by anything else, it exits with the install's
# status (143) at once, and the container restarts. A TERM or INT to this
# process is passed on to a running install, whose status it exits with.
run_install() {
    child="" child_done=false sleeper=""
    remove_stale_prestop_marker  # an earlier run's (a run on a host)
    trap forward_term TERM INT
    main "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child_done=true
    if [[ "$GUEST_PULL_SLEEP" == true ]] && prestop_started; then
        log "the install ended (status $rc) after this pod's preStop started (the pod is being deleted): waiting for the pod's termination"
        while true; do
            sleep 3600 &
            sleeper=$!
            wait "$sleeper" || true  # a TERM ends it (forward_term)
        done
    fi
    exit "$rc"
}

# shellcheck disable=SC2317  # run by the trap
# forward_term: run_install's TERM and INT trap. While the install runs
# (also right after its fork, before `child` is set: $! names it), it gets
# the TERM, and this process exits with its status; after, exit 0.
forward_term() {
    [[ -z "$sleeper" ]] || kill "$sleeper" 2> /dev/null || true
    local pid="${child:-${!:-}}"
    if [[ "$child_done" != true && -n "$pid" ]] && kill -TERM "$pid" 2> /dev/null; then
        local rc=0
        wait "$pid" || rc=$?
        exit "$rc"
    fi
    exit 0
}

no_arguments "installs guest-pull onto the host root and, in a pod, then sleeps watching containerd's config" "$@"
run_install "$@"
