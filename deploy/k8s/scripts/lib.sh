#!/usr/bin/env bash
# Shared helpers of install.sh, uninstall.sh and containerd-setup.sh (deploy/k8s/scripts).
# Sourced, not executed (variables are used by the sourcing scripts).
# Every setting can be overridden from the environment; the defaults match
# the DaemonSet in deploy/k8s/daemonset.yaml.
# shellcheck disable=SC2034

# Host file system as seen from the container (the DaemonSet mounts / here).
# "/" is kept as "" (paths are "$HOST_ROOT/..."); only an unset HOST_ROOT
# takes the default, so sourcing this file twice (install.sh sources it and
# containerd-setup.sh) keeps a host root of "/".
HOST_ROOT="${HOST_ROOT-/host}"
HOST_ROOT="${HOST_ROOT%/}"
# Payload shipped in the image: bin/, lib/containerd-guest-pull-grpc/ (the
# bundled libraries, deploy/bundle-libs.sh), systemd/, config/, doc/
# (deploy/Dockerfile).
PAYLOAD_DIR="${PAYLOAD_DIR:-/opt/guest-pull}"
# Install prefix on the host; binaries go to $PREFIX/bin.
PREFIX="${PREFIX:-/usr/local}"
# The host's systemctl. nsenter reaches the host's systemd through PID 1's
# mount namespace (needs hostPID + privileged). Tests substitute a recorder.
SYSTEMCTL="${SYSTEMCTL:-nsenter --target 1 --mount -- systemctl}"
# The host's containerd binary, for its version (the same way in); "none":
# not a node (a staged install), no version check.
CONTAINERD="${CONTAINERD:-nsenter --target 1 --mount -- containerd}"
# The host's busctl, the same way in, for logind's PreparingForShutdown
# (uninstall.sh: the kubelet's graceful node shutdown runs the preStop);
# "none": not asked (the uninstall always runs).
BUSCTL="${BUSCTL:-nsenter --target 1 --mount -- busctl}"
# containerd's main config and the directory of our drop-in, host paths.
CONTAINERD_CONFIG="${CONTAINERD_CONFIG:-/etc/containerd/config.toml}"
CONTAINERD_DROPIN="${CONTAINERD_DROPIN:-/etc/containerd/conf.d/guest-pull.toml}"
CONTAINERD_SERVICE="${CONTAINERD_SERVICE:-containerd.service}"
# Proxy plugin name and the runtime handlers that use it, in kata-deploy's
# SNAPSHOTTER_HANDLER_MAPPING syntax: "qemu-coco-dev:guest-pull,qemu-tdx:guest-pull"
# (shim names without "kata-"; entries for other snapshotters are skipped, so
# kata-deploy's own value can be reused). Empty: RUNTIME_HANDLER alone (a full
# runtime name, the setting of earlier releases).
PLUGIN_NAME="${PLUGIN_NAME:-guest-pull}"
SNAPSHOTTER_HANDLER_MAPPING="${SNAPSHOTTER_HANDLER_MAPPING:-}"
RUNTIME_HANDLER="${RUNTIME_HANDLER:-kata-qemu-coco-dev}"
# A handler whose runtime is still not registered after RUNTIME_WAIT_SECONDS:
# "fail" (nothing changes) or "skip" (install for the others, set it later).
MISSING_RUNTIME="${MISSING_RUNTIME:-fail}"
# containerd 1.6 has no runtime-specific snapshotter: "true" makes guest-pull
# the node's default CRI snapshotter (only for nodes that run kata pods only).
GLOBAL_SNAPSHOTTER="${GLOBAL_SNAPSHOTTER:-false}"
SOCKET="${SOCKET:-/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock}"
DATA_DIR="${DATA_DIR:-/var/lib/containerd-guest-pull-grpc}"
CONFIG_DIR="${CONFIG_DIR:-/etc/containerd-guest-pull-grpc}"
# Config to install on the host (a ConfigMap may be mounted over it).
CONFIG_SOURCE="${CONFIG_SOURCE:-$PAYLOAD_DIR/config/config.toml}"
# "true": CONFIG_SOURCE replaces a different host config (ConfigMap-managed).
CONFIG_OVERWRITE="${CONFIG_OVERWRITE:-false}"
UNIT_NAME="guest-pull-snapshotter.service"
# Host path of the unit (tests point it into a scratch directory).
UNIT_PATH="${UNIT_PATH:-/etc/systemd/system/$UNIT_NAME}"
BINARIES=(containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity)
# "patched" (default): rootfs mounts of type fuse.guest-pull-overlayfs, for
# a kata runtime with deploy/kata/<release>/0001-guest-pull-rootfs.patch.
# "stock": type fuse.nydus-overlayfs-guest-pull, which unpatched kata (Go
# shim 3.9+) takes for nydus; the helper is also installed under that name.
# See docs/kata-runtime-patch.md ("Stock kata").
KATA_MODE="${KATA_MODE:-patched}"
# (deploy/Makefile reads this line too.)
STOCK_HELPER_NAME="nydus-overlayfs-guest-pull"
DEFAULT_MOUNT_TYPE="fuse.guest-pull-overlayfs"
STOCK_MOUNT_TYPE="fuse.$STOCK_HELPER_NAME"
# Bundled libraries: the binaries' RPATH is $ORIGIN/../lib/$LIB_NAME, so they
# go to $PREFIX/lib/$LIB_NAME, a symlink to $PREFIX/lib/.$LIB_NAME.<id>.
LIB_NAME="containerd-guest-pull-grpc"
PAYLOAD_LIB_DIR="$PAYLOAD_DIR/lib/$LIB_NAME"
HOST_LIB_PARENT="$PREFIX/lib"
# The pod running this script (downward API POD_UID, else the pod name) and
# the host file naming the pod whose install is the current one: a rolling
# update starts the new pod before stopping the old one (maxSurge), and the
# old pod's preStop must then leave the new installation alone.
POD_ID="${POD_UID:-${HOSTNAME:-}}"
OWNER_PATH="$CONFIG_DIR/installed-by-pod"
# The pod whose install.sh last took the host lock to install (written
# before its changes, OWNER_PATH after their success): an older pod's config
# watch stops once it names another pod (config-watch.sh).
INSTALLING_PATH="$CONFIG_DIR/installing-pod"
# Host record of a pod whose install another pod's took over (a rolling
# update with maxSurge) and whose config watch stands by ("<pid> <boot id>
# <start>" of its watch, process_start), one per pod: <prefix><POD_ID>. The
# newer pod's preStop then hands the install back to that pod, whose watch
# installs its own files again, instead of uninstalling (uninstall.sh).
STANDBY_PATH_PREFIX="/run/containerd-guest-pull-grpc.standby."
# The kubelet's directory of the pods on this node (a host path: its
# --root-dir, /pods): a pod's directory, named by its UID, is there from
# its admission until the kubelet has cleaned up after its deletion. A pod
# deleted while its container was not running ran no preStop; its absence
# there tells the others it is gone (pod_gone).
KUBELET_PODS_DIR="${KUBELET_PODS_DIR:-/var/lib/kubelet/pods}"
# Host lock held by install.sh and uninstall.sh while they change the host
# (and by containerd-setup.sh run on its own, `make -C deploy`, while it
# changes containerd's config): in a rolling update the old pod's preStop
# runs while the new pod installs, and must see the new owner, then leave
# its install alone. On the host's /run (tmpfs): nothing to remove. In a
# staged tree (make DESTDIR=..., which sets STAGED_TREE=true)
# containerd-setup.sh removes it after each run (remove_host_lock).
LOCK_PATH="/run/containerd-guest-pull-grpc.install.lock"
# Host marker of a snapshotter restart the installed files still need
# (install.sh): made before they are replaced, removed once the service
# runs them, so a run cut short in between leaves it for the next run,
# which finds the files identical. On /run: a reboot starts the new files.
SNAPSHOTTER_RESTART_PATH="/run/containerd-guest-pull-grpc.restart-pending"
# Well below the pod's terminationGracePeriodSeconds (300; the preStop then
# still stops the daemon and restarts containerd): a preStop that waits
# longer is killed without a word.
LOCK_TIMEOUT_SECONDS="${LOCK_TIMEOUT_SECONDS:-120}"
# Exit status of a run that never got the lock (EX_TEMPFAIL: nothing was
# changed, try again later); deploy/Makefile reads it from this line and
# tells it from other failures.
LOCK_TIMEOUT_STATUS=75
HOST_LIB_DIR="$HOST_LIB_PARENT/$LIB_NAME"
# The docs (docs/*.md) in the image, and where they go on the host (as
# make install puts them): the unit's Documentation= names operations.md
# there.
PAYLOAD_DOC_DIR="$PAYLOAD_DIR/doc"
HOST_DOC_DIR="$PREFIX/share/doc/$LIB_NAME"
# ELF interpreter of the binaries (the node's, like its glibc).
ELF_INTERPRETER="/lib64/ld-linux-x86-64.so.2"
# Host path of the node's libc.so.6; empty: searched in the usual directories.
HOST_LIBC="${HOST_LIBC:-}"
# Bounded waits (seconds).
ACTIVE_TIMEOUT_SECONDS="${ACTIVE_TIMEOUT_SECONDS:-120}"
RUNTIME_WAIT_SECONDS="${RUNTIME_WAIT_SECONDS:-600}"
POLL_SECONDS="${POLL_SECONDS:-2}"
# Written (the pod's POD_ID) in the container's own /tmp by this pod's
# preStop as it starts (uninstall.sh): the pod is being deleted. An install
# of this pod that takes the host lock after it installs nothing, and the
# container's first process (install.sh, run_install) then waits for the
# pod's termination rather than end the container under the preStop.
PRESTOP_MARKER="${PRESTOP_MARKER:-/tmp/guest-pull-prestop-started}"
# While the pod sleeps after its install: how often it checks that
# containerd's config still gives what an install would write now (kata's
# runtimes removed or registered again); 0: never.
WATCH_SECONDS="${WATCH_SECONDS:-60}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG_TOOL="${CONFIG_TOOL:-$SCRIPT_DIR/containerd-config.py}"

read -r -a SYSTEMCTL_CMD <<< "$SYSTEMCTL"
read -r -a CONTAINERD_CMD <<< "$CONTAINERD"
read -r -a BUSCTL_CMD <<< "$BUSCTL"

log() { printf '%s guest-pull-deploy: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

# The bounded waits take whole seconds: "10m" or "" would make them unbounded.
for _setting in ACTIVE_TIMEOUT_SECONDS RUNTIME_WAIT_SECONDS LOCK_TIMEOUT_SECONDS POLL_SECONDS WATCH_SECONDS; do
    [[ "${!_setting}" =~ ^(0|[1-9][0-9]{0,5})$ ]] \
        || die "$_setting=\"${!_setting}\" is not a whole number of seconds (0-999999); nothing was changed"
done
(( POLL_SECONDS >= 1 )) || die "POLL_SECONDS must be at least 1; nothing was changed"
# Settings of two values: a typo ("Skip", "yes") would silently mean the other.
[[ "$MISSING_RUNTIME" == fail || "$MISSING_RUNTIME" == skip ]] \
    || die "MISSING_RUNTIME must be fail or skip, not '$MISSING_RUNTIME'; nothing was changed"
for _setting in GLOBAL_SNAPSHOTTER CONFIG_OVERWRITE; do
    [[ "${!_setting}" == true || "${!_setting}" == false ]] \
        || die "$_setting must be true or false, not '${!_setting}'; nothing was changed"
done
unset _setting

# no_arguments WHAT [ARG...]: install.sh and uninstall.sh take no arguments
# (their settings are environment variables, above): -h/--help prints the
# usage (status 0), anything else is refused (status 2), before anything
# runs. `uninstall.sh --help` used to uninstall.
no_arguments() {
    local what="$1"
    shift
    (( $# > 0 )) || return 0
    local usage
    usage="usage: $(basename "$0")   (no arguments) $what
Settings are environment variables (docs/setup.md, 'Environment of the installer'; defaults in deploy/k8s/scripts/lib.sh), e.g.
  HOST_ROOT=${HOST_ROOT:-/} PREFIX=$PREFIX CONTAINERD_CONFIG=$CONTAINERD_CONFIG
  handlers (SNAPSHOTTER_HANDLER_MAPPING or RUNTIME_HANDLER): $(handler_list) KATA_MODE=$KATA_MODE SYSTEMCTL='$SYSTEMCTL'"
    if [[ $# -eq 1 && ( "$1" == -h || "$1" == --help ) ]]; then
        printf '%s\n' "$usage"
        exit 0
    fi
    log "ERROR: unexpected argument(s): $*; nothing was changed"
    printf '%s\n' "$usage" >&2
    exit 2
}

host_systemctl() {
    log "systemctl $*"
    # Without the host lock's fd: what it starts must not hold the lock.
    "${SYSTEMCTL_CMD[@]}" "$@" 9>&-
}

# config_sibling_path NAME: host path of our file <config>.guest-pull-NAME
# beside containerd's config (beside the link when the config is one), its
# links followed within the host.
config_sibling_path() { host_path "$CONTAINERD_CONFIG.guest-pull-$1"; }

# kata_backup_path: host path of kata-deploy's backup <config>.bak (its
# links followed within the host).
kata_backup_path() { host_path "$CONTAINERD_CONFIG.bak"; }

# dropin_host_path: our drop-in as a path in this file system (its
# directory is often a link, e.g. conf.d to a config volume).
dropin_host_path() { host_path "$CONTAINERD_DROPIN"; }

# check_host_paths: every host path of containerd's files resolves (no
# link loop), before anything is changed: a path that does not would be
# empty where it is used.
check_host_paths() {
    local name
    config_host_path > /dev/null || exit 1
    for name in backup restart-pending dropin dropin-dirs; do
        config_sibling_path "$name" > /dev/null || exit 1
    done
    kata_backup_path > /dev/null || exit 1
    dropin_host_path > /dev/null || exit 1
}

# Host path of the backup of containerd's original config (exact bytes).
backup_path() { config_sibling_path backup; }

# Host path of the marker of a containerd restart that our config changes
# still need (install.sh, uninstall.sh): made before the first change, removed
# once containerd restarted, so a run cut short in between (or failing later)
# leaves it for the next run to restart containerd. It holds the boot id of
# the boot it was written in (restart_marker_due).
restart_marker_path() { config_sibling_path restart-pending; }

# current_boot_id: the running kernel's boot id (the node's: not
# namespaced), empty when it cannot be read.
current_boot_id() { cat /proc/sys/kernel/random/boot_id 2> /dev/null || true; }

# restart_marker_due: the restart marker says containerd's restart is due:
# it exists and was written in this boot. One of an earlier boot is not:
# the boot started containerd on the config as it was left, and the marker
# survived only because it sits beside containerd's config in /etc (a run
# cut short by the reboot, or an uninstall during the node's shutdown whose
# restart failed). An empty one (an earlier release wrote no boot id), or
# either id unreadable, counts as due.
restart_marker_due() {
    local path marker_boot="" boot
    path="$(restart_marker_path)"
    [[ -f "$path" ]] || return 1
    read -r marker_boot 2> /dev/null < "$path" || true
    boot="$(current_boot_id)"
    [[ -z "$marker_boot" || -z "$boot" || "$marker_boot" == "$boot" ]]
}

# Host path of the record of where the install wrote its drop-in: an
# install with another CONTAINERD_DROPIN removes the earlier one.
dropin_record_path() { config_sibling_path dropin; }

# Host path of the record of the directories an install made for its
# drop-in (host paths, one a line, each after its parent): uninstall
# removes those once empty, and no other (an operator's own empty conf.d
# stays); those that cannot be removed yet (not empty, busy) stay in the
# record for a later uninstall.
dropin_dirs_record_path() { config_sibling_path dropin-dirs; }

# config_host_path: containerd's config as a path in this file system, its
# symbolic links followed within the host (a link stays a link; its target
# is what gets edited).
config_host_path() {
    local resolved
    resolved="$(host_realpath "$CONTAINERD_CONFIG")" || die "$CONTAINERD_CONFIG: more than 40 symbolic links; nothing was changed"
    [[ ! -d "$HOST_ROOT$resolved" ]] || die "$CONTAINERD_CONFIG${resolved:+ ($resolved)} is a directory, not containerd's config file; nothing was changed"
    printf '%s%s' "$HOST_ROOT" "$resolved"
}

# Arguments of containerd-config.py shared by merge/check/dropin.
config_tool_args() {
    local args=(--plugin "$PLUGIN_NAME" --address "$SOCKET")
    if [[ -n "$SNAPSHOTTER_HANDLER_MAPPING" ]]; then
        args+=(--mapping "$SNAPSHOTTER_HANDLER_MAPPING")
    else
        args+=(--runtime "$RUNTIME_HANDLER")
    fi
    [[ "$GLOBAL_SNAPSHOTTER" == "true" ]] && args+=(--global-snapshotter)
    printf '%s\n' "${args[@]}"
}

# The handlers as configured (for messages).
handler_list() { printf '%s\n' "${SNAPSHOTTER_HANDLER_MAPPING:-$RUNTIME_HANDLER}"; }

# remove_write_leftovers DST: the temporary files of write_file_atomic for
# DST that a run cut short (a kill, a reboot) left beside it, each as large
# as DST (a 22 MB binary). Only names of write_file_atomic's own form
# (.NAME.guest-pull-tmp.XXXXXX): others' files beside containerd's config
# (a backup, another tool's temporary file) stay.
remove_write_leftovers() {
    local dst="$1" leftover
    [[ -n "$dst" ]] || return 0
    for leftover in "$(dirname "$dst")/.$(basename "$dst").guest-pull-tmp."??????; do
        [[ -f "$leftover" && ! -L "$leftover" ]] || continue
        rm -f -- "$leftover" || log "WARNING: cannot remove $leftover (a write of $dst cut short)"
    done
    return 0
}

# remove_old_write_leftovers DST MODE: the temporary files that releases
# before the current form (.NAME.guest-pull-tmp.XXXXXX) left beside DST,
# when a write of DST with MODE was cut short; only for our own files (a
# binary, the unit, the daemon config, the owner record: never beside
# containerd's config, where others' files of that form are as likely).
# Only what those releases' mktemp made: .NAME. and six of its letters and
# digits, a regular file of one link, this user's, mode 0600 (cut short
# before the chmod) or MODE (after). A suffix of one kind of character only
# (backup, BACKUP, 202412: a name someone chose) stays, as do the ~1% of
# mktemp's names that look like one.
remove_old_write_leftovers() {
    local dst="$1" mode="${2#0}" leftover suffix
    [[ -n "$dst" ]] || return 0
    for leftover in "$(dirname "$dst")/.$(basename "$dst")."??????; do
        suffix="${leftover##*.}"
        [[ "$suffix" =~ ^[A-Za-z0-9]{6}$ && ! "$suffix" =~ ^([a-z]+|[A-Z]+|[0-9]+)$ ]] || continue
        [[ -f "$leftover" && ! -L "$leftover" && -O "$leftover" ]] || continue
        case "$(stat -c '%h %a' -- "$leftover" 2> /dev/null)" in
            "1 600" | "1 $mode") ;;
            *) continue ;;
        esac
        rm -f -- "$leftover" || log "WARNING: cannot remove $leftover (an earlier release's write of $dst cut short)"
    done
    return 0
}

# remove_old_form_leftovers: remove_old_write_leftovers of each file those
# releases wrote with write_file_atomic that is ours alone (install.sh and
# uninstall.sh, under the host lock).
remove_old_form_leftovers() {
    local name
    for name in "${BINARIES[@]}"; do
        remove_old_write_leftovers "$HOST_ROOT$PREFIX/bin/$name" 0755
    done
    remove_old_write_leftovers "$HOST_ROOT$UNIT_PATH" 0644
    remove_old_write_leftovers "$HOST_ROOT$CONFIG_DIR/config.toml" 0644
    remove_old_write_leftovers "$HOST_ROOT$OWNER_PATH" 0644
}

# write_file_atomic SRC DST MODE [EXPECT]: replace DST with SRC's bytes unless
# equal. Returns 0 if DST changed, 1 if it was already identical, 2 if it
# no longer holds EXPECT's bytes (the file SRC was worked out from) just
# before the rename: another writer changed it meanwhile, DST was left alone.
write_file_atomic() {
    local src="$1" dst="$2" mode="$3" expect="${4:-}" tmp
    remove_write_leftovers "$dst"
    if [[ -f "$dst" ]] && cmp -s "$src" "$dst" \
        && [[ "$(stat -c %a "$dst")" == "${mode#0}" ]]; then
        return 1
    fi
    # Every step checked: callers test the result (`if write_file_atomic`),
    # where errexit does not apply, and a full disk must not leave a torn
    # file behind a "changed".
    if ! mkdir -p "$(dirname "$dst")" || ! tmp="$(mktemp "$(dirname "$dst")/.$(basename "$dst").guest-pull-tmp.XXXXXX")"; then
        die "cannot write $dst: cannot make a file next to it; nothing was replaced"
    fi
    # Flushed before the rename: a power cut must not keep the new name
    # without its bytes (an empty containerd config or binary).
    if ! { cat "$src" > "$tmp" && cmp -s "$src" "$tmp" && chmod "$mode" "$tmp" && sync -- "$tmp"; }; then
        rm -f "$tmp"
        die "cannot write $dst (disk full or read-only?); it was left as it was"
    fi
    # The replaced file's owner stays (the mode is the caller's).
    [[ ! -e "$dst" ]] || chown --reference="$dst" "$tmp" 2>/dev/null || true
    # Last, right before the rename: kata-deploy edits containerd's config
    # key by key, each a read-modify-write of its own.
    if [[ -n "$expect" ]] && ! cmp -s "$expect" "$dst"; then
        rm -f "$tmp"
        return 2
    fi
    # rename(2): a running binary or a reading containerd never sees a torn file.
    if ! mv -f "$tmp" "$dst"; then
        rm -f "$tmp"
        die "cannot replace $dst (a bind-mounted file?); it was left as it was"
    fi
    sync -- "$(dirname "$dst")" 2>/dev/null || true  # the rename itself
    return 0
}

# host_realpath PATH: host path PATH with its symlinks resolved inside
# $HOST_ROOT (an absolute link target is relative to the host's /, not to the
# pod's; `..` stops at the host's /). Missing components are kept as they
# are. Fails after 40 links. The same walk as host_path.py (the Python
# tools'), in bash: it runs for every record path, many times per install
# and per config-watch tick, where a Python process each made an install
# take twice as long.
host_realpath() {
    local rest="${1#/}" resolved="" comp target links=0
    while [[ -n "$rest" ]]; do
        comp="${rest%%/*}"
        if [[ "$rest" == */* ]]; then rest="${rest#*/}"; else rest=""; fi
        case "$comp" in
            "" | .) continue ;;
            ..) resolved="${resolved%/*}"; continue ;;
        esac
        if [[ -L "$HOST_ROOT$resolved/$comp" ]]; then
            links=$(( links + 1 ))
            (( links <= 40 )) || return 1
            target="$(readlink "$HOST_ROOT$resolved/$comp")"
            [[ "$target" == /* ]] && resolved=""
            rest="${target#/}${rest:+/$rest}"
        else
            resolved="$resolved/$comp"
        fi
    done
    printf '%s\n' "${resolved:-/}"
}

# host_path PATH: host path PATH as a path in this file system, its links
# followed within the host (host_realpath): what every read or write of a
# file under containerd's config directory goes through.
host_path() {
    local resolved
    resolved="$(host_realpath "$1")" || die "$1: more than 40 symbolic links on the host (a loop?); it was left as it was"
    printf '%s%s' "$HOST_ROOT" "$resolved"
}

# writable_on_host DIR: host directory DIR, or its nearest parent that
# exists, can be written. A read-only one was found only after the host
# lock, the install records and a first copy, as a bare "mktemp: ...:
# Read-only file system" that named no setting to change. access(2) says
# EROFS for a read-only mount, to root too.
writable_on_host() {
    local dir="$HOST_ROOT$1"
    while [[ ! -e "$dir" && "$dir" == */?* ]]; do dir="${dir%/*}"; done
    [[ -n "$dir" ]] || dir=/
    [[ -d "$dir" && -w "$dir" ]]
}

# wait_active UNIT: bounded wait until the host's systemd reports UNIT active.
wait_active() {
    local unit="$1" waited=0
    until "${SYSTEMCTL_CMD[@]}" is-active --quiet "$unit"; do
        if (( waited >= ACTIVE_TIMEOUT_SECONDS )); then
            log "$unit is not active after ${ACTIVE_TIMEOUT_SECONDS}s; last state:"
            "${SYSTEMCTL_CMD[@]}" status --no-pager "$unit" >&2 || true
            return 1
        fi
        sleep "$POLL_SECONDS"
        waited=$(( waited + POLL_SECONDS ))
    done
    log "$unit is active"
}

# render_daemon_config MODE: CONFIG_SOURCE as installed in MODE (stock: the
# stock mount type instead of the default one).
render_daemon_config() {
    if [[ "$1" == stock ]]; then
        sed "s|^mount_type = \"$DEFAULT_MOUNT_TYPE\"|mount_type = \"$STOCK_MOUNT_TYPE\"|" "$CONFIG_SOURCE"
    else
        cat "$CONFIG_SOURCE"
    fi
}

# warn_other_mode_config MODE FILE: a WARNING (on stdout) when the daemon
# config FILE, kept as the host's own, has the mount type of the other
# KATA_MODE (a node switched modes): the daemon would hand kata a rootfs
# type its shim does not take as guest-pulled. Nothing for other types.
warn_other_mode_config() {
    local want="$DEFAULT_MOUNT_TYPE" other="$STOCK_MOUNT_TYPE" have
    [[ "$1" != stock ]] || { want="$STOCK_MOUNT_TYPE"; other="$DEFAULT_MOUNT_TYPE"; }
    have="$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("guest_pull", {}).get("mount_type", sys.argv[2]))' \
        "$2" "$DEFAULT_MOUNT_TYPE" 2> /dev/null)" || return 0
    [[ "$have" == "$other" ]] || return 0
    printf 'WARNING: the kept %s has guest_pull.mount_type = "%s", the type of the other Kata mode; KATA_MODE=%s needs "%s": set it and restart the daemon (docs/setup.md, "Choosing the Kata mode")\n' \
        "${2#"$HOST_ROOT"}" "$have" "$1" "$want"
}

# hold_host_lock: takes LOCK_PATH on fd 9 (bounded wait) until the script
# exits or closes fd 9, and writes "<pod> <pid>" into it. If this pod's own
# install.sh holds it (the pod is deleted while it installs: the preStop
# runs beside it, and would wait for it past the grace period), that
# install is stopped first. Held elsewhere for more than
# LOCK_TIMEOUT_SECONDS: exits with LOCK_TIMEOUT_STATUS, nothing changed.
hold_host_lock() {
    local path="$HOST_ROOT$LOCK_PATH" pod pid
    # Without it both flock calls below fail (127), which would read as a
    # lock held too long.
    command -v flock > /dev/null || die "flock (util-linux) is required for the host lock $LOCK_PATH; nothing was changed"
    HOST_LOCK_MADE_RUN_DIR=false
    while true; do
        # (Again after a staged tree's holder removed it, see below.)
        hold_staged_run_dir
        if [[ ! -d "$HOST_ROOT/run" ]]; then
            mkdir -p "$HOST_ROOT/run" || die "cannot make ${HOST_ROOT:-/}/run for the lock $LOCK_PATH; nothing was changed"
            HOST_LOCK_MADE_RUN_DIR=true
        fi
        if ! { exec 9<>"$path"; } 2> /dev/null; then
            die "cannot open the lock $LOCK_PATH (${HOST_ROOT:-/}/run not writable?); nothing was changed"
        fi
        exec 8<&-
        if ! flock -n 9; then
            read -r pod pid 2> /dev/null < "$path" || true  # (removed meanwhile, see below)
            # The pid named must still be an install.sh (a finished one's pid
            # may have been reused).
            if [[ -n "$POD_ID" && "$pod" == "$POD_ID" && "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]] \
                && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qE '(^| |/)install\.sh( |$)'; then
                log "this pod's install (pid $pid) still holds $LOCK_PATH: stopping it"
                kill "$pid" 2>/dev/null || true
            fi
            if ! flock -w "$LOCK_TIMEOUT_SECONDS" 9; then
                log "ERROR: another install or uninstall has held $LOCK_PATH for more than ${LOCK_TIMEOUT_SECONDS}s (its pod and pid: $(head -c 200 "$path" 2> /dev/null)); nothing was changed"
                exit "$LOCK_TIMEOUT_STATUS"
            fi
        fi
        # Still the file at LOCK_PATH: a staged tree's lock file is removed
        # by its holder before it lets go (remove_host_lock), and
        # one locked after that is locked by no one else.
        [[ /dev/fd/9 -ef "$path" ]] && break
        exec 9>&-
    done
    # $BASHPID: the process holding the lock (a subshell of the config
    # watch, without install.sh's TERM trap, ends when a preStop kills it).
    printf '%s %s\n' "${POD_ID:--}" "$BASHPID" 2> /dev/null > "$path" \
        || die "cannot write the lock $LOCK_PATH (${HOST_ROOT:-/}/run full?); nothing was changed"
}

# process_start PID: "<boot id> <start of PID in clock ticks since boot>",
# which orders the starts of two processes of one boot.
process_start() {
    local stat boot
    local -a fields
    { stat="$(< "/proc/$1/stat")" && boot="$(< /proc/sys/kernel/random/boot_id)"; } 2> /dev/null || return 1
    # After the command name, which may hold spaces and parentheses; the
    # start time is the 22nd field.
    read -r -a fields <<< "${stat##*) }"
    [[ "${fields[19]:-}" =~ ^[0-9]+$ ]] || return 1
    printf '%s %s\n' "$boot" "${fields[19]}"
}

# mark_prestop: uninstall.sh as this pod's preStop writes PRESTOP_MARKER
# (POD_ID: the identity hold_host_lock's stop of this pod's install goes by)
# before it takes the lock; its second line, when this preStop started
# (remove_stale_prestop_marker). Whole or not at all: a reader never sees it
# half written.
mark_prestop() {
    [[ -n "$POD_ID" ]] || return 0
    printf '%s\n%s\n' "$POD_ID" "$(process_start "$$")" > "$PRESTOP_MARKER.$$" 2> /dev/null \
        && mv -f -- "$PRESTOP_MARKER.$$" "$PRESTOP_MARKER" 2> /dev/null || rm -f -- "$PRESTOP_MARKER.$$" 2> /dev/null || true
}

# remove_stale_prestop_marker: install.sh's first process, as it starts,
# removes a PRESTOP_MARKER of an earlier run (on a host, where /tmp
# persists), written by a process that started before this one or in another
# boot. One written by a process started after this one is this pod's
# preStop: a pod deleted as its container starts can have its preStop mark
# before this runs, and the install must then see it. A container's /tmp is
# its own: in a pod, no marker but that one can be there.
remove_stale_prestop_marker() {
    local boot="" start="" marker_boot="" marker_start=""
    [[ -e "$PRESTOP_MARKER" ]] || return 0
    read -r boot start <<< "$(process_start "$$")" || true
    { read -r _ && read -r marker_boot marker_start; } 2> /dev/null < "$PRESTOP_MARKER" || true
    if [[ -n "$boot" && "$marker_boot" == "$boot" && "$start" =~ ^[0-9]+$ && "$marker_start" =~ ^[0-9]+$ ]] \
        && (( marker_start >= start )); then
        return 0
    fi
    rm -f "$PRESTOP_MARKER"
}

# prestop_started: this pod's preStop has started (its PRESTOP_MARKER).
prestop_started() {
    [[ -n "$POD_ID" && "$(head -n 1 "$PRESTOP_MARKER" 2> /dev/null)" == "$POD_ID" ]]
}

# pod_gone POD: pod POD (a UID, as POD_UID) no longer exists on this node:
# the kubelet's directory of it (KUBELET_PODS_DIR) is gone while this pod's
# own is there. Nothing is judged gone without POD_UID, for a name that is
# not a UID, or when this pod's own directory is not there (a kubelet with
# another --root-dir: set KUBELET_PODS_DIR).
pod_gone() {
    local uid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' dir
    [[ "${POD_UID:-}" =~ $uid && "$1" =~ $uid && "$1" != "$POD_UID" ]] || return 1
    dir="$(host_realpath "$KUBELET_PODS_DIR")" || return 1
    [[ -d "$HOST_ROOT$dir/$POD_UID" && ! -e "$HOST_ROOT$dir/$1" && ! -L "$HOST_ROOT$dir/$1" ]]
}

# standby_path POD: POD's standby record (STANDBY_PATH_PREFIX).
standby_path() { printf '%s%s%s\n' "$HOST_ROOT" "$STANDBY_PATH_PREFIX" "$1"; }

# standby_heir: prints a pod, not this one, whose config watch stands by
# (config-watch.sh): its record names a process that still runs (hostPID:
# every pod's processes are seen here) and the pod is not gone (pod_gone).
# Records of processes that no longer run (a container killed without its
# preStop, an earlier boot) are removed.
standby_heir() {
    local path pod pid boot start
    for path in "$HOST_ROOT$STANDBY_PATH_PREFIX"*; do
        [[ -f "$path" ]] || continue
        pod="${path#"$HOST_ROOT$STANDBY_PATH_PREFIX"}"
        [[ -n "$pod" && "$pod" != "$POD_ID" ]] || continue
        pid="" boot="" start=""
        read -r pid boot start 2> /dev/null < "$path" || true
        if [[ "$pid" =~ ^[0-9]+$ && -n "$boot" && "$(process_start "$pid")" == "$boot $start" ]] \
            && ! pod_gone "$pod"; then
            printf '%s\n' "$pod"
            return 0
        fi
        rm -f -- "$path"
    done
    return 1
}

# release_host_lock: empties the lock file (no holder to name) and lets go.
release_host_lock() {
    : > "$HOST_ROOT$LOCK_PATH"
    exec 9>&-
}

# remove_host_lock: lets go as release_host_lock, for a staged tree
# (containerd-setup.sh with make DESTDIR=...: a package must not carry a
# /run file): removes the lock file while it still holds it (a waiter then
# takes the new one, hold_host_lock), and the run directory hold_host_lock
# made, if it is empty.
remove_host_lock() {
    hold_staged_run_dir
    rm -f "$HOST_ROOT$LOCK_PATH"
    [[ "${HOST_LOCK_MADE_RUN_DIR:-false}" != true ]] || rmdir "$HOST_ROOT/run" 2> /dev/null || true
    exec 8<&- 9>&-
}

# hold_staged_run_dir: in a staged tree (STAGED_TREE=true), takes a lock on
# the tree's root directory itself (fd 8, until it is closed) around making
# the run directory and opening the lock file in it, and around removing
# them (remove_host_lock): else a run that opens the lock file between
# another's removal of the file and of the run directory makes a new file
# there, and the directory, no longer empty, stays after both runs.
hold_staged_run_dir() {
    [[ "${STAGED_TREE:-false}" == true ]] || return 0
    { exec 8< "${HOST_ROOT:-/}"; } 2> /dev/null || die "cannot open ${HOST_ROOT:-/} to lock it; nothing was changed"
    flock -w "$LOCK_TIMEOUT_SECONDS" 8 || {
        log "ERROR: another run of make in ${HOST_ROOT:-/} has held it for more than ${LOCK_TIMEOUT_SECONDS}s; nothing was changed"
        exit "$LOCK_TIMEOUT_STATUS"
    }
}
