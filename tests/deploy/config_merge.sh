#!/usr/bin/env bash
# config_merge: our install's edits of containerd's config, alone and next to
# kata-deploy, on the real default config of each containerd version, checked
# by that version's real containerd (`containerd config dump`).
#
# Versions: Debian's containerd 1.6 (global snapshotter, GLOBAL_SNAPSHOTTER=true),
# containerd 1.7.35 and 2.4.2 (tests/tools/go_peers.sh); 2.4.2's default
# config without its conf.d import (kata-deploy then writes
# /opt/kata/containerd/config.d/kata-deploy.toml into `imports`). Long mode
# (GUEST_PULL_TEST_MODE=long) adds containerd 2.3.7 and 2.2.9.
# Handlers: SNAPSHOTTER_HANDLER_MAPPING=qemu-coco-dev:guest-pull,qemu-tdx:guest-pull;
# kata-deploy (tests/deploy/kata_deploy_sim.py, its edits as the Rust installer
# makes them) registers kata-qemu-coco-dev, kata-qemu-tdx and kata-qemu with the
# same mapping (kata-qemu: no snapshotter, which we must not touch).
# Cases per version, each install run twice (the second must change no byte):
#   alone       no kata runtime: MISSING_RUNTIME=fail refuses and changes
#               nothing; =skip installs the rest; uninstall restores every byte
#   plain       kata without a mapping, then us: we own the handler keys;
#               a smaller mapping drops the stale handler; uninstall restores
#   kata-first  kata-deploy with the mapping, then us (through `make -C deploy
#               install-containerd`); uninstall restores every byte
#   us-first    us (MISSING_RUNTIME=skip), kata-deploy, us again: the same
#               effective config and dump as kata-first; uninstall leaves
#               exactly what kata-deploy alone gives (effective config + dump)
#   us-first-kata21 (2.4-noglob only) us-first with kata-deploy told containerd
#               2.1: it appends its /opt drop-in to the `imports` line we wrote
#   kata-gone   kata-deploy, us, kata-deploy's cleanup: the reconcile (make -C
#               deploy reconcile-containerd) leaves no half runtime; kata-deploy
#               again and the reconcile give the handlers their snapshotter back
#   conflict    kata-deploy maps qemu-tdx to nydus: the documented winner
#               (1.x: the last writer; 2.x: the drop-in loaded later), and
#               uninstall restores kata-deploy's value byte for byte (not on
#               1.6: kata-deploy applies no mapping there)
# Needs: bash, python3 (3.11+), containerd (Debian), unshare, go (peers).
# Usage: tests/deploy/config_merge.sh    Last line: "N passed, M failed, K skipped".
# A && pass || fail on purpose (pass never fails); single-quoted sh snippets.
# shellcheck disable=SC2015,SC2016
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
# shellcheck source-path=SCRIPTDIR source=../tools/go_peers.sh
source "$REPO/tests/tools/go_peers.sh"

SETUP="$REPO/deploy/k8s/scripts/containerd-setup.sh"
SIM="$REPO/tests/deploy/kata_deploy_sim.py"
CHECK="$REPO/tests/deploy/config_merge_check.py"
MAPPING="qemu-coco-dev:guest-pull,qemu-tdx:guest-pull"
HANDLERS=(kata-qemu-coco-dev kata-qemu-tdx)
KATA_SHIMS=(qemu-coco-dev qemu-tdx qemu)
WORK="$(mktemp -d /tmp/gp-config-merge.XXXXXX)"
h_on_exit 'rm -rf "$WORK"'
START=$SECONDS

# Per version (set by run_version): label, bin dir, version, layouts, env.
V="" BIN="" SEMVER="" LAYOUT="" DUMP_LAYOUT="" GLOBAL=false

# new_root NAME: a host root holding the version's default config.
new_root() {
    local root="$WORK/$V/$1"
    mkdir -p "$root/etc/containerd"
    cp "$WORK/$V/default.toml" "$root/etc/containerd/config.toml"
    echo "$root"
}

# us ROOT install|uninstall [VAR=VALUE...]: our containerd-setup.sh, on a
# staged root as make DESTDIR=... runs it.
us() {
    local root="$1" action="$2"
    shift 2
    env HOST_ROOT="$root" STAGED_TREE=true SNAPSHOTTER_HANDLER_MAPPING="$MAPPING" GLOBAL_SNAPSHOTTER="$GLOBAL" \
        RUNTIME_WAIT_SECONDS=0 POLL_SECONDS=1 "$@" bash "$SETUP" "$action" >> "$root.log" 2>&1
}

# kata ROOT [MAPPING]: kata-deploy's install (stand-in), told the containerd
# version KATA_SEES (default: the real one).
kata() {
    python3 "$SIM" install --root "$1" --containerd "${KATA_SEES:-$SEMVER}" --shims "${KATA_SHIMS[*]}" \
        --mapping "${2-$MAPPING}" >> "$1.log" 2>&1
}

# tree ROOT: every file under ROOT with mode and content hash (also the
# host lock's: containerd-setup.sh on a staged root must leave none).
tree() {
    (cd "$1" && find . -type f -printf '%m %p\n' | sort | while read -r mode path; do
        echo "$mode $path $(sha256sum < "$path" | cut -d' ' -f1)"
    done)
}

# dump ROOT OUT: the real containerd's `config dump` of ROOT's config, with
# ROOT's /etc/containerd (and /opt/kata) seen at the host's paths
# (tests/tools/host_view.sh): the configs name host paths.
dump() {
    "$REPO/tests/tools/host_view.sh" "$1" "$BIN/containerd" --config /etc/containerd/config.toml config dump \
        > "$2" 2> "$2.err" || { cat "$2.err"; return 1; }
}

# accepted NAME ROOT: containerd accepts ROOT's config and shows our settings.
accepted() {
    local name="$1" root="$2"
    if ! dump "$root" "$root.dump" > "$root.dumperr"; then
        h_fail "$V $name: containerd $SEMVER accepts the config" "$(cat "$root.dumperr")"
        return 1
    fi
    h_check "$V $name: containerd $SEMVER accepts it; its dump shows proxy plugin, annotations and snapshotter for ${HANDLERS[*]}" \
        python3 "$CHECK" dump "$root.dump" "$DUMP_LAYOUT" "${HANDLERS[@]}"
}

# twice NAME ROOT CMD...: CMD again changes no byte under ROOT.
twice() {
    local name="$1" root="$2"
    shift 2
    tree "$root" > "$root.once"
    if "$@" && cmp -s "$root.once" <(tree "$root"); then
        h_pass "$V $name: second install changes no byte"
    else
        h_fail "$V $name: second install" "$(diff "$root.once" <(tree "$root"); tail -3 "$root.log")"
    fi
}

# uninstalled NAME ROOT BEFORE: uninstall restores BEFORE byte for byte; a
# second uninstall is a no-op.
uninstalled() {
    local name="$1" root="$2" before="$3"
    if us "$root" uninstall && cmp -s "$before" <(tree "$root"); then
        h_pass "$V $name: uninstall restores every file byte for byte"
    else
        h_fail "$V $name: uninstall" "$(diff "$before" <(tree "$root"); tail -3 "$root.log")"
    fi
    us "$root" uninstall && cmp -s "$before" <(tree "$root") \
        && h_pass "$V $name: second uninstall is a no-op" || h_fail "$V $name: second uninstall"
}

case_alone() {
    local root
    root="$(new_root alone)"
    tree "$root" > "$root.before"
    if ! us "$root" install MISSING_RUNTIME=fail && cmp -s "$root.before" <(tree "$root") \
        && grep -q "no runtime 'kata-qemu-coco-dev', 'kata-qemu-tdx'" "$root.log"; then
        h_pass "$V alone: no kata runtime: install refuses naming both runtimes, nothing changed"
    else
        h_fail "$V alone: refusal" "$(tail -3 "$root.log")"
    fi
    if ! us "$root" install MISSING_RUNTIME=skip; then
        h_fail "$V alone: MISSING_RUNTIME=skip installs" "$(tail -3 "$root.log")"
        return
    fi
    if dump "$root" "$root.dump" > "$root.dumperr" \
        && python3 "$CHECK" dump "$root.dump" "$DUMP_LAYOUT" > "$root.check" \
        && python3 "$CHECK" noruntime "$root.dump" "$LAYOUT" "${HANDLERS[@]}" >> "$root.check"; then
        h_pass "$V alone: MISSING_RUNTIME=skip: containerd accepts it, proxy plugin and annotations in effect, no half-defined runtime"
    else
        h_fail "$V alone: skip" "$(cat "$root.dumperr" "$root.check" 2>/dev/null)"
    fi
    twice alone "$root" us "$root" install MISSING_RUNTIME=skip
    uninstalled alone "$root" "$root.before"
}

case_plain() {
    local root
    root="$(new_root plain)"
    kata "$root" "" || { h_fail "$V plain: kata-deploy (stand-in)" "$(tail -3 "$root.log")"; return; }
    tree "$root" > "$root.before"
    us "$root" install || { h_fail "$V plain: install" "$(tail -3 "$root.log")"; return; }
    h_check "$V plain: files: our settings for ${HANDLERS[*]}, kata-qemu untouched" \
        python3 "$CHECK" files "$root" "$LAYOUT" "${HANDLERS[@]}"
    accepted plain "$root"
    twice plain "$root" us "$root" install
    # The operator drops qemu-tdx from the mapping: its key goes, nothing stale.
    if us "$root" install SNAPSHOTTER_HANDLER_MAPPING=qemu-coco-dev:guest-pull \
        && python3 "$CHECK" files "$root" "$LAYOUT" kata-qemu-coco-dev > "$root.check"; then
        h_pass "$V plain: a smaller mapping removes the dropped handler's snapshotter"
    else
        h_fail "$V plain: smaller mapping" "$(cat "$root.check"; tail -3 "$root.log")"
    fi
    uninstalled plain "$root" "$root.before"
}

case_kata_first() {
    local root
    root="$(new_root kata-first)"
    kata "$root" || { h_fail "$V kata-first: kata-deploy (stand-in)" "$(tail -3 "$root.log")"; return; }
    tree "$root" > "$root.before"
    if ! make -s -C "$REPO/deploy" install-containerd DESTDIR="$root" SNAPSHOTTER_HANDLER_MAPPING="$MAPPING" \
            GLOBAL_SNAPSHOTTER="$GLOBAL" >> "$root.log" 2>&1; then
        h_fail "$V kata-first: make -C deploy install-containerd" "$(tail -3 "$root.log")"
        return
    fi
    h_check "$V kata-first: files: our settings for ${HANDLERS[*]}, kata-qemu untouched" \
        python3 "$CHECK" files "$root" "$LAYOUT" "${HANDLERS[@]}"
    h_check "$V kata-first: kata-deploy's runtimes intact" \
        python3 "$CHECK" kata "$root" "$LAYOUT" "${KATA_SHIMS[@]}"
    accepted kata-first "$root"
    twice kata-first "$root" us "$root" install
    cp -a "$root" "$WORK/$V/kata-first.installed"
    cp "$root.dump" "$WORK/$V/kata-first.installed.dump"
    if make -s -C "$REPO/deploy" uninstall-containerd DESTDIR="$root" >> "$root.log" 2>&1 \
        && cmp -s "$root.before" <(tree "$root"); then
        h_pass "$V kata-first: make -C deploy uninstall-containerd restores every file byte for byte"
    else
        h_fail "$V kata-first: make uninstall-containerd" "$(diff "$root.before" <(tree "$root"); tail -3 "$root.log")"
    fi
}

# case_us_first [SUFFIX]
case_us_first() {
    local root ref n="us-first${1:-}"
    ref="$(new_root "kata-only${1:-}")"
    kata "$ref" && dump "$ref" "$ref.dump" > "$ref.dumperr" \
        || { h_fail "$V $n: reference (kata-deploy alone)" "$(cat "$ref.dumperr"; tail -3 "$ref.log")"; return; }
    root="$(new_root "$n")"
    us "$root" install MISSING_RUNTIME=skip || { h_fail "$V $n: first install" "$(tail -3 "$root.log")"; return; }
    kata "$root" || { h_fail "$V $n: kata-deploy after us" "$(tail -3 "$root.log")"; return; }
    h_check "$V $n: kata-deploy's runtimes intact" python3 "$CHECK" kata "$root" "$LAYOUT" "${KATA_SHIMS[@]}"
    us "$root" install || { h_fail "$V $n: install after kata-deploy" "$(tail -3 "$root.log")"; return; }
    h_check "$V $n: files: our settings for ${HANDLERS[*]}" \
        python3 "$CHECK" files "$root" "$LAYOUT" "${HANDLERS[@]}"
    accepted "$n" "$root"
    twice "$n" "$root" us "$root" install
    if [[ -d "$WORK/$V/kata-first.installed" ]]; then
        h_check "$V $n: same effective config as kata-first" \
            python3 "$CHECK" same "$root" "$WORK/$V/kata-first.installed"
        h_check "$V $n: containerd's dump equals kata-first's" \
            python3 "$CHECK" same-dump "$root.dump" "$WORK/$V/kata-first.installed.dump"
    fi
    if ! us "$root" uninstall; then h_fail "$V $n: uninstall" "$(tail -3 "$root.log")"; return; fi
    h_check "$V $n: after uninstall the effective config is kata-deploy's alone" \
        python3 "$CHECK" same "$root" "$ref"
    if dump "$root" "$root.dump" > "$root.dumperr"; then
        h_check "$V $n: after uninstall containerd's dump equals kata-deploy's alone" \
            python3 "$CHECK" same-dump "$root.dump" "$ref.dump"
    else
        h_fail "$V $n: containerd accepts the config after uninstall" "$(cat "$root.dumperr")"
    fi
    tree "$root" > "$root.after"
    us "$root" uninstall && cmp -s "$root.after" <(tree "$root") \
        && h_pass "$V $n: second uninstall is a no-op" || h_fail "$V $n: second uninstall"
}

# case_kata_gone: kata-deploy, us, then kata-deploy's cleanup: on 2.x our
# drop-in alone would leave each handler a runtime holding only
# `snapshotter` (containerd would run it with runc); `make -C deploy
# reconcile-containerd` (what the DaemonSet's watch runs) drops them, and
# after kata-deploy's install again gives them their snapshotter back.
case_kata_gone() {
    local root
    local -a left=()
    root="$(new_root kata-gone)"
    kata "$root" && us "$root" install && python3 "$SIM" cleanup --root "$root" --containerd "$SEMVER" >> "$root.log" 2>&1 \
        && dump "$root" "$root.dump" > "$root.dumperr" \
        || { h_fail "$V kata-gone: kata-deploy, install, kata-deploy's cleanup" "$(cat "$root.dumperr" 2>/dev/null; tail -3 "$root.log")"; return; }
    if [[ -e "$root/opt/kata/containerd/config.d/kata-deploy.toml" || -e "$root/etc/containerd/conf.d/kata-deploy.toml" ]]; then
        # 2.4-noglob: kata-deploy's cleanup looks for its drop-in in conf.d
        # once our glob import is there, and leaves its /opt one: its
        # runtimes stay registered, and so do our settings for them.
        left=("${HANDLERS[@]}")
    elif [[ "$LAYOUT" == v3 ]]; then
        # The defect the reconcile is for, in containerd's own dump.
        python3 "$CHECK" nohalf "$root.dump" "$LAYOUT" "${HANDLERS[@]}" > "$root.half" 2>&1
        grep -q "^kata-qemu-coco-dev has no runtime_type" "$root.half" \
            && h_pass "$V kata-gone: before the reconcile containerd's dump has a runtime without runtime_type per handler (the defect)" \
            || h_fail "$V kata-gone: expected a half runtime before the reconcile"
    fi
    if make -s -C "$REPO/deploy" reconcile-containerd DESTDIR="$root" SNAPSHOTTER_HANDLER_MAPPING="$MAPPING" \
            GLOBAL_SNAPSHOTTER="$GLOBAL" >> "$root.log" 2>&1 \
        && dump "$root" "$root.dump" > "$root.dumperr" \
        && python3 "$CHECK" dump "$root.dump" "$DUMP_LAYOUT" "${left[@]}" > "$root.check" \
        && python3 "$CHECK" nohalf "$root.dump" "$LAYOUT" "${HANDLERS[@]}" >> "$root.check"; then
        h_pass "$V kata-gone: make -C deploy reconcile-containerd: no runtime without runtime_type, proxy plugin and annotations in effect"
    else
        h_fail "$V kata-gone: reconcile" "$(cat "$root.dumperr" "$root.check" 2>/dev/null; tail -3 "$root.log")"
    fi
    if kata "$root" && us "$root" reconcile; then
        accepted kata-gone-back "$root"
    else
        h_fail "$V kata-gone: kata-deploy again, reconcile" "$(tail -3 "$root.log")"
    fi
}

# case_conflict: kata-deploy maps qemu-tdx to another snapshotter. Ours
# warns; on 1.x the last writer (us) wins and uninstall puts kata-deploy's value
# back byte for byte; on 2.x the drop-in loaded later wins (docs/setup.md).
case_conflict() {
    local root want got
    root="$(new_root conflict)"
    kata "$root" "qemu-coco-dev:guest-pull,qemu-tdx:nydus" \
        || { h_fail "$V conflict: kata-deploy (stand-in)" "$(tail -3 "$root.log")"; return; }
    tree "$root" > "$root.before"
    if ! us "$root" install || ! dump "$root" "$root.dump" > "$root.dumperr"; then
        h_fail "$V conflict: install" "$(cat "$root.dumperr" 2>/dev/null; tail -3 "$root.log")"
        return
    fi
    # 2.x: the later of the two drop-ins; kata-deploy's comes later when it
    # sits in conf.d next to ours (name order), earlier when it is imported
    # by name before we added the conf.d glob.
    want=guest-pull
    [[ -f "$root/etc/containerd/conf.d/kata-deploy.toml" ]] && want=nydus
    got="$(python3 "$CHECK" snapshotter "$root.dump" "$LAYOUT" kata-qemu-tdx)"
    [[ "$got" == "$want" ]] && grep -q "runtime kata-qemu-tdx has snapshotter 'nydus'" "$root.log" \
        && h_pass "$V conflict: kata-deploy maps qemu-tdx to nydus: install warns, containerd uses $want (documented winner)" \
        || h_fail "$V conflict: winner" "got $got, want $want; $(tail -3 "$root.log")"
    uninstalled conflict "$root" "$root.before"
}

# run_version LABEL BIN_DIR VERSION LAYOUT DUMP_LAYOUT GLOBAL [CONFIG_FILTER]
run_version() {
    V="$1" BIN="$2" SEMVER="$3" LAYOUT="$4" DUMP_LAYOUT="$5" GLOBAL="$6"
    local filter="${7:-cat}" t0=$SECONDS
    mkdir -p "$WORK/$V"
    if ! "$BIN/containerd" config default 2> /dev/null | $filter > "$WORK/$V/default.toml" \
        || [[ ! -s "$WORK/$V/default.toml" ]]; then
        h_fail "$V: containerd $SEMVER config default"
        return
    fi
    echo "== $V: containerd $SEMVER default config ($(sed -n 's/^version = //p' "$WORK/$V/default.toml" | head -1), layout $LAYOUT)"
    case_alone
    case_plain
    case_kata_first
    case_us_first
    case_kata_gone
    [[ "$V" == 1.6 ]] || case_conflict
    # containerd 2.0/2.1 (kata-deploy then imports its /opt drop-in by name,
    # appending to the `imports` line we wrote): this config, kata-deploy told 2.1.
    [[ "$V" == *-noglob ]] && KATA_SEES=2.1.0 case_us_first -kata21
    h_figure "config_merge $V" "$((SECONDS - t0))" s
}

# Invoked indirectly (run_version FILTER).
# shellcheck disable=SC2317
without_confd_import() { grep -v '^imports = '; }

main() {
    local bin17 bin24 bin23 bin22
    [[ $EUID -eq 0 ]] || { h_skip "config_merge" "needs root (unshare --mount for containerd config dump)"; h_finish; }
    echo "mode: $(h_mode); default: containerd 1.6 (Debian), 1.7.35, 2.4.2 (+ without conf.d import); long adds 2.3.7 and 2.2.9"
    if command -v containerd > /dev/null; then
        run_version 1.6 "$(dirname "$(command -v containerd)")" \
            "$(containerd --version | awk '{print $3}' | sed 's/~.*//')" v2-global v2-global-nosnap true
    else
        h_fail "1.6: Debian's containerd is not installed (scripts/install-deps.sh)"
    fi
    if h_setup "build containerd 1.7.35 (go_peers.sh)" go_peer_bin containerd-1.7; then
        bin17="$(go_peer_bin containerd-1.7)"
        run_version 1.7 "$bin17" 1.7.35 v2 v2 false
    fi
    if h_setup "build containerd 2.4.2 (go_peers.sh)" go_peer_bin containerd-2.4; then
        bin24="$(go_peer_bin containerd-2.4)"
        run_version 2.4 "$bin24" 2.4.2 v3 v3 false
        run_version 2.4-noglob "$bin24" 2.4.2 v3 v3 false without_confd_import
    fi
    if h_long; then
        if h_setup "build containerd 2.3.7 (go_peers.sh)" go_peer_bin containerd-2.3; then
            bin23="$(go_peer_bin containerd-2.3)"
            run_version 2.3 "$bin23" 2.3.7 v3 v3 false
        fi
        if h_setup "build containerd 2.2.9 (go_peers.sh)" go_peer_bin containerd-2.2; then
            bin22="$(go_peer_bin containerd-2.2)"
            run_version 2.2 "$bin22" 2.2.9 v3 v3 false
        fi
    else
        h_skip "config_merge 2.3.7 and 2.2.9" "long mode only (GUEST_PULL_TEST_MODE=long)"
    fi
    h_figure "config_merge total" "$((SECONDS - START))" s
    h_finish
}

main "$@"
