# shellcheck shell=bash
# host_links.sh: install.sh and uninstall.sh on a host whose containerd
# files are reached through symbolic links that the installer pod must
# resolve as the host does: an absolute target is the host's path, not the
# pod's, and a relative one climbing above the host's / stops there. Each
# case has a decoy at the same absolute path in the test machine's own file
# system (the "pod"): a resolution done by the pod's kernel would read it,
# write beside it, or replace the link. Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

# links_host CASE CONFIG: a fake host whose config is CONFIG (a file), and
# the directory P, the same absolute path in the pod (decoys) and under the
# host root (the real files).
links_host() {
    host="$(new_host "$1" "$2")"
    P="$WORK/$1/pod"
    mkdir -p "$P" "$host$P"
}

# v3_without_kata FILE: the version 3 fixture without its kata runtime (it
# comes from another file then).
v3_without_kata() {
    sed '/runtimes.kata-qemu-coco-dev\]/,$d' "$FIXTURES/containerd-v3.toml" > "$1"
}

# kata_runtime_v3 FILE: a containerd 2.x file registering kata-qemu-coco-dev.
kata_runtime_v3() {
    printf '%s\n' 'version = 3' '' \
        '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.kata-qemu-coco-dev]' \
        '  runtime_type = "io.containerd.kata-qemu-coco-dev.v2"' > "$1"
}

test_host_links() {
    local host P orig snap
    # The host's /usr/local/bin is an absolute link: written as
    # "$HOST_ROOT/usr/local/bin/...", the binaries would land in the pod's
    # directory of that path (the decoy), not on the host. Refused before
    # any change. A relative link within the host (Fedora CoreOS's
    # /usr/local -> ../var/usrlocal) installs there.
    links_host absbin "$FIXTURES/containerd-v2.toml"
    mkdir -p "$host$P/bin" "$P/bin"
    rm -rf "$host/usr/local/bin"
    ln -s "$P/bin" "$host/usr/local/bin"
    tree "$host" > "$WORK/absbin/tree.before"
    ! run_script absbin install.sh \
        && grep -q "/usr/local/bin is reached through a symbolic link that this pod would follow out of the host's /" "$WORK/absbin/log" \
        && [[ -z "$(ls -A "$P/bin")" ]] && cmp -s "$WORK/absbin/tree.before" <(tree "$host") \
        && h_pass "PREFIX/bin an absolute link on the host: refused, nothing written (not into the pod either)" \
        || h_fail "PREFIX/bin an absolute link on the host" "$(ls "$P/bin"; tail -2 "$WORK/absbin/log")"
    links_host relprefix "$FIXTURES/containerd-v2.toml"
    mkdir -p "$host/var/usrlocal"
    mv "$host/usr/local"/* "$host/var/usrlocal/" && rmdir "$host/usr/local"
    ln -s ../var/usrlocal "$host/usr/local"
    run_script relprefix install.sh && [[ -x "$host/var/usrlocal/bin/containerd-guest-pull-grpc" ]] \
        && h_pass "/usr/local a relative link within the host: installed there" \
        || h_fail "/usr/local a relative link within the host" "$(tail -2 "$WORK/relprefix/log")"
    # containerd's config is an absolute link: its host target is merged
    # and restored; kata-deploy's backup <config>.bak, an absolute link too,
    # loses our edits in its host target; the pod's files are not touched.
    links_host absconfig ""
    mkdir -p "$host$P/cfg" "$P/cfg"
    cp "$FIXTURES/containerd-v2.toml" "$host$P/cfg/config.toml"
    cp "$FIXTURES/containerd-v3.toml" "$P/cfg/config.toml"  # decoy
    ln -s "$P/cfg/config.toml" "$host/etc/containerd/config.toml"
    run_script absconfig install.sh && [[ -L "$host/etc/containerd/config.toml" ]] \
        && [[ "$(toml_get "$host$P/cfg/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml.guest-pull-backup" \
        && cmp -s "$FIXTURES/containerd-v3.toml" "$P/cfg/config.toml" \
        && h_pass "absolute link: the config's host target is merged and backed up, the pod's file at that path untouched" \
        || h_fail "absolute link: config, install" "$(ls -l "$host/etc/containerd"; tail -3 "$WORK/absconfig/log")"
    cp "$host$P/cfg/config.toml" "$host$P/cfg/config.toml.bak"
    cp "$host$P/cfg/config.toml" "$P/cfg/config.toml.bak"  # decoy
    ln -s "$P/cfg/config.toml.bak" "$host/etc/containerd/config.toml.bak"
    snap="$WORK/absconfig/bak.decoy"
    cp "$P/cfg/config.toml.bak" "$snap"
    run_script absconfig uninstall.sh && [[ -L "$host/etc/containerd/config.toml" ]] \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host$P/cfg/config.toml" \
        && [[ -L "$host/etc/containerd/config.toml.bak" ]] \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host$P/cfg/config.toml.bak" \
        && cmp -s "$FIXTURES/containerd-v3.toml" "$P/cfg/config.toml" && cmp -s "$snap" "$P/cfg/config.toml.bak" \
        && h_pass "absolute link: uninstall restores the config's host target and removes our edits from kata-deploy's <config>.bak (a link too) in the host, the links stay" \
        || h_fail "absolute link: config and <config>.bak, uninstall" "$(ls -l "$host/etc/containerd"; diff "$FIXTURES/containerd-v2.toml" "$host$P/cfg/config.toml.bak" | head -5; tail -3 "$WORK/absconfig/log")"

    # The kata runtime is registered in an imported file that is an
    # absolute link (the pod's file at its target registers nothing): the
    # install finds the runtime in the host's file.
    links_host absimport ""
    v3_without_kata "$host/etc/containerd/config.toml"
    sed -i 's|^version = 3$|version = 3\nimports = ["/etc/containerd/kata.toml"]|' "$host/etc/containerd/config.toml"
    orig="$WORK/absimport/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    kata_runtime_v3 "$host$P/kata.toml"
    printf 'version = 3\n' > "$P/kata.toml"  # decoy
    ln -s "$P/kata.toml" "$host/etc/containerd/kata.toml"
    run_script absimport install.sh \
        && [[ "$(toml_get "$host/etc/containerd/conf.d/guest-pull.toml" -- plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && run_script absimport uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && [[ -L "$host/etc/containerd/kata.toml" ]] \
        && h_pass "absolute link: an imported file's host target is read (its runtime gets the snapshotter); uninstall restores the config" \
        || h_fail "absolute link: imported file" "$(tail -3 "$WORK/absimport/log")"

    # The same through a relative link climbing above the host's / (from
    # the pod, it would climb above the host root into the pod's /): it
    # stops at the host's /.
    links_host escimport ""
    v3_without_kata "$host/etc/containerd/config.toml"
    sed -i 's|^version = 3$|version = 3\nimports = ["/etc/containerd/kata.toml"]|' "$host/etc/containerd/config.toml"
    kata_runtime_v3 "$host$P/kata.toml"
    printf 'version = 3\n' > "$P/kata.toml"  # decoy
    ln -s "../../../../../../../../../../../../../../../../..$P/kata.toml" "$host/etc/containerd/kata.toml"
    run_script escimport install.sh \
        && [[ "$(toml_get "$host/etc/containerd/conf.d/guest-pull.toml" -- plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && h_pass "a relative link climbing above the host's /: followed within the host root, not out of it" \
        || h_fail "a relative link climbing above the host's /" "$(tail -3 "$WORK/escimport/log")"

    # The drop-in directory conf.d is an absolute link (a config volume),
    # imported by its glob and holding kata-deploy's drop-in, which
    # registers the runtime: it is read there, our drop-in is written there
    # and removed again; the pod's directory at that path stays empty.
    links_host absconfd ""
    v3_without_kata "$host/etc/containerd/config.toml"
    sed -i 's|^version = 3$|version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]|' "$host/etc/containerd/config.toml"
    orig="$WORK/absconfd/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    mkdir -p "$host$P/confd" "$P/confd"
    kata_runtime_v3 "$host$P/confd/kata-deploy.toml"
    ln -s "$P/confd" "$host/etc/containerd/conf.d"
    run_script absconfd install.sh && [[ -L "$host/etc/containerd/conf.d" ]] \
        && [[ "$(toml_get "$host$P/confd/guest-pull.toml" -- plugins io.containerd.cri.v1.runtime containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && [[ -z "$(ls -A "$P/confd")" ]] \
        && h_pass "absolute link: the drop-in directory's host target is globbed and gets our drop-in, the pod's directory stays empty" \
        || h_fail "absolute link: drop-in directory, install" "$(ls -la "$host$P/confd" "$P/confd"; tail -3 "$WORK/absconfd/log")"
    run_script absconfd uninstall.sh && [[ -L "$host/etc/containerd/conf.d" ]] \
        && [[ ! -e "$host$P/confd/guest-pull.toml" && -f "$host$P/confd/kata-deploy.toml" ]] \
        && cmp -s "$orig" "$host/etc/containerd/config.toml" && [[ -z "$(ls -A "$P/confd")" ]] \
        && h_pass "absolute link: uninstall removes our drop-in from the drop-in directory's host target, keeps kata-deploy's, restores the config" \
        || h_fail "absolute link: drop-in directory, uninstall" "$(ls -la "$host$P/confd" "$P/confd"; tail -3 "$WORK/absconfd/log")"
    # lib.sh's host_realpath (bash, for the scripts) and host_path.py (for
    # the Python tools) are one walk written twice: they agree on absolute
    # and relative links, `..` above the host's /, missing parts and a loop.
    local root paths=() p bash_out py_out differ=""
    root="$WORK/twins"
    mkdir -p "$root/etc/containerd/real" "$root/opt/cfg"
    ln -s /opt/cfg "$root/etc/containerd/abs"
    ln -s real "$root/etc/containerd/rel"
    ln -s ../../../../opt "$root/etc/containerd/climb"
    ln -s loop2 "$root/etc/containerd/loop1"
    ln -s loop1 "$root/etc/containerd/loop2"
    paths=(/etc/containerd/abs/x.toml /etc/containerd/rel/x.toml /etc/containerd/climb/cfg
           /etc/containerd/missing/y /etc/../etc/containerd/./rel /etc/containerd/loop1/z /)
    for p in "${paths[@]}"; do
        # shellcheck disable=SC1091,SC2034  # lib.sh: checked on its own
        bash_out="$(HOST_ROOT="$root"; source "$SCRIPTS/lib.sh"; host_realpath "$p")" || bash_out="fail"
        py_out="$(python3 "$SCRIPTS/host_path.py" "$root" "$p")" || py_out="fail"
        [[ "$bash_out" == "$py_out" ]] || differ+="$p: bash $bash_out, python $py_out; "
    done
    [[ -z "$differ" ]] \
        && h_pass "host_realpath (bash) and host_path.py agree on ${#paths[@]} host paths through links" \
        || h_fail "host_realpath and host_path.py differ" "$differ"
}
