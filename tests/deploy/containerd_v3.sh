# shellcheck shell=bash
# containerd_v3.sh: install.sh / uninstall.sh on a containerd config version
# 3 (containerd 2.x): the drop-in import, the merged settings key by key, a
# glob import that already covers the drop-in, one that does not, classes
# read as Go reads them, a malformed glob, a relative one, a hidden file one
# names, a nested import. Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_install_v3() {
    local host main dropin v
    host="$(new_host v3 "$FIXTURES/containerd-v3.toml")"
    if ! run_script v3 install.sh; then h_fail "v3: install.sh succeeds" "$(tail -5 "$WORK/v3/log")"; return; fi
    h_pass "v3: install.sh succeeds"
    main="$host/etc/containerd/config.toml"
    dropin="$host/etc/containerd/conf.d/guest-pull.toml"
    # containerd 1.6 does not know the 2.x plugin IDs (its `config dump`
    # loads a version 3 file but ignores io.containerd.cri.v1.*), so version 3
    # is checked with a TOML parser, merging the drop-in key by key as
    # containerd 2.x does.
    [[ "$(toml_get "$main" -- imports)" == '["/etc/containerd/conf.d/*.toml"]' ]] \
        && h_pass "v3: main config imports the conf.d glob (as kata-deploy expects)" || h_fail "v3: imports" "$(toml_get "$main" -- imports)"
    diff <(grep -v '^imports = ' "$main") "$FIXTURES/containerd-v3.toml" > /dev/null \
        && h_pass "v3: main config otherwise unchanged" || h_fail "v3: main config changed beyond imports"
    local k ok=true
    for k in "proxy_plugins guest-pull type=\"snapshot\"" \
             "proxy_plugins guest-pull address=\"/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock\"" \
             "plugins io.containerd.cri.v1.images disable_snapshot_annotations=false" \
             "plugins io.containerd.cri.v1.images discard_unpacked_layers=false" \
             "plugins io.containerd.cri.v1.images snapshotter=\"overlayfs\"" \
             "plugins io.containerd.cri.v1.images runtime_platforms kata-qemu-coco-dev snapshotter=\"guest-pull\"" \
             "plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter=\"guest-pull\"" \
             "plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev runtime_type=\"io.containerd.kata-qemu-coco-dev.v2\""; do
        local path="${k%%=*}" want="${k#*=}"
        # shellcheck disable=SC2086
        v="$(toml_get "$main" "$dropin" -- $path 2>&1)" || true
        [[ "$v" == "$want" ]] || { ok=false; h_fail "v3: effective $path" "got $v, want $want"; }
    done
    $ok && h_pass "v3: effective settings (main + drop-in merged key by key)"
    [[ "$(sed -n 3p "$dropin")" == "version = 3" ]] && h_pass "v3: drop-in declares version 3" || h_fail "v3: drop-in version"
    tree "$host" > "$WORK/v3/tree.once"
    run_script v3 install.sh && cmp -s "$WORK/v3/tree.once" <(tree "$host") \
        && h_pass "v3: second install is byte-identical" || h_fail "v3: second install"
    run_script v3 uninstall.sh && cmp -s "$FIXTURES/containerd-v3.toml" "$main" && [[ ! -e "$dropin" ]] \
        && h_pass "v3: uninstall restores the config and removes the drop-in" || h_fail "v3: uninstall"
    # An existing glob import (containerd 2.2 default) needs no main-file edit.
    host="$(new_host v3glob "")"
    { echo "version = 3"; echo "imports = ['/etc/containerd/conf.d/*.toml']"; sed 1,3d "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/v3glob/orig.toml"
    run_script v3glob install.sh && cmp -s "$WORK/v3glob/orig.toml" "$host/etc/containerd/config.toml" \
        && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && h_pass "v3: conf.d glob import already covers the drop-in; main file untouched" || h_fail "v3: glob import"
    # A glob one directory up does not: containerd's `*` (Go's filepath.Glob)
    # stays within one path element, so the drop-in must be imported.
    host="$(new_host v3upglob "")"
    { echo "version = 3"; echo "imports = ['/etc/containerd/*.toml']"; sed 1,3d "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
    run_script v3upglob install.sh \
        && [[ "$(toml_get "$host/etc/containerd/config.toml" -- imports)" == '["/etc/containerd/*.toml", "/etc/containerd/conf.d/*.toml"]' ]] \
        && h_pass "v3: a glob of the parent directory does not cover conf.d: the conf.d glob is added" \
        || h_fail "v3: parent directory glob" "$(toml_get "$host/etc/containerd/config.toml" -- imports; tail -2 "$WORK/v3upglob/log")"
    # Go's classes: `[^g]` excludes guest-pull.toml (fnmatch reads it as
    # the class of ^ and g, which would leave the drop-in unimported), and
    # `[!g]` is the class of ! and g (it covers guest-pull.toml).
    local cls want
    for cls in '^g:["/etc/containerd/conf.d/[^g]*.toml", "/etc/containerd/conf.d/*.toml"]' \
            '!g:["/etc/containerd/conf.d/[!g]*.toml"]'; do
        want="${cls#*:}"; cls="${cls%%:*}"
        name="v3class${cls:0:1}"; name="${name//^/caret}"; name="${name//!/bang}"
        host="$(new_host "$name" "")"
        { echo "version = 3"; echo "imports = ['/etc/containerd/conf.d/[$cls]*.toml']"; sed 1,3d "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
        run_script "$name" install.sh \
            && [[ "$(toml_get "$host/etc/containerd/config.toml" -- imports)" == "$want" ]] \
            && h_pass "v3: an imports glob with [$cls] is read as Go reads it: imports $want" \
            || h_fail "v3: imports glob [$cls]" "$(toml_get "$host/etc/containerd/config.toml" -- imports; tail -2 "$WORK/$name/log")"
    done
    # A glob Go refuses: containerd does not start; install says why and
    # changes nothing.
    host="$(new_host v3badglob "")"
    { echo "version = 3"; echo "imports = ['/etc/containerd/conf.d/[*.toml']"; sed 1,3d "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/v3badglob/orig.toml"
    if ! run_script v3badglob install.sh && grep -q "is no valid glob" "$WORK/v3badglob/log" \
            && cmp -s "$WORK/v3badglob/orig.toml" "$host/etc/containerd/config.toml" \
            && [[ ! -e "$host/etc/containerd/conf.d/guest-pull.toml" ]]; then
        h_pass "v3: a malformed imports glob is refused with its reason; nothing written"
    else
        h_fail "v3: malformed imports glob" "$(tail -3 "$WORK/v3badglob/log")"
    fi
    # kata's runtimes in a file a relative glob names, as containerd resolves
    # it: relative to the config's directory, and (Go's Glob, unlike
    # Python's by default) names starting with a dot included.
    local name file what
    for name in v3relglob:kata-deploy.toml:"a relative glob import is resolved in the config's directory" \
        v3hidden:.kata-deploy.toml:"a hidden file matched by a glob import is read"; do
        IFS=: read -r name file what <<<"$name"
        host="$(new_host "$name" "")"
        mkdir -p "$host/etc/containerd/kata"
        { echo "version = 3"; echo "imports = ['kata/*.toml']"; sed -n 4,13p "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
        { echo "version = 3"; sed -n '15,$p' "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/kata/$file"
        run_script "$name" install.sh \
            && [[ "$(toml_get "$host/etc/containerd/conf.d/guest-pull.toml" -- plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
            && h_pass "v3: $what: its runtime is found" \
            || h_fail "v3: $what" "$(tail -2 "$WORK/$name/log")"
    done
    # containerd follows imports of imported files too, each relative to the
    # file naming it.
    host="$(new_host v3nested "")"
    mkdir -p "$host/etc/containerd/kata/deep"
    { echo "version = 3"; echo "imports = ['kata/*.toml']"; sed -n 4,13p "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
    printf 'version = 3\nimports = ["deep/kata-deploy.toml"]\n' > "$host/etc/containerd/kata/a.toml"
    { echo "version = 3"; sed -n '15,$p' "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/kata/deep/kata-deploy.toml"
    run_script v3nested install.sh \
        && [[ "$(toml_get "$host/etc/containerd/conf.d/guest-pull.toml" -- plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && h_pass "v3: a runtime registered in a file an imported file imports is found" \
        || h_fail "v3: nested import" "$(tail -2 "$WORK/v3nested/log")"
}
