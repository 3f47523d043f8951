#!/usr/bin/env bash
# containerd's side of the install: apply or undo our settings in
# containerd's config (containerd-config.py does the TOML work).
#
#   containerd-setup.sh install     merge (bounded wait for the kata runtimes)
#   containerd-setup.sh uninstall   undo our edits, keep everyone else's
#
# Run by `make -C deploy install`/`uninstall` (HOST_ROOT=/ there); install.sh
# and uninstall.sh source it for its functions. Neither restarts containerd:
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
# result is the backup byte for byte. The drop-in is removed.
# Settings: lib.sh (SNAPSHOTTER_HANDLER_MAPPING, MISSING_RUNTIME, ...).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

containerd_changed=false

# merge_containerd_config OUT DROPIN_OUT: merged config and drop-in; waits
# (bounded) while a runtime of the mapping is not yet in containerd's config
# (kata-deploy still busy), then fails or, with MISSING_RUNTIME=skip, goes on
# without it.
merge_containerd_config() {
    local out="$1" dropin_out="$2" waited=0 rc missing=fail
    local -a tool_args
    mapfile -t tool_args < <(config_tool_args)
    (( RUNTIME_WAIT_SECONDS > 0 )) || [[ "$MISSING_RUNTIME" != skip ]] || missing=skip
    while true; do
        rc=0
        if [[ ! -f "$HOST_ROOT$CONTAINERD_CONFIG" ]]; then
            # kata-deploy writes it; its runtime is needed anyway.
            log "$CONTAINERD_CONFIG does not exist (yet)"
            rc=3
        else
            python3 "$CONFIG_TOOL" merge "$HOST_ROOT$CONTAINERD_CONFIG" \
                --config-path "$CONTAINERD_CONFIG" --dropin "$CONTAINERD_DROPIN" \
                --host-root "$HOST_ROOT" --missing-runtime "$missing" \
                --dropin-out "$dropin_out" "${tool_args[@]}" > "$out" || rc=$?
        fi
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -eq 3 && -f "$HOST_ROOT$CONTAINERD_CONFIG" && "$MISSING_RUNTIME" == skip ]] \
            && (( waited >= RUNTIME_WAIT_SECONDS )) && [[ "$missing" == fail ]]; then
            log "going on without the runtimes that are still missing (MISSING_RUNTIME=skip)"
            missing=skip
            continue
        fi
        if [[ $rc -ne 3 ]] || (( waited >= RUNTIME_WAIT_SECONDS )); then
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
    version="$(python3 "$CONFIG_TOOL" version "$HOST_ROOT$CONTAINERD_CONFIG" 2>/dev/null)" || return 0
    [[ "$version" == 2 ]] || return 0
    if ! out="$("${CONTAINERD_CMD[@]}" --version 2>/dev/null)"; then
        log "WARNING: cannot run '$CONTAINERD --version': if the node runs containerd 2.x, its version 2 config needs converting first (containerd config migrate)"
        return 0
    fi
    major="$(sed -nE 's/^containerd [^ ]+ v?([0-9]+)\.[0-9]+.*/\1/p' <<< "$out" | head -n 1)"
    if [[ -n "$major" ]] && (( major >= 2 )); then
        die "$CONTAINERD_CONFIG is a version 2 config and the node runs containerd $major.x ('$out'): containerd $major.x converts it at every start without giving image pulls the Kata runtime's snapshotter, so images would be unpacked on the host. Convert it first (containerd config migrate > new.toml, check it, move it over $CONTAINERD_CONFIG, restart containerd), then install again; nothing was changed"
    fi
}

# check_containerd_config: what configure_containerd would refuse, and a
# config that does not fit the node's containerd, found without changing
# anything (it waits for the runtimes the same way). Run before it.
check_containerd_config() {
    local merged dropin
    merged="$(mktemp)"
    dropin="$(mktemp)"
    merge_containerd_config "$merged" "$dropin"
    rm -f "$merged" "$dropin"
    check_config_fits_containerd
}

configure_containerd() {
    local cfg="$HOST_ROOT$CONTAINERD_CONFIG" merged dropin mode
    merged="$(mktemp)"
    dropin="$(mktemp)"
    # Nothing on the host changes before the merge has succeeded.
    merge_containerd_config "$merged" "$dropin"
    if [[ ! -f "$(backup_path)" ]]; then
        cp -p "$cfg" "$(backup_path)"
        log "saved the original containerd config as $CONTAINERD_CONFIG.guest-pull-backup"
    fi
    if write_file_atomic "$dropin" "$HOST_ROOT$CONTAINERD_DROPIN" 0644; then
        log "installed the containerd drop-in $CONTAINERD_DROPIN ($(python3 "$CONFIG_TOOL" version "$cfg" | sed 's/^/config version /'))"
        containerd_changed=true
    fi
    mode="$(stat -c %a "$cfg")"
    if write_file_atomic "$merged" "$cfg" "$mode"; then
        log "merged the guest-pull settings into $CONTAINERD_CONFIG"
        containerd_changed=true
    fi
    rm -f "$merged" "$dropin"
}

restore_containerd_config() {
    local cfg="$HOST_ROOT$CONTAINERD_CONFIG" restored mode
    local -a original=()
    if [[ -f "$cfg" ]]; then
        [[ -f "$(backup_path)" ]] && original=(--original "$(backup_path)")
        restored="$(mktemp)"
        python3 "$CONFIG_TOOL" unmerge "$cfg" "${original[@]}" --host-root "$HOST_ROOT" \
            --dropin "$CONTAINERD_DROPIN" > "$restored" \
            || die "cannot undo our edits in $CONTAINERD_CONFIG (see the message above); nothing was changed"
        mode="$(stat -c %a "$cfg")"
        if write_file_atomic "$restored" "$cfg" "$mode"; then
            containerd_changed=true
            if [[ ${#original[@]} -gt 0 ]] && cmp -s "$restored" "$(backup_path)"; then
                log "restored the original $CONTAINERD_CONFIG"
            else
                log "removed our edits from $CONTAINERD_CONFIG (it was changed by others since the install: their entries are kept)"
            fi
        fi
        rm -f "$restored"
    fi
    rm -f "$(backup_path)"
    if [[ -f "$HOST_ROOT$CONTAINERD_DROPIN" ]]; then
        rm -f "$HOST_ROOT$CONTAINERD_DROPIN"
        rmdir --ignore-fail-on-non-empty "$(dirname "$HOST_ROOT$CONTAINERD_DROPIN")" 2>/dev/null || true
        containerd_changed=true
        log "removed $CONTAINERD_DROPIN"
    fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-}" in
        install) check_config_fits_containerd && configure_containerd ;;
        uninstall) restore_containerd_config ;;
        *) die "usage: $0 install|uninstall" ;;
    esac
    if [[ "$containerd_changed" == true ]]; then
        log "containerd's config changed: restart containerd (systemctl restart $CONTAINERD_SERVICE)"
    fi
fi
