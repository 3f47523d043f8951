#!/usr/bin/env bash
# containerd's side of the install: apply or undo our settings in
# containerd's config (containerd-config.py does the TOML work).
#
#   containerd-setup.sh install     merge (bounded wait for the kata runtimes)
#   containerd-setup.sh uninstall   undo our edits, keep everyone else's
#   containerd-setup.sh reconcile   install again without waiting: handlers
#                                   whose runtime went away are dropped
#   containerd-setup.sh check       what install would refuse, changing
#                                   nothing (make install runs it first)
#
# Run by `make -C deploy install`/`uninstall` (HOST_ROOT=/ there, or
# DESTDIR with STAGED_TREE=true for a staged tree), under the
# host lock of install.sh and uninstall.sh (lib.sh, LOCK_PATH), taken once
# the wait for the kata runtimes is over; install.sh and uninstall.sh
# source it for its functions. Neither restarts containerd:
# the callers do (containerd_changed tells them whether to).
#
# install: the main config is backed up once, before our first edit, as
# <config>.guest-pull-backup; the drop-in is written; the main config gets
# the marked edits (see containerd_toml.py). Our older edits are undone
# first, so installing twice equals installing once and a changed
# SNAPSHOTTER_HANDLER_MAPPING leaves nothing stale.
# uninstall: removes only the lines marked as ours (restoring the text they
# replaced) and our `imports` entry; kata-deploy's runtimes, and snapshotter
# keys it wrote itself, stay. When nothing else changed the file since, the
# result is the backup byte for byte. The drop-in is removed, unless the
# config still imports it by name (an operator's own setup), and so are the
# directories an install made for it once they are empty (an operator's own
# conf.d stays; one the install made that cannot be removed yet, not empty
# or busy, stays recorded).
# Settings: lib.sh (SNAPSHOTTER_HANDLER_MAPPING, MISSING_RUNTIME, ...).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

containerd_changed=false
# Messages of containerd-config.py's merges already shown by this process
# (show_new_merge_notes).
declare -A MERGE_NOTES_SHOWN=()

# show_new_merge_notes FILE: the lines of FILE (a merge's stderr) this
# process has not shown yet. A run merges twice, the read-only check
# before any change and the merge itself (and once a poll while it waits
# for kata's runtimes): each warning ("skipping 'qemu-tdx:nydus'", a
# runtime's other snapshotter) was printed once a merge.
show_new_merge_notes() {
    local line
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ -z "${MERGE_NOTES_SHOWN["x$line"]:-}" ]] || continue
        MERGE_NOTES_SHOWN["x$line"]=1
        printf '%s\n' "$line" >&2 || true
    done < "$1"
}

# merge_containerd_config OUT DROPIN_OUT [SNAPSHOT]: merged config and
# drop-in; waits (bounded) while a runtime of the mapping is not yet in
# containerd's config (kata-deploy still busy), then fails or, with
# MISSING_RUNTIME=skip, goes on without it. SNAPSHOT gets the bytes of the
# config the merge was worked out from.
merge_containerd_config() {
    local out="$1" dropin_out="$2" snapshot="${3:-}" waited=0 rc missing=fail cfg notes
    local -a tool_args
    mapfile -t tool_args < <(config_tool_args)
    (( RUNTIME_WAIT_SECONDS > 0 )) || [[ "$MISSING_RUNTIME" != skip ]] || missing=skip
    while true; do
        rc=0
        cfg="$(config_host_path)"
        if [[ ! -f "$cfg" ]]; then
            # kata-deploy writes it; its runtime is needed anyway.
            log "$CONTAINERD_CONFIG does not exist (yet)"
            rc=3
        else
            if [[ -n "$snapshot" ]]; then
                cat "$cfg" > "$snapshot" || die "cannot read $CONTAINERD_CONFIG; nothing was changed"
                cfg="$snapshot"
            fi
            # Removed before anything can die: a merge that failed left it
            # behind, one a round of the config watch while the config
            # stayed broken (in the pod's /tmp).
            notes="$(mktemp)"
            python3 "$CONFIG_TOOL" merge "$cfg" \
                --config-path "$CONTAINERD_CONFIG" --dropin "$CONTAINERD_DROPIN" \
                --host-root "$HOST_ROOT" --missing-runtime "$missing" \
                --dropin-out "$dropin_out" "${tool_args[@]}" > "$out" 2> "$notes" || rc=$?
            show_new_merge_notes "$notes"
            rm -f "$notes"
        fi
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -eq 3 && -f "$cfg" && "$MISSING_RUNTIME" == skip ]] \
            && (( waited >= RUNTIME_WAIT_SECONDS )) && [[ "$missing" == fail ]]; then
            log "going on without the runtimes that are still missing (MISSING_RUNTIME=skip)"
            missing=skip
            continue
        fi
        if [[ $rc -ne 3 ]] || (( waited >= RUNTIME_WAIT_SECONDS )); then
            [[ -f "$cfg" ]] \
                || die "$CONTAINERD_CONFIG does not exist on the node: kata-deploy writes it as it registers Kata's runtimes, so install Kata first, or set CONTAINERD_CONFIG to the file the node's containerd runs with; nothing was changed"
            [[ $rc -ne 3 ]] \
                || die "cannot merge $CONTAINERD_CONFIG: a runtime of '$(handler_list)' is not registered (see the message above; waited ${RUNTIME_WAIT_SECONDS}s): install Kata first, correct the handler list, or set MISSING_RUNTIME=skip to install for the runtimes that exist; nothing was changed"
            die "cannot merge $CONTAINERD_CONFIG (see the message above); nothing was changed"
        fi
        log "waiting for runtime(s) '$(handler_list)' to appear in containerd's config (${waited}s/${RUNTIME_WAIT_SECONDS}s)"
        sleep "$POLL_SECONDS"
        waited=$(( waited + POLL_SECONDS ))
    done
}

# check_config_fits_containerd: containerd 2.x converts a version 2 config
# at every start, and the conversion does not give image pulls a runtime's
# snapshotter (it reads "snapshot" and writes "runtime_platform", both
# misspelt): Kata images would be unpacked on the host. Refused.
check_config_fits_containerd() {
    local version out major
    [[ "$CONTAINERD" != none ]] || return 0  # not a node (a staged install)
    version="$(python3 "$CONFIG_TOOL" version "$(config_host_path)" 2>/dev/null)" || return 0
    [[ "$version" == 2 ]] || return 0
    if ! out="$("${CONTAINERD_CMD[@]}" --version 2>/dev/null)"; then
        log "WARNING: cannot run '$CONTAINERD --version': if the node runs containerd 2.x, its version 2 config needs converting first (containerd config migrate)"
        return 0
    fi
    major="$(sed -nE 's/^containerd [^ ]+ v?([0-9]+)\.[0-9]+.*/\1/p' <<< "$out" | head -n 1)"
    if [[ "$GLOBAL_SNAPSHOTTER" != true ]] && grep -qE '^containerd [^ ]+ v?1\.6\.' <<< "$out"; then
        log "WARNING: the node runs containerd 1.6 ('$out'), which has no runtime-specific snapshotter: the handlers' snapshotter setting is ignored and Kata images are unpacked on the host. On nodes that run only Kata pods set GLOBAL_SNAPSHOTTER=true (docs/setup.md), or upgrade containerd"
    fi
    if [[ -n "$major" ]] && (( major >= 2 )); then
        die "$CONTAINERD_CONFIG is a version 2 config and the node runs containerd $major.x ('$out'): containerd $major.x converts it at every start without giving image pulls the Kata runtime's snapshotter, so images would be unpacked on the host. Convert it first (containerd config migrate > new.toml, check it, move it over $CONTAINERD_CONFIG, restart containerd), then install again; nothing was changed"
    fi
}

# check_containerd_config: what configure_containerd would refuse, and a
# config that does not fit the node's containerd, found without changing
# anything (it waits for the runtimes the same way). Run before it.
check_containerd_config() {
    local merged dropin
    check_config_not_generated
    merged="$(mktemp)"
    dropin="$(mktemp)"
    merge_containerd_config "$merged" "$dropin"
    rm -f "$merged" "$dropin"
    check_config_fits_containerd
    check_containerd_dirs_writable
}

# check_config_not_generated: k3s and rke2 run an embedded containerd whose
# config.toml they write anew from config.toml.tmpl (config-v3.toml.tmpl
# for containerd 2.x) at every start: edits to it last until the next
# restart of k3s, the install's own restart included, after which the config
# watch would put them back and restart k3s again, forever. Refused before
# the wait for kata's runtimes (kata-deploy edits the template there).
check_config_not_generated() {
    local resolved dir template
    resolved="$(host_realpath "$CONTAINERD_CONFIG")" || return 0  # a loop: refused later
    dir="$(dirname "$resolved")"
    for template in config.toml.tmpl config-v3.toml.tmpl; do
        [[ -e "$HOST_ROOT$dir/$template" ]] || continue
        die "$CONTAINERD_CONFIG is generated from ${dir%/}/$template at every start of its containerd (k3s and rke2 do this): edits to it would be lost at the next restart. k3s and rke2 nodes are not supported (docs/setup.md); nothing was changed"
    done
}

# check_containerd_dirs_writable: the directories of containerd's config
# and of our drop-in can be written on the host. A read-only one (an
# image-based node's /etc) was found only after install.sh had put the
# snapshotter's files in place, as a bare "Read-only file system".
# The backup and records beside containerd's config sit beside the link
# when the config is one (config_sibling_path): a link in a read-only
# directory to a writable file was found only after the snapshotter's
# files, at the first write beside it.
check_containerd_dirs_writable() {
    local path dir near what
    for path in "$CONTAINERD_CONFIG" "$CONTAINERD_CONFIG.guest-pull-backup" "$CONTAINERD_DROPIN"; do
        dir="$(host_realpath "$path")" || continue  # a link loop: refused with its own message
        dir="$(dirname "$dir")"
        writable_on_host "$dir" && continue
        near="$dir"
        while [[ ! -e "$HOST_ROOT$near" && "$near" == /?* ]]; do near="${near%/*}"; done
        [[ -d "$HOST_ROOT${near:-/}" ]] \
            || die "${near} is not a directory, so $path cannot be written under it: move that file away, or set CONTAINERD_DROPIN to another path; nothing was changed"
        what="(the directory of $path)"
        [[ "$path" != "$CONTAINERD_CONFIG.guest-pull-backup" ]] \
            || what="(where the install keeps its backup and records beside $CONTAINERD_CONFIG, a link)"
        die "$dir $what cannot be written on the host (a read-only file system?): guest-pull must edit containerd's config there; make it writable, or point CONTAINERD_CONFIG and CONTAINERD_DROPIN at the writable files containerd loads; nothing was changed"
    done
}

# note_restart_pending: before the first change of containerd's files. The
# marker (restart_marker_path, install.sh and uninstall.sh only) says a
# restart is due until one happened; a restart still due from a run that was
# cut short or failed counts as a change now. A marker of an earlier boot
# does not (restart_marker_due): that boot started containerd.
note_restart_pending() {
    if restart_marker_due; then
        log "containerd's restart after an earlier run's config change is still due"
        containerd_changed=true
    elif [[ -f "$(restart_marker_path)" ]]; then
        log "a containerd restart an earlier run left due is from before the node's last boot ($CONTAINERD_CONFIG.guest-pull-restart-pending): containerd has started since, on the config as it is; not restarting it for that"
    fi
    if [[ "${TRACK_CONTAINERD_RESTART:-false}" != true ]]; then
        # Run on its own (make -C deploy): the restart is the operator's,
        # asked for below, so nothing is left to remember.
        rm -f "$(restart_marker_path)"
        return 0
    fi
    [[ -d "$(dirname "$(restart_marker_path)")" ]] || return 0  # no config, nothing to restart for
    # With this boot's id (restart_marker_due); on a disk too full for its
    # bytes, empty (due in any boot), as the install and uninstall went on
    # before.
    { printf '%s\n' "$(current_boot_id)" || : ; } 2> /dev/null > "$(restart_marker_path)" \
        || die "cannot write $CONTAINERD_CONFIG.guest-pull-restart-pending beside containerd's config (a read-only or full file system?); containerd's config was left as it was"
}

# drop_restart_marker_unless_due: after the changes, when none was made
# and none was due.
drop_restart_marker_unless_due() {
    [[ "${TRACK_CONTAINERD_RESTART:-false}" == true && "$containerd_changed" == false ]] || return 0
    rm -f "$(restart_marker_path)"
}

# Times a config is merged again because another writer changed it while
# it was being merged (kata-deploy writes one key at a time).
CONFIG_WRITE_TRIES=10

# config_changed_meanwhile TRIES: logs that containerd's config changed
# under us, or gives up after CONFIG_WRITE_TRIES.
config_changed_meanwhile() {
    (( $1 < CONFIG_WRITE_TRIES )) \
        || die "$CONTAINERD_CONFIG changed while it was being edited, $1 times in a row (another tool keeps writing it, kata-deploy?): try again once it is done; the file was left as the other tool wrote it"
    log "$CONTAINERD_CONFIG changed while it was being edited (another tool writing it, kata-deploy?): reading it again"
    sleep "0.$1"  # longer each time: let the other writer finish its keys
}

configure_containerd() {
    local cfg merged dropin dropin_dst mode snapshot rc tries=0
    check_host_paths
    cfg="$(config_host_path)"
    dropin_dst="$(dropin_host_path)"
    merged="$(mktemp)"
    dropin="$(mktemp)"
    snapshot="$(mktemp)"
    while true; do
        # Nothing on the host changes before the merge has succeeded.
        merge_containerd_config "$merged" "$dropin" "$snapshot"
        (( tries > 0 )) || note_restart_pending
        if [[ ! -f "$(backup_path)" ]]; then
            # An install whose backup is gone may have left its edits: the
            # backup is the config without them, never a config that names our
            # drop-in (uninstall would restore that and remove the drop-in).
            local original tmp
            original="$(mktemp)"
            python3 "$CONFIG_TOOL" unmerge "$cfg" --host-root "$HOST_ROOT" \
                --dropin "$CONTAINERD_DROPIN" > "$original" \
                || die "cannot read $CONTAINERD_CONFIG to back it up (see the message above); nothing was changed"
            # Written whole beside it, then renamed: a backup cut short (a full
            # disk, a kill) would be kept by every later install, and uninstall
            # could not restore the original bytes from it. Flushed before the
            # rename, which a power cut must not keep without the bytes.
            tmp="$(backup_path).tmp"
            if ! { cp -p "$cfg" "$tmp" && cat "$original" > "$tmp" && cmp -s "$original" "$tmp" \
                    && sync -- "$tmp" && mv -f "$tmp" "$(backup_path)"; }; then  # cp -p: its mode and owner
                rm -f "$tmp" "$original"
                die "cannot back up $CONTAINERD_CONFIG as $CONTAINERD_CONFIG.guest-pull-backup (disk full or read-only?); nothing was changed"
            fi
            if cmp -s "$original" "$cfg"; then
                log "saved the original containerd config as $CONTAINERD_CONFIG.guest-pull-backup"
            else
                log "saved containerd's config without the guest-pull edits an earlier install left in it as $CONTAINERD_CONFIG.guest-pull-backup"
            fi
            rm -f "$original"
        fi
        make_dropin_dir
        if write_file_atomic "$dropin" "$dropin_dst" 0644; then
            log "installed the containerd drop-in $CONTAINERD_DROPIN ($(python3 "$CONFIG_TOOL" version "$cfg" | sed 's/^/config version /'))"
            containerd_changed=true
        fi
        mode="$(stat -c %a "$cfg")"
        # Renamed over it only if it still holds what the merge read: a key
        # kata-deploy wrote meanwhile would be lost.
        rc=0
        write_file_atomic "$merged" "$cfg" "$mode" "$snapshot" || rc=$?
        [[ $rc -eq 2 ]] || break
        tries=$(( tries + 1 ))
        config_changed_meanwhile "$tries"
    done
    if [[ $rc -eq 0 ]]; then
        log "merged the guest-pull settings into $CONTAINERD_CONFIG"
        containerd_changed=true
    fi
    remove_earlier_dropin
    printf '%s\n' "$CONTAINERD_DROPIN" > "$dropin"
    write_file_atomic "$dropin" "$(dropin_record_path)" 0644 || :  # unchanged
    rm -f "$merged" "$dropin" "$snapshot"
    drop_restart_marker_unless_due
}

# make_dropin_dir: the drop-in's directory, made with its missing parents
# when absent; each one made is recorded first (dropin_dirs_record_path),
# so that uninstall removes what an install made and nothing else. The
# record is replaced whole (write_file_atomic, flushed): an append cut short
# by a full disk or a crash would leave a torn or empty record, or a stray
# one beside containerd's config.
make_dropin_dir() {
    local dir record new
    local -a made=()
    dir="$(dirname "$(dropin_host_path)")"
    while [[ ! -e "$dir" && ! -L "$dir" ]]; do
        made=("${dir#"$HOST_ROOT"}" "${made[@]}")
        dir="$(dirname "$dir")"
    done
    (( ${#made[@]} > 0 )) || return 0
    record="$(dropin_dirs_record_path)"
    new="$(mktemp)"
    if [[ -f "$record" ]] && ! cat "$record" > "$new"; then
        rm -f "$new"
        die "cannot read $CONTAINERD_CONFIG.guest-pull-dropin-dirs; containerd's config and drop-in were left as they were"
    fi
    for dir in "${made[@]}"; do
        grep -qxsF -- "$dir" "$new" && continue
        printf '%s\n' "$dir" >> "$new" || { rm -f "$new"; die "cannot write a temporary file (disk full?); containerd's config and drop-in were left as they were"; }
    done
    write_file_atomic "$new" "$record" 0644 || :  # 1: unchanged
    rm -f "$new"
    mkdir -p "$HOST_ROOT${made[-1]}" \
        || die "cannot make $(dirname "$CONTAINERD_DROPIN") for the drop-in; containerd's config and drop-in were left as they were"
}

# remove_dropin_dirs: the directories an install made for its drop-in
# (dropin_dirs_record_path), innermost first, each only while it is empty
# and still a directory reached without links: one that holds others'
# files now stays, and so does every directory no install made. The record
# keeps naming those that could not be removed (kata-deploy's drop-in in
# the conf.d the install made): a later install finds them there and
# records nothing, and its uninstall then removes them once it can.
remove_dropin_dirs() {
    local record dir i err
    local -a dirs=() left=() why=()
    record="$(dropin_dirs_record_path)"
    [[ -f "$record" ]] || return 0
    mapfile -t dirs < "$record"
    for (( i = ${#dirs[@]} - 1; i >= 0; i-- )); do
        dir="${dirs[i]}"
        [[ "$dir" == /?* && "$(host_realpath "$dir")" == "$dir" && -d "$HOST_ROOT$dir" ]] || continue
        if err="$(LC_ALL=C rmdir -- "$HOST_ROOT$dir" 2>&1)"; then
            log "removed $dir (made by the install for its drop-in)"
        else
            left=("$dir" "${left[@]}")
            why+=("$dir (${err##*: })")  # rmdir's reason: "Directory not empty", "Device or resource busy", ...
        fi
    done
    if (( ${#left[@]} == 0 )); then
        rm -f "$record"
        return 0
    fi
    printf -v err '%s, ' "${why[@]}"
    log "kept ${err%, }: made by the install for its drop-in, not removable now; $CONTAINERD_CONFIG.guest-pull-dropin-dirs keeps naming them, so that a later uninstall removes them once it can"
    # In a subshell: write_file_atomic exits (die) when it cannot write (a
    # full disk), and containerd's config is restored by now: the uninstall
    # goes on. The record left as it was names directories removed above
    # too, which a later uninstall skips.
    if ! (
        kept="$(mktemp)" || exit 1
        trap 'rm -f "$kept"' EXIT
        printf '%s\n' "${left[@]}" > "$kept" || exit 1
        write_file_atomic "$kept" "$record" 0644 || [[ $? -eq 1 ]]  # 1: unchanged
    ); then
        log "WARNING: could not rewrite $CONTAINERD_CONFIG.guest-pull-dropin-dirs to name only ${left[*]} (see above); it was left as it was"
    fi
}

# remove_earlier_dropin: the drop-in an earlier install wrote at another
# path (CONTAINERD_DROPIN changed since), when it is still ours: a glob
# import would load both, and the old one may name an old socket.
remove_earlier_dropin() {
    local earlier path
    earlier="$(head -n 1 "$(dropin_record_path)" 2>/dev/null)" || earlier=""
    [[ -n "$earlier" && "$earlier" != "$CONTAINERD_DROPIN" ]] || return 0
    path="$(host_path "$earlier")" || return 0  # a link loop: nothing there to remove
    [[ -f "$path" ]] || return 0
    if python3 "$CONFIG_TOOL" ours "$path" 2>/dev/null; then
        rm -f "$path"
        containerd_changed=true
        log "removed $earlier, the drop-in of an earlier install (CONTAINERD_DROPIN is $CONTAINERD_DROPIN now)"
    fi
}

# desired_containerd_config OUT DROPIN_OUT: what an install would write now,
# without waiting: handlers whose runtime is not registered are left out.
# In a subshell, so a failed merge returns instead of exiting.
desired_containerd_config() {
    # Every message again (the config watch shows them with what it found).
    (MERGE_NOTES_SHOWN=(); RUNTIME_WAIT_SECONDS=0 MISSING_RUNTIME=skip merge_containerd_config "$1" "$2")
}

# containerd_config_matches MERGED DROPIN: the config and our drop-in hold
# these bytes.
containerd_config_matches() {
    cmp -s "$1" "$(config_host_path)" && cmp -s "$2" "$(dropin_host_path)"
}

# reconcile_containerd: the install again, without waiting for runtimes.
# After kata-deploy's cleanup on containerd 2.x our drop-in would keep, per
# handler, a runtime table holding only `snapshotter`, which containerd runs
# with runc: it goes; a runtime registered again gets its snapshotter back.
# Sets containerd_changed.
reconcile_containerd() {
    local RUNTIME_WAIT_SECONDS=0 MISSING_RUNTIME=skip
    # Only an install is reconciled: on a node without one this would add a
    # proxy plugin whose socket nobody serves.
    [[ -f "$(dropin_host_path)" || -f "$(backup_path)" ]] \
        || die "guest-pull is not installed in containerd's config (no $CONTAINERD_DROPIN, no $CONTAINERD_CONFIG.guest-pull-backup): install it instead; nothing was changed"
    configure_containerd
}

# imports_dropin CFG: the config names our drop-in itself in `imports` (an
# operator's hand setup, deploy/containerd/README.md), not only through ours:
# an entry without `*`, spelt in any way containerd resolves to it
# (relative to the config's directory, uncleaned), in the config or a file
# it imports. containerd does not start without a file imported by name.
imports_dropin() {
    python3 "$CONFIG_TOOL" imports-by-name "$1" --config-path "$CONTAINERD_CONFIG" \
        --dropin "$CONTAINERD_DROPIN" --host-root "$HOST_ROOT" 2>/dev/null
}  # exit 0: yes; 4: no; else: cannot tell

# unmerge_kata_backup: kata-deploy, on containerd 1.x, backs the config up
# once as <config>.bak and puts that back at its cleanup. Taken after our
# install, it holds our edits, and its import of our drop-in (removed here)
# would keep containerd 1.x from starting: our edits leave it too.
unmerge_kata_backup() {
    local bak restored snapshot rc=2 tries=0
    bak="$(kata_backup_path)"
    restored="$(mktemp)"
    snapshot="$(mktemp)"
    # Its cleanup renames it over the config: one written after that would
    # be a stale backup, put back over the config by its next cleanup.
    while [[ $rc -eq 2 ]] && (( tries < CONFIG_WRITE_TRIES )); do
        tries=$(( tries + 1 ))
        if ! { cat "$bak" > "$snapshot" 2>/dev/null && grep -q "guest-pull-snapshotter" "$snapshot"; }; then
            rc=1  # none, or nothing of ours in it
            break
        fi
        if ! python3 "$CONFIG_TOOL" unmerge "$snapshot" --host-root "$HOST_ROOT" \
            --dropin "$CONTAINERD_DROPIN" > "$restored"; then
            log "WARNING: cannot remove our edits from $CONTAINERD_CONFIG.bak (see above): if kata-deploy's cleanup puts it back, remove the lines marked guest-pull-snapshotter from $CONTAINERD_CONFIG"
            rc=1
            break
        fi
        rc=0
        write_file_atomic "$restored" "$bak" "$(stat -c %a "$bak" 2>/dev/null || echo 600)" "$snapshot" || rc=$?
        if [[ $rc -eq 0 ]]; then
            log "removed our edits from $CONTAINERD_CONFIG.bak (kata-deploy's backup, which its cleanup puts back)"
        fi
    done
    if [[ $rc -eq 2 ]]; then
        log "WARNING: $CONTAINERD_CONFIG.bak kept changing while our edits were removed from it ($tries tries): if kata-deploy's cleanup puts it back, remove the lines marked guest-pull-snapshotter from $CONTAINERD_CONFIG"
    fi
    rm -f "$restored" "$snapshot"
}

# remove_dropin_write_leftovers DROPIN OURS: the temporary files that
# writes of our own files beside containerd's (the drop-in DROPIN, the
# records beside its config) cut short left, of this form and (but beside a
# drop-in that is not ours, OURS false) of earlier releases'. Never those
# beside containerd's config itself.
remove_dropin_write_leftovers() {
    local path
    for path in "$1" "$(dropin_record_path)" "$(dropin_dirs_record_path)"; do
        remove_write_leftovers "$path"
        [[ "$path" == "$1" && "$2" != true ]] || remove_old_write_leftovers "$path" 0644
    done
}

# find_uninstall_changes: the files restore_containerd_config has to
# change (paths in this file system, in UNINSTALL_CHANGES), found without
# changing anything: our edits in containerd's config (or a config the tool
# cannot read, whose undo then fails with its own message), the backup,
# records and restart marker beside it, our drop-in (unless the config
# imports it by name: kept), our edits in kata-deploy's backup.
find_uninstall_changes() {
    local cfg dropin_dst path by_name=4 edited=false
    UNINSTALL_CHANGES=()
    cfg="$(config_host_path)"
    dropin_dst="$(dropin_host_path)"
    if [[ -f "$cfg" ]] && ! python3 "$CONFIG_TOOL" unmerge "$cfg" --host-root "$HOST_ROOT" \
            --dropin "$CONTAINERD_DROPIN" 2> /dev/null | cmp -s - "$cfg"; then
        UNINSTALL_CHANGES+=("$cfg")
        edited=true
    fi
    for path in "$(backup_path)" "$(backup_path).tmp" "$(dropin_record_path)" \
                "$(dropin_dirs_record_path)" "$(restart_marker_path)"; do
        [[ ! -e "$path" && ! -L "$path" ]] || UNINSTALL_CHANGES+=("$path")
    done
    path="$(kata_backup_path)"
    ! grep -qs "guest-pull-snapshotter" "$path" || UNINSTALL_CHANGES+=("$path")
    if [[ -f "$dropin_dst" ]] && python3 "$CONFIG_TOOL" ours "$dropin_dst" 2> /dev/null; then
        if [[ "$edited" == false && -f "$cfg" ]]; then
            imports_dropin "$cfg" && by_name=0 || by_name=$?
        fi
        (( by_name != 4 )) || UNINSTALL_CHANGES+=("$dropin_dst")
    fi
    return 0
}

# check_uninstall_writable: each file of UNINSTALL_CHANGES (and the restart
# marker, which install.sh and uninstall.sh write before the first change)
# can be changed: its directory can be written. Refused before any change.
check_uninstall_writable() {
    local path dir
    local -a paths=("${UNINSTALL_CHANGES[@]}")
    if [[ "${TRACK_CONTAINERD_RESTART:-false}" == true && -d "$(dirname "$(restart_marker_path)")" ]]; then
        paths+=("$(restart_marker_path)")
    fi
    for path in "${paths[@]}"; do
        dir="$(dirname "$path")"
        [[ ! -d "$dir" || -w "$dir" ]] && continue
        printf -v path '%s, ' "${UNINSTALL_CHANGES[@]#"$HOST_ROOT"}"
        die "${dir#"$HOST_ROOT"} cannot be written on the host (a read-only file system?), and the uninstall must change ${path%, } to undo guest-pull's install in containerd's config: make it writable, then run the uninstall again; nothing was changed"
    done
}

restore_containerd_config() {
    local cfg restored mode snapshot dropin_dst rc tries=0 dropin_ours=true
    local -a original=()
    check_host_paths
    cfg="$(config_host_path)"
    dropin_dst="$(dropin_host_path)"
    # Nothing of ours there (never installed, or uninstalled already): no
    # restart marker is written, so a read-only /etc/containerd is no
    # reason to fail; what follows then changes nothing.
    find_uninstall_changes
    if (( ${#UNINSTALL_CHANGES[@]} == 0 )); then
        log "nothing to undo in containerd's config: no edits, drop-in, backup or records of this installer in $CONTAINERD_CONFIG or beside it"
    else
        check_uninstall_writable
        note_restart_pending
    fi
    # kata-deploy's backup first: its cleanup may rename it over the config
    # at any time, and once the config is done a backup still holding our
    # edits would bring them back (with our import, which keeps the drop-in
    # below). Put back before or while the config is edited, it is edited
    # like any other change of the config.
    unmerge_kata_backup
    if [[ -f "$cfg" ]]; then
        [[ -f "$(backup_path)" ]] && original=(--original "$(backup_path)")
        restored="$(mktemp)"
        snapshot="$(mktemp)"
        while true; do
            cat "$cfg" > "$snapshot" || die "cannot read $CONTAINERD_CONFIG; nothing was changed"
            python3 "$CONFIG_TOOL" unmerge "$snapshot" "${original[@]}" --host-root "$HOST_ROOT" \
                --dropin "$CONTAINERD_DROPIN" > "$restored" \
                || die "cannot undo our edits in $CONTAINERD_CONFIG (see the message above); nothing was changed"
            mode="$(stat -c %a "$cfg")"
            # Only over the bytes the unmerge read (see configure_containerd).
            rc=0
            write_file_atomic "$restored" "$cfg" "$mode" "$snapshot" || rc=$?
            [[ $rc -eq 2 ]] || break
            tries=$(( tries + 1 ))
            config_changed_meanwhile "$tries"
        done
        rm -f "$snapshot"
        if [[ $rc -eq 0 ]]; then
            containerd_changed=true
            if [[ ${#original[@]} -gt 0 ]] && cmp -s "$restored" "$(backup_path)"; then
                log "restored the original $CONTAINERD_CONFIG"
            else
                log "removed our edits from $CONTAINERD_CONFIG (it was changed by others since the install: their entries are kept)"
            fi
        fi
        rm -f "$restored"
    fi
    rm -f "$(backup_path)" "$(backup_path).tmp"  # .tmp: an install killed while backing up
    remove_earlier_dropin
    rm -f "$(dropin_record_path)"
    local by_name=4
    if [[ -f "$dropin_dst" && -f "$cfg" ]]; then
        imports_dropin "$cfg" && by_name=0 || by_name=$?
    fi
    if [[ $by_name -eq 0 ]]; then
        log "kept $CONTAINERD_DROPIN: $CONTAINERD_CONFIG still imports it by name (a setup of its own); remove both by hand if they are not wanted"
    elif [[ $by_name -ne 4 ]]; then
        # containerd does not start without a file it imports by name.
        log "WARNING: kept $CONTAINERD_DROPIN: cannot tell whether $CONTAINERD_CONFIG or a file it imports names it (a file there cannot be read as TOML); remove it by hand if nothing imports it"
    elif [[ -f "$dropin_dst" ]] && ! python3 "$CONFIG_TOOL" ours "$dropin_dst" 2>/dev/null; then
        # An operator's own file at that path (an install refuses it).
        log "kept $CONTAINERD_DROPIN: it is not a drop-in this installer wrote"
        dropin_ours=false
    elif [[ -f "$dropin_dst" ]]; then
        rm -f "$dropin_dst"
        containerd_changed=true
        log "removed $CONTAINERD_DROPIN"
    fi
    # Before the directories: one left in the conf.d the install made kept it.
    remove_dropin_write_leftovers "$dropin_dst" "$dropin_ours"
    remove_dropin_dirs
    drop_restart_marker_unless_due
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    setup_usage="usage: $(basename "$0") install|uninstall|reconcile|check   (containerd's config on the host root HOST_ROOT=${HOST_ROOT:-/}: CONTAINERD_CONFIG=$CONTAINERD_CONFIG, CONTAINERD_DROPIN=$CONTAINERD_DROPIN, handlers (SNAPSHOTTER_HANDLER_MAPPING or RUNTIME_HANDLER) $(handler_list); settings: lib.sh, docs/setup.md)"
    if [[ $# -eq 1 && ( "$1" == -h || "$1" == --help ) ]]; then
        printf '%s\n' "$setup_usage"
        exit 0
    fi
    if [[ $# -ne 1 || ! "$1" =~ ^(install|uninstall|reconcile|check)$ ]]; then
        log "ERROR: $setup_usage; nothing was changed"
        exit 2
    fi
    # Read-only, before the lock (as install.sh): the wait for kata's
    # runtimes (up to RUNTIME_WAIT_SECONDS, 600 unless make's 0) and the
    # refusals. A pod's preStop waits for the lock LOCK_TIMEOUT_SECONDS
    # (120) at most, and then skips its uninstall.
    case "$1" in
        install) check_containerd_config ;;
        reconcile) check_config_fits_containerd ;;
        # Only the refusals of install (no lock: it changes nothing).
        check) check_containerd_config; exit 0 ;;
    esac
    # Run on its own (make -C deploy): under the host lock install.sh,
    # uninstall.sh and the config watch take, so that a DaemonSet pod on
    # this node never edits containerd's config at the same time. No pod
    # runs this: it stops no install (lib.sh, hold_host_lock).
    POD_ID=""
    hold_host_lock
    unlock=release_host_lock
    if [[ "${STAGED_TREE:-false}" == true ]]; then
        # A staged tree (make DESTDIR=... says so): a package must not
        # carry a /run file, so the lock file goes with the run, also one
        # that fails. Not for another HOST_ROOT (run by hand in a pod, on
        # /host): that lock file is the node's.
        unlock=remove_host_lock
        trap remove_host_lock EXIT
    fi
    case "$1" in
        # The wait is over: the runtimes are there, or MISSING_RUNTIME=skip
        # goes on without them. One gone meanwhile fails (fail) or is left
        # out (skip) at once, without a wait under the lock.
        install) RUNTIME_WAIT_SECONDS=0 configure_containerd ;;
        uninstall) restore_containerd_config ;;
        reconcile) reconcile_containerd ;;
    esac
    trap - EXIT
    "$unlock"
    if [[ "$containerd_changed" == true ]]; then
        log "containerd's config changed: restart containerd (systemctl restart $CONTAINERD_SERVICE)"
    fi
fi
