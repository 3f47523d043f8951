# shellcheck shell=bash
# bundle_install.sh: install.sh / uninstall.sh with the real library bundle
# on fake hosts (versioned directory behind a link, upgrade, uninstall) and
# the host glibc check (too old, newer, missing, no banner, no interpreter,
# a payload not matching its MANIFEST). Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_install_bundle() {
    local host lib link target
    host="$(new_host bhost "$FIXTURES/containerd-v2.toml")"
    use_real_bundle bhost
    # The test machine's real libc.so.6 as the host's.
    cp -L /lib/x86_64-linux-gnu/libc.so.6 "$host/usr/lib/x86_64-linux-gnu/libc.so.6"
    tree "$host" > "$WORK/bhost/tree.before"
    if ! run_script bhost install.sh; then h_fail "bundle install: install.sh succeeds" "$(tail -5 "$WORK/bhost/log")"; return; fi
    h_pass "bundle install: install.sh succeeds with the real bundle"
    link="$host/usr/local/lib/$LIB_NAME"
    target="$(readlink "$link" || true)"
    lib="$host/usr/local/lib/$target"
    [[ -L "$link" && "$target" =~ ^\.$LIB_NAME\.[0-9a-f]{16}$ && -d "$lib" ]] \
        && cmp -s "$WORK/bundle/lib/$LIB_NAME/MANIFEST" "$lib/MANIFEST" \
        && (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && [[ -z "$(find "$lib" -type f ! -perm 0644)" && "$(stat -c %a "$lib")" == 755 ]] \
        && h_pass "bundle install: /usr/local/lib/$LIB_NAME -> $target, every library as in the MANIFEST, 0644" \
        || h_fail "bundle install: library directory" "$target"
    local need
    need="$(bundle_glibc_needed "$WORK/bundle")"
    grep -q "host glibc $(ldd --version | sed -n '1s/.* //p') (/usr/lib/x86_64-linux-gnu/libc.so.6); the payload needs $need\$" "$WORK/bhost/log" \
        && h_pass "bundle install: glibc check reads the real libc.so.6 through /lib -> usr/lib; byte scan agrees with readelf -V ($need)" \
        || h_fail "bundle install: glibc log" "$(grep glibc "$WORK/bhost/log")"
    env -i LD_DEBUG=libs "$host/usr/local/bin/containerd-guest-pull-grpc" --version > /dev/null 2> "$WORK/bhost/ld-debug.log" || true
    [[ -z "$(loaded_outside_bundle <(grep 'calling init:' "$WORK/bhost/ld-debug.log") "$host/usr/local/bin/../lib/$LIB_NAME")" ]] \
        && grep -q "calling init: $host/usr/local/bin/../lib/$LIB_NAME/libglog.so" "$WORK/bhost/ld-debug.log" \
        && h_pass "bundle install: the installed daemon runs under env -i with the installed bundle" \
        || h_fail "bundle install: installed daemon" "$(tail -3 "$WORK/bhost/ld-debug.log")"
    # Twice equals once.
    tree "$host" > "$WORK/bhost/tree.once"
    : > "$WORK/bhost/sysd/calls"
    run_script bhost install.sh && cmp -s "$WORK/bhost/tree.once" <(tree "$host") \
        && ! grep -q '^restart' "$WORK/bhost/sysd/calls" \
        && h_pass "bundle install: second install is byte-identical and restarts nothing" || h_fail "bundle install: second install"
    # A new bundle replaces the old one: new directory, link swapped, old gone.
    printf 'new library\n' > "$WORK/bhost/payload/lib/$LIB_NAME/libnew.so.1"
    (cd "$WORK/bhost/payload/lib/$LIB_NAME" && find . -type f ! -name MANIFEST -printf '%f\n' | LC_ALL=C sort \
        | xargs sha256sum > ../MANIFEST.new && mv ../MANIFEST.new MANIFEST)
    : > "$WORK/bhost/sysd/calls"
    if run_script bhost install.sh && [[ "$(readlink "$link")" != "$target" ]] \
        && [[ -f "$link/libnew.so.1" && ! -e "$lib" ]] \
        && [[ "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 | wc -l)" -eq 2 ]] \
        && grep -q '^restart guest-pull-snapshotter.service' "$WORK/bhost/sysd/calls"; then
        h_pass "bundle install: a changed bundle is swapped in (new directory, link renamed over), old one removed, daemon restarted"
    else
        h_fail "bundle install: upgrade" "$(find "$host/usr/local/lib" -mindepth 1 -printf '%f ')"
    fi
    # An install cut short after the link's swap, before its cleanup: the
    # old bundle and a temporary directory stay; the next install (nothing
    # else to change) removes them and restarts nothing.
    mkdir -p "$host/usr/local/lib/.$LIB_NAME.0123456789abcdef" "$host/usr/local/lib/.$LIB_NAME.tmp.AbC123.old"
    echo old > "$host/usr/local/lib/.$LIB_NAME.0123456789abcdef/libold.so.1"
    : > "$WORK/bhost/sysd/calls"
    run_script bhost install.sh && [[ -f "$link/libnew.so.1" ]] \
        && [[ "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 | wc -l)" -eq 2 ]] \
        && ! grep -q '^restart' "$WORK/bhost/sysd/calls" \
        && h_pass "bundle install: an earlier install's leftover bundles (cut short after the link's swap) are removed by the next, no restart" \
        || h_fail "bundle install: leftover bundles" "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 -printf '%f ')"
    # One that cannot be removed (a mount inside it) is named; the install
    # goes on rather than fail every start of the pod over it.
    local busy="$host/usr/local/lib/.$LIB_NAME.fedcba9876543210"
    mkdir -p "$busy/mnt"
    if mount -t tmpfs gp-busy "$busy/mnt"; then
        run_script bhost install.sh && [[ -f "$link/libnew.so.1" ]] \
            && grep -q "WARNING: cannot remove the old library bundle /usr/local/lib/.$LIB_NAME.fedcba9876543210" "$WORK/bhost/log" \
            && h_pass "bundle install: a leftover bundle that cannot be removed is named, the install goes on" \
            || h_fail "bundle install: unremovable leftover bundle" "$(tail -3 "$WORK/bhost/log")"
        umount "$busy/mnt"
    else
        h_fail "bundle install: unremovable leftover bundle" "cannot mount a tmpfs in $busy (the suite runs as root)"
    fi
    rm -rf "$busy"
    : > "$WORK/bhost/sysd/calls"
    if run_script bhost uninstall.sh && [[ ! -e "$link" && ! -L "$link" ]] \
        && [[ -z "$(find "$host/usr/local/lib" -mindepth 1)" ]] \
        && [[ -f "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs/file" ]] \
        && cmp -s "$WORK/bhost/tree.before" <(tree "$host"); then
        h_pass "bundle uninstall: link and library directory removed, data dir kept, host tree as before"
    else
        h_fail "bundle uninstall" "$(tail -3 "$WORK/bhost/log")"
    fi
    # A real directory left by `make install` is replaced by the link.
    host="$(new_host migrate "$FIXTURES/containerd-v2.toml")"
    mkdir -p "$host/usr/local/lib/$LIB_NAME"
    echo old > "$host/usr/local/lib/$LIB_NAME/libold.so.1"
    run_script migrate install.sh && [[ -L "$host/usr/local/lib/$LIB_NAME" && -f "$host/usr/local/lib/$LIB_NAME/libstandin.so.1" ]] \
        && [[ "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 | wc -l)" -eq 2 ]] \
        && h_pass "bundle install: a plain directory from make install is replaced by the link, nothing left over" \
        || h_fail "bundle install: migrate" "$(tail -3 "$WORK/migrate/log")"
}

# glibc_case NAME VERSION LAYOUT: host NAME whose only libc.so.6 says VERSION
# ("" = none), RHEL/Flatcar layout (usr/lib64, via the absolute /lib64 link);
# the payload is the real bundle. Runs install.sh; returns its status.
glibc_case() {
    local host
    host="$(new_host "$1" "$FIXTURES/containerd-v2.toml")"
    use_real_bundle "$1"
    rm -rf "$host/usr/lib/x86_64-linux-gnu"
    [[ -z "$2" ]] || fake_libc "$host/usr/lib64/libc.so.6" "$2"
    tree "$host" > "$WORK/$1/tree.before"
    run_script "$1" install.sh
}

# untouched NAME: install refused before anything changed on host NAME.
untouched() {
    cmp -s "$WORK/$1/tree.before" <(tree "$WORK/$1/host") && [[ ! -s "$WORK/$1/sysd/calls" ]]
}

test_glibc_check() {
    local need
    need="$(bundle_glibc_needed "$WORK/bundle")"
    if glibc_case glibc-old 2.31; then
        h_fail "glibc check: host glibc 2.31 refused"
    else
        grep -q "the host's glibc 2.31 (/usr/lib64/libc.so.6) is older than the $need the binaries need; nothing was changed" "$WORK/glibc-old/log" \
            && untouched glibc-old \
            && h_pass "glibc check: glibc 2.31 (found via /lib64 -> /usr/lib64) refused clearly, host untouched" \
            || h_fail "glibc check: too old" "$(tail -2 "$WORK/glibc-old/log")"
    fi
    glibc_case glibc-new 2.40 && grep -q "host glibc 2.40 (/usr/lib64/libc.so.6); the payload needs $need" "$WORK/glibc-new/log" \
        && h_pass "glibc check: glibc 2.40 accepted (version order, not string order)" \
        || h_fail "glibc check: 2.40" "$(tail -2 "$WORK/glibc-new/log")"
    if glibc_case glibc-none ""; then
        h_fail "glibc check: no libc refused"
    else
        grep -q "cannot find the host's libc.so.6" "$WORK/glibc-none/log" && untouched glibc-none \
            && h_pass "glibc check: no libc.so.6 on the host refused clearly, host untouched" \
            || h_fail "glibc check: no libc" "$(tail -2 "$WORK/glibc-none/log")"
    fi
    # No banner: the highest version node the libc defines is its version.
    local host
    host="$(new_host glibc-nobanner "$FIXTURES/containerd-v2.toml")"
    use_real_bundle glibc-nobanner
    printf 'GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.35\0' > "$host/usr/lib/x86_64-linux-gnu/libc.so.6"
    ! run_script glibc-nobanner install.sh && grep -q "the host's glibc 2.35 " "$WORK/glibc-nobanner/log" \
        && h_pass "glibc check: libc without a banner judged by its GLIBC_ version nodes (2.35 refused)" \
        || h_fail "glibc check: no banner" "$(tail -2 "$WORK/glibc-nobanner/log")"
    host="$(new_host nointerp "$FIXTURES/containerd-v2.toml")"
    rm "$host/usr/lib64/ld-linux-x86-64.so.2"
    tree "$host" > "$WORK/nointerp/tree.before"
    ! run_script nointerp install.sh && grep -q "the host has no /lib64/ld-linux-x86-64.so.2" "$WORK/nointerp/log" \
        && untouched nointerp \
        && h_pass "glibc check: host without /lib64/ld-linux-x86-64.so.2 refused (the test machine's own is not consulted)" \
        || h_fail "glibc check: interpreter" "$(tail -2 "$WORK/nointerp/log")"
    # A corrupted payload bundle is refused before anything changes.
    host="$(new_host badpayload "$FIXTURES/containerd-v2.toml")"
    echo corrupted >> "$WORK/badpayload/payload/lib/$LIB_NAME/libstandin.so.1"
    tree "$host" > "$WORK/badpayload/tree.before"
    ! run_script badpayload install.sh && grep -q "does not match its MANIFEST" "$WORK/badpayload/log" && untouched badpayload \
        && h_pass "payload: a library not matching the MANIFEST is refused, host untouched" \
        || h_fail "payload: corrupted bundle" "$(tail -2 "$WORK/badpayload/log")"
}

# The host's own daemon config, which the install keeps, is checked by this
# release's daemon (--check-config, the real payload run as the pod runs it)
# before any change: one it refuses stops the install with its message, one
# it takes goes on, one it cannot check is a WARNING.
test_kept_config_check() {
    local host own
    host="$(new_host kcheck "$FIXTURES/containerd-v2.toml")"
    use_real_bundle kcheck
    cp -L /lib/x86_64-linux-gnu/libc.so.6 "$host/usr/lib/x86_64-linux-gnu/libc.so.6"
    own="$host/etc/containerd-guest-pull-grpc/config.toml"
    mkdir -p "${own%/*}"
    printf '# the operator'"'"'s own\n[guest_pull]\nexclude = [\n  "",\n]\n' > "$own"
    refused kcheck "kept config: one this release's daemon refuses stops the install, with its message, before any change" \
        "refuses the host's own /etc/containerd-guest-pull-grpc/config.toml, which the install keeps" \
        '/etc/containerd-guest-pull-grpc/config.toml: line 4: key "guest_pull.exclude\[0\]": an empty pattern' \
        "CONFIG_OVERWRITE=true" "nothing was changed" "!$host" \
        -- run_script kcheck install.sh
    printf '# the operator'"'"'s own\n[guest_pull]\nexclude = ["registry\\\\.k8s\\\\.io/pause:.*"]\n' > "$own"
    if run_script kcheck install.sh \
        && grep -q "this release's daemon takes the host's own /etc/containerd-guest-pull-grpc/config.toml, which the install keeps (--check-config)" "$WORK/kcheck/log" \
        && grep -q 'pause' "$own"; then
        h_pass "kept config: one this release's daemon takes is checked and kept"
    else
        h_fail "kept config: a good one" "$(tail -3 "$WORK/kcheck/log")"
    fi
    # The config the install writes (a ConfigMap's, CONFIG_OVERWRITE=true)
    # is checked as well.
    printf '[guest_pull]\ninclude = [".*", ""]\n' > "$WORK/kcheck/configmap.toml"
    refused kcheck "written config: a ConfigMap's one this release's daemon refuses stops the install, with its message, before any change" \
        "refuses the daemon config the install would write to /etc/containerd-guest-pull-grpc/config.toml (from $WORK/kcheck/configmap.toml)" \
        "$WORK/kcheck/configmap.toml: line 2: key \"guest_pull.include\[1\]\": an empty pattern" "nothing was changed" "!/tmp/tmp\." \
        -- run_script kcheck install.sh CONFIG_SOURCE="$WORK/kcheck/configmap.toml" CONFIG_OVERWRITE=true
    # A payload daemon that cannot run in the pod (here: exits 127).
    host="$(new_host kcheck2 "$FIXTURES/containerd-v2.toml")"
    own="$host/etc/containerd-guest-pull-grpc/config.toml"
    mkdir -p "${own%/*}"
    printf '# the operator'"'"'s own\n' > "$own"
    printf '#!/bin/sh\necho "cannot load libfoo.so" >&2\nexit 127\n' > "$WORK/kcheck2/payload/bin/containerd-guest-pull-grpc"
    if run_script kcheck2 install.sh \
        && grep -q "WARNING: cannot run this release's daemon in this pod to check the host's own /etc/containerd-guest-pull-grpc/config.toml, which the install keeps (exit 127: cannot load libfoo.so); its start on the node will check it" "$WORK/kcheck2/log"; then
        h_pass "kept config: a daemon that cannot run in the pod is a WARNING, the install goes on"
    else
        h_fail "kept config: cannot check" "$(grep -i check "$WORK/kcheck2/log" | tail -3)"
    fi
}
