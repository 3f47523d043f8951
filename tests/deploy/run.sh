#!/usr/bin/env bash
# Deployment test suite: install.sh / uninstall.sh against a fake host root,
# the containerd config merge checked by the real containerd binary, the
# systemd unit checked by systemd-analyze, the Makefile, and the Kubernetes
# manifests checked against the Kubernetes JSON schemas.
#
# Needs: bash, python3 (3.11+), containerd (1.6+), systemd-analyze, unshare,
# node + `npm ci --prefix tests/deploy` (for the manifest schemas).
# Usage: tests/deploy/run.sh      Last line: "N passed, M failed".
# Tests use `cond && pass || fail` (pass never fails) and single-quoted
# snippets for other shells/languages on purpose.
# shellcheck disable=SC2015,SC2016
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/tests/deploy"
SCRIPTS="$REPO/deploy/k8s/scripts"
TOOL="$SCRIPTS/containerd-config.py"
FIXTURES="$HERE/fixtures"
WORK="$(mktemp -d /tmp/gp-deploy-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }
# check NAME CMD...: run CMD, pass if it succeeds.
check() {
    local name="$1"; shift
    local out
    if out="$("$@" 2>&1)"; then pass "$name"; else fail "$name" "$(tail -5 <<< "$out")"; fi
}

# ------------------------------------------------------------ fixtures

# make_payload DIR: dummy binaries that leave a trace if anything runs them.
make_payload() {
    local dir="$1" b
    mkdir -p "$dir/bin" "$dir/systemd" "$dir/config"
    for b in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        printf '#!/bin/sh\necho "%s" >> "%s/EXECUTED"\nexit 1\n' "$b" "$WORK" > "$dir/bin/$b"
        chmod 0700 "$dir/bin/$b"   # install must set 0755 itself
    done
    cp "$REPO/deploy/systemd/guest-pull-snapshotter.service" "$dir/systemd/"
    cp "$REPO/deploy/config/config.toml" "$dir/config/"
}

# make_systemctl DIR: recording stand-in; `is-active` answers with the exit
# code in DIR/is-active-rc (default 0).
make_systemctl() {
    local dir="$1"
    mkdir -p "$dir"
    cat > "$dir/systemctl" <<EOF
#!/bin/sh
echo "\$*" >> "$dir/calls"
case "\$1" in
    is-active) exit \$(cat "$dir/is-active-rc" 2>/dev/null || echo 0) ;;
esac
exit 0
EOF
    chmod 0755 "$dir/systemctl"
}

# new_host NAME FIXTURE: fake host root with FIXTURE as containerd's config
# ("" = no config) and a data directory holding a snapshot.
new_host() {
    local host="$WORK/$1/host"
    mkdir -p "$host/etc/containerd" "$host/usr/local/bin" "$host/etc/systemd/system" \
        "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs"
    echo data > "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs/file"
    if [[ -n "$2" ]]; then
        cp "$2" "$host/etc/containerd/config.toml"
        chmod 0640 "$host/etc/containerd/config.toml"
    fi
    make_payload "$WORK/$1/payload"
    make_systemctl "$WORK/$1/sysd"
    echo "$host"
}

# run_script CASE SCRIPT [VAR=VALUE...]: install.sh/uninstall.sh for CASE.
run_script() {
    local case="$1" script="$2"; shift 2
    env HOST_ROOT="$WORK/$case/host" PAYLOAD_DIR="$WORK/$case/payload" \
        SYSTEMCTL="$WORK/$case/sysd/systemctl" GUEST_PULL_SLEEP=false \
        POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 \
        "$@" "$SCRIPTS/$script" >> "$WORK/$case/log" 2>&1
}

# tree DIR: every path with type, mode and content hash (no timestamps).
tree() {
    (cd "$1" && find . -printf '%y %m %p\n' | sort | while read -r type mode path; do
        if [[ "$type" == f ]]; then
            echo "$type $mode $path $(sha256sum < "$path" | cut -d' ' -f1)"
        else
            echo "$type $mode $path"
        fi
    done)
}

# containerd_dump HOST: the real containerd's view of HOST's config, with
# HOST/etc/containerd bind-mounted over /etc/containerd in a private mount
# namespace (the config names host paths such as the drop-in).
containerd_dump() {
    unshare --mount -- sh -c 'mount --bind "$1/etc/containerd" /etc/containerd &&
        exec containerd --config /etc/containerd/config.toml config dump' sh "$1"
}

# toml_get FILE... -- KEYPATH: value after merging FILEs in order, key by key.
toml_get() {
    python3 - "$@" <<'EOF'
import json, sys, tomllib
args = sys.argv[1:]
files, path = args[:args.index("--")], args[args.index("--") + 1:]
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
doc = {}
for f in files:
    with open(f, "rb") as fh:
        doc = merge(doc, tomllib.load(fh))
node = doc
for p in path:
    node = node[p]
print(json.dumps(node))
EOF
}

# ------------------------------------------------------------ the tests

test_unit() {
    local unit="$REPO/deploy/systemd/guest-pull-snapshotter.service" copy out
    copy="$WORK/unit/guest-pull-snapshotter.service"
    mkdir -p "$WORK/unit/bin"
    printf '#!/bin/sh\nexit 0\n' > "$WORK/unit/bin/containerd-guest-pull-grpc"
    chmod 0755 "$WORK/unit/bin/containerd-guest-pull-grpc"
    sed "s|/usr/local/bin/|$WORK/unit/bin/|" "$unit" > "$copy"
    if out="$(systemd-analyze verify "$copy" 2>&1)" && [[ -z "$out" ]]; then
        pass "unit: systemd-analyze verify is clean"
    else
        fail "unit: systemd-analyze verify" "$out"
    fi
    local key
    for key in Type=notify Restart=always Before=containerd.service KillMode=process \
            NoNewPrivileges=yes LimitNOFILE=1048576 RuntimeDirectoryPreserve=yes; do
        grep -qx "$key" "$unit" || { fail "unit: has $key"; return; }
    done
    pass "unit: required settings present"
    # Options that give the service its own mount namespace would hide its
    # mounts from containerd.
    if grep -E '^(PrivateMounts|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ReadOnlyPaths|InaccessiblePaths|ProtectKernelTunables|ProtectKernelModules|ProtectControlGroups|ProtectProc|TemporaryFileSystem|BindPaths|MountFlags|DeviceAllow|ProtectClock)=' "$unit"; then
        fail "unit: no mount-namespace options"
    else
        pass "unit: no mount-namespace options"
    fi
}

test_default_config() {
    local cfg="$REPO/deploy/config/config.toml" daemon="$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
    check "config: default config parses, expected values" python3 - "$cfg" <<'EOF'
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
assert c["root"] == "/var/lib/containerd-guest-pull-grpc", c["root"]
assert c["address"] == "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"
assert c["guest_pull"]["mount_type"] == "fuse.guest-pull-overlayfs"
assert c["verity"]["mode"] in ("off", "best_effort", "required")
assert c["metrics"]["address"] == ""
EOF
    if [[ -x "$daemon" ]] && "$daemon" --print-default-config > "$WORK/printed.toml" 2>/dev/null; then
        check "config: equals the daemon's --print-default-config" python3 -c '
import sys, tomllib
a = tomllib.load(open(sys.argv[1], "rb")); b = tomllib.load(open(sys.argv[2], "rb"))
if a != b: sys.exit(f"deploy/config: {a}\ndaemon:        {b}")' "$cfg" "$WORK/printed.toml"
        # The daemon itself starts with the shipped config and serves.
        local pid sock="$WORK/daemon/gp.sock" _
        mkdir -p "$WORK/daemon"
        "$daemon" --config "$cfg" --root "$WORK/daemon/root" --address "$sock" > "$WORK/daemon/log" 2>&1 &
        pid=$!
        for _ in $(seq 1 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
        if [[ -S "$sock" ]] && kill -0 "$pid" 2> /dev/null; then
            pass "config: the daemon starts with the shipped config and listens"
        else
            fail "config: daemon with the shipped config" "$(tail -3 "$WORK/daemon/log")"
        fi
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    else
        echo "NOTE daemon not built ($daemon): --print-default-config comparison not run"
    fi
}

test_dropins_match_tool() {
    local v
    for v in 2 3; do
        check "containerd: deploy/containerd/conf.d/guest-pull-v$v.toml is what install writes" \
            cmp "$REPO/deploy/containerd/conf.d/guest-pull-v$v.toml" <(python3 "$TOOL" dropin --version "$v")
    done
    check "containerd: config-v3.toml equals the v3 drop-in settings" python3 -c '
import sys, tomllib
a = tomllib.load(open(sys.argv[1], "rb")); b = tomllib.load(open(sys.argv[2], "rb"))
assert a == b, (a, b)' "$REPO/deploy/containerd/config-v3.toml" "$REPO/deploy/containerd/conf.d/guest-pull-v3.toml"
}

test_install_v2() {
    local host calls expected
    host="$(new_host v2 "$FIXTURES/containerd-v2.toml")"
    tree "$host" > "$WORK/v2/tree.before"
    if ! run_script v2 install.sh; then fail "v2: install.sh succeeds" "$(tail -5 "$WORK/v2/log")"; return; fi
    pass "v2: install.sh succeeds"

    local bad=""
    for f in usr/local/bin/containerd-guest-pull-grpc:755 usr/local/bin/guest-pull-overlayfs:755 \
            usr/local/bin/guest-pull-verity:755 etc/systemd/system/guest-pull-snapshotter.service:644 \
            etc/containerd-guest-pull-grpc/config.toml:644 etc/containerd/conf.d/guest-pull.toml:644 \
            etc/containerd/config.toml:640 etc/containerd/config.toml.guest-pull-backup:640; do
        [[ -f "$host/${f%:*}" && "$(stat -c %a "$host/${f%:*}")" == "${f#*:}" ]] || bad+=" ${f%:*}"
    done
    [[ -z "$bad" ]] && pass "v2: files in place with the right modes" || fail "v2: files/modes" "$bad"
    check "v2: backup is the original config" cmp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml.guest-pull-backup"
    [[ ! -e "$WORK/EXECUTED" ]] && pass "v2: installed binaries were never executed" \
        || fail "v2: binaries executed" "$(cat "$WORK/EXECUTED")"

    expected="daemon-reload
enable guest-pull-snapshotter.service
restart guest-pull-snapshotter.service
is-active --quiet guest-pull-snapshotter.service
restart containerd.service
is-active --quiet containerd.service"
    calls="$(cat "$WORK/v2/sysd/calls")"
    [[ "$calls" == "$expected" ]] && pass "v2: systemctl calls (snapshotter before containerd)" \
        || fail "v2: systemctl calls" "$(tr '\n' ';' <<< "$calls")"

    # The real containerd 1.6 reads the merged config and the drop-in.
    local dump
    if ! dump="$(containerd_dump "$host" 2>&1)"; then fail "v2: containerd accepts the merged config" "$dump"; return; fi
    pass "v2: containerd accepts the merged config"
    grep -q '^  \[proxy_plugins.guest-pull\]' <<< "$dump" \
        && grep -q 'address = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"' <<< "$dump" \
        && grep -A2 '\[proxy_plugins.guest-pull\]' <<< "$dump" | grep -q 'type = "snapshot"' \
        && pass "v2: containerd sees proxy plugin guest-pull" || fail "v2: proxy plugin in dump"
    grep -q '^      disable_snapshot_annotations = false' <<< "$dump" \
        && grep -q '^      discard_unpacked_layers = false' <<< "$dump" \
        && pass "v2: containerd sees disable_snapshot_annotations/discard_unpacked_layers = false" \
        || fail "v2: CRI keys in dump"
    grep -q 'runtime_type = "io.containerd.kata-qemu-coco-dev.v2"' <<< "$dump" \
        && grep -q 'ConfigPath = "/opt/kata/share/defaults/kata-containers/configuration-qemu-coco-dev.toml"' <<< "$dump" \
        && grep -q 'config_path = "/etc/containerd/certs.d"' <<< "$dump" \
        && grep -q 'sandbox_image = "registry.k8s.io/pause:3.9"' <<< "$dump" \
        && pass "v2: kata runtime and other CRI settings survive" || fail "v2: host settings lost"
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
        && pass "v2: containerd's effective config changes only where intended" \
        || fail "v2: unexpected effective changes" "$changed"
    # containerd 1.6 has no per-runtime snapshotter, so its dump cannot show
    # it: check the file itself.
    [[ "$(toml_get "$host/etc/containerd/config.toml" -- plugins io.containerd.grpc.v1.cri containerd runtimes kata-qemu-coco-dev snapshotter)" == '"guest-pull"' ]] \
        && pass "v2: runtime kata-qemu-coco-dev has snapshotter guest-pull (1.7+)" || fail "v2: runtime snapshotter"

    # Installing twice equals installing once.
    tree "$host" > "$WORK/v2/tree.once"
    : > "$WORK/v2/sysd/calls"
    if run_script v2 install.sh; then
        tree "$host" > "$WORK/v2/tree.twice"
        check "v2: second install leaves the host tree byte-identical" cmp "$WORK/v2/tree.once" "$WORK/v2/tree.twice"
        ! grep -q '^restart' "$WORK/v2/sysd/calls" && pass "v2: second install restarts nothing" \
            || fail "v2: second install restarted" "$(tr '\n' ';' < "$WORK/v2/sysd/calls")"
    else
        fail "v2: second install succeeds" "$(tail -5 "$WORK/v2/log")"
    fi

    # Uninstall restores everything but the data directory.
    : > "$WORK/v2/sysd/calls"
    if ! run_script v2 uninstall.sh; then fail "v2: uninstall.sh succeeds" "$(tail -5 "$WORK/v2/log")"; return; fi
    pass "v2: uninstall.sh succeeds"
    check "v2: uninstall restores containerd's config byte for byte" cmp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.toml"
    [[ "$(stat -c %a "$host/etc/containerd/config.toml")" == 640 ]] && pass "v2: restored config keeps its mode" || fail "v2: restored mode"
    tree "$host" > "$WORK/v2/tree.after"
    check "v2: host tree after uninstall equals the tree before install (data dir kept)" \
        diff "$WORK/v2/tree.before" "$WORK/v2/tree.after"
    expected="disable --now guest-pull-snapshotter.service
daemon-reload
restart containerd.service"
    calls="$(cat "$WORK/v2/sysd/calls")"
    [[ "$calls" == "$expected" ]] && pass "v2: uninstall systemctl calls" || fail "v2: uninstall calls" "$(tr '\n' ';' <<< "$calls")"
    : > "$WORK/v2/sysd/calls"
    run_script v2 uninstall.sh && [[ ! -s "$WORK/v2/sysd/calls" ]] \
        && cmp -s "$WORK/v2/tree.before" <(tree "$host") \
        && pass "v2: second uninstall is a no-op" || fail "v2: second uninstall"
}

test_install_v2_sparse() {
    local host dump
    host="$(new_host sparse "$FIXTURES/containerd-v2-sparse.toml")"
    printf 'version = 2\n[metrics]\n  address = "127.0.0.1:1338"\n' > "$host/etc/containerd/other.toml"
    if ! run_script sparse install.sh; then fail "sparse: install.sh succeeds" "$(tail -5 "$WORK/sparse/log")"; return; fi
    if dump="$(containerd_dump "$host" 2>&1)" && grep -q '\[proxy_plugins.guest-pull\]' <<< "$dump" \
        && grep -q 'address = "127.0.0.1:1338"' <<< "$dump" \
        && grep -q '^      discard_unpacked_layers = false' <<< "$dump" \
        && grep -q 'runtime_type = "io.containerd.kata-qemu-coco-dev.v2"' <<< "$dump"; then
        pass "sparse: existing multi-line imports extended, missing CRI table added; containerd accepts it"
    else
        fail "sparse: containerd view" "$(head -5 <<< "$dump")"
    fi
    run_script sparse uninstall.sh && cmp -s "$FIXTURES/containerd-v2-sparse.toml" "$host/etc/containerd/config.toml" \
        && pass "sparse: uninstall restores the config" || fail "sparse: restore"
}

test_install_v3() {
    local host main dropin v
    host="$(new_host v3 "$FIXTURES/containerd-v3.toml")"
    if ! run_script v3 install.sh; then fail "v3: install.sh succeeds" "$(tail -5 "$WORK/v3/log")"; return; fi
    pass "v3: install.sh succeeds"
    main="$host/etc/containerd/config.toml"
    dropin="$host/etc/containerd/conf.d/guest-pull.toml"
    # containerd 1.6 does not know the 2.x plugin IDs (its `config dump`
    # loads a version 3 file but ignores io.containerd.cri.v1.*), so version 3
    # is checked with a TOML parser, merging the drop-in key by key as
    # containerd 2.x does.
    [[ "$(toml_get "$main" -- imports)" == '["/etc/containerd/conf.d/guest-pull.toml"]' ]] \
        && pass "v3: main config imports the drop-in" || fail "v3: imports" "$(toml_get "$main" -- imports)"
    diff <(grep -v '^imports = ' "$main") "$FIXTURES/containerd-v3.toml" > /dev/null \
        && pass "v3: main config otherwise unchanged" || fail "v3: main config changed beyond imports"
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
        [[ "$v" == "$want" ]] || { ok=false; fail "v3: effective $path" "got $v, want $want"; }
    done
    $ok && pass "v3: effective settings (main + drop-in merged key by key)"
    [[ "$(sed -n 3p "$dropin")" == "version = 3" ]] && pass "v3: drop-in declares version 3" || fail "v3: drop-in version"
    tree "$host" > "$WORK/v3/tree.once"
    run_script v3 install.sh && cmp -s "$WORK/v3/tree.once" <(tree "$host") \
        && pass "v3: second install is byte-identical" || fail "v3: second install"
    run_script v3 uninstall.sh && cmp -s "$FIXTURES/containerd-v3.toml" "$main" && [[ ! -e "$dropin" ]] \
        && pass "v3: uninstall restores the config and removes the drop-in" || fail "v3: uninstall"
    # An existing glob import (containerd 2.2 default) needs no main-file edit.
    host="$(new_host v3glob "")"
    { echo "version = 3"; echo "imports = ['/etc/containerd/conf.d/*.toml']"; sed 1,3d "$FIXTURES/containerd-v3.toml"; } > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/v3glob/orig.toml"
    run_script v3glob install.sh && cmp -s "$WORK/v3glob/orig.toml" "$host/etc/containerd/config.toml" \
        && [[ -f "$host/etc/containerd/conf.d/guest-pull.toml" ]] \
        && pass "v3: conf.d glob import already covers the drop-in; main file untouched" || fail "v3: glob import"
}

test_global_snapshotter() {
    local host dump
    host="$(new_host global "$FIXTURES/containerd-v2.toml")"
    run_script global install.sh GLOBAL_SNAPSHOTTER=true || { fail "global: install" "$(tail -3 "$WORK/global/log")"; return; }
    dump="$(containerd_dump "$host" 2>&1)"
    grep -q '^      snapshotter = "guest-pull"' <<< "$dump" \
        && pass "global: containerd 1.6 sees guest-pull as the CRI snapshotter" || fail "global: snapshotter in dump"
}

test_failures() {
    local host
    # The kata runtime is missing: bounded wait, then failure, host untouched
    # as far as containerd is concerned.
    host="$(new_host noruntime "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    cp "$host/etc/containerd/config.toml" "$WORK/noruntime/orig.toml"
    if run_script noruntime install.sh RUNTIME_WAIT_SECONDS=2; then
        fail "no runtime: install fails"
    else
        cmp -s "$WORK/noruntime/orig.toml" "$host/etc/containerd/config.toml" \
            && [[ ! -e "$host/etc/containerd/config.toml.guest-pull-backup" ]] \
            && grep -q "no runtime 'kata-qemu-coco-dev'" "$WORK/noruntime/log" \
            && grep -q "waiting for runtime" "$WORK/noruntime/log" \
            && pass "no runtime: waits (bounded), fails clearly, containerd config untouched" \
            || fail "no runtime: state" "$(tail -3 "$WORK/noruntime/log")"
    fi
    # A version 1 config is refused.
    host="$(new_host v1 "")"
    printf '[plugins.cri]\n  sandbox_image = "x"\n' > "$host/etc/containerd/config.toml"
    ! run_script v1 install.sh && grep -q "version None is not supported" "$WORK/v1/log" \
        && pass "v1 config: refused with a clear message" || fail "v1 config" "$(tail -2 "$WORK/v1/log")"
    # The snapshotter never becomes active: bounded wait, non-zero exit.
    host="$(new_host inactive "$FIXTURES/containerd-v2.toml")"
    echo 3 > "$WORK/inactive/sysd/is-active-rc"
    local start=$SECONDS
    ! run_script inactive install.sh && grep -q "did not become active" "$WORK/inactive/log" \
        && (( SECONDS - start < 20 )) \
        && pass "inactive service: install gives up after the bounded wait" || fail "inactive service"
}

test_missing_config() {
    local host
    host="$(new_host noconfig "")"
    tree "$host" > "$WORK/noconfig/tree.before"
    if ! run_script noconfig install.sh RUNTIME_WAIT_SECONDS=1 \
        && grep -q "waiting for runtime" "$WORK/noconfig/log" \
        && cmp -s <(grep -v -e usr/local/bin/ -e etc/systemd -e etc/containerd-guest-pull-grpc "$WORK/noconfig/tree.before") \
                  <(tree "$host" | grep -v -e usr/local/bin/ -e etc/systemd -e etc/containerd-guest-pull-grpc); then
        pass "no containerd config: waits (bounded) for kata-deploy, fails, creates nothing in /etc/containerd"
    else
        fail "no containerd config" "$(tail -3 "$WORK/noconfig/log")"
    fi
}

test_edited_after_install() {
    local host cfg
    host="$(new_host edited "$FIXTURES/containerd-v2.toml")"
    cfg="$host/etc/containerd/config.toml"
    run_script edited install.sh || { fail "edited: install"; return; }
    printf '\n[debug]\n  level = "debug"\n' >> "$cfg"
    cp "$cfg" "$WORK/edited/edited.toml"
    echo 'log_level = "debug"' >> "$host/etc/containerd-guest-pull-grpc/config.toml"
    run_script edited uninstall.sh \
        && cmp -s "$FIXTURES/containerd-v2.toml" "$cfg" \
        && cmp -s "$WORK/edited/edited.toml" "$cfg.guest-pull-uninstalled" \
        && grep -q 'log_level = "debug"' "$host/etc/containerd-guest-pull-grpc/config.toml" \
        && pass "edited: later containerd edits kept aside, operator's daemon config kept" \
        || fail "edited" "$(tail -3 "$WORK/edited/log")"
}

test_makefile() {
    local dest="$WORK/make/dest" bin="$WORK/make/bin" b
    mkdir -p "$bin"
    for b in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        printf '#!/bin/sh\nexit 1\n' > "$bin/$b"
    done
    if make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > "$WORK/make/log" 2>&1 \
        && [[ "$(stat -c %a "$dest/usr/local/bin/guest-pull-overlayfs")" == 755 ]] \
        && [[ "$(stat -c %a "$dest/etc/systemd/system/guest-pull-snapshotter.service")" == 644 ]] \
        && cmp -s "$REPO/deploy/config/config.toml" "$dest/etc/containerd-guest-pull-grpc/config.toml"; then
        pass "make install: binaries, unit, default config"
    else
        fail "make install" "$(tail -3 "$WORK/make/log")"; return
    fi
    echo "# mine" >> "$dest/etc/containerd-guest-pull-grpc/config.toml"
    make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && grep -q '# mine' "$dest/etc/containerd-guest-pull-grpc/config.toml" \
        && pass "make install: never overwrites an existing config" || fail "make install: config overwritten"
    make -s -C "$REPO/deploy" install DESTDIR="$WORK/make/prefix" PREFIX=/usr NO_BUILD=1 BIN_DIR="$bin" > /dev/null 2>&1 \
        && grep -q '^ExecStart=/usr/bin/containerd-guest-pull-grpc ' "$WORK/make/prefix/etc/systemd/system/guest-pull-snapshotter.service" \
        && pass "make install: unit follows PREFIX" || fail "make install: PREFIX"
    make -s -C "$REPO/deploy" uninstall DESTDIR="$dest" > /dev/null 2>&1 \
        && [[ -z "$(find "$dest" -type f ! -name config.toml)" ]] \
        && pass "make uninstall: removes binaries and unit, keeps the modified config" || fail "make uninstall"
}

test_manifests() {
    if [[ ! -d "$HERE/node_modules/kubernetes-models" ]]; then
        fail "k8s: schema validation" "run: npm ci --prefix tests/deploy"
        return
    fi
    check "k8s: manifests valid against the Kubernetes JSON schemas" \
        node "$HERE/validate-manifests.mjs" "$REPO/deploy/k8s"
    # The validator must reject a wrong manifest.
    mkdir -p "$WORK/badk8s"
    sed 's/hostPID: true/hostPID: "yes"/' "$REPO/deploy/k8s/daemonset.yaml" > "$WORK/badk8s/daemonset.yaml"
    printf 'kind: Kustomization\nresources:\n  - daemonset.yaml\n' > "$WORK/badk8s/kustomization.yaml"
    ! node "$HERE/validate-manifests.mjs" "$WORK/badk8s" > /dev/null 2>&1 \
        && pass "k8s: validator rejects a type error" || fail "k8s: validator accepted a bad manifest"
}

test_kata_patch() {
    local patch="$REPO/deploy/kata/0001-guest-pull-rootfs.patch" dir="$WORK/katapatch"
    mkdir -p "$dir"
    check "kata patch: well-formed, touches the three call sites" bash -c '
        stat="$(git apply --numstat "$1")" &&
        for f in containerd-shim-v2/create.go katautils/create.go virtcontainers/container.go \
                 virtcontainers/guest_pull_rootfs.go; do grep -q "$f" <<< "$stat" || exit 1; done &&
        [[ "$(grep -c "IsGuestPullRootFSType(" "$1")" -ge 5 ]]' sh "$patch"
    (cd "$dir" && git apply --include='*/guest_pull_rootfs.go' "$patch")
    if command -v go > /dev/null && command -v gofmt > /dev/null; then
        cat > "$dir/src/runtime/virtcontainers/check_test.go" <<'EOF'
package virtcontainers

import "testing"

func TestGuestPullType(t *testing.T) {
	for typ, want := range map[string]bool{"fuse.guest-pull-overlayfs": true,
		"fuse.guest-pull-overlayfs-x": true, "fuse./usr/local/bin/guest-pull-overlayfs": true,
		"fuse.nydus-overlayfs": false, "guest-pull-overlayfs": false, "overlay": false} {
		if IsGuestPullRootFSType(typ) != want {
			t.Errorf("%q: want %v", typ, want)
		}
	}
}
EOF
        printf 'module kata\ngo 1.19\n' > "$dir/src/runtime/virtcontainers/go.mod"
        check "kata patch: new Go file is gofmt-clean and IsGuestPullRootFSType behaves" bash -c '
            cd "$1" && [[ -z "$(gofmt -l guest_pull_rootfs.go)" ]] && GOFLAGS=-mod=mod GOPROXY=off go test ./... ' \
            sh "$dir/src/runtime/virtcontainers"
    else
        echo "NOTE go not installed: IsGuestPullRootFSType not compiled"
    fi
}

test_shellcheck() {
    if command -v shellcheck > /dev/null; then
        check "shellcheck: deploy scripts and this suite" \
            shellcheck -x "$SCRIPTS/install.sh" "$SCRIPTS/uninstall.sh" "$SCRIPTS/lib.sh" "$HERE/run.sh"
    else
        echo "NOTE shellcheck not installed: skipped"
    fi
}

main() {
    command -v containerd > /dev/null || { echo "containerd not found"; echo "0 passed, 1 failed"; exit 1; }
    test_unit
    test_default_config
    test_dropins_match_tool
    test_install_v2
    test_install_v2_sparse
    test_install_v3
    test_global_snapshotter
    test_failures
    test_missing_config
    test_edited_after_install
    test_makefile
    test_manifests
    test_kata_patch
    test_shellcheck
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

main "$@"
