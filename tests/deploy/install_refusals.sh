# shellcheck shell=bash
# install_refusals.sh: install.sh when the host is not ready or not as
# expected (no kata runtime, a version 1 config, a service that never gets
# active, no containerd config), and uninstall after later edits. Sourced by
# tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_failures() {
    local host
    # The kata runtime is missing: bounded wait, then failure, host untouched
    # as far as containerd is concerned.
    host="$(new_host noruntime "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/noruntime/orig.toml"
    if run_script noruntime install.sh RUNTIME_WAIT_SECONDS=2; then
        h_fail "no runtime: install fails"
    else
        cmp -s "$WORK/noruntime/orig.toml" "$host/etc/containerd/config.toml" \
            && [[ ! -e "$host/etc/containerd/config.toml.guest-pull-backup" ]] \
            && grep -q "no runtime 'kata-qemu-coco-dev'" "$WORK/noruntime/log" \
            && grep -q "waiting for runtime" "$WORK/noruntime/log" \
            && h_pass "no runtime: waits (bounded), fails clearly, containerd config untouched" \
            || h_fail "no runtime: state" "$(tail -3 "$WORK/noruntime/log")"
    fi
    # A version 1 config is refused.
    host="$(new_host v1 "")"
    printf '[plugins.cri]\n  sandbox_image = "x"\n' > "$host/etc/containerd/config.toml"
    ! run_script v1 install.sh && grep -q "version 1 (the file has no \`version\` key) is not supported" "$WORK/v1/log" \
        && h_pass "v1 config: refused with a clear message" || h_fail "v1 config" "$(tail -2 "$WORK/v1/log")"
    # A valid version 2 config whose CRI tables are dotted keys: refused as a
    # form the tool does not edit, not as invalid TOML, and left alone.
    host="$(new_host dotted "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  containerd.snapshotter = "overlayfs"\n  containerd.runtimes.kata-qemu-coco-dev.runtime_type = "io.containerd.kata-qemu-coco-dev.v2"\n' \
        > "$host/etc/containerd/config.toml"
    refused dotted "dotted-key config: refused as a form the tool does not edit (not as invalid TOML), nothing changed" \
        "is defined in a form this tool does not edit (dotted keys or an inline table)" '!not valid TOML' \
        -- run_script dotted install.sh
    # A proxy plugin of our name for another socket, in the main config or
    # in a file it imports: our drop-in would silently replace it (an import
    # overrides), so the install refuses and changes nothing. The same
    # plugin for our socket (a hand merge of deploy/containerd/) is fine.
    host="$(new_host otherplugin "$FIXTURES/containerd-v2.toml")"
    printf '\n[proxy_plugins.guest-pull]\n  type = "snapshot"\n  address = "/run/other/other.sock"\n' \
        >> "$host/etc/containerd/config.toml"
    refused otherplugin "proxy plugin of our name for another socket: refused with a clear message, nothing changed" \
        "/etc/containerd/config.toml already registers the proxy plugin 'guest-pull' with type 'snapshot' and address '/run/other/other.sock'" \
        -- run_script otherplugin install.sh
    host="$(new_host otherplugin3 "$FIXTURES/containerd-v3.toml")"
    sed -i 's|^version = 3$|version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]|' "$host/etc/containerd/config.toml"
    mkdir -p "$host/etc/containerd/conf.d"
    printf 'version = 3\n[proxy_plugins.guest-pull]\n  type = "snapshot"\n  address = "/run/other/other.sock"\n' \
        > "$host/etc/containerd/conf.d/mine.toml"
    fake_containerd "$WORK/otherplugin3/containerd" 2.1.4
    refused otherplugin3 "proxy plugin of our name for another socket in an imported file: refused, nothing changed" \
        "/etc/containerd/conf.d/mine.toml already registers the proxy plugin 'guest-pull'" \
        -- run_script otherplugin3 install.sh CONTAINERD="$WORK/otherplugin3/containerd"
    host="$(new_host sameplugin "$FIXTURES/containerd-v2.toml")"
    sed -n '/^\[proxy_plugins.guest-pull\]/,/address/p' "$REPO/deploy/containerd/config-v2.toml" \
        | sed '1s/^/\n/' >> "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/sameplugin/orig.toml"
    run_script sameplugin install.sh && run_script sameplugin uninstall.sh \
        && cmp -s "$WORK/sameplugin/orig.toml" "$host/etc/containerd/config.toml" \
        && h_pass "proxy plugin of our name for our socket (a hand merge): installed, uninstall restores the config" \
        || h_fail "proxy plugin of our name for our socket" "$(tail -2 "$WORK/sameplugin/log")"
    # containerd 2.x, a conf.d the config does not import, holding a file of
    # the operator's: our glob import would make containerd load it (here:
    # another default snapshotter) and uninstall would keep the glob, so the
    # install refuses and changes nothing. A file put there after our
    # install (kata-deploy's) does not stop the next install.
    host="$(new_host inert "$FIXTURES/containerd-v3.toml")"
    mkdir -p "$host/etc/containerd/conf.d"
    printf 'version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "zfs"\n' \
        > "$host/etc/containerd/conf.d/old.toml"
    fake_containerd "$WORK/inert/containerd" 2.1.4
    refused inert "conf.d not imported, with an operator's file: the glob import is refused, nothing changed" \
        "would make containerd also load /etc/containerd/conf.d/old.toml, which it does not load now" \
        -- run_script inert install.sh CONTAINERD="$WORK/inert/containerd"
    host="$(new_host inert2 "$FIXTURES/containerd-v3.toml")"
    mkdir -p "$host/etc/containerd/conf.d"
    cp "$host/etc/containerd/config.toml" "$WORK/inert2/orig.toml"
    run_script inert2 install.sh CONTAINERD="$WORK/inert/containerd" \
        && printf 'version = 3\n' > "$host/etc/containerd/conf.d/kata-deploy.toml" \
        && run_script inert2 install.sh CONTAINERD="$WORK/inert/containerd" \
        && rm "$host/etc/containerd/conf.d/kata-deploy.toml" \
        && run_script inert2 uninstall.sh CONTAINERD="$WORK/inert/containerd" \
        && cmp -s "$WORK/inert2/orig.toml" "$host/etc/containerd/config.toml" \
        && h_pass "conf.d not imported: a file put there after the install does not stop the next one; uninstall restores" \
        || h_fail "conf.d not imported: install, a file added, install again" "$(tail -2 "$WORK/inert2/log")"
    # A version 2 config on a node running containerd 2.x: refused before
    # any change (2.x's conversion would unpack Kata images on the host).
    host="$(new_host v2on2 "$FIXTURES/containerd-v2.toml")"
    printf '#!/bin/sh\necho "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376"\n' \
        > "$WORK/v2on2/containerd" && chmod +x "$WORK/v2on2/containerd"
    refused v2on2 "v2 config on containerd 2.x: refused with the conversion to do, nothing on the host changed" \
        "is a version 2 config and the node runs containerd 2.x" \
        -- run_script v2on2 install.sh CONTAINERD="$WORK/v2on2/containerd"
    # A containerd that cannot be run: a warning, and the install goes on.
    host="$(new_host nocontainerd "$FIXTURES/containerd-v2.toml")"
    run_script nocontainerd install.sh CONTAINERD=/nonexistent/containerd \
        && grep -q "WARNING: cannot run '/nonexistent/containerd --version'" "$WORK/nocontainerd/log" \
        && h_pass "containerd --version fails: a warning, the install goes on" \
        || h_fail "containerd --version fails" "$(tail -2 "$WORK/nocontainerd/log")"
    # containerd told another socket than the daemon config's: said plainly.
    host="$(new_host otheraddr "$FIXTURES/containerd-v2.toml")"
    run_script otheraddr install.sh SOCKET=/run/other/guest-pull.sock \
        && grep -q 'WARNING: /etc/containerd-guest-pull-grpc/config.toml says address = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock" but containerd is configured for /run/other/guest-pull.sock' "$WORK/otheraddr/log" \
        && h_pass "socket mismatch: the installer warns that containerd would not reach the daemon" \
        || h_fail "socket mismatch" "$(tail -2 "$WORK/otheraddr/log")"
    # A node without systemd (its systemctl cannot operate): refused before
    # containerd is pointed at a socket no service would ever serve.
    host="$(new_host nosystemd "$FIXTURES/containerd-v2.toml")"
    printf '#!/bin/sh\necho "$*" >> "%s/calls"\necho "System has not been booted with systemd as init system (PID 1). Can'"'"'t operate." >&2\nexit 1\n' \
        "$WORK/nosystemd/sysd" > "$WORK/nosystemd/sysd/systemctl"
    refused nosystemd "no systemd on the node: refused clearly, nothing on the host changed" \
        "cannot reach the host's systemd" "System has not been booted with systemd" \
        -- run_script nosystemd install.sh
    # containerd runs under another unit name (or outside systemd): refused
    # before any change, naming CONTAINERD_SERVICE, not found at the final
    # restart with containerd's config already changed.
    host="$(new_host nounit "$FIXTURES/containerd-v2.toml")"
    mv "$WORK/nounit/sysd/systemctl" "$WORK/nounit/sysd/systemctl.real"
    printf '#!/bin/sh\ncase "$*" in *LoadState*containerd.service) echo not-found; exit 0 ;; esac\nexec "%s" "$@"\n' \
        "$WORK/nounit/sysd/systemctl.real" > "$WORK/nounit/sysd/systemctl"
    chmod +x "$WORK/nounit/sysd/systemctl"
    refused nounit "containerd not under containerd.service: refused naming CONTAINERD_SERVICE, nothing on the host changed" \
        "has no usable unit containerd.service (LoadState=not-found)" "set CONTAINERD_SERVICE" \
        -- run_script nounit install.sh
    run_script nounit install.sh CONTAINERD_SERVICE=containerd-k8s.service \
        && grep -qx "restart containerd-k8s.service" "$WORK/nounit/sysd/calls" \
        && h_pass "containerd under another unit: CONTAINERD_SERVICE names it, the install restarts that unit" \
        || h_fail "containerd under another unit" "$(tail -2 "$WORK/nounit/log")"
    # A k3s node (its embedded containerd, no containerd.service): refused
    # as not supported. The generic refusal sent the operator to set
    # CONTAINERD_SERVICE (k3s.service) and then CONTAINERD_CONFIG to the
    # config k3s writes anew from its template at every start, which was
    # installed into: the edits were lost at the install's own restart of
    # k3s, and the config watch put them back, restarting k3s again.
    host="$(new_host k3s "")"
    mkdir -p "$host/var/lib/rancher/k3s/agent/etc/containerd"
    cp "$FIXTURES/containerd-v2.toml" "$host/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"
    cp "$FIXTURES/containerd-v2.toml" "$host/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
    mv "$WORK/k3s/sysd/systemctl" "$WORK/k3s/sysd/systemctl.real"
    printf '#!/bin/sh\ncase "$*" in *LoadState*containerd.service) echo not-found; exit 0 ;; esac\nexec "%s" "$@"\n' \
        "$WORK/k3s/sysd/systemctl.real" > "$WORK/k3s/sysd/systemctl"
    chmod +x "$WORK/k3s/sysd/systemctl"
    refused k3s "k3s node: refused naming k3s as not supported; nothing on the host changed" \
        "the node has k3s's containerd config" "k3s and rke2 nodes are not supported" \
        -- run_script k3s install.sh
    refused k3s "k3s node, its generated config named: refused before any change (edits lost at k3s's next start)" \
        "is generated from /var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl" "not supported" \
        -- run_script k3s install.sh CONTAINERD_SERVICE=k3s.service \
        CONTAINERD_CONFIG=/var/lib/rancher/k3s/agent/etc/containerd/config.toml
    refused k3s "k3s node: containerd-setup.sh check refuses its generated config too" \
        "is generated from" -- run_setup k3s check \
        CONTAINERD_CONFIG=/var/lib/rancher/k3s/agent/etc/containerd/config.toml
    # A read-only PREFIX (Flatcar's /usr; a read-only bind mount in a
    # private mount namespace): refused before any change, saying to set
    # PREFIX, not a bare mktemp error after the lock and the install records.
    if [[ $EUID -eq 0 ]]; then
        host="$(new_host rousr "$FIXTURES/containerd-v2.toml")"
        refused rousr "read-only /usr: refused before any change, naming PREFIX" \
            "/usr/local/bin cannot be written on the host" "set PREFIX (e.g. /opt)" '!Read-only file system' \
            -- in_private_mounts 'mount --bind "$1/usr" "$1/usr" && mount -o remount,bind,ro "$1/usr" && run_script rousr install.sh' "$host"
        mkdir -p "$host/opt"
        in_private_mounts 'mount --bind "$1/usr" "$1/usr" && mount -o remount,bind,ro "$1/usr" && run_script rousr install.sh PREFIX=/opt' "$host" \
            && [[ -x "$host/opt/bin/containerd-guest-pull-grpc" ]] \
            && h_pass "read-only /usr: PREFIX=/opt installs there" \
            || h_fail "read-only /usr: PREFIX=/opt" "$(tail -2 "$WORK/rousr/log")"
    else
        h_skip "read-only /usr: refused before any change" "needs root (a read-only bind mount)"
    fi
    # kata-deploy's mapping reused, with an entry for nydus, and kata's
    # runtime on nydus's snapshotter: each warning once (the read-only check
    # before the lock and the merge under it each printed them).
    host="$(new_host nydusnote "$FIXTURES/containerd-v2.toml")"
    nydus_runtime "$host/etc/containerd/config.toml"
    run_script nydusnote install.sh SNAPSHOTTER_HANDLER_MAPPING=qemu-coco-dev:guest-pull,qemu-tdx:nydus \
        && [[ "$(grep -c "skipping 'qemu-tdx:nydus': snapshotter 'nydus' is not 'guest-pull'" "$WORK/nydusnote/log")" == 1 ]] \
        && [[ "$(grep -c "runtime kata-qemu-coco-dev has snapshotter 'nydus'" "$WORK/nydusnote/log")" == 1 ]] \
        && h_pass "a nydus entry in the mapping and a runtime on nydus: install.sh prints each warning once" \
        || h_fail "nydus warnings printed once" "$(grep -e nydus "$WORK/nydusnote/log")"
    # The snapshotter never becomes active: bounded wait, non-zero exit.
    host="$(new_host inactive "$FIXTURES/containerd-v2.toml")"
    echo 3 > "$WORK/inactive/sysd/is-active-rc"
    local start=$SECONDS
    ! run_script inactive install.sh && grep -q "did not become active" "$WORK/inactive/log" \
        && (( SECONDS - start < 20 )) \
        && h_pass "inactive service: install gives up after the bounded wait" || h_fail "inactive service"
    # The daemon refused its configuration (exit 2, not restarted by the
    # unit): the installer says so at once, not after the bounded wait.
    host="$(new_host badconfig "$FIXTURES/containerd-v2.toml")"
    echo 3 > "$WORK/badconfig/sysd/is-active-rc.guest-pull-snapshotter.service"
    echo 2 > "$WORK/badconfig/sysd/show"
    start=$SECONDS
    ! run_script badconfig install.sh ACTIVE_TIMEOUT_SECONDS=30 \
        && grep -q "refused its configuration (exit status 2, not restarted)" "$WORK/badconfig/log" \
        && grep -q "configuration error: ..." "$WORK/badconfig/log" \
        && (( SECONDS - start < 20 )) \
        && h_pass "refused configuration: installer names it at once and fails" \
        || h_fail "refused configuration" "$(tail -3 "$WORK/badconfig/log")"
    # The daemon refused its data directory (exit 65, not restarted by the
    # unit): the installer says so, finishes the containerd side and does not
    # fail (a failing installer would crash-loop the pod).
    host="$(new_host refused "$FIXTURES/containerd-v2.toml")"
    echo 3 > "$WORK/refused/sysd/is-active-rc.guest-pull-snapshotter.service"
    echo 65 > "$WORK/refused/sysd/show"
    run_script refused install.sh && grep -q "refused to start (exit status 65)" "$WORK/refused/log" \
        && grep -q "Metadata database lost or stale" "$WORK/refused/log" \
        && grep -q "restart containerd" "$WORK/refused/sysd/calls" \
        && h_pass "refused data directory: installer logs the recovery pointer, configures containerd, exits 0" \
        || h_fail "refused data directory" "$(tail -3 "$WORK/refused/log")"
}

test_missing_config() {
    local host
    host="$(new_host noconfig "")"
    tree "$host" > "$WORK/noconfig/tree.before"
    if ! run_script noconfig install.sh RUNTIME_WAIT_SECONDS=1 \
        && grep -q "waiting for runtime" "$WORK/noconfig/log" \
        && cmp -s <(grep -v -e usr/local/bin/ -e usr/local/lib/ -e etc/systemd -e etc/containerd-guest-pull-grpc "$WORK/noconfig/tree.before") \
                  <(tree "$host" | grep -v -e usr/local/bin/ -e usr/local/lib/ -e etc/systemd -e etc/containerd-guest-pull-grpc); then
        h_pass "no containerd config: waits (bounded) for kata-deploy, fails, creates nothing in /etc/containerd"
    else
        h_fail "no containerd config" "$(tail -3 "$WORK/noconfig/log")"
    fi
}

test_edited_after_install() {
    local host cfg
    host="$(new_host edited "$FIXTURES/containerd-v2.toml")"
    cfg="$host/etc/containerd/config.toml"
    run_script edited install.sh || { h_fail "edited: install"; return; }
    printf '\n[debug]\n  level = "debug"\n' >> "$cfg"
    cp "$cfg" "$WORK/edited/edited.toml"
    echo 'log_level = "debug"' >> "$host/etc/containerd-guest-pull-grpc/config.toml"
    run_script edited uninstall.sh \
        && cmp -s <(cat "$FIXTURES/containerd-v2.toml"; printf '\n[debug]\n  level = "debug"\n') "$cfg" \
        && [[ ! -e "$cfg.guest-pull-uninstalled" ]] \
        && grep -q 'log_level = "debug"' "$host/etc/containerd-guest-pull-grpc/config.toml" \
        && h_pass "edited: uninstall removes only our edits and keeps later containerd edits in place, keeps the operator's daemon config kept" \
        || h_fail "edited" "$(tail -3 "$WORK/edited/log")"
}

# KATA_MODE=stock: the helper's second name and the stock mount type are
# installed, a second run changes nothing, uninstall removes both; a bad mode
# changes nothing.
test_install_stock() {
    local host before
    host="$(new_host stock "$FIXTURES/containerd-v2.toml")"
    refused stock "stock: KATA_MODE=bogus refused, host unchanged" \
        "KATA_MODE must be patched or stock" -- run_script stock install.sh KATA_MODE=bogus
    if ! run_script stock install.sh KATA_MODE=stock; then h_fail "stock: install.sh succeeds" "$(tail -5 "$WORK/stock/log")"; return; fi
    [[ "$(readlink "$host/usr/local/bin/nydus-overlayfs-guest-pull")" == guest-pull-overlayfs ]] \
        && grep -qx 'mount_type = "fuse.nydus-overlayfs-guest-pull"' "$host/etc/containerd-guest-pull-grpc/config.toml" \
        && h_pass "stock: helper linked as nydus-overlayfs-guest-pull, daemon config has the stock mount type" \
        || h_fail "stock: helper link or mount type missing"
    before="$(tree "$host")"
    run_script stock install.sh KATA_MODE=stock && [[ "$(tree "$host")" == "$before" ]] \
        && h_pass "stock: second install changes nothing" || h_fail "stock: second install changed the host"
    run_script stock uninstall.sh KATA_MODE=stock && [[ ! -e "$host/usr/local/bin/nydus-overlayfs-guest-pull" \
        && ! -L "$host/usr/local/bin/nydus-overlayfs-guest-pull" && ! -e "$host/etc/containerd-guest-pull-grpc/config.toml" ]] \
        && h_pass "stock: uninstall removes the link and the stock config" || h_fail "stock: uninstall left files"
    # Switching a node's mode (the DaemonSet's KATA_MODE changed): the
    # shipped config of the other mode, unchanged, is ours and follows the
    # mode; one the operator changed is kept.
    local cfg="$host/etc/containerd-guest-pull-grpc/config.toml"
    run_script stock install.sh KATA_MODE=patched && run_script stock install.sh KATA_MODE=stock \
        && grep -qx 'mount_type = "fuse.nydus-overlayfs-guest-pull"' "$cfg" \
        && run_script stock install.sh KATA_MODE=patched \
        && grep -qx 'mount_type = "fuse.guest-pull-overlayfs"' "$cfg" \
        && h_pass "stock: switching KATA_MODE replaces the unchanged shipped config's mount type" \
        || h_fail "stock: switching KATA_MODE" "$(grep mount_type "$cfg"; tail -2 "$WORK/stock/log")"
    echo 'log_level = "debug"' >> "$cfg"
    run_script stock install.sh KATA_MODE=stock && grep -qx 'mount_type = "fuse.guest-pull-overlayfs"' "$cfg" \
        && grep -q "keeping the host's own /etc/containerd-guest-pull-grpc/config.toml" "$WORK/stock/log" \
        && grep -q 'WARNING: the kept /etc/containerd-guest-pull-grpc/config.toml has guest_pull.mount_type = "fuse.guest-pull-overlayfs", the type of the other Kata mode; KATA_MODE=stock needs "fuse.nydus-overlayfs-guest-pull"' "$WORK/stock/log" \
        && h_pass "stock: switching KATA_MODE keeps a daemon config the operator changed, and warns of its other mode's mount type" \
        || h_fail "stock: switching KATA_MODE, changed config" "$(grep mount_type "$cfg"; tail -2 "$WORK/stock/log")"
}

# What an operator meets running the scripts by hand or with a wrong
# setting: each refusal names the problem and the way out, exits non-zero,
# and changes nothing.
# run_script_args CASE SCRIPT ARG...: run_script with ARGs given to SCRIPT.
run_script_args() {
    local case="$1" script="$2"; shift 2
    [[ -x "$WORK/containerd-1.7" ]] || fake_containerd "$WORK/containerd-1.7" 1.7.27
    env HOST_ROOT="$WORK/$case/host" PAYLOAD_DIR="$WORK/$case/payload" \
        SYSTEMCTL="$WORK/$case/sysd/systemctl" GUEST_PULL_SLEEP=false CONTAINERD="$WORK/containerd-1.7" \
        BUSCTL="$WORK/$case/sysd/busctl" PRESTOP_MARKER="$WORK/$case/prestop-started" POLL_SECONDS=1 \
        ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 "$SCRIPTS/$script" "$@" >> "$WORK/$case/log" 2>&1
}

test_operator_messages() {
    local host before calls
    host="$(new_host args "$FIXTURES/containerd-v2.toml")"
    run_script args install.sh || { h_fail "operator messages: install" "$(tail -3 "$WORK/args/log")"; return; }
    # Arguments: the scripts take none. `uninstall.sh --help` used to
    # uninstall.
    before="$(tree "$host")"
    calls="$(cat "$WORK/args/sysd/calls")"
    run_script_args args uninstall.sh --help && grep -q '^usage: uninstall.sh' "$WORK/args/log" \
        && [[ "$(tree "$host")" == "$before" ]] && [[ "$(cat "$WORK/args/sysd/calls")" == "$calls" ]] \
        && h_pass "uninstall.sh --help: prints the usage, exits 0, uninstalls nothing" \
        || h_fail "uninstall.sh --help" "$(tail -3 "$WORK/args/log")"
    refused args "install.sh with an argument: refused (status 2) with the usage, nothing changed" \
        "ERROR: unexpected argument(s): --prefix=/opt" "^usage: install.sh" \
        -- run_script_args args install.sh --prefix=/opt
    local rc=0
    run_script_args args install.sh --prefix=/opt || rc=$?
    (( rc == 2 )) && h_pass "install.sh with an argument: exit status 2" || h_fail "install.sh with an argument: status $rc"
    rc=0
    run_script_args args uninstall.sh extra || rc=$?
    (( rc == 2 )) && [[ "$(tree "$host")" == "$before" ]] \
        && h_pass "uninstall.sh with an argument: refused, status 2, nothing removed" \
        || h_fail "uninstall.sh with an argument: status $rc"
    env HOST_ROOT="$host" "$SCRIPTS/containerd-setup.sh" --help > "$WORK/args/setup-help" 2>&1 \
        && grep -q '^usage: containerd-setup.sh install|uninstall|reconcile' "$WORK/args/setup-help" \
        && h_pass "containerd-setup.sh --help: the usage, status 0" \
        || h_fail "containerd-setup.sh --help" "$(cat "$WORK/args/setup-help")"
    rc=0
    env HOST_ROOT="$host" "$SCRIPTS/containerd-setup.sh" instal > /dev/null 2>&1 || rc=$?
    (( rc == 2 )) && [[ "$(tree "$host")" == "$before" ]] \
        && h_pass "containerd-setup.sh with an unknown action: status 2, nothing changed" \
        || h_fail "containerd-setup.sh with an unknown action: status $rc"
    # Settings of two values: a typo is refused, not read as the other one.
    refused args "MISSING_RUNTIME=Skip: refused naming the values, nothing changed" \
        "MISSING_RUNTIME must be fail or skip, not 'Skip'" -- run_script args install.sh MISSING_RUNTIME=Skip
    refused args "GLOBAL_SNAPSHOTTER=yes: refused naming the values, nothing changed" \
        "GLOBAL_SNAPSHOTTER must be true or false, not 'yes'" -- run_script args install.sh GLOBAL_SNAPSHOTTER=yes
    refused args "CONFIG_OVERWRITE=1: refused naming the values, nothing changed" \
        "CONFIG_OVERWRITE must be true or false, not '1'" -- run_script args install.sh CONFIG_OVERWRITE=1
    # HOST_LIBC naming no file: said so, not "not glibc?".
    refused args "HOST_LIBC naming no file: refused naming HOST_LIBC, nothing changed" \
        "HOST_LIBC=/lib/libc.so.6 is not a file on the host" '!not glibc' '!No such file' \
        -- run_script args install.sh HOST_LIBC=/lib/libc.so.6
    ln -s /usr/lib/x86_64-linux-gnu/libc.so.6 "$host/libc-link"
    : > "$WORK/args/log"
    run_script args install.sh HOST_LIBC=/libc-link \
        && grep -q 'host glibc 2.36 (/usr/lib/x86_64-linux-gnu/libc.so.6)' "$WORK/args/log" \
        && h_pass "HOST_LIBC an absolute link: followed within the host root" \
        || h_fail "HOST_LIBC an absolute link" "$(tail -2 "$WORK/args/log")"
    rm "$host/libc-link"
    refused args "SYSTEMCTL's command missing: refused naming SYSTEMCTL, nothing changed" \
        "SYSTEMCTL='no-such-nsenter --target 1 -- systemctl': command 'no-such-nsenter' not found" "set SYSTEMCTL" \
        -- run_script args install.sh SYSTEMCTL="no-such-nsenter --target 1 -- systemctl"
    # No containerd config, no kata runtime: the last line says what to do.
    host="$(new_host noconfig2 "")"
    refused noconfig2 "no containerd config: the error names kata-deploy and CONTAINERD_CONFIG" \
        "ERROR: /etc/containerd/config.toml does not exist on the node: kata-deploy writes it" "set CONTAINERD_CONFIG" \
        -- run_script noconfig2 install.sh
    host="$(new_host noruntime2 "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    refused noruntime2 "no kata runtime: the error names MISSING_RUNTIME=skip" \
        "ERROR: cannot merge /etc/containerd/config.toml: a runtime of 'kata-qemu-coco-dev' is not registered" \
        "set MISSING_RUNTIME=skip" -- run_script noruntime2 install.sh
    # Uninstall where the shipped config is not at hand (run on a node
    # without PAYLOAD_DIR): says so rather than "operator changes".
    host="$(new_host nosource "$FIXTURES/containerd-v2.toml")"
    run_script nosource install.sh && run_script nosource uninstall.sh CONFIG_SOURCE=/nonexistent/config.toml \
        && grep -q "the shipped config /nonexistent/config.toml to compare it with is missing here" "$WORK/nosource/log" \
        && h_pass "uninstall without the shipped config: keeps the daemon config and says why" \
        || h_fail "uninstall without the shipped config" "$(tail -2 "$WORK/nosource/log")"
    # A full host root (its /run a tmpfs of its own, as on a node).
    if [[ $EUID -ne 0 ]]; then
        h_skip "full host root: refused, nothing changed" "needs root (a tmpfs in a private mount namespace)"
        return
    fi
    host="$(new_host fullroot "$FIXTURES/containerd-v2.toml")"
    refused fullroot "full host root: the install record is not written, refused naming the cause, nothing changed" \
        "ERROR: cannot write /etc/containerd-guest-pull-grpc/installing-pod (No space left on device)" \
        -- in_private_mounts 'cp -a "$1" "$1.copy" && mount -t tmpfs -o size=2m tmpfs "$1" && cp -a "$1.copy/." "$1/" && rm -rf "$1.copy" \
            && mkdir -p "$1/run" && mount -t tmpfs tmpfs "$1/run" && { dd if=/dev/zero of="$1/filler" bs=4k 2> /dev/null; true; } \
            && run_script fullroot install.sh; rc=$?; rm -f "$1/filler"; exit $rc' "$host"
    # A read-only /etc/containerd (an image-based node): refused before the
    # snapshotter's files are put in place, not a bare "Read-only file
    # system" after them.
    host="$(new_host roetc "$FIXTURES/containerd-v2.toml")"
    refused roetc "read-only /etc/containerd: refused before any change, naming the directory" \
        "ERROR: /etc/containerd (the directory of /etc/containerd/config.toml) cannot be written on the host" \
        '!Read-only file system' \
        -- in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
            && run_script roetc install.sh' "$host"
    # The same node after that refusal, nothing of ours in /etc/containerd:
    # uninstall.sh (the operator cleaning up, a preStop) and make uninstall
    # have nothing to undo there, succeed and say so. uninstall.sh failed,
    # writing its restart marker there before looking.
    : > "$WORK/roetc/log"
    tree "$host" > "$WORK/roetc/tree.before"
    in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
            && run_script roetc uninstall.sh && make -s -C "$2/deploy" uninstall DESTDIR="$1" >> "$3" 2>&1' \
            "$host" "$REPO" "$WORK/roetc/log" \
        && [[ "$(grep -c "nothing to undo in containerd's config: no edits, drop-in, backup or records of this installer in /etc/containerd/config.toml or beside it" "$WORK/roetc/log")" == 2 ]] \
        && ! grep -q "ERROR" "$WORK/roetc/log" && cmp -s "$WORK/roetc/tree.before" <(tree "$host") \
        && h_pass "read-only /etc/containerd, nothing of ours in it: uninstall.sh and make uninstall succeed, say so, change nothing there" \
        || h_fail "read-only /etc/containerd, nothing of ours in it: uninstall" "$(tail -n 3 "$WORK/roetc/log")"
    # Installed, then /etc/containerd read-only: both refuse before removing
    # anything, naming the directory and what they must change there.
    run_script roetc install.sh || h_fail "read-only /etc/containerd: install while writable" "$(tail -n 3 "$WORK/roetc/log")"
    refused roetc "read-only /etc/containerd with our edits in it: uninstall.sh refused before removing anything, naming the directory and the files" \
        "ERROR: /etc/containerd cannot be written on the host (a read-only file system?), and the uninstall must change /etc/containerd/config.toml, /etc/containerd/config.toml.guest-pull-backup, " \
        "make it writable, then run the uninstall again; nothing was changed" '!Read-only file system' '!restart-pending' \
        -- in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
            && run_script roetc uninstall.sh' "$host"
    refused roetc "read-only /etc/containerd with our edits in it: make uninstall refused before removing anything" \
        "ERROR: /etc/containerd cannot be written on the host (a read-only file system?), and the uninstall must change /etc/containerd/config.toml, " \
        '!Read-only file system' \
        -- in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
            && make -s -C "$2/deploy" uninstall DESTDIR="$1" >> "$3" 2>&1' "$host" "$REPO" "$WORK/roetc/log"
    run_script roetc uninstall.sh && cmp -s "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml" \
        && h_pass "read-only /etc/containerd: writable again, uninstall restores the config" \
        || h_fail "read-only /etc/containerd: writable again, uninstall" "$(tail -n 3 "$WORK/roetc/log")"
    # containerd's config a link from a read-only /etc/containerd to a
    # writable file (a config volume), the drop-in there too: the backup and
    # records go beside the link, so the install is refused before any
    # change, not after the snapshotter's files at its first write there.
    host="$(new_host rolink "")"
    mkdir -p "$host/var/lib/cfgvol"
    cp "$FIXTURES/containerd-v2.toml" "$host/var/lib/cfgvol/config.toml"
    ln -s /var/lib/cfgvol/config.toml "$host/etc/containerd/config.toml"
    refused rolink "config a link out of a read-only /etc/containerd: install refused before any change, naming where its backup goes" \
        "ERROR: /etc/containerd (where the install keeps its backup and records beside /etc/containerd/config.toml, a link) cannot be written on the host" \
        '!Read-only file system' '!restart-pending' \
        -- in_private_mounts 'mount --bind "$1/etc/containerd" "$1/etc/containerd" && mount -o remount,bind,ro "$1/etc/containerd" \
            && run_script rolink install.sh CONTAINERD_DROPIN=/var/lib/cfgvol/conf.d/guest-pull.toml' "$host"
    host="$(new_host fulllib "$FIXTURES/containerd-v2.toml")"
    head -c 600000 /dev/urandom >> "$WORK/fulllib/payload/lib/$LIB_NAME/libstandin.so.1"
    (cd "$WORK/fulllib/payload/lib/$LIB_NAME" && sha256sum libstandin.so.1 > MANIFEST)
    if in_private_mounts 'cp -a "$1" "$1.copy" && mount -t tmpfs -o size=2m tmpfs "$1" && cp -a "$1.copy/." "$1/" && rm -rf "$1.copy" \
            && mkdir -p "$1/run" && mount -t tmpfs tmpfs "$1/run" && dd if=/dev/zero of="$1/filler" bs=1k count=1700 2> /dev/null \
            && ! run_script fulllib install.sh && ! compgen -G "$1/usr/local/lib/.containerd-guest-pull-grpc*" > /dev/null' "$host" \
        && grep -q "ERROR: cannot copy the library bundle to /usr/local/lib (No space left on device): free space" "$WORK/fulllib/log" \
        && ! grep -q '^cp: ' "$WORK/fulllib/log"; then
        h_pass "disk full while copying the library bundle: refused naming the cause, no partial copy left"
    else
        h_fail "disk full while copying the library bundle" "$(tail -3 "$WORK/fulllib/log")"
    fi
}
