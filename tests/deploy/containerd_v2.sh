# shellcheck shell=bash
# containerd_v2.sh: install.sh / uninstall.sh on a containerd config version
# 2 (containerd 1.6/1.7), checked by the real containerd 1.6 (config dump):
# the merge, idempotence, byte-for-byte restore, a sparse config, a glob
# import matching the config itself, and the global-snapshotter option.
# Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_install_v2() {
    local host calls expected
    host="$(new_host v2 "$FIXTURES/containerd-v2.toml")"
    tree "$host" > "$WORK/v2/tree.before"
    if ! run_script v2 install.sh; then h_fail "v2: install.sh succeeds" "$(tail -5 "$WORK/v2/log")"; return; fi
    h_pass "v2: install.sh succeeds"

    local bad=""
    for f in usr/local/bin/containerd-guest-pull-grpc:755 usr/local/bin/guest-pull-overlayfs:755 \
            usr/local/bin/guest-pull-verity:755 etc/systemd/system/guest-pull-snapshotter.service:644 \
            etc/containerd-guest-pull-grpc/config.toml:644 etc/containerd/conf.d/guest-pull.toml:644 \
            etc/containerd/config.toml:640 etc/containerd/config.toml.guest-pull-backup:640; do
        [[ -f "$host/${f%:*}" && "$(stat -c %a "$host/${f%:*}")" == "${f#*:}" ]] || bad+=" ${f%:*}"
    done
    [[ -z "$bad" ]] && h_pass "v2: files in place with the right modes" || h_fail "v2: files/modes" "$bad"
    # systemctl help guest-pull-snapshotter opens the unit's Documentation=.
    h_check "v2: the page the unit's Documentation= names is installed (the docs in /usr/local/share/doc)" \
        unit_docs_present "$host" "$host/etc/systemd/system/guest-pull-snapshotter.service"
    h_check "v2: backup is the original config" cmp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml.guest-pull-backup"
    [[ ! -e "$WORK/EXECUTED" ]] && h_pass "v2: installed binaries were never executed" \
        || h_fail "v2: binaries executed" "$(cat "$WORK/EXECUTED")"

    expected="show --property=Version
show --property=LoadState --value containerd.service
daemon-reload
enable guest-pull-snapshotter.service
restart guest-pull-snapshotter.service
is-active --quiet guest-pull-snapshotter.service
restart containerd.service
is-active --quiet containerd.service"
    calls="$(cat "$WORK/v2/sysd/calls")"
    [[ "$calls" == "$expected" ]] && h_pass "v2: systemctl calls (snapshotter before containerd)" \
        || h_fail "v2: systemctl calls" "$(tr '\n' ';' <<< "$calls")"

    # The real containerd 1.6 reads the merged config and the drop-in.
    local dump
    if ! dump="$(containerd_dump "$host" 2>&1)"; then h_fail "v2: containerd accepts the merged config" "$dump"; return; fi
    h_pass "v2: containerd accepts the merged config"
    grep -q '^  \[proxy_plugins.guest-pull\]' <<< "$dump" \
        && grep -q 'address = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"' <<< "$dump" \
        && grep -A2 '\[proxy_plugins.guest-pull\]' <<< "$dump" | grep -q 'type = "snapshot"' \
        && h_pass "v2: containerd sees proxy plugin guest-pull" || h_fail "v2: proxy plugin in dump"
    grep -q '^      disable_snapshot_annotations = false' <<< "$dump" \
        && grep -q '^      discard_unpacked_layers = false' <<< "$dump" \
        && h_pass "v2: containerd sees disable_snapshot_annotations/discard_unpacked_layers = false" \
        || h_fail "v2: CRI keys in dump"
    grep -q 'runtime_type = "io.containerd.kata-qemu-coco-dev.v2"' <<< "$dump" \
        && grep -q 'ConfigPath = "/opt/kata/share/defaults/kata-containers/configuration-qemu-coco-dev.toml"' <<< "$dump" \
        && grep -q 'config_path = "/etc/containerd/certs.d"' <<< "$dump" \
        && grep -q 'sandbox_image = "registry.k8s.io/pause:3.9"' <<< "$dump" \
        && h_pass "v2: kata runtime and other CRI settings survive" || h_fail "v2: host settings lost"
    # Only the intended lines differ between containerd's view before and after.
    local before_dump changed
    mkdir -p "$WORK/v2/orig/etc/containerd"
    cp "$FIXTURES/containerd-v2.toml" "$WORK/v2/orig/etc/containerd/config.toml"
    before_dump="$(containerd_dump "$WORK/v2/orig")"
    # (containerd lists the loaded files in map order: compare imports apart.)
    changed="$(diff <(grep -v '^imports = ' <<< "$before_dump") <(grep -v '^imports = ' <<< "$dump") \
        | grep '^[<>] *[^ ]' | sed 's/^\([<>]\) */\1 /' | LC_ALL=C sort | tr '\n' ';' || true)"
    [[ "$changed" == '< disable_snapshot_annotations = true;< discard_unpacked_layers = true;> [proxy_plugins.guest-pull];> address = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock";> disable_snapshot_annotations = false;> discard_unpacked_layers = false;> type = "snapshot";' ]] \
        && grep '^imports = ' <<< "$dump" | grep -q '"/etc/containerd/conf.d/guest-pull.toml"' \
        && h_pass "v2: containerd's effective config changes only where intended" \
        || h_fail "v2: unexpected effective changes" "$changed"
    # containerd 1.6 has no per-runtime snapshotter, so its dump cannot show
    # it: check the file itself.
    [[ "$(toml_get "$host/etc/containerd/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && h_pass "v2: runtime kata-qemu-coco-dev has snapshotter guest-pull (1.7+)" || h_fail "v2: runtime snapshotter"

    # Installing twice equals installing once.
    tree "$host" > "$WORK/v2/tree.once"
    : > "$WORK/v2/sysd/calls"
    if run_script v2 install.sh; then
        tree "$host" > "$WORK/v2/tree.twice"
        h_check "v2: second install leaves the host tree byte-identical" cmp "$WORK/v2/tree.once" "$WORK/v2/tree.twice"
        ! grep -q '^restart' "$WORK/v2/sysd/calls" && h_pass "v2: second install restarts nothing" \
            || h_fail "v2: second install restarted" "$(tr '\n' ';' < "$WORK/v2/sysd/calls")"
    else
        h_fail "v2: second install succeeds" "$(tail -5 "$WORK/v2/log")"
    fi

    # Uninstall restores everything but the data directory.
    : > "$WORK/v2/sysd/calls"
    if ! run_script v2 uninstall.sh; then h_fail "v2: uninstall.sh succeeds" "$(tail -5 "$WORK/v2/log")"; return; fi
    h_pass "v2: uninstall.sh succeeds"
    h_check "v2: uninstall restores containerd's config byte for byte" cmp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml"
    [[ "$(stat -c %a "$host/etc/containerd/config.toml")" == 640 ]] && h_pass "v2: restored config keeps its mode" || h_fail "v2: restored mode"
    tree "$host" > "$WORK/v2/tree.after"
    h_check "v2: host tree after uninstall equals the tree before install (data dir kept)" \
        diff "$WORK/v2/tree.before" "$WORK/v2/tree.after"
    expected="disable --now guest-pull-snapshotter.service
daemon-reload
restart containerd.service"
    calls="$(cat "$WORK/v2/sysd/calls")"
    [[ "$calls" == "$expected" ]] && h_pass "v2: uninstall systemctl calls" || h_fail "v2: uninstall calls" "$(tr '\n' ';' <<< "$calls")"
    : > "$WORK/v2/sysd/calls"
    run_script v2 uninstall.sh && [[ ! -s "$WORK/v2/sysd/calls" ]] \
        && cmp -s "$WORK/v2/tree.before" <(tree "$host") \
        && h_pass "v2: second uninstall is a no-op" || h_fail "v2: second uninstall"
}

test_install_v2_sparse() {
    local host dump
    host="$(new_host sparse "$FIXTURES/containerd-v2-sparse.toml")"
    printf 'version = 2\n[metrics]\n  address = "127.0.0.1:1338"\n' > "$host/etc/containerd/other.toml"
    if ! run_script sparse install.sh; then h_fail "sparse: install.sh succeeds" "$(tail -5 "$WORK/sparse/log")"; return; fi
    if dump="$(containerd_dump "$host" 2>&1)" && grep -q '\[proxy_plugins.guest-pull\]' <<< "$dump" \
        && grep -q 'address = "127.0.0.1:1338"' <<< "$dump" \
        && grep -q '^      discard_unpacked_layers = false' <<< "$dump" \
        && grep -q 'runtime_type = "io.containerd.kata-qemu-coco-dev.v2"' <<< "$dump"; then
        h_pass "sparse: existing multi-line imports extended, missing CRI table added; containerd accepts it"
    else
        h_fail "sparse: containerd view" "$(head -5 <<< "$dump")"
    fi
    run_script sparse uninstall.sh && cmp -s "$FIXTURES/containerd-v2-sparse.toml" "$host/etc/containerd/config.toml" \
        && h_pass "sparse: uninstall restores the config" || h_fail "sparse: restore"
}

# A relative glob import naming our drop-in's directory: containerd 1.6 and
# 1.7 before 1.7.29 resolve it against their working directory, not the
# config's (later releases: the config's), so it does not count as loading
# the drop-in: an import of our own is added (containerd loads a file once).
test_install_v2_relative_glob() {
    local host dump
    host="$(new_host v2relglob "")"
    sed 's|^version = 2$|version = 2\nimports = ["conf.d/*.toml"]|' "$FIXTURES/containerd-v2.toml" \
        > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/v2relglob/orig.toml"
    if run_script v2relglob install.sh && dump="$(containerd_dump "$host" 2>&1)" \
        && grep -q '^  \[proxy_plugins.guest-pull\]' <<< "$dump"; then
        h_pass "relative glob import (version 2): our import added, containerd 1.6 loads the drop-in"
    else
        h_fail "relative glob import (version 2): install" "$(tail -2 "$WORK/v2relglob/log"; grep imports "$host/etc/containerd/config.toml")"
    fi
    run_script v2relglob uninstall.sh && cmp -s "$WORK/v2relglob/orig.toml" "$host/etc/containerd/config.toml" \
        && h_pass "relative glob import (version 2): uninstall restores the config" \
        || h_fail "relative glob import (version 2): restore"
}

# A glob import that matches the main config itself: containerd loads each
# file once, so the config does not import its own CRI settings (which
# containerd 1.x would refuse to merge into).
test_install_v2_self_glob() {
    local host dump glob name
    # "//" as containerd reads it (filepath.Clean): the same directory.
    for glob in /etc/containerd/*.toml //etc/containerd/*.toml; do
        name="selfglob${glob%%etc*}"; name="${name//\//s}"
        host="$(new_host "$name" "")"
        sed "s|^version = 2\$|version = 2\nimports = [\"$glob\"]|" "$FIXTURES/containerd-v2.toml" \
            > "$host/etc/containerd/config.toml"
        cp "$host/etc/containerd/config.toml" "$WORK/$name/orig.toml"
        if run_script "$name" install.sh && dump="$(containerd_dump "$host" 2>&1)" \
            && grep -q '^  \[proxy_plugins.guest-pull\]' <<< "$dump" \
            && grep -q '^      discard_unpacked_layers = false' <<< "$dump"; then
            h_pass "self glob $glob: an imports glob matching the main config is no import of it; merged, containerd sees it"
        else
            h_fail "self glob $glob: install" "$(tail -2 "$WORK/$name/log")"
        fi
        run_script "$name" uninstall.sh && cmp -s "$WORK/$name/orig.toml" "$host/etc/containerd/config.toml" \
            && h_pass "self glob $glob: uninstall restores the config" || h_fail "self glob $glob: restore"
    done
}

test_global_snapshotter() {
    local host dump
    host="$(new_host global "$FIXTURES/containerd-v2.toml")"
    run_script global install.sh GLOBAL_SNAPSHOTTER=true || { h_fail "global: install" "$(tail -3 "$WORK/global/log")"; return; }
    dump="$(containerd_dump "$host" 2>&1)"
    grep -q '^      snapshotter = "guest-pull"' <<< "$dump" \
        && h_pass "global: containerd 1.6 sees guest-pull as the CRI snapshotter" || h_fail "global: snapshotter in dump"
}
