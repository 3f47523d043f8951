# shellcheck shell=bash
# install_edges.sh: install.sh and uninstall.sh on hosts set up in ways an
# operator's may be: a run cut short before containerd's restart, a
# containerd config that is a symbolic link, an operator's own conf.d, a
# drop-in the operator imports by hand, a backup that is gone, settings that
# are not numbers. Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

# hand_import_kept NAME IMPORT WHAT: a config importing the drop-in as
# IMPORT (with /etc/containerd/mine a link to conf.d): install, then
# uninstall keeps the drop-in and says so, and containerd still starts.
hand_import_kept() {
    local name="$1" import="$2" what="$3" host
    host="$(new_host "$name" "$FIXTURES/containerd-v2.toml")"
    sed -i "s|^version = 2\$|version = 2\nimports = [\"$import\"]|" "$host/etc/containerd/config.toml"
    mkdir -p "$host/etc/containerd/conf.d"
    ln -s conf.d "$host/etc/containerd/mine"
    cp "$REPO/deploy/containerd/conf.d/guest-pull-v2.toml" "$host/etc/containerd/conf.d/guest-pull.toml"
    run_script "$name" install.sh && run_script "$name" uninstall.sh \
        && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && grep -q "kept /etc/containerd/conf.d/guest-pull.toml: /etc/containerd/config.toml still imports it by name" "$WORK/$name/log" \
        && containerd_dump "$host" > "$WORK/$name/dump" 2>&1 \
        && h_pass "hand setup, $what: uninstall keeps the drop-in, containerd still starts" \
        || h_fail "hand setup, $what: uninstall" "$(ls "$host/etc/containerd"; tail -n 2 "$WORK/$name/log" "$WORK/$name/dump")"
}

test_install_edges() {
    local host orig
    # The kubelet's graceful node shutdown runs the preStop: the uninstall
    # leaves everything in place for the next boot (it restarted containerd
    # on the way down, the node booted without guest-pull, and the pod's
    # install then restarted containerd again); any other time it uninstalls.
    host="$(new_host shutdown "$FIXTURES/containerd-v2.toml")"
    run_script shutdown install.sh POD_UID=pod-s && tree "$host" > "$WORK/shutdown/tree.installed"
    : > "$WORK/shutdown/sysd/calls"
    touch "$WORK/shutdown/sysd/shutting-down"
    run_script shutdown uninstall.sh POD_UID=pod-s \
        && cmp -s "$WORK/shutdown/tree.installed" <(tree "$host") && [[ ! -s "$WORK/shutdown/sysd/calls" ]] \
        && grep -q "the node is shutting down (logind's PreparingForShutdown" "$WORK/shutdown/log" \
        && grep -q "get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager PreparingForShutdown" \
            "$WORK/shutdown/sysd/busctl-calls" \
        && h_pass "node shutting down: the preStop leaves guest-pull installed, restarts nothing" \
        || h_fail "node shutting down: the preStop uninstalled" "$(diff "$WORK/shutdown/tree.installed" <(tree "$host") | head -4; tail -2 "$WORK/shutdown/log")"
    rm -f "$WORK/shutdown/sysd/shutting-down"
    run_script shutdown uninstall.sh POD_UID=pod-s \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] && grep -q "restart containerd.service" "$WORK/shutdown/sysd/calls" \
        && h_pass "node not shutting down: the preStop uninstalls" \
        || h_fail "node not shutting down: the preStop" "$(tail -2 "$WORK/shutdown/log")"
    # A run that merged the config and then failed (the snapshotter never
    # became active) leaves containerd's restart due; the next run, which
    # changes nothing, restarts containerd.
    host="$(new_host due "$FIXTURES/containerd-v2.toml")"
    echo 3 > "$WORK/due/sysd/is-active-rc.guest-pull-snapshotter.service"
    ! run_script due install.sh && [[ -e "$host/etc/containerd/config.toml.guest-pull-restart-pending" ]] \
        && [[ "$(< "$host/etc/containerd/config.toml.guest-pull-restart-pending")" == "$(< /proc/sys/kernel/random/boot_id)" ]] \
        && ! grep -q "restart containerd.service" "$WORK/due/sysd/calls" \
        && h_pass "restart due: a failed install leaves containerd's restart marked as due (with this boot's id)" \
        || h_fail "restart due: after the failed install" "$(tail -2 "$WORK/due/log")"
    rm -f "$WORK/due/sysd/is-active-rc.guest-pull-snapshotter.service"
    run_script due install.sh && grep -q "restart containerd.service" "$WORK/due/sysd/calls" \
        && grep -q "containerd's restart after an earlier run's config change is still due" "$WORK/due/log" \
        && [[ ! -e "$host/etc/containerd/config.toml.guest-pull-restart-pending" ]] \
        && h_pass "restart due: the next install, changing nothing, restarts containerd and clears the mark" \
        || h_fail "restart due: the next install" "$(tail -3 "$WORK/due/log")"
    # The marker sits beside containerd's config in /etc and outlives a
    # reboot, which started containerd on the config as it was: one of an
    # earlier boot (another boot id) is not acted on, and goes; one of this
    # boot, or one without a boot id (an earlier release's), is.
    local boot other marker="$host/etc/containerd/config.toml.guest-pull-restart-pending"
    boot="$(< /proc/sys/kernel/random/boot_id)"
    other="00000000-0000-4000-8000-000000000000"
    [[ "$boot" != "$other" ]] || other="00000000-0000-4000-8000-000000000001"
    echo "$other" > "$marker" && : > "$WORK/due/sysd/calls"
    run_script due install.sh && ! grep -q "restart containerd.service" "$WORK/due/sysd/calls" \
        && [[ ! -e "$marker" ]] \
        && grep -q "from before the node's last boot (/etc/containerd/config.toml.guest-pull-restart-pending): containerd has started since" "$WORK/due/log" \
        && h_pass "restart due: a marker of an earlier boot restarts nothing (the boot did) and goes" \
        || h_fail "restart due: a marker of an earlier boot" "$(cat "$WORK/due/sysd/calls"; tail -3 "$WORK/due/log")"
    local state what
    for state in "$boot" ""; do
        what="of this boot"
        if [[ -n "$state" ]]; then echo "$state" > "$marker"; else : > "$marker"; what="without a boot id (an earlier release's)"; fi
        : > "$WORK/due/sysd/calls"
        run_script due install.sh && grep -q "restart containerd.service" "$WORK/due/sysd/calls" \
            && [[ ! -e "$marker" ]] \
            && h_pass "restart due: a marker $what restarts containerd" \
            || h_fail "restart due: a marker $what" "$(cat "$WORK/due/sysd/calls"; tail -3 "$WORK/due/log")"
    done

    # A run killed right after it replaced the daemon binary (at its
    # daemon-reload): the next run finds the binary identical, and must still
    # restart the snapshotter, or the old daemon keeps serving.
    host="$(new_host killed "$FIXTURES/containerd-v2.toml")"
    mv "$WORK/killed/sysd/systemctl" "$WORK/killed/sysd/systemctl.real"
    printf '#!/bin/sh
if [ "$1" = daemon-reload ] && [ -e "%s/kill" ]; then rm -f "%s/kill"; kill -9 $PPID; exit 1; fi
exec "%s/systemctl.real" "$@"
' \
        "$WORK/killed" "$WORK/killed" "$WORK/killed/sysd" > "$WORK/killed/sysd/systemctl"
    chmod +x "$WORK/killed/sysd/systemctl"
    run_script killed install.sh && echo '# next release' >> "$WORK/killed/payload/bin/containerd-guest-pull-grpc" \
        && touch "$WORK/killed/kill" && { ! run_script killed install.sh; } 2> /dev/null \
        && cmp -s "$WORK/killed/payload/bin/containerd-guest-pull-grpc" "$host/usr/local/bin/containerd-guest-pull-grpc" \
        && : > "$WORK/killed/sysd/calls" && run_script killed install.sh \
        && grep -qx "restart guest-pull-snapshotter.service" "$WORK/killed/sysd/calls" \
        && grep -q "the restart of guest-pull-snapshotter.service after an earlier run's changes is still due" "$WORK/killed/log" \
        && : > "$WORK/killed/sysd/calls" && run_script killed install.sh \
        && ! grep -q "restart" "$WORK/killed/sysd/calls" \
        && h_pass "run killed after replacing the binary: the next run restarts the snapshotter, the one after that nothing" \
        || h_fail "run killed after replacing the binary" "$(cat "$WORK/killed/sysd/calls"; tail -3 "$WORK/killed/log")"

    # containerd's config is a relative symbolic link: the link stays, its
    # target gets the edits (its mode kept), and uninstall restores it.
    host="$(new_host linked "")"
    mkdir -p "$host/etc/cm"
    cp "$FIXTURES/containerd-v2.toml" "$host/etc/cm/config.toml"
    chmod 0640 "$host/etc/cm/config.toml"
    ln -s ../cm/config.toml "$host/etc/containerd/config.toml"
    orig="$WORK/linked/orig.toml"
    cp "$host/etc/cm/config.toml" "$orig"
    run_script linked install.sh && [[ -L "$host/etc/containerd/config.toml" ]] \
        && grep -q "guest-pull" "$host/etc/cm/config.toml" \
        && [[ "$(stat -c %a "$host/etc/cm/config.toml")" == 640 ]] \
        && h_pass "linked config: the link stays, its target is merged with its mode kept" \
        || h_fail "linked config: install" "$(ls -l "$host/etc/containerd" "$host/etc/cm"; tail -2 "$WORK/linked/log")"
    run_script linked uninstall.sh && [[ -L "$host/etc/containerd/config.toml" ]] \
        && cmp -s "$orig" "$host/etc/cm/config.toml" \
        && h_pass "linked config: uninstall restores the target byte for byte, the link stays" \
        || h_fail "linked config: uninstall" "$(tail -2 "$WORK/linked/log")"

    # A backup that is gone while installed: the next install backs up the
    # config without our edits, and uninstall then restores the original.
    host="$(new_host nobackup "$FIXTURES/containerd-v2.toml")"
    orig="$WORK/nobackup/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    run_script nobackup install.sh && rm -f "$host/etc/containerd/config.toml.guest-pull-backup" \
        && run_script nobackup install.sh && cmp -s "$orig" "$host/etc/containerd/config.toml.guest-pull-backup" \
        && h_pass "backup gone: the next install backs up the config without the earlier install's edits" \
        || h_fail "backup gone: install again" "$(tail -2 "$WORK/nobackup/log")"
    run_script nobackup uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && [[ ! -e "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && h_pass "backup gone: uninstall restores the original and removes the drop-in" \
        || h_fail "backup gone: uninstall" "$(diff "$orig" "$host/etc/containerd/config.toml" | head -5)"

    # The operator's own setup imports the drop-in by name
    # (deploy/containerd/README.md): uninstall leaves the file it imports.
    host="$(new_host handmade "$FIXTURES/containerd-v2.toml")"
    sed -i 's|^version = 2$|version = 2\nimports = ["/etc/containerd/conf.d/guest-pull.toml"]|' "$host/etc/containerd/config.toml"
    mkdir -p "$host/etc/containerd/conf.d"
    cp "$REPO/deploy/containerd/conf.d/guest-pull-v2.toml" "$host/etc/containerd/conf.d/guest-pull.toml"
    run_script handmade uninstall.sh && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && grep -q "kept /etc/containerd/conf.d/guest-pull.toml: /etc/containerd/config.toml still imports it by name" "$WORK/handmade/log" \
        && h_pass "hand setup: uninstall keeps the drop-in the config imports by name, and says so" \
        || h_fail "hand setup: uninstall" "$(tail -2 "$WORK/handmade/log")"
    # The same, spelt as containerd resolves it (relative to the config's
    # directory, uncleaned), or through a link of the operator's (a
    # directory linked to conf.d): a file imported by name must exist, or
    # containerd does not start.
    hand_import_kept handrel "conf.d/./guest-pull.toml" "relative import"
    hand_import_kept handlink "/etc/containerd/mine/guest-pull.toml" "import through a linked directory"

    # An imported file the tool cannot read (Latin-1, written after the
    # install) before the entry naming the drop-in: uninstall cannot tell,
    # and keeps the file containerd would not start without.
    host="$(new_host handlatin "$FIXTURES/containerd-v2.toml")"
    mkdir -p "$host/etc/containerd/conf.d"
    cp "$REPO/deploy/containerd/conf.d/guest-pull-v2.toml" "$host/etc/containerd/conf.d/guest-pull.toml"
    printf '# caf\xe9\nversion = 2\n' > "$host/etc/containerd/conf.d/a-latin1.toml"
    sed -i 's|^version = 2$|version = 2\nimports = ["/etc/containerd/conf.d/a-latin1.toml", "/etc/containerd/conf.d/guest-pull.toml"]|' \
        "$host/etc/containerd/config.toml"
    run_script handlatin uninstall.sh && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && grep -q "WARNING: kept /etc/containerd/conf.d/guest-pull.toml: cannot tell" "$WORK/handlatin/log" \
        && h_pass "an unreadable imported file: uninstall keeps the drop-in and says why" \
        || h_fail "an unreadable imported file: uninstall" "$(tail -3 "$WORK/handlatin/log")"

    # A config in Latin-1 (containerd takes it) or with a byte order mark:
    # refused with what to do, nothing changed.
    host="$(new_host latin1 "$FIXTURES/containerd-v2.toml")"
    printf '# caf\xe9\n' >> "$host/etc/containerd/config.toml"
    refused latin1 "Latin-1 config: refused with the conversion to do, no traceback, nothing changed" \
        "is not UTF-8 text (byte [0-9]*): TOML files are UTF-8" -- run_script latin1 install.sh
    host="$(new_host bom "")"
    { printf '\xef\xbb\xbf'; cat "$FIXTURES/containerd-v2.toml"; } > "$host/etc/containerd/config.toml"
    ! run_script bom install.sh && grep -q "starts with a UTF-8 byte order mark" "$WORK/bom/log" \
        && h_pass "config with a byte order mark: refused with what to do" \
        || h_fail "config with a byte order mark" "$(tail -3 "$WORK/bom/log")"

    # A config with CRLF line endings stays CRLF when merged, and uninstall
    # restores it byte for byte.
    host="$(new_host crlf "")"
    sed 's/$/\r/' "$FIXTURES/containerd-v2.toml" > "$host/etc/containerd/config.toml"
    orig="$WORK/crlf/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    run_script crlf install.sh && grep -q "guest-pull" "$host/etc/containerd/config.toml" \
        && [[ "$(grep -c $'\r$' "$host/etc/containerd/config.toml")" == "$(wc -l < "$host/etc/containerd/config.toml")" ]] \
        && h_pass "CRLF config: merged with every line still ending in CRLF" \
        || h_fail "CRLF config: install" "$(tail -2 "$WORK/crlf/log")"
    local restarts logged
    restarts="$(grep -c "restart containerd.service" "$WORK/crlf/sysd/calls")"
    logged="$(wc -l < "$WORK/crlf/log")"
    run_script crlf install.sh \
        && ! tail -n +"$((logged + 1))" "$WORK/crlf/log" | grep -q "merged the guest-pull settings" \
        && [[ "$(grep -c "restart containerd.service" "$WORK/crlf/sysd/calls")" == "$restarts" ]] \
        && h_pass "CRLF config: a second install finds nothing to change and restarts nothing" \
        || h_fail "CRLF config: second install" "$(tail -3 "$WORK/crlf/log")"
    run_script crlf uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && h_pass "CRLF config: uninstall restores it byte for byte" \
        || h_fail "CRLF config: uninstall" "$(cmp "$orig" "$host/etc/containerd/config.toml"; tail -2 "$WORK/crlf/log")"

    # A CRLF config merged by an earlier release, which kept the replaced
    # line's text with LF in its mark (`was:`): unmerge gives it CRLF again.
    sed 's/$/\r/' "$FIXTURES/containerd-v2.toml" > "$WORK/crlf/orig-v2.toml"
    sed 's|^      discard_unpacked_layers = true\r$|      discard_unpacked_layers = false  # set by guest-pull-snapshotter, was: "      discard_unpacked_layers = true\\n"\r|' \
        "$WORK/crlf/orig-v2.toml" > "$WORK/crlf/old-mark.toml"
    grep -q 'was: ' "$WORK/crlf/old-mark.toml" \
        && python3 "$TOOL" unmerge "$WORK/crlf/old-mark.toml" | cmp -s - "$WORK/crlf/orig-v2.toml" \
        && h_pass "CRLF config with an earlier release's mark (its was: text in LF): unmerge restores CRLF" \
        || h_fail "CRLF config with an earlier release's mark" "$(python3 "$TOOL" unmerge "$WORK/crlf/old-mark.toml" | cmp - "$WORK/crlf/orig-v2.toml" 2>&1)"

    # Mixed line endings (every third line CRLF) and no final newline:
    # every line keeps its ending through the merge and our lines go again
    # whole, so with the backup gone the next install backs up the
    # original bytes, and uninstall without any backup restores them.
    local v
    for v in 2 3; do
        host="$(new_host "mixed$v" "")"
        { awk 'NR % 3 == 0 { printf "%s\r\n", $0; next } { print }' "$FIXTURES/containerd-v$v.toml"
          printf '# no final newline'; } > "$host/etc/containerd/config.toml"
        orig="$WORK/mixed$v/orig.toml"
        cp "$host/etc/containerd/config.toml" "$orig"
        run_script "mixed$v" install.sh && grep -q "guest-pull" "$host/etc/containerd/config.toml" \
            && rm "$host/etc/containerd/config.toml.guest-pull-backup" && run_script "mixed$v" install.sh \
            && cmp -s "$orig" "$host/etc/containerd/config.toml.guest-pull-backup" \
            && h_pass "mixed line endings, no final newline (version $v): with the backup gone, the next install backs up the original bytes" \
            || h_fail "mixed line endings, no final newline (version $v): install again without the backup" "$(cmp "$orig" "$host/etc/containerd/config.toml.guest-pull-backup" 2>&1; tail -2 "$WORK/mixed$v/log")"
        rm -f "$host/etc/containerd/config.toml.guest-pull-backup"
        run_script "mixed$v" uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
            && h_pass "mixed line endings, no final newline (version $v): uninstall without any backup restores every byte" \
            || h_fail "mixed line endings, no final newline (version $v): uninstall without the backup" "$(cmp "$orig" "$host/etc/containerd/config.toml" 2>&1; tail -2 "$WORK/mixed$v/log")"
    done

    # Triple quotes in a comment open no string, and a value that is a
    # multi-line string is replaced whole: the tables after them are found,
    # containerd takes the result, and uninstall restores every byte.
    host="$(new_host quotes "")"
    sed -e 's|^\(    \[plugins."io.containerd.grpc.v1.cri".containerd\]\)$|\1\n      # values are one-line strings, never """ ones|' \
        -e 's|^\(          runtime_type = "io.containerd.kata-qemu-coco-dev.v2"\)$|\1\n          snapshotter = """\noverlayfs"""|' \
        "$FIXTURES/containerd-v2.toml" > "$host/etc/containerd/config.toml"
    orig="$WORK/quotes/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    run_script quotes install.sh && containerd_dump "$host" > "$WORK/quotes/dump" 2>&1 \
        && [[ "$(toml_get "$host/etc/containerd/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && grep -q '^      discard_unpacked_layers = false' "$WORK/quotes/dump" \
        && h_pass "triple quotes in a comment, a multi-line string value: merged, containerd accepts it" \
        || h_fail "triple quotes in a comment, a multi-line string value: install" "$(tail -2 "$WORK/quotes/log" "$WORK/quotes/dump")"
    run_script quotes uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && h_pass "triple quotes in a comment, a multi-line string value: uninstall restores every byte" \
        || h_fail "triple quotes in a comment, a multi-line string value: uninstall" "$(diff "$orig" "$host/etc/containerd/config.toml" | head -5)"

    # A comment holding a Unicode line separator (U+2028, which TOML and
    # containerd take as any other character) ends no line for the editor.
    host="$(new_host lsep "")"
    sed 's|^\(        \[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-qemu-coco-dev\]\)$|\1  # Kata\xe2\x80\xa8CoCo|' \
        "$FIXTURES/containerd-v2.toml" > "$host/etc/containerd/config.toml"
    orig="$WORK/lsep/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    grep -q $'\u2028' "$orig" && run_script lsep install.sh && containerd_dump "$host" > "$WORK/lsep/dump" 2>&1 \
        && [[ "$(toml_get "$host/etc/containerd/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && run_script lsep uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && h_pass "U+2028 in a comment: merged, containerd accepts it, uninstall restores every byte" \
        || h_fail "U+2028 in a comment" "$(tail -2 "$WORK/lsep/log")"

    # A config without a final newline: backed up and restored byte for byte.
    host="$(new_host nonewline "")"
    { cat "$FIXTURES/containerd-v2.toml"; printf '# no final newline'; } > "$host/etc/containerd/config.toml"
    orig="$WORK/nonewline/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    run_script nonewline install.sh && cmp -s "$orig" "$host/etc/containerd/config.toml.guest-pull-backup" \
        && h_pass "no final newline: the backup is the original byte for byte" \
        || h_fail "no final newline: backup" "$(cmp "$orig" "$host/etc/containerd/config.toml.guest-pull-backup" 2>&1; tail -2 "$WORK/nonewline/log")"
    run_script nonewline uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && h_pass "no final newline: uninstall restores every byte" \
        || h_fail "no final newline: uninstall" "$(cmp "$orig" "$host/etc/containerd/config.toml" 2>&1; tail -2 "$WORK/nonewline/log")"

    # A disk that fills up while the original is backed up (a tmpfs of
    # 320k in a private mount namespace): the install fails saying so and
    # leaves no backup cut short, which every later install would keep and
    # uninstall could not restore the original bytes from.
    if [[ $EUID -eq 0 ]]; then
        host="$(new_host diskfull "")"
        if in_private_mounts '
            set -e
            host="$1" fixture="$2" orig="$WORK/diskfull/orig.toml"
            mount -t tmpfs -o size=320k tmpfs "$host/etc/containerd"
            { cat "$fixture"; for i in $(seq 1500); do echo "# an operator comment, line $i"; done
              printf "# no final newline"; } > "$host/etc/containerd/config.toml"
            cp "$host/etc/containerd/config.toml" "$orig"
            head -c 250000 /dev/zero > "$host/etc/containerd/filler" 2> /dev/null || true
            ! run_script diskfull install.sh
            grep -q "cannot back up /etc/containerd/config.toml as /etc/containerd/config.toml.guest-pull-backup" "$WORK/diskfull/log"
            [[ ! -e "$host/etc/containerd/config.toml.guest-pull-backup" ]]
            cmp "$orig" "$host/etc/containerd/config.toml"
            rm "$host/etc/containerd/filler"
            run_script diskfull install.sh
            run_script diskfull uninstall.sh
            cmp "$orig" "$host/etc/containerd/config.toml"
            ' "$host" "$FIXTURES/containerd-v2.toml" >> "$WORK/diskfull/log" 2>&1; then
            h_pass "disk full while backing up: install fails saying so, no partial backup; uninstall later restores every byte"
        else
            h_fail "disk full while backing up" "$(ls -la "$host/etc/containerd"; tail -4 "$WORK/diskfull/log")"
        fi
    else
        h_skip "disk full while backing up" "needs root (a tmpfs in a private mount namespace)"
    fi

    # A line of a multi-line array that looks like a table header (an
    # array of arrays, `  ["a"]`) is an element: the top-level `imports`
    # after it is found and extended, not added a second time.
    host="$(new_host nested "")"
    sed 's|^version = 3$|version = 3\nnested = [\n  ["a"],\n  ["b"]\n]\nimports = []|' \
        "$FIXTURES/containerd-v3.toml" > "$host/etc/containerd/config.toml"
    orig="$WORK/nested/orig.toml"
    cp "$host/etc/containerd/config.toml" "$orig"
    run_script nested install.sh \
        && [[ "$(toml_get "$host/etc/containerd/config.toml" -- imports)" == '["/etc/containerd/conf.d/*.toml"]' ]] \
        && h_pass "an array of arrays before imports: its elements are no headers, imports extended" \
        || h_fail "an array of arrays before imports: install" "$(tail -2 "$WORK/nested/log")"
    run_script nested uninstall.sh && cmp -s "$orig" "$host/etc/containerd/config.toml" \
        && h_pass "an array of arrays before imports: uninstall restores every byte" \
        || h_fail "an array of arrays before imports: uninstall" "$(diff "$orig" "$host/etc/containerd/config.toml" | head -5)"

    # A drop-in that cannot be written (its directory is a file): the
    # install is refused naming the file, before any change (it used to
    # fail after the snapshotter's files were in place).
    host="$(new_host nodropin "$FIXTURES/containerd-v3.toml")"
    printf 'not a directory\n' > "$host/etc/containerd/conf.d"
    refused nodropin "drop-in directory is a file: install refused naming the file, nothing changed" \
        "ERROR: /etc/containerd/conf.d is not a directory, so /etc/containerd/conf.d/guest-pull.toml cannot be written under it" \
        -- run_script nodropin install.sh

    # A reconcile where nothing was installed: refused, nothing changed.
    new_host noreconcile "$FIXTURES/containerd-v3.toml" > /dev/null
    refused noreconcile "reconcile without an install: refused, nothing changed" \
        "guest-pull is not installed in containerd's config" -- run_setup noreconcile reconcile

    # CONTAINERD_DROPIN changed between installs: the earlier drop-in goes
    # (a conf.d glob would load both), and uninstall leaves nothing.
    host="$(new_host movedropin "$FIXTURES/containerd-v3.toml")"
    tree "$host" > "$WORK/movedropin/tree.before"
    run_script movedropin install.sh CONTAINERD_DROPIN=/etc/containerd/conf.d/gp-old.toml \
        && run_script movedropin install.sh \
        && [[ ! -e "$host/etc/containerd/conf.d/gp-old.toml" && -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && grep -q "removed /etc/containerd/conf.d/gp-old.toml, the drop-in of an earlier install" "$WORK/movedropin/log" \
        && h_pass "drop-in path changed: the next install removes the earlier drop-in and says so" \
        || h_fail "drop-in path changed" "$(ls "$host/etc/containerd/conf.d"; tail -3 "$WORK/movedropin/log")"
    run_script movedropin uninstall.sh \
        && cmp -s <(grep -e ' ./etc/containerd/' "$WORK/movedropin/tree.before") <(tree "$host" | grep -e ' ./etc/containerd/') \
        && h_pass "drop-in path changed: uninstall leaves containerd's directory as it was" \
        || h_fail "drop-in path changed: uninstall" "$(diff <(grep -e ' ./etc/containerd/' "$WORK/movedropin/tree.before") <(tree "$host" | grep -e ' ./etc/containerd/'))"

    # The operator's own conf.d, empty: our drop-in goes in it and out
    # again, the directory stays (with its mode).
    host="$(new_host owndir "$FIXTURES/containerd-v3.toml")"
    mkdir -m 0750 "$host/etc/containerd/conf.d"
    tree "$host" > "$WORK/owndir/tree.before"
    run_script owndir install.sh && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && run_script owndir uninstall.sh \
        && cmp -s <(grep -e ' ./etc/containerd' "$WORK/owndir/tree.before") <(tree "$host" | grep -e ' ./etc/containerd') \
        && h_pass "an operator's own empty conf.d: uninstall removes our drop-in and keeps the directory" \
        || h_fail "an operator's own empty conf.d" "$(diff <(grep -e ' ./etc/containerd' "$WORK/owndir/tree.before") <(tree "$host" | grep -e ' ./etc/containerd'); tail -3 "$WORK/owndir/log")"

    # Directories the install made for the drop-in (two levels): uninstall
    # removes both, innermost first; one that holds another file by then
    # (kata-deploy's drop-in) stays, and so does its parent, still recorded
    # as the install's: emptied later (kata-deploy's cleanup), they go at the
    # next install's uninstall, although that install found them there.
    host="$(new_host madedirs "$FIXTURES/containerd-v2.toml")"
    tree "$host" > "$WORK/madedirs/tree.before"
    run_script madedirs install.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && [[ -f "$host/etc/containerd/gp/d/guest-pull.toml" ]] \
        && run_script madedirs uninstall.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && cmp -s <(grep -e ' ./etc/containerd' "$WORK/madedirs/tree.before") <(tree "$host" | grep -e ' ./etc/containerd') \
        && h_pass "drop-in directories the install made: uninstall removes them" \
        || h_fail "drop-in directories the install made" "$(diff <(grep -e ' ./etc/containerd' "$WORK/madedirs/tree.before") <(tree "$host" | grep -e ' ./etc/containerd'); tail -3 "$WORK/madedirs/log")"
    run_script madedirs install.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && printf 'version = 2\n' > "$host/etc/containerd/gp/d/kata-deploy.toml" \
        && run_script madedirs uninstall.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && [[ -f "$host/etc/containerd/gp/d/kata-deploy.toml" && ! -e "$host/etc/containerd/gp/d/guest-pull.toml" ]] \
        && [[ "$(cat "$host/etc/containerd/config.toml.guest-pull-dropin-dirs" 2> /dev/null)" == "$(printf '/etc/containerd/gp\n/etc/containerd/gp/d')" ]] \
        && h_pass "a drop-in directory the install made that holds another file at uninstall: kept with its parent, still recorded" \
        || h_fail "a drop-in directory the install made, not empty at uninstall" "$(ls -R "$host/etc/containerd"; tail -3 "$WORK/madedirs/log")"
    rm "$host/etc/containerd/gp/d/kata-deploy.toml"
    run_script madedirs install.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && run_script madedirs uninstall.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && cmp -s <(grep -e ' ./etc/containerd' "$WORK/madedirs/tree.before") <(tree "$host" | grep -e ' ./etc/containerd') \
        && h_pass "drop-in directories the install made, emptied after its uninstall: the next install's uninstall removes them" \
        || h_fail "drop-in directories the install made, emptied after its uninstall" "$(diff <(grep -e ' ./etc/containerd' "$WORK/madedirs/tree.before") <(tree "$host" | grep -e ' ./etc/containerd'); tail -3 "$WORK/madedirs/log")"

    # At uninstall, the record of the directories kept (here gp, which
    # holds another file; gp/d goes) cannot be rewritten (mktemp beside it
    # fails, as on a full disk): containerd's config is restored by then,
    # and the uninstall goes on (snapshotter stopped, files removed,
    # containerd restarted) with a WARNING; the record stays as it was.
    host="$(new_host dirskeptfull "$FIXTURES/containerd-v2.toml")"
    local stub="$WORK/dirskeptfull/stub"
    mkdir -p "$stub"
    printf '#!/bin/sh\ncase "$*" in *guest-pull-dropin-dirs*) echo "mktemp: No space left on device" >&2; exit 1 ;; esac\nexec %s "$@"\n' \
        "$(command -v mktemp)" > "$stub/mktemp"
    chmod +x "$stub/mktemp"
    run_script dirskeptfull install.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml \
        && printf 'version = 2\n' > "$host/etc/containerd/gp/other.toml" \
        && run_script dirskeptfull uninstall.sh CONTAINERD_DROPIN=/etc/containerd/gp/d/guest-pull.toml PATH="$stub:$PATH" \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$host/etc/containerd/gp/d" && -f "$host/etc/containerd/gp/other.toml" ]] \
        && grep -q "restart containerd.service" "$WORK/dirskeptfull/sysd/calls" \
        && grep -q "WARNING: could not rewrite /etc/containerd/config.toml.guest-pull-dropin-dirs" "$WORK/dirskeptfull/log" \
        && [[ "$(cat "$host/etc/containerd/config.toml.guest-pull-dropin-dirs")" == "$(printf '/etc/containerd/gp\n/etc/containerd/gp/d')" ]] \
        && h_pass "uninstall: the record of the drop-in directories kept cannot be rewritten: a WARNING, the uninstall still completes" \
        || h_fail "uninstall: record of the kept drop-in directories not rewritable" "$(tail -4 "$WORK/dirskeptfull/log")"

    # A directory the install made that cannot be removed although it is
    # empty (a mount point: EBUSY): the uninstall says why it kept each one
    # as rmdir told it, and does not call it "not empty".
    if [[ $EUID -eq 0 ]]; then
        host="$(new_host dirsbusy "$FIXTURES/containerd-v2.toml")"
        if in_private_mounts '
            set -e
            host="$1" d=/etc/containerd/gp/d/guest-pull.toml
            run_script dirsbusy install.sh CONTAINERD_DROPIN=$d
            mount --bind "$host/etc/containerd/gp/d" "$host/etc/containerd/gp/d"
            run_script dirsbusy uninstall.sh CONTAINERD_DROPIN=$d
            [[ -z "$(ls -A "$host/etc/containerd/gp/d")" ]]
            grep -q "kept /etc/containerd/gp/d (Device or resource busy), /etc/containerd/gp (Directory not empty): made by the install for its drop-in" "$WORK/dirsbusy/log"
            umount "$host/etc/containerd/gp/d"
            run_script dirsbusy install.sh CONTAINERD_DROPIN=$d
            run_script dirsbusy uninstall.sh CONTAINERD_DROPIN=$d
            [[ ! -e "$host/etc/containerd/gp" && ! -e "$host/etc/containerd/config.toml.guest-pull-dropin-dirs" ]]
            ' "$host" >> "$WORK/dirsbusy/log" 2>&1; then
            h_pass "uninstall: an empty drop-in directory it cannot remove (a mount point) is kept as busy, not as not empty; removed once it can be"
        else
            h_fail "uninstall: drop-in directory that cannot be removed (a mount point)" "$(tail -4 "$WORK/dirsbusy/log")"
        fi
    else
        h_skip "uninstall: drop-in directory that cannot be removed (a mount point)" "needs root (a bind mount in a private mount namespace)"
    fi

    # The record of those directories cannot be written (a full disk): the
    # install fails before it makes them and leaves no record, not even an
    # empty one beside containerd's config (the record is written whole,
    # as every other); once there is room, the next install records them
    # whole, and uninstall removes them and keeps the operator's conf.d.
    if [[ $EUID -eq 0 ]]; then
        host="$(new_host dirsfull "$FIXTURES/containerd-v2.toml")"
        if in_private_mounts '
            set -e
            host="$1" fixture="$2" d=/etc/containerd/gp/d/guest-pull.toml
            rec="$host/etc/containerd/config.toml.guest-pull-dropin-dirs"
            mount -t tmpfs -o size=320k tmpfs "$host/etc/containerd"
            cp "$fixture" "$host/etc/containerd/config.toml"
            mkdir "$host/etc/containerd/conf.d"
            run_script dirsfull install.sh
            [[ ! -e "$rec" ]]
            head -c 400000 /dev/zero > "$host/etc/containerd/filler" 2> /dev/null || true
            if run_script dirsfull install.sh CONTAINERD_DROPIN=$d; then exit 1; fi
            grep -q "cannot write .*/etc/containerd/config.toml.guest-pull-dropin-dirs (disk full" "$WORK/dirsfull/log"
            [[ ! -e "$rec" && ! -e "$host/etc/containerd/gp" ]]
            [[ -z "$(find "$host/etc/containerd" -name ".config.toml.guest-pull-dropin-dirs.*")" ]]
            rm "$host/etc/containerd/filler"
            run_script dirsfull install.sh CONTAINERD_DROPIN=$d
            [[ "$(cat "$rec")" == "$(printf "/etc/containerd/gp\n/etc/containerd/gp/d")" ]]
            run_script dirsfull uninstall.sh CONTAINERD_DROPIN=$d
            [[ ! -e "$host/etc/containerd/gp" && -d "$host/etc/containerd/conf.d" && ! -e "$rec" ]]
            cmp "$fixture" "$host/etc/containerd/config.toml"
            ' "$host" "$FIXTURES/containerd-v2.toml" >> "$WORK/dirsfull/log" 2>&1; then
            h_pass "disk full while recording the drop-in directories: install fails, no record left (not even an empty one); the next one records them whole"
        else
            h_fail "disk full while recording the drop-in directories" "$(tail -4 "$WORK/dirsfull/log")"
        fi
    else
        h_skip "disk full while recording the drop-in directories" "needs root (a tmpfs in a private mount namespace)"
    fi

    # The earlier path now holds the operator's own file: it stays.
    host="$(new_host foreigndropin "$FIXTURES/containerd-v3.toml")"
    run_script foreigndropin install.sh CONTAINERD_DROPIN=/etc/containerd/conf.d/gp-old.toml \
        && printf '# operator file\nversion = 3\n' > "$host/etc/containerd/conf.d/gp-old.toml" \
        && run_script foreigndropin install.sh \
        && grep -qx '# operator file' "$host/etc/containerd/conf.d/gp-old.toml" \
        && ! grep -q "the drop-in of an earlier install" "$WORK/foreigndropin/log" \
        && h_pass "drop-in path changed, the old path now the operator's file: kept" \
        || h_fail "drop-in path changed, foreign file at the old path" "$(ls "$host/etc/containerd/conf.d"; tail -3 "$WORK/foreigndropin/log")"

    # The drop-in path itself holds the operator's own file (loaded by
    # their conf.d glob): install refuses it (it would replace it without a
    # backup) and changes nothing; an uninstall keeps it.
    host="$(new_host owndropin "$FIXTURES/containerd-v3.toml")"
    sed -i 's|^version = 3$|version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]|' "$host/etc/containerd/config.toml"
    mkdir -p "$host/etc/containerd/conf.d"
    printf 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n' \
        > "$host/etc/containerd/conf.d/guest-pull.toml"
    fake_containerd "$WORK/owndropin/containerd" 2.1.4
    refused owndropin "the operator's own file at the drop-in path: install refuses it, nothing changed" \
        "/etc/containerd/conf.d/guest-pull.toml exists and is not a drop-in this installer wrote" \
        -- run_script owndropin install.sh CONTAINERD="$WORK/owndropin/containerd"
    run_script owndropin uninstall.sh CONTAINERD="$WORK/owndropin/containerd" \
        && cmp -s "$WORK/owndropin/tree.before" <(tree "$host") \
        && grep -q "kept /etc/containerd/conf.d/guest-pull.toml: it is not a drop-in this installer wrote" "$WORK/owndropin/log" \
        && h_pass "the operator's own file at the drop-in path: uninstall keeps it" \
        || h_fail "the operator's own file at the drop-in path: uninstall" "$(diff "$WORK/owndropin/tree.before" <(tree "$host") | head -5; tail -2 "$WORK/owndropin/log")"

    # A host without containerd's config directory: uninstall still runs
    # (nothing of containerd's to undo, nothing to restart for).
    host="$(new_host nocdir "")"
    rm -rf "$host/etc/containerd"
    run_script nocdir uninstall.sh && [[ ! -e "$host/etc/containerd" ]] \
        && ! grep -qs "restart containerd.service" "$WORK/nocdir/sysd/calls" \
        && h_pass "no containerd config directory: uninstall succeeds, makes none, restarts nothing" \
        || h_fail "no containerd config directory: uninstall" "$(tail -2 "$WORK/nocdir/log")"

    # A wait that is not a whole number of seconds would never end: refused
    # (so is 08, which bash's arithmetic would take for bad octal).
    host="$(new_host badwait "$FIXTURES/containerd-v2.toml")"
    refused badwait "RUNTIME_WAIT_SECONDS=10m: refused at once, nothing changed" \
        'RUNTIME_WAIT_SECONDS="10m" is not a whole number of seconds' \
        -- run_script badwait install.sh RUNTIME_WAIT_SECONDS=10m
    ! run_script badwait install.sh POLL_SECONDS=08 \
        && grep -q 'POLL_SECONDS="08" is not a whole number of seconds' "$WORK/badwait/log" \
        && h_pass "POLL_SECONDS=08: refused at once" \
        || h_fail "POLL_SECONDS=08" "$(tail -2 "$WORK/badwait/log")"

    # kata-deploy installed after us on containerd 1.x backs the config up
    # with our edits in it (config.toml.bak) and puts that back at its
    # cleanup: after our uninstall the backup must no longer import our
    # drop-in, which is gone (containerd 1.x does not start then).
    host="$(new_host katabak "$FIXTURES/containerd-v2.toml")"
    run_script katabak install.sh \
        && python3 "$HERE/kata_deploy_sim.py" install --root "$host" --containerd 1.7.27 \
            --shims qemu-coco-dev >> "$WORK/katabak/log" 2>&1 \
        && grep -q guest-pull-snapshotter "$host/etc/containerd/config.toml.bak" \
        && run_script katabak uninstall.sh \
        && python3 "$HERE/kata_deploy_sim.py" cleanup --root "$host" --containerd 1.7.27 >> "$WORK/katabak/log" 2>&1 \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" \
        && containerd_dump "$host" > "$WORK/katabak/dump" 2>&1 \
        && h_pass "kata-deploy's backup taken after our install: uninstall removes our edits from it too; its cleanup then restores a config containerd starts with" \
        || h_fail "kata-deploy's backup with our edits" "$(diff "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" | head -5; tail -n 2 "$WORK/katabak/dump" "$WORK/katabak/log")"

    # kata-deploy writes containerd 1.x's config key by key, one
    # read-modify-write each, while our install (which starts once the
    # first key, runtime_type, is there) or uninstall edits it: a write
    # landing between our read and our rename must not be lost. A stand-in
    # `sync` runs one such write (the shell lines in CASE/write) when a file
    # matching CASE/match is flushed: the drop-in at install, the config or
    # kata-deploy's backup at uninstall.
    race_sync() {
        mkdir -p "$WORK/$1/bin"
        printf '%s\n' '#!/bin/sh' "dir=$WORK/$1" \
            'case "$*" in $(cat "$dir/match")) if [ -s "$dir/write" ]; then bash -e "$dir/write"; : > "$dir/write"; fi ;; esac' \
            'exec /bin/sync "$@"' > "$WORK/$1/bin/sync"
        chmod +x "$WORK/$1/bin/sync"
    }
    race_write() {
        printf 'printf "%%s\\n" %q >> %q\n' \
            "$(printf '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-%s]\n  runtime_type = "io.containerd.kata-%s.v2"' "$1" "$1")" \
            "$host/etc/containerd/config.toml" > "$WORK/race/write"
    }
    host="$(new_host race "$FIXTURES/containerd-v2.toml")"
    race_sync race
    echo '*/etc/containerd/conf.d/.guest-pull.toml.*' > "$WORK/race/match"
    race_write qemu-tdx
    run_script race install.sh PATH="$WORK/race/bin:$PATH" && [[ ! -s "$WORK/race/write" ]] \
        && grep -q '^  runtime_type = "io.containerd.kata-qemu-tdx.v2"$' "$host/etc/containerd/config.toml" \
        && [[ "$(toml_get "$host/etc/containerd/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && h_pass "kata-deploy writes the config during our install: its write is kept, ours made" \
        || h_fail "kata-deploy writes the config during our install" "$(tail -n 5 "$host/etc/containerd/config.toml"; tail -n 2 "$WORK/race/log")"
    echo '*/etc/containerd/.config.toml.*' > "$WORK/race/match"
    race_write qemu-snp
    run_script race uninstall.sh PATH="$WORK/race/bin:$PATH" && [[ ! -s "$WORK/race/write" ]] \
        && grep -q '^  runtime_type = "io.containerd.kata-qemu-snp.v2"$' "$host/etc/containerd/config.toml" \
        && grep -q '^  runtime_type = "io.containerd.kata-qemu-tdx.v2"$' "$host/etc/containerd/config.toml" \
        && ! grep -q guest-pull "$host/etc/containerd/config.toml" \
        && h_pass "kata-deploy writes the config during our uninstall: its write is kept, our edits gone" \
        || h_fail "kata-deploy writes the config during our uninstall" "$(tail -n 5 "$host/etc/containerd/config.toml"; tail -n 2 "$WORK/race/log")"
    # kata-deploy's cleanup puts its backup (holding our edits) back while
    # our uninstall removes them from it: no backup may be written after
    # that (its next install would keep it, its next cleanup put it back),
    # and the config it put back must lose our edits too (else containerd
    # restarts on our drop-in, kept as imported by name, with no daemon).
    host="$(new_host racebak "$FIXTURES/containerd-v2.toml")"
    race_sync racebak
    echo '*/etc/containerd/.config.toml.bak.*' > "$WORK/racebak/match"
    printf 'mv -f %q %q\n' "$host/etc/containerd/config.toml.bak" "$host/etc/containerd/config.toml" > "$WORK/racebak/write"
    run_script racebak install.sh \
        && python3 "$HERE/kata_deploy_sim.py" install --root "$host" --containerd 1.7.27 \
            --shims qemu-coco-dev >> "$WORK/racebak/log" 2>&1 \
        && grep -q guest-pull-snapshotter "$host/etc/containerd/config.toml.bak" \
        && run_script racebak uninstall.sh PATH="$WORK/racebak/bin:$PATH" && [[ ! -s "$WORK/racebak/write" ]] \
        && [[ ! -e "$host/etc/containerd/config.toml.bak" ]] \
        && ! grep -q guest-pull "$host/etc/containerd/config.toml" \
        && [[ ! -e "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && h_pass "kata-deploy's cleanup puts its backup back during our uninstall: no stale backup is written after it, and the config it put back loses our edits too" \
        || h_fail "kata-deploy's cleanup during our uninstall" "$(ls "$host/etc/containerd"; grep -n guest-pull "$host/etc/containerd/config.toml"; tail -n 2 "$WORK/racebak/log")"

    # Another daemon config directory: the unit starts the daemon with the
    # config installed there (the default path may be absent, so a unit
    # naming it would run the daemon on built-in defaults without a word).
    host="$(new_host confdir "$FIXTURES/containerd-v2.toml")"
    run_script confdir install.sh CONFIG_DIR=/etc/guest-pull \
        && [[ -f "$host/etc/guest-pull/config.toml" ]] \
        && grep -q '^ExecStart=/usr/local/bin/containerd-guest-pull-grpc --config /etc/guest-pull/config.toml$' \
            "$host/etc/systemd/system/guest-pull-snapshotter.service" \
        && h_pass "CONFIG_DIR=/etc/guest-pull: the unit names the config installed there" \
        || h_fail "CONFIG_DIR=/etc/guest-pull" "$(grep ExecStart= "$host/etc/systemd/system/guest-pull-snapshotter.service"; tail -2 "$WORK/confdir/log")"

    # The temporary files of writes cut short (a kill or a reboot between
    # the copy and the rename), each as large as its file: the next install
    # removes them, and so does an uninstall; names of another form stay.
    host="$(new_host leftovers "$FIXTURES/containerd-v2.toml")"
    local bin="$host/usr/local/bin" unit="$host/etc/systemd/system"
    mkdir -p "$unit"
    echo partial > "$bin/.containerd-guest-pull-grpc.guest-pull-tmp.Ab3xYz"
    echo partial > "$bin/.guest-pull-verity.guest-pull-tmp.000000"
    echo partial > "$unit/.guest-pull-snapshotter.service.guest-pull-tmp.q1W2e3"
    echo mine > "$bin/.containerd-guest-pull-grpc.keep"
    echo mine > "$host/etc/containerd/.config.toml.backup"  # another's, same length
    local installed=false
    run_script leftovers install.sh \
        && [[ ! -e "$bin/.containerd-guest-pull-grpc.guest-pull-tmp.Ab3xYz" && ! -e "$bin/.guest-pull-verity.guest-pull-tmp.000000" ]] \
        && [[ ! -e "$unit/.guest-pull-snapshotter.service.guest-pull-tmp.q1W2e3" && -e "$bin/.containerd-guest-pull-grpc.keep" ]] \
        && installed=true
    echo partial > "$bin/.guest-pull-overlayfs.guest-pull-tmp.Zz9Zz9"
    echo partial > "$unit/.guest-pull-snapshotter.service.guest-pull-tmp.r4T5y6"
    echo partial > "$host/etc/containerd-guest-pull-grpc/.config.toml.guest-pull-tmp.a1b2c3"
    [[ "$installed" == true ]] && run_script leftovers uninstall.sh \
        && [[ ! -e "$bin/.guest-pull-overlayfs.guest-pull-tmp.Zz9Zz9" && ! -e "$unit/.guest-pull-snapshotter.service.guest-pull-tmp.r4T5y6" ]] \
        && [[ ! -e "$host/etc/containerd-guest-pull-grpc" ]] \
        && [[ -e "$bin/.containerd-guest-pull-grpc.keep" && -e "$host/etc/containerd/.config.toml.backup" ]] \
        && h_pass "writes cut short: their temporary files are removed by the next install and by uninstall, other names stay" \
        || h_fail "writes cut short: temporary files left (install ok: $installed)" "$(ls -A "$bin" "$unit"; tail -2 "$WORK/leftovers/log")"

    # The same of releases before the current form: mktemp's .NAME.XXXXXX,
    # mode 0600 (cut short before the chmod) or the file's own (after),
    # beside our own files only. Install and uninstall remove them; what
    # those releases did not make stays: a name someone chose (a suffix of
    # one kind of character), another mode, a link, a file of two links or
    # of another user, beside containerd's config.
    host="$(new_host oldleft "$FIXTURES/containerd-v2.toml")"
    bin="$host/usr/local/bin" unit="$host/etc/systemd/system"
    local cfgdir="$host/etc/containerd-guest-pull-grpc" f left=""
    local -a gone=() kept=()
    mkdir -p "$cfgdir"
    # old_left PATH MODE: a leftover of that form (as large as its file).
    old_left() { head -c 4096 /dev/zero > "$1" && chmod "$2" "$1"; }
    # gone_and_kept STEP: adds to $left what STEP left of gone[] and
    # removed of kept[].
    gone_and_kept() {
        local f
        for f in "${gone[@]}"; do [[ ! -e "$f" ]] || left+=" $1 left ${f#"$host"}"; done
        for f in "${kept[@]}"; do [[ -e "$f" || -L "$f" ]] || left+=" $1 removed ${f#"$host"}"; done
    }
    old_left "$bin/.containerd-guest-pull-grpc.Ab3xYz" 0600 && gone+=("$bin/.containerd-guest-pull-grpc.Ab3xYz")
    old_left "$bin/.guest-pull-verity.q1W2e3" 0755 && gone+=("$bin/.guest-pull-verity.q1W2e3")
    old_left "$unit/.guest-pull-snapshotter.service.Zz9Zz9" 0644 && gone+=("$unit/.guest-pull-snapshotter.service.Zz9Zz9")
    old_left "$cfgdir/.config.toml.a1B2c3" 0600 && gone+=("$cfgdir/.config.toml.a1B2c3")
    old_left "$cfgdir/.installed-by-pod.X7y8Z9" 0644 && gone+=("$cfgdir/.installed-by-pod.X7y8Z9")
    old_left "$bin/.containerd-guest-pull-grpc.backup" 0755 && kept+=("$bin/.containerd-guest-pull-grpc.backup")
    old_left "$bin/.guest-pull-verity.202412" 0755 && kept+=("$bin/.guest-pull-verity.202412")
    old_left "$bin/.guest-pull-overlayfs.ab-c12" 0755 && kept+=("$bin/.guest-pull-overlayfs.ab-c12")
    old_left "$bin/.guest-pull-overlayfs.Mode64" 0640 && kept+=("$bin/.guest-pull-overlayfs.Mode64")
    ln -s guest-pull-overlayfs "$bin/.guest-pull-overlayfs.Link42" && kept+=("$bin/.guest-pull-overlayfs.Link42")
    old_left "$host/hardlinked" 0600 && ln "$host/hardlinked" "$bin/.guest-pull-verity.Hard42" && kept+=("$bin/.guest-pull-verity.Hard42")
    old_left "$unit/.guest-pull-snapshotter.service.Nobdy1" 0644 && chown nobody "$unit/.guest-pull-snapshotter.service.Nobdy1" \
        && kept+=("$unit/.guest-pull-snapshotter.service.Nobdy1")
    old_left "$host/etc/containerd/.config.toml.Ab3xYz" 0600 && kept+=("$host/etc/containerd/.config.toml.Ab3xYz")
    run_script oldleft install.sh || left+=" install failed"
    gone_and_kept install
    gone=()
    old_left "$bin/.guest-pull-overlayfs.Zz9Zz9" 0755 && gone+=("$bin/.guest-pull-overlayfs.Zz9Zz9")
    old_left "$unit/.guest-pull-snapshotter.service.r4T5y6" 0600 && gone+=("$unit/.guest-pull-snapshotter.service.r4T5y6")
    old_left "$cfgdir/.config.toml.c3D4e5" 0644 && gone+=("$cfgdir/.config.toml.c3D4e5")
    old_left "$cfgdir/.installed-by-pod.F6g7H8" 0600 && gone+=("$cfgdir/.installed-by-pod.F6g7H8")
    run_script oldleft uninstall.sh || left+=" uninstall failed"
    gone_and_kept uninstall
    [[ ! -e "$cfgdir" ]] || left+=" CONFIG_DIR kept"
    [[ -z "$left" ]] \
        && h_pass "writes cut short by earlier releases (.NAME.XXXXXX): removed by install and uninstall; what those releases did not make stays" \
        || h_fail "writes cut short by earlier releases:$left" "$(ls -lA "$bin" "$unit"; tail -2 "$WORK/oldleft/log")"

    # Our own files beside containerd's: the drop-in (in the conf.d the
    # install made for it) and the records beside containerd's config. A
    # write of one cut short left its temporary file (this form or an
    # earlier release's) that no uninstall removed: it stayed in
    # /etc/containerd, and one in conf.d kept that directory ("Directory not
    # empty"). Uninstall removes them; beside containerd's config itself,
    # what may be another's stays.
    host="$(new_host dropleft "$FIXTURES/containerd-v2.toml")"
    local etc="$host/etc/containerd" made=false
    gone=() kept=() left=""
    run_script dropleft install.sh || left+=" install failed"
    [[ -f "$etc/conf.d/guest-pull.toml" && -f "$etc/config.toml.guest-pull-dropin-dirs" ]] && made=true
    old_left "$etc/conf.d/.guest-pull.toml.guest-pull-tmp.Ab3xYz" 0644 && gone+=("$etc/conf.d/.guest-pull.toml.guest-pull-tmp.Ab3xYz")
    old_left "$etc/conf.d/.guest-pull.toml.q1W2e3" 0600 && gone+=("$etc/conf.d/.guest-pull.toml.q1W2e3")
    old_left "$etc/.config.toml.guest-pull-dropin.guest-pull-tmp.Zz9Zz9" 0644 && gone+=("$etc/.config.toml.guest-pull-dropin.guest-pull-tmp.Zz9Zz9")
    old_left "$etc/.config.toml.guest-pull-dropin-dirs.a1B2c3" 0644 && gone+=("$etc/.config.toml.guest-pull-dropin-dirs.a1B2c3")
    old_left "$etc/.config.toml.guest-pull-dropin.backup" 0644 && kept+=("$etc/.config.toml.guest-pull-dropin.backup")
    old_left "$etc/.config.toml.Ab3xYz" 0600 && kept+=("$etc/.config.toml.Ab3xYz")
    run_script dropleft uninstall.sh || left+=" uninstall failed"
    gone_and_kept uninstall
    [[ ! -e "$etc/conf.d" ]] || left+=" conf.d kept"
    [[ "$made" == true && -z "$left" ]] \
        && h_pass "writes cut short of the drop-in and its records: removed by uninstall (and conf.d with them); what may be another's stays" \
        || h_fail "writes cut short of the drop-in and its records (drop-in and conf.d made: $made):$left" "$(ls -lA "$etc" "$etc/conf.d" 2>&1; tail -3 "$WORK/dropleft/log")"

    # The unit's Documentation= (systemctl help) names operations.md in the
    # docs directory under PREFIX, which only make install used to fill:
    # the install puts the docs there too, following PREFIX, and uninstall
    # removes them with the directories above them it made; a
    # share/doc of the node's own stays.
    local unit
    host="$(new_host docs "$FIXTURES/containerd-v2.toml")"
    unit="$host/etc/systemd/system/guest-pull-snapshotter.service"
    run_script docs install.sh PREFIX=/opt/gp && unit_docs_present "$host" "$unit" \
        && grep -qx "Documentation=file:///opt/gp/share/doc/$LIB_NAME/operations.md" "$unit" \
        && cmp -s "$WORK/docs/payload/doc/setup.md" "$host/opt/gp/share/doc/$LIB_NAME/setup.md" \
        && run_script docs uninstall.sh PREFIX=/opt/gp && [[ ! -e "$host/opt/gp/share" ]] \
        && h_pass "docs: installed under PREFIX where the unit's Documentation= points; uninstall removes them and the directories it made" \
        || h_fail "docs: under PREFIX" "$(grep Documentation= "$unit"; find "$host/opt" 2>&1 | head -5; tail -3 "$WORK/docs/log")"
    mkdir -p "$host/usr/local/share/doc/other"
    printf 'gone in this release\n' > "$WORK/docs/old.md"
    run_script docs install.sh && unit_docs_present "$host" "$unit" \
        && cp "$WORK/docs/old.md" "$host/usr/local/share/doc/$LIB_NAME/old.md" \
        && run_script docs install.sh && [[ ! -e "$host/usr/local/share/doc/$LIB_NAME/old.md" ]] \
        && run_script docs uninstall.sh && [[ ! -e "$host/usr/local/share/doc/$LIB_NAME" && -d "$host/usr/local/share/doc/other" ]] \
        && h_pass "docs: a doc the release no longer ships goes; uninstall keeps the node's own share/doc" \
        || h_fail "docs: the node's own share/doc" "$(find "$host/usr/local/share" 2>&1 | head -5; tail -3 "$WORK/docs/log")"
}
