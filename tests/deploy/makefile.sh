# shellcheck shell=bash
# makefile.sh: deploy/Makefile install / uninstall into a DESTDIR, with
# dummy binaries and with the real ones and their library bundle. Sourced by
# tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_makefile() {
    local dest="$WORK/make/dest" bin="$WORK/make/bin" b
    mkdir -p "$bin"
    for b in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        # The daemon takes any kept config (make install's check-daemon-config).
        printf '#!/bin/sh\n[ "$1" = --check-config ] && exit 0\nexit 1\n' > "$bin/$b"
        chmod 0700 "$bin/$b"   # install must set 0755 itself
    done
    if make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > "$WORK/make/log" 2>&1 \
        && [[ "$(stat -c %a "$dest/usr/local/bin/guest-pull-overlayfs")" == 755 ]] \
        && [[ "$(stat -c %a "$dest/etc/systemd/system/guest-pull-snapshotter.service")" == 644 ]] \
        && cmp -s "$REPO/deploy/config/config.toml" "$dest/etc/containerd-guest-pull-grpc/config.toml"; then
        h_pass "make install: binaries, unit, default config"
    else
        h_fail "make install" "$(tail -3 "$WORK/make/log")"; return
    fi
    h_check "make install: the page the unit's Documentation= names is installed" \
        unit_docs_present "$dest" "$dest/etc/systemd/system/guest-pull-snapshotter.service"
    echo "# mine" >> "$dest/etc/containerd-guest-pull-grpc/config.toml"
    make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && grep -q '# mine' "$dest/etc/containerd-guest-pull-grpc/config.toml" \
        && h_pass "make install: never overwrites an existing config" || h_fail "make install: config overwritten"
    test_makefile_config_written_whole
    test_makefile_old_daemon
    test_makefile_bin_unit_written_whole "$bin"
    make -s -C "$REPO/deploy" install DESTDIR="$WORK/make/prefix" PREFIX=/usr NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && grep -q '^ExecStart=/usr/bin/containerd-guest-pull-grpc ' "$WORK/make/prefix/etc/systemd/system/guest-pull-snapshotter.service" \
        && unit_docs_present "$WORK/make/prefix" "$WORK/make/prefix/etc/systemd/system/guest-pull-snapshotter.service" > /dev/null \
        && h_pass "make install: unit follows PREFIX" || h_fail "make install: PREFIX"
    make -s -C "$REPO/deploy" install DESTDIR="$WORK/make/confdir" CONFDIR=/etc/guest-pull NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && [[ -f "$WORK/make/confdir/etc/guest-pull/config.toml" ]] \
        && grep -q ' --config /etc/guest-pull/config.toml$' "$WORK/make/confdir/etc/systemd/system/guest-pull-snapshotter.service" \
        && h_pass "make install: unit follows CONFDIR" || h_fail "make install: CONFDIR" \
            "$(grep ExecStart= "$WORK/make/confdir/etc/systemd/system/guest-pull-snapshotter.service")"
    # An earlier release's write cut short (.NAME.XXXXXX, lib.sh
    # remove_old_write_leftovers): the next make install removes it; a name
    # someone chose stays.
    echo partial > "$dest/usr/local/bin/.guest-pull-overlayfs.Zz9Zz9" && chmod 0600 "$dest/usr/local/bin/.guest-pull-overlayfs.Zz9Zz9"
    echo mine > "$dest/usr/local/bin/.guest-pull-overlayfs.backup" && chmod 0755 "$dest/usr/local/bin/.guest-pull-overlayfs.backup"
    make -s -C "$REPO/deploy" install-bin DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && [[ ! -e "$dest/usr/local/bin/.guest-pull-overlayfs.Zz9Zz9" ]] \
        && rm "$dest/usr/local/bin/.guest-pull-overlayfs.backup" \
        && h_pass "make install: removes an earlier release's temporary file of a write cut short, keeps a chosen name" \
        || h_fail "make install: earlier release's temporary file" "$(ls -lA "$dest/usr/local/bin")"
    # With the temporary files of writes cut short beside them (of this
    # release and of earlier ones).
    echo partial > "$dest/usr/local/bin/.guest-pull-verity.guest-pull-tmp.Ab3xYz"
    echo partial > "$dest/etc/systemd/system/.guest-pull-snapshotter.service.guest-pull-tmp.q1W2e3"
    echo partial > "$dest/usr/local/bin/.containerd-guest-pull-grpc.Ab3xYz" && chmod 0755 "$dest/usr/local/bin/.containerd-guest-pull-grpc.Ab3xYz"
    echo partial > "$dest/etc/systemd/system/.guest-pull-snapshotter.service.q1W2e3" && chmod 0600 "$dest/etc/systemd/system/.guest-pull-snapshotter.service.q1W2e3"
    make -s -C "$REPO/deploy" uninstall DESTDIR="$dest" > /dev/null 2>&1 \
        && [[ -z "$(find "$dest" -type f ! -name config.toml)" ]] \
        && h_pass "make uninstall: removes binaries and unit (and their writes cut short), keeps the modified config" \
        || h_fail "make uninstall" "$(find "$dest" -type f)"
    test_makefile_bundle
    test_makefile_operator_messages "$bin"
    test_makefile_containerd "$bin"
    test_makefile_after_daemonset
    test_makefile_blanks "$bin"
}

# test_makefile_blanks BIN_DIR: make takes $(dir ...) of BINDIR and of
# containerd's config, and systemd splits the unit's ExecStart= and
# Documentation=: PREFIX="/opt/a b" put the libraries in "/opt b/lib",
# beside no binary, and with CONTAINERD_CONFIG="/etc/a b/config.toml"
# uninstall left our edits in it. Such a path is refused up front, naming
# the setting, with nothing done; so is a checkout whose path holds a
# blank. DESTDIR and BIN_DIR, only used quoted, still work with one.
test_makefile_blanks() {
    local bin="$1" setting out rc dest="$WORK/mkblank" target host
    local tab=$'\t'
    mkdir -p "$dest"
    for setting in "PREFIX=/opt/a b" "BINDIR=/usr/local/b in" "DOCDIR=/usr/share/doc/g p" "CONFDIR=/etc/a${tab}b" \
                   "CONTAINERD_CONFIG=/etc/a b/config.toml"; do
        for target in install uninstall; do
            rc=0
            out="$(make -s -C "$REPO/deploy" "$target" DESTDIR="$dest/tree" NO_BUILD=1 BIN_DIR="$bin" "$setting" 2>&1)" || rc=$?
            [[ $rc -ne 0 ]] && grep -qF "${setting%%=*}=\"${setting#*=}\" holds a space or a tab" <<< "$out" \
                && [[ -z "$(ls -A "$dest")" ]] \
                && h_pass "make $target, ${setting%%=*} with a blank: refused up front, naming it, nothing done" \
                || h_fail "make $target, ${setting%%=*} with a blank" "$(ls -A "$dest"; tail -n 3 <<< "$out")"
            rm -rf "${dest:?}"/* "${dest:?}"/.[!.]*
        done
    done
    # DESTDIR and BIN_DIR with a blank: install and uninstall as without.
    mkdir -p "$dest/b in" "$dest/a b/etc/containerd"
    cp "$bin"/* "$dest/b in/"
    cp "$FIXTURES/containerd-v2.toml" "$dest/a b/etc/containerd/config.toml"
    host="$dest/a b"
    make -s -C "$REPO/deploy" install DESTDIR="$host" NO_BUILD=1 BIN_DIR="$dest/b in" > "$dest/log" 2>&1 \
        && [[ -x "$host/usr/local/bin/guest-pull-overlayfs" ]] && grep -q guest-pull-snapshotter "$host/etc/containerd/config.toml" \
        && make -s -C "$REPO/deploy" uninstall DESTDIR="$host" >> "$dest/log" 2>&1 \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" \
        && [[ -z "$(find "$host" -type f ! -path "$host/etc/containerd/config.toml")" ]] \
        && h_pass "make install and uninstall, DESTDIR and BIN_DIR with a blank: work as without" \
        || h_fail "make, DESTDIR and BIN_DIR with a blank" "$(find "$host" -type f | head -5; tail -n 3 "$dest/log")"
    # A checkout whose path holds a blank.
    mkdir -p "$dest/x y"
    cp -r "$REPO/deploy" "$dest/x y/deploy"
    rc=0
    out="$(make -s -C "$dest/x y/deploy" install DESTDIR="$WORK/mkblank-tree" NO_BUILD=1 BIN_DIR="$bin" 2>&1)" || rc=$?
    [[ $rc -ne 0 ]] && grep -q "make cannot work in a checkout whose path holds a space or a tab" <<< "$out" \
        && [[ ! -e "$WORK/mkblank-tree" ]] \
        && h_pass "make in a checkout whose path holds a blank: refused up front" \
        || h_fail "make in a checkout whose path holds a blank" "$(tail -n 3 <<< "$out")"
}

# test_makefile_after_daemonset: make uninstall on a node the DaemonSet
# installed (its pod gone without a preStop: docs/operations.md says to run
# it there) removes the installer's records too. The record naming that
# pod (installed-by-pod) was left: a later pod whose install failed then
# took the gone pod's install for the current one, and its preStop left
# its own failed install on the node.
test_makefile_after_daemonset() {
    local host log="$WORK/mkpod/log"
    host="$(new_host mkpod "$FIXTURES/containerd-v2.toml")"
    run_script mkpod install.sh POD_UID=pod-a && run_make mkpod uninstall \
        && [[ ! -e "$host/etc/containerd-guest-pull-grpc" ]] \
        && grep -q "installed-by-pod: the install was DaemonSet pod pod-a's; if that pod still runs, it installs again when it restarts: keep its DaemonSet off this node" "$log" \
        && h_pass "make uninstall after a DaemonSet install: the installer's records go too, and it names the pod" \
        || h_fail "make uninstall after a DaemonSet install" "$(ls -A "$host/etc/containerd-guest-pull-grpc" 2>&1; tail -n 3 "$log")"
    echo 3 > "$WORK/mkpod/sysd/is-active-rc.guest-pull-snapshotter.service"
    ! run_script mkpod install.sh POD_UID=pod-b && [[ -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
        && run_script mkpod uninstall.sh POD_UID=pod-b \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" \
        && ! grep -q "install is the current one" "$log" \
        && h_pass "make uninstall after a DaemonSet install: a later pod's failed install is uninstalled by its preStop" \
        || h_fail "make uninstall after a DaemonSet install: a later pod's failed install" "$(tail -n 3 "$log")"
}

# test_makefile_containerd BIN_DIR: make install and containerd's config.
# What install-containerd refuses is refused before anything is installed
# (it used to install the binaries, unit, config and docs first); a failure
# after the files are in place names them, says containerd's config is not
# set up and what finishes or undoes the install (it said "nothing was
# changed"); warnings of the merge are printed once; a config that is an
# absolute link is found inside DESTDIR; uninstall after containerd's config
# was removed still removes our files beside it.
test_makefile_containerd() {
    local bin="$1" host cfg log
    host="$(new_host mkrefuse "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    refused mkrefuse "make install, no Kata runtime: refused before the build and before anything is installed, saying what to do" \
        "ERROR: cannot merge /etc/containerd/config.toml: a runtime of 'qemu-coco-dev:guest-pull' is not registered" \
        "make: nothing was installed: containerd's config cannot take guest-pull's settings" "CONTAINERD_CONFIG= to install without" \
        '!NO_BUILD set' '!^install ' '!make install: installed' \
        -- run_make mkrefuse install NO_BUILD=1 BIN_DIR="$bin"
    # make -j ran install's steps side by side: the binaries went in while
    # the check refused.
    host="$(new_host mkrefusej "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    refused mkrefusej "make -j4 install, no Kata runtime: still refused before anything is installed" \
        "make: nothing was installed: containerd's config cannot take guest-pull's settings" \
        '!make install: installed' \
        -- run_make mkrefusej install MAKEFLAGS=-j4 NO_BUILD=1 BIN_DIR="$bin"
    if [[ $EUID -eq 0 ]]; then
        host="$(new_host mkro "$FIXTURES/containerd-v2.toml")"
        refused mkro "make install, read-only /etc/containerd: refused before anything is installed, naming the directory" \
            "ERROR: /etc/containerd (the directory of /etc/containerd/config.toml) cannot be written on the host" \
            "make: nothing was installed" '!^install ' '!Read-only file system' \
            -- in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
                && make -s -C "$2/deploy" install DESTDIR="$1" NO_BUILD=1 BIN_DIR="$3" >> "$4" 2>&1' \
                "$host" "$REPO" "$bin" "$WORK/mkro/log"
    else
        h_skip "make install, read-only /etc/containerd" "needs root (a read-only bind mount)"
    fi
    # install-containerd fails after the files are in place (an installer
    # pod holds the host lock too long).
    host="$(new_host mklate "$FIXTURES/containerd-v2.toml")"
    cfg="$host/etc/containerd/config.toml" log="$WORK/mklate/log"
    hold_lock "$host" 3
    if ! run_make mklate install NO_BUILD=1 BIN_DIR="$bin" LOCK_TIMEOUT_SECONDS=1 \
        && [[ -x "$host/usr/local/bin/guest-pull-overlayfs" && -f "$host/etc/systemd/system/guest-pull-snapshotter.service" ]] \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$cfg" \
        && grep -qF "make install: installed containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity in $host/usr/local/bin, the libraries in $host/usr/local/lib/$LIB_NAME, the unit $host/etc/systemd/system/guest-pull-snapshotter.service, the daemon config $host/etc/containerd-guest-pull-grpc/config.toml" "$log" \
        && grep -q "^Not done: containerd's config, which install-containerd could not set up" "$log" \
        && grep -q "(LOCK_TIMEOUT_SECONDS=<seconds> waits longer) to finish the install, or make -C deploy uninstall to undo it\.$" "$log" \
        && ! grep -q "nothing was changed\. Run it again" "$log"; then
        h_pass "make install, install-containerd failing after the files: names what was installed, that containerd's config is not set up, and how to finish or undo"
    else
        h_fail "make install, install-containerd failing after the files" "$(tail -n 5 "$log")"
    fi
    wait "$HOLDER" || true
    run_make mklate install-containerd && grep -q "guest-pull-snapshotter" "$cfg" \
        && run_make mklate uninstall && cmp -s "$FIXTURES/containerd-v2.toml" "$cfg" \
        && [[ ! -e "$host/usr/local/bin/guest-pull-overlayfs" && ! -e "$host/etc/containerd/conf.d" ]] \
        && h_pass "make install, install-containerd failing after the files: make install-containerd finishes, make uninstall undoes all" \
        || h_fail "make install, install-containerd failing after the files: finish, undo" "$(tail -n 3 "$log")"
    # kata-deploy's mapping reused, with an entry for nydus, and kata's
    # runtime set to nydus's snapshotter: each said once, not once by the
    # read-only check and again by the merge.
    host="$(new_host mknydus "$FIXTURES/containerd-v2.toml")"
    nydus_runtime "$host/etc/containerd/config.toml"
    run_make mknydus install NO_BUILD=1 BIN_DIR="$bin" SNAPSHOTTER_HANDLER_MAPPING=qemu-coco-dev:guest-pull,qemu-tdx:nydus \
        && [[ "$(grep -c "skipping 'qemu-tdx:nydus': snapshotter 'nydus' is not 'guest-pull'" "$WORK/mknydus/log")" == 1 ]] \
        && [[ "$(grep -c "runtime kata-qemu-coco-dev has snapshotter 'nydus'" "$WORK/mknydus/log")" == 1 ]] \
        && h_pass "make install, a nydus entry in the mapping and a runtime on nydus: each warning printed once" \
        || h_fail "make install, nydus warnings" "$(grep -e nydus "$WORK/mknydus/log")"
    # containerd's config an absolute link (to a config volume): in a staged
    # tree it names a file of that tree, not of this machine.
    host="$(new_host mklink "")"
    mkdir -p "$host/etc/containerd-volume"
    cp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd-volume/config.toml"
    ln -s /etc/containerd-volume/config.toml "$host/etc/containerd/config.toml"
    run_make mklink install NO_BUILD=1 BIN_DIR="$bin" \
        && grep -q "guest-pull-snapshotter" "$host/etc/containerd-volume/config.toml" \
        && ! grep -q "containerd's config left alone" "$WORK/mklink/log" \
        && run_make mklink uninstall && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd-volume/config.toml" \
        && [[ -L "$host/etc/containerd/config.toml" ]] \
        && h_pass "make install DESTDIR=..., containerd's config an absolute link: its target in DESTDIR merged, uninstall restores it" \
        || h_fail "make install, containerd's config an absolute link" "$(tail -n 3 "$WORK/mklink/log")"
    # containerd's config removed after the install (containerd reinstalled):
    # make uninstall still removes the drop-in, backup and records.
    host="$(new_host mknocfg "$FIXTURES/containerd-v2.toml")"
    run_make mknocfg install NO_BUILD=1 BIN_DIR="$bin" && rm "$host/etc/containerd/config.toml" \
        && run_make mknocfg uninstall && [[ -z "$(ls -A "$host/etc/containerd")" ]] \
        && h_pass "make uninstall after containerd's config was removed: our drop-in, backup and records beside it go" \
        || h_fail "make uninstall after containerd's config was removed" "$(ls -A "$host/etc/containerd"; tail -n 3 "$WORK/mknocfg/log")"
}

# test_makefile_operator_messages BIN_DIR: a mistyped setting is refused
# before anything is installed (it used to be read as the default), and a
# kept daemon config of the other KATA_MODE is warned about.
test_makefile_operator_messages() {
    local bin="$1" dest="$WORK/make/messages" cfg
    cfg="$dest/etc/containerd-guest-pull-grpc/config.toml"
    if ! make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" MISSING_RUNTIME=Skip > "$WORK/make/messages.log" 2>&1 \
        && grep -q "MISSING_RUNTIME must be fail or skip, not 'Skip'" "$WORK/make/messages.log" && [[ ! -e "$dest" ]] \
        && ! make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" GLOBAL_SNAPSHOTTER=yes >> "$WORK/make/messages.log" 2>&1 \
        && grep -q "GLOBAL_SNAPSHOTTER must be true or false, not 'yes'" "$WORK/make/messages.log" && [[ ! -e "$dest" ]]; then
        h_pass "make install: a mistyped MISSING_RUNTIME or GLOBAL_SNAPSHOTTER is refused before anything is installed"
    else
        h_fail "make install: mistyped settings" "$(tail -3 "$WORK/make/messages.log")"
    fi
    if make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > "$WORK/make/messages.log" 2>&1 \
        && make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" KATA_MODE=stock > "$WORK/make/messages.log" 2>&1 \
        && grep -qx 'mount_type = "fuse.guest-pull-overlayfs"' "$cfg" \
        && grep -q 'WARNING: the kept .*/etc/containerd-guest-pull-grpc/config.toml has guest_pull.mount_type = "fuse.guest-pull-overlayfs", the type of the other Kata mode; KATA_MODE=stock needs "fuse.nydus-overlayfs-guest-pull"' "$WORK/make/messages.log" \
        && make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > "$WORK/make/messages.log" 2>&1 \
        && ! grep -q WARNING "$WORK/make/messages.log"; then
        h_pass "make install KATA_MODE=stock over a kept patched config: kept, with a warning naming mount_type"
    else
        h_fail "make install: kept config of the other mode" "$(tail -3 "$WORK/make/messages.log")"
    fi
}

# test_makefile_config_written_whole: make install-config writes the daemon
# config as the installer writes every file (lib.sh write_file_atomic): a
# config cut short by a full disk or a crash would be kept by every later
# install as the operator's own.
test_makefile_config_written_whole() {
    local dir="$WORK/make/flush/etc/containerd-guest-pull-grpc" stub="$WORK/make/stub"
    # Flushed before its rename, and its directory after: a stand-in sync
    # records what it is asked to flush.
    mkdir -p "$stub"
    printf '#!/bin/sh\necho "$*" >> "%s/calls"\nexec /bin/sync "$@"\n' "$stub" > "$stub/sync"
    chmod +x "$stub/sync"
    PATH="$stub:$PATH" make -s -C "$REPO/deploy" install-config DESTDIR="$WORK/make/flush" > "$WORK/make/flush.log" 2>&1 \
        && cmp -s "$REPO/deploy/config/config.toml" "$dir/config.toml" \
        && grep -qE "^-- $dir/\.config\.toml\.guest-pull-tmp\.[A-Za-z0-9]{6}\$" "$stub/calls" \
        && [[ "$(tail -n 1 "$stub/calls")" == "-- $dir" ]] \
        && h_pass "make install-config: the config is flushed before its rename, its directory after" \
        || h_fail "make install-config: flushed" "$(cat "$stub/calls" "$WORK/make/flush.log" 2> /dev/null)"
    # A full disk (a tmpfs in a private mount namespace), in either mode:
    # make fails and leaves no config, neither cut short nor temporary;
    # with room again it installs the whole config.
    if [[ $EUID -ne 0 ]]; then
        h_skip "make install-config on a full disk" "needs root (a tmpfs in a private mount namespace)"
        return 0
    fi
    mkdir -p "$WORK/make/full/etc/containerd-guest-pull-grpc"
    if unshare --mount --propagation private bash -c '
        set -e
        dest="$1" repo="$2" dir="$1/etc/containerd-guest-pull-grpc"
        for mode in patched:guest-pull-overlayfs stock:nydus-overlayfs-guest-pull; do
            helper="${mode#*:}" mode="${mode%%:*}"
            mount -t tmpfs -o size=64k tmpfs "$dir"
            head -c 70000 /dev/zero > "$dir/filler" 2> /dev/null || true
            if make -s -C "$repo/deploy" install-config DESTDIR="$dest" KATA_MODE=$mode; then exit 1; fi
            [[ ! -e "$dir/config.toml" ]]
            [[ -z "$(find "$dir" -name ".config.toml*")" ]]
            rm "$dir/filler"
            make -s -C "$repo/deploy" install-config DESTDIR="$dest" KATA_MODE=$mode
            sed "s|^mount_type = \"fuse.guest-pull-overlayfs\"|mount_type = \"fuse.$helper\"|" \
                "$repo/deploy/config/config.toml" | cmp - "$dir/config.toml"
            umount "$dir"
        done
        ' _ "$WORK/make/full" "$REPO" > "$WORK/make/full.log" 2>&1; then
        h_pass "make install-config on a full disk (patched and stock): fails, leaves no config cut short; with room again installs it whole"
    else
        h_fail "make install-config on a full disk" "$(tail -n 4 "$WORK/make/full.log")"
    fi
}

# test_makefile_bin_unit_written_whole BIN: make install-bin and install-unit
# write each binary and the unit as the config (a stand-in sync records the
# temporary file of each before its rename, then its directory), and flush
# the library directory before it is swapped in: a power cut must not
# leave systemd an empty binary or unit under its name.
test_makefile_bin_unit_written_whole() {
    local dest="$WORK/make/flushbin" stub="$WORK/make/stubbin" b ok=true
    mkdir -p "$stub"
    printf '#!/bin/sh\necho "$*" >> "%s/calls"\nexec /bin/sync "$@"\n' "$stub" > "$stub/sync"
    chmod +x "$stub/sync"
    if ! PATH="$stub:$PATH" make -s -C "$REPO/deploy" install-bin install-unit DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$1" \
        > "$WORK/make/flushbin.log" 2>&1; then
        h_fail "make install-bin install-unit (stand-in sync)" "$(tail -n 5 "$WORK/make/flushbin.log")"
        return
    fi
    for b in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        cmp -s "$1/$b" "$dest/usr/local/bin/$b" \
            && grep -qE "^-- $dest/usr/local/bin/\.$b\.guest-pull-tmp\.[A-Za-z0-9]{6}\$" "$stub/calls" || ok=false
    done
    grep -qE "^-- $dest/etc/systemd/system/\.guest-pull-snapshotter\.service\.guest-pull-tmp\.[A-Za-z0-9]{6}\$" "$stub/calls" \
        && grep -qx -- "-- $dest/etc/systemd/system" "$stub/calls" \
        && grep -q -- "$dest/usr/local/lib/containerd-guest-pull-grpc.new" "$stub/calls" \
        && grep -qx -- "-- $dest/usr/local/lib" "$stub/calls" || ok=false
    if $ok; then
        h_pass "make install-bin, install-unit: each binary and the unit flushed before its rename, the libraries before theirs"
    else
        h_fail "make install-bin, install-unit: flushed" "$(cat "$stub/calls" "$WORK/make/flushbin.log" 2> /dev/null)"
    fi
}

# test_makefile_bundle: make install with the bazel-built binaries installs
# the library bundle next to bin/; twice equals once; uninstall removes it.
test_makefile_bundle() {
    local dest="$WORK/make/real" lib out
    lib="$dest/usr/local/lib/$LIB_NAME"
    local missing
    missing="$(real_binaries_built)" || { h_skip "make install: the library bundle" "$missing"; return 0; }
    if out="$(make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 2>&1)" \
        && [[ -d "$lib" && ! -L "$lib" ]] && (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && cmp -s "$lib/MANIFEST" "$WORK/bundle/lib/$LIB_NAME/MANIFEST" \
        && [[ "$(env -i "$dest/usr/local/bin/guest-pull-verity" --version 2>&1)" == "guest-pull-verity "* ]]; then
        h_pass "make install: library bundle in PREFIX/lib/$LIB_NAME, installed binaries run under env -i"
    else
        h_fail "make install: bundle" "$(tail -3 <<< "$out")"; return
    fi
    tree "$dest" > "$WORK/make/real.tree"
    make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 > /dev/null 2>&1 \
        && cmp -s "$WORK/make/real.tree" <(tree "$dest") \
        && h_pass "make install: second install gives the same tree" || h_fail "make install: second install"
    # The kept config is checked by the daemon being installed first.
    local conf="$dest/etc/containerd-guest-pull-grpc/config.toml"
    cp "$conf" "$WORK/make/real.conf"
    printf '[guest_pull]\nexclude = [""]\n' > "$conf"
    tree "$dest" > "$WORK/make/real.tree"
    if ! out="$(make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 2>&1)" \
        && grep -q "$conf: line 2: key \"guest_pull.exclude\[0\]\": an empty pattern" <<< "$out" \
        && grep -q "make: nothing was installed: the daemon being installed refuses $conf, which install keeps" <<< "$out" \
        && cmp -s "$WORK/make/real.tree" <(tree "$dest"); then
        h_pass "make install: a kept config the daemon being installed refuses stops it before anything is installed"
    else
        h_fail "make install: kept config refused" "$(tail -3 <<< "$out")"
    fi
    cp "$WORK/make/real.conf" "$conf"
    make -s -C "$REPO/deploy" uninstall DESTDIR="$dest" > /dev/null 2>&1 \
        && [[ -z "$(find "$dest/usr/local/lib" -mindepth 1)" ]] \
        && [[ -z "$(find "$dest" -type f ! -name config.toml)" ]] \
        && h_pass "make uninstall: removes the library bundle" || h_fail "make uninstall: bundle" "$(find "$dest/usr/local/lib")"
}

# test_makefile_old_daemon: BIN_DIR of a release before --check-config (its
# daemon refuses the unknown flag with exit 2): the kept config is left to
# the daemon's start, with a warning, not reported as refused.
test_makefile_old_daemon() {
    local dest="$WORK/make/olddaemon" bin="$WORK/make/oldbin" b out
    mkdir -p "$bin" "$dest/etc/containerd-guest-pull-grpc"
    for b in guest-pull-overlayfs guest-pull-verity; do cp "$WORK/make/bin/$b" "$bin/"; done
    printf '#!/bin/sh\necho "containerd-guest-pull-grpc: unknown flag $1 (--help lists the flags)" >&2\nexit 2\n' \
        > "$bin/containerd-guest-pull-grpc"
    chmod 0700 "$bin/containerd-guest-pull-grpc"
    echo '# the operator'"'"'s own' > "$dest/etc/containerd-guest-pull-grpc/config.toml"
    if out="$(make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" 2>&1)" \
        && grep -q "WARNING: $bin/containerd-guest-pull-grpc predates --check-config: $dest/etc/containerd-guest-pull-grpc/config.toml is checked when the daemon starts" <<< "$out" \
        && ! grep -q "refuses" <<< "$out" && cmp -s "$bin/containerd-guest-pull-grpc" "$dest/usr/local/bin/containerd-guest-pull-grpc"; then
        h_pass "make install with a daemon before --check-config: a warning, installed"
    else
        h_fail "make install: daemon before --check-config" "$(tail -3 <<< "$out")"
    fi
}
