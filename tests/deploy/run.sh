#!/usr/bin/env bash
# Deployment test suite: install.sh / uninstall.sh against a fake host root,
# the containerd config merge checked by the real containerd binary, the
# systemd unit checked by systemd-analyze, the Makefile, and the Kubernetes
# manifests checked against the Kubernetes JSON schemas.
#
# The library bundle (deploy/bundle-libs.sh) is tested with the real binaries:
# what it contains, that the bundled binaries run with an empty library path
# and in a chroot holding only glibc + the bundle, and its install/uninstall
# and glibc check on fake host roots. Build them first:
#   bazel build //snapshotter:containerd-guest-pull-grpc \
#     //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity
# (if they are missing, those tests count as one failure).
#
# Needs: bash, python3 (3.11+), containerd (1.6+), systemd-analyze, unshare,
# chroot, readelf, cc (optional), node + `npm ci --prefix tests/deploy` (for
# the manifest schemas).
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
BUNDLE_SCRIPT="$REPO/deploy/bundle-libs.sh"
LIB_NAME="containerd-guest-pull-grpc"
REAL_BINARIES=("$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
               "$REPO/bazel-bin/mount_helper/guest-pull-overlayfs"
               "$REPO/bazel-bin/kata_volume/tools/guest-pull-verity")
# Names of the glibc family (never bundled, always the node's).
GLIBC_RE='^(ld-linux.*|lib(c|m|mvec|pthread|dl|rt|util|resolv|anl|nsl)\.so(\..*)?)$'
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
    # A stand-in library bundle: one file naming an old glibc symbol version.
    mkdir -p "$dir/lib/$LIB_NAME"
    printf 'stand-in library, needs GLIBC_2.17\n' > "$dir/lib/$LIB_NAME/libstandin.so.1"
    (cd "$dir/lib/$LIB_NAME" && sha256sum libstandin.so.1 > MANIFEST)
}

# use_real_bundle CASE: CASE's payload gets the real binaries + library bundle.
use_real_bundle() {
    rm -rf "$WORK/$1/payload/bin" "$WORK/$1/payload/lib"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$WORK/$1/payload/"
}

# fake_libc FILE VERSION: a stand-in libc.so.6 with glibc's banner.
fake_libc() {
    mkdir -p "$(dirname "$1")"
    printf 'GNU C Library (test) stable release version %s.\nGLIBC_2.2.5\n' "$2" > "$1"
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
    mkdir -p "$host/etc/containerd" "$host/usr/local/bin" "$host/usr/local/lib" "$host/etc/systemd/system" \
        "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs" "$host/usr/lib64"
    # Merged-/usr layout: /lib relative link, /lib64 absolute link (resolved
    # inside the host root, or the test machine's /usr/lib64 would answer).
    ln -s usr/lib "$host/lib"
    ln -s /usr/lib64 "$host/lib64"
    echo "stand-in ELF interpreter" > "$host/usr/lib64/ld-linux-x86-64.so.2"
    fake_libc "$host/usr/lib/x86_64-linux-gnu/libc.so.6" 2.36
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

# KATA_MODE=stock: the helper's second name and the stock mount type are
# installed, a second run changes nothing, uninstall removes both; a bad mode
# changes nothing.
test_install_stock() {
    local host before
    host="$(new_host stock "$FIXTURES/containerd-v2.toml")"
    before="$(tree "$host")"
    if run_script stock install.sh KATA_MODE=bogus; then fail "stock: KATA_MODE=bogus refused"
    elif [[ "$(tree "$host")" == "$before" ]] && grep -q "KATA_MODE must be patched or stock" "$WORK/stock/log"; then
        pass "stock: KATA_MODE=bogus refused, host unchanged"
    else fail "stock: KATA_MODE=bogus changed the host" "$(tail -3 "$WORK/stock/log")"; fi
    if ! run_script stock install.sh KATA_MODE=stock; then fail "stock: install.sh succeeds" "$(tail -5 "$WORK/stock/log")"; return; fi
    [[ "$(readlink "$host/usr/local/bin/nydus-overlayfs-guest-pull")" == guest-pull-overlayfs ]] \
        && grep -qx 'mount_type = "fuse.nydus-overlayfs-guest-pull"' "$host/etc/containerd-guest-pull-grpc/config.toml" \
        && pass "stock: helper linked as nydus-overlayfs-guest-pull, daemon config has the stock mount type" \
        || fail "stock: helper link or mount type missing"
    before="$(tree "$host")"
    run_script stock install.sh KATA_MODE=stock && [[ "$(tree "$host")" == "$before" ]] \
        && pass "stock: second install changes nothing" || fail "stock: second install changed the host"
    run_script stock uninstall.sh KATA_MODE=stock && [[ ! -e "$host/usr/local/bin/nydus-overlayfs-guest-pull" \
        && ! -L "$host/usr/local/bin/nydus-overlayfs-guest-pull" && ! -e "$host/etc/containerd-guest-pull-grpc/config.toml" ]] \
        && pass "stock: uninstall removes the link and the stock config" || fail "stock: uninstall left files"
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
        && cmp -s <(grep -v -e usr/local/bin/ -e usr/local/lib/ -e etc/systemd -e etc/containerd-guest-pull-grpc "$WORK/noconfig/tree.before") \
                  <(tree "$host" | grep -v -e usr/local/bin/ -e usr/local/lib/ -e etc/systemd -e etc/containerd-guest-pull-grpc); then
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

# ------------------------------------------------------------ library bundle

# real_binaries_built: the bazel-built binaries exist (else one failure).
real_binaries_built() {
    local b
    for b in "${REAL_BINARIES[@]}"; do
        if [[ ! -x "$b" ]]; then
            echo "SKIP library bundle tests: $b is not built (bazel build //snapshotter:containerd-guest-pull-grpc //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity)"
            return 1
        fi
    done
}

# bundle_glibc_needed DIR: highest GLIBC_x.y that readelf -V finds in DIR's
# bin/* and lib/$LIB_NAME/* (the reference for install.sh's byte scan).
bundle_glibc_needed() {
    local f
    for f in "$1"/bin/* "$1/lib/$LIB_NAME"/*.so*; do
        readelf -V --wide "$f"
    done | grep -oE 'Name: GLIBC_[0-9.]+' | sed 's/.*GLIBC_//' | sort -uV | tail -n 1
}

test_bundle_contents() {
    local bundle="$WORK/bundle" lib="$WORK/bundle/lib/$LIB_NAME" out name f bad=""
    if ! out="$("$BUNDLE_SCRIPT" "$bundle" "${REAL_BINARIES[@]}" 2>&1)"; then
        fail "bundle: bundle-libs.sh on the bazel-built binaries" "$out"
        return 1
    fi
    pass "bundle: bundle-libs.sh on the bazel-built binaries"
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        [[ -x "$bundle/bin/$name" && "$(stat -c %a "$bundle/bin/$name")" == 755 ]] || bad+=" bin/$name"
    done
    [[ -z "$bad" ]] && pass "bundle: the three binaries in bin/, mode 755" || fail "bundle: binaries" "$bad"
    bad="$(find "$lib" -mindepth 1 -printf '%f\n' | grep -E "$GLIBC_RE" || true)"
    [[ -z "$bad" ]] && pass "bundle: no glibc library (libc, libm, ld-linux, libpthread, libdl, librt...)" \
        || fail "bundle: glibc bundled" "$bad"
    bad=""
    for name in 'libgrpc++.so.*' 'libgrpc.so.*' 'libabsl_base.so.*' 'libabsl_flags_parse.so.*' \
            'libprotobuf.so.*' 'libstdc++.so.6' 'libgcc_s.so.1' 'libsystemd.so.0' 'libcrypto.so.3' \
            'libtomlplusplus.so.*' 'libglog.so.*' 'libz.so.1'; do
        compgen -G "$lib/$name" > /dev/null || bad+=" $name"
    done
    [[ -z "$bad" ]] && pass "bundle: has libgrpc++, libgrpc, libabsl, libprotobuf, libstdc++, libgcc_s, libsystemd, ..." \
        || fail "bundle: missing" "$bad"
    # Complete: every non-glibc library ldd resolves for a binary is there.
    bad="$(for f in "${REAL_BINARIES[@]}"; do ldd "$f"; done | awk '$2 == "=>" {print $1}' | sort -u \
        | grep -vE "$GLIBC_RE" | while read -r name; do [[ -f "$lib/$name" ]] || echo "$name"; done)"
    [[ -z "$bad" ]] && pass "bundle: every library ldd lists (but glibc) is bundled" || fail "bundle: incomplete" "$bad"
    # Regular files named by their SONAME (symlinks followed, names kept).
    bad=""
    for f in "$lib"/*.so*; do
        [[ -f "$f" && ! -L "$f" && "$(stat -c %a "$f")" == 644 ]] || { bad+=" $(basename "$f"):type/mode"; continue; }
        readelf -d "$f" | grep -q "(SONAME).*\[$(basename "$f")\]" || bad+=" $(basename "$f"):soname"
    done
    [[ -z "$bad" ]] && pass "bundle: libraries are regular 0644 files named by their SONAME" || fail "bundle: files" "$bad"
    if (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && [[ "$(wc -l < "$lib/MANIFEST")" -eq "$(find "$lib" -type f ! -name MANIFEST | wc -l)" ]] \
        && LC_ALL=C sort -c -k2 "$lib/MANIFEST"; then
        pass "bundle: MANIFEST has the sha256 of every library, sorted by name"
    else
        fail "bundle: MANIFEST"
    fi
    tree "$bundle" > "$WORK/bundle.tree"
    "$BUNDLE_SCRIPT" "$bundle" "${REAL_BINARIES[@]}" > /dev/null 2>&1 && cmp -s "$WORK/bundle.tree" <(tree "$bundle") \
        && pass "bundle: running bundle-libs.sh again gives the same tree" || fail "bundle: rerun differs"
}

# test_bundle_errors: ldd "not found" and a binary without the bundle RPATH.
test_bundle_errors() {
    local dir="$WORK/bundle-errors" out
    if ! command -v cc > /dev/null; then echo "NOTE cc not installed: bundle-libs.sh error cases not run"; return 0; fi
    mkdir -p "$dir/libs"
    echo 'int gone(void) { return 0; }' > "$dir/gone.c"
    echo 'int gone(void); int main(void) { return gone(); }' > "$dir/main.c"
    cc -shared -fPIC -Wl,-soname,libgone.so.1 -o "$dir/libs/libgone.so.1.0.0" "$dir/gone.c"
    ln -sf libgone.so.1.0.0 "$dir/libs/libgone.so.1"
    ln -sf libgone.so.1 "$dir/libs/libgone.so"
    cc -o "$dir/with-rpath" "$dir/main.c" -L"$dir/libs" -lgone -Wl,-rpath,'$ORIGIN/../lib/containerd-guest-pull-grpc' -Wl,--disable-new-dtags
    cc -o "$dir/no-rpath" "$dir/main.c" -L"$dir/libs" -lgone
    out="$(LD_LIBRARY_PATH="$dir/libs" "$BUNDLE_SCRIPT" "$dir/ok" "$dir/with-rpath" 2>&1)" \
        && [[ -f "$dir/ok/lib/$LIB_NAME/libgone.so.1" && ! -L "$dir/ok/lib/$LIB_NAME/libgone.so.1" ]] \
        && cmp -s "$dir/libs/libgone.so.1.0.0" "$dir/ok/lib/$LIB_NAME/libgone.so.1" \
        && [[ "$(find "$dir/ok/lib/$LIB_NAME" -mindepth 1 -printf '%f ')" == "libgone.so.1 MANIFEST " || \
              "$(find "$dir/ok/lib/$LIB_NAME" -mindepth 1 -printf '%f ')" == "MANIFEST libgone.so.1 " ]] \
        && pass "bundle errors: control case, symlink libgone.so.1 -> libgone.so.1.0.0 bundled as the regular file libgone.so.1" \
        || fail "bundle errors: control case" "$out"
    if out="$("$BUNDLE_SCRIPT" "$dir/out" "$dir/with-rpath" 2>&1)"; then
        fail "bundle errors: missing library refused" "$out"
    else
        grep -q 'cannot find: libgone.so.1' <<< "$out" && [[ ! -e "$dir/out/lib/$LIB_NAME" ]] \
            && pass "bundle errors: ldd 'not found' fails clearly, nothing written" || fail "bundle errors: message" "$out"
    fi
    if out="$(LD_LIBRARY_PATH="$dir/libs" "$BUNDLE_SCRIPT" "$dir/out" "$dir/no-rpath" 2>&1)"; then
        fail "bundle errors: binary without RPATH refused" "$out"
    else
        grep -q 'has no RPATH' <<< "$out" && pass "bundle errors: binary without the bundle RPATH refused" \
            || fail "bundle errors: RPATH message" "$out"
    fi
}

# loaded_outside_bundle FILE PREFIX: library paths in FILE (LD_DEBUG "calling
# init:" lines or /proc/PID/maps) that are neither glibc nor under PREFIX.
loaded_outside_bundle() {
    grep -oE '/[^ ]*\.so[.0-9]*$' "$1" | sort -u | while read -r path; do
        [[ "$(basename "$path")" =~ $GLIBC_RE || "$path" == "$2"/* ]] || echo "$path"
    done
}

test_bundle_runs() {
    local prefix="$WORK/prefix" root="$WORK/chroot" name out bad pid sock
    mkdir -p "$prefix"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$prefix/"
    bad=""
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        out="$(env -i "$prefix/bin/$name" --version 2>&1)" && [[ "$out" == "$name "* ]] || bad+=" $name: $out"
    done
    [[ -z "$bad" ]] && pass "bundle runs: --version of all three under env -i (no LD_LIBRARY_PATH)" || fail "bundle runs: env -i" "$bad"
    # ld.so's own account: every non-glibc library comes from the bundle.
    env -i LD_DEBUG=libs "$prefix/bin/containerd-guest-pull-grpc" --version > /dev/null 2> "$WORK/ld-debug.log" || true
    bad="$(loaded_outside_bundle <(grep 'calling init:' "$WORK/ld-debug.log") "$prefix/bin/../lib/$LIB_NAME")"
    [[ -z "$bad" && "$(grep -c "calling init: $prefix/bin/../lib/$LIB_NAME/" "$WORK/ld-debug.log")" -gt 50 ]] \
        && grep -q "calling init: $prefix/bin/../lib/$LIB_NAME/libgrpc++.so" "$WORK/ld-debug.log" \
        && pass "bundle runs: LD_DEBUG=libs shows libgrpc++ and the rest loaded from the bundle, only glibc from the system" \
        || fail "bundle runs: LD_DEBUG" "${bad:-too few bundle libraries}"
    # The RPATH (DT_RPATH) is searched before LD_LIBRARY_PATH.
    env -i LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu LD_DEBUG=libs \
        "$prefix/bin/guest-pull-verity" --version > /dev/null 2> "$WORK/ld-debug-llp.log" || true
    [[ -z "$(loaded_outside_bundle <(grep 'calling init:' "$WORK/ld-debug-llp.log") "$prefix/bin/../lib/$LIB_NAME")" ]] \
        && grep -q "calling init: $prefix/bin/../lib/$LIB_NAME/libstdc++.so.6" "$WORK/ld-debug-llp.log" \
        && pass "bundle runs: LD_LIBRARY_PATH pointing at the system libraries does not override the bundle" \
        || fail "bundle runs: LD_LIBRARY_PATH overrides the bundle"
    # A started daemon: its memory maps name only bundle and glibc libraries.
    sock="$WORK/bundle-daemon/gp.sock"
    mkdir -p "$WORK/bundle-daemon"
    env -i "$prefix/bin/containerd-guest-pull-grpc" --config "$REPO/deploy/config/config.toml" \
        --root "$WORK/bundle-daemon/root" --address "$sock" > "$WORK/bundle-daemon/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
    if [[ -S "$sock" ]] && cp "/proc/$pid/maps" "$WORK/bundle-daemon/maps" 2> /dev/null; then
        bad="$(loaded_outside_bundle <(awk '{print $6}' "$WORK/bundle-daemon/maps") "$prefix/lib/$LIB_NAME")"
        [[ -z "$bad" ]] && grep -q "$prefix/lib/$LIB_NAME/libprotobuf.so" "$WORK/bundle-daemon/maps" \
            && pass "bundle runs: the started daemon listens; /proc/PID/maps has bundle + glibc libraries only" \
            || fail "bundle runs: daemon maps" "$bad"
    else
        fail "bundle runs: daemon from the bundle" "$(tail -3 "$WORK/bundle-daemon/log")"
    fi
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    # Strongest: a root with nothing but the host's glibc and the bundle.
    mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu" "$root/usr/local" "$root/proc" "$root/tmp"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$root/usr/local/"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    for f in $(for b in "${REAL_BINARIES[@]}"; do ldd "$b"; done | awk '$2 == "=>" {print $3}' | sort -u); do
        [[ "$(basename "$f")" =~ $GLIBC_RE ]] && cp -L "$f" "$root/lib/x86_64-linux-gnu/"
    done
    bad="$(find "$root" -name '*.so*' ! -path "$root/usr/local/lib/$LIB_NAME/*" -printf '%f\n' | grep -vE "$GLIBC_RE" || true)"
    [[ -z "$bad" ]] || { fail "bundle chroot: only glibc outside the bundle" "$bad"; return; }
    bad=""
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        out="$(in_chroot "$root" "/usr/local/bin/$name" --version 2>&1)" && [[ "$out" == "$name "* ]] || bad+=" $name: $out"
    done
    out="$(in_chroot "$root" /usr/local/bin/containerd-guest-pull-grpc --print-default-config 2>&1)" \
        && python3 -c 'import sys, tomllib; tomllib.loads(sys.stdin.read())' <<< "$out" || bad+=" print-default-config: $out"
    [[ -z "$bad" ]] && pass "bundle chroot: in a root with only glibc ($(find "$root/lib64" "$root/lib/x86_64-linux-gnu" -type f -printf '%f ' | sed 's/ $//')) + the bundle, all three run (--version, --print-default-config)" \
        || fail "bundle chroot" "$bad"
    # Control: the same root without the bundle cannot start the daemon.
    mv "$root/usr/local/lib/$LIB_NAME" "$root/usr/local/lib/moved"
    out="$(in_chroot "$root" /usr/local/bin/containerd-guest-pull-grpc --version 2>&1)" && bad=yes || bad=""
    mv "$root/usr/local/lib/moved" "$root/usr/local/lib/$LIB_NAME"
    [[ -z "$bad" ]] && grep -q 'cannot open shared object file' <<< "$out" \
        && pass "bundle chroot: control, without the bundle directory the daemon cannot start" \
        || fail "bundle chroot: control" "$out"
}

# in_chroot ROOT CMD...: CMD chrooted into ROOT with a private /proc (ld.so
# reads /proc/self/exe to expand $ORIGIN).
in_chroot() {
    local root="$1"; shift
    env -i "$(command -v unshare)" --mount --pid --fork --mount-proc="$root/proc" \
        "$(command -v chroot)" "$root" "$@"
}

test_install_bundle() {
    local host lib link target
    host="$(new_host bhost "$FIXTURES/containerd-v2.toml")"
    use_real_bundle bhost
    # The test machine's real libc.so.6 as the host's.
    cp -L /lib/x86_64-linux-gnu/libc.so.6 "$host/usr/lib/x86_64-linux-gnu/libc.so.6"
    tree "$host" > "$WORK/bhost/tree.before"
    if ! run_script bhost install.sh; then fail "bundle install: install.sh succeeds" "$(tail -5 "$WORK/bhost/log")"; return; fi
    pass "bundle install: install.sh succeeds with the real bundle"
    link="$host/usr/local/lib/$LIB_NAME"
    target="$(readlink "$link" || true)"
    lib="$host/usr/local/lib/$target"
    [[ -L "$link" && "$target" =~ ^\.$LIB_NAME\.[0-9a-f]{16}$ && -d "$lib" ]] \
        && cmp -s "$WORK/bundle/lib/$LIB_NAME/MANIFEST" "$lib/MANIFEST" \
        && (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && [[ -z "$(find "$lib" -type f ! -perm 0644)" && "$(stat -c %a "$lib")" == 755 ]] \
        && pass "bundle install: /usr/local/lib/$LIB_NAME -> $target, every library as in the MANIFEST, 0644" \
        || fail "bundle install: library directory" "$target"
    local need
    need="$(bundle_glibc_needed "$WORK/bundle")"
    grep -q "host glibc $(ldd --version | sed -n '1s/.* //p') (/usr/lib/x86_64-linux-gnu/libc.so.6); the payload needs $need\$" "$WORK/bhost/log" \
        && pass "bundle install: glibc check reads the real libc.so.6 through /lib -> usr/lib; byte scan agrees with readelf -V ($need)" \
        || fail "bundle install: glibc log" "$(grep glibc "$WORK/bhost/log")"
    env -i LD_DEBUG=libs "$host/usr/local/bin/containerd-guest-pull-grpc" --version > /dev/null 2> "$WORK/bhost/ld-debug.log" || true
    [[ -z "$(loaded_outside_bundle <(grep 'calling init:' "$WORK/bhost/ld-debug.log") "$host/usr/local/bin/../lib/$LIB_NAME")" ]] \
        && grep -q "calling init: $host/usr/local/bin/../lib/$LIB_NAME/libgrpc++.so" "$WORK/bhost/ld-debug.log" \
        && pass "bundle install: the installed daemon runs under env -i with the installed bundle" \
        || fail "bundle install: installed daemon" "$(tail -3 "$WORK/bhost/ld-debug.log")"
    # Twice equals once.
    tree "$host" > "$WORK/bhost/tree.once"
    : > "$WORK/bhost/sysd/calls"
    run_script bhost install.sh && cmp -s "$WORK/bhost/tree.once" <(tree "$host") \
        && ! grep -q '^restart' "$WORK/bhost/sysd/calls" \
        && pass "bundle install: second install is byte-identical and restarts nothing" || fail "bundle install: second install"
    # A new bundle replaces the old one: new directory, link swapped, old gone.
    printf 'new library\n' > "$WORK/bhost/payload/lib/$LIB_NAME/libnew.so.1"
    (cd "$WORK/bhost/payload/lib/$LIB_NAME" && find . -type f ! -name MANIFEST -printf '%f\n' | LC_ALL=C sort \
        | xargs sha256sum > ../MANIFEST.new && mv ../MANIFEST.new MANIFEST)
    : > "$WORK/bhost/sysd/calls"
    if run_script bhost install.sh && [[ "$(readlink "$link")" != "$target" ]] \
        && [[ -f "$link/libnew.so.1" && ! -e "$lib" ]] \
        && [[ "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 | wc -l)" -eq 2 ]] \
        && grep -q '^restart guest-pull-snapshotter.service' "$WORK/bhost/sysd/calls"; then
        pass "bundle install: a changed bundle is swapped in (new directory, link renamed over), old one removed, daemon restarted"
    else
        fail "bundle install: upgrade" "$(find "$host/usr/local/lib" -mindepth 1 -printf '%f ')"
    fi
    : > "$WORK/bhost/sysd/calls"
    if run_script bhost uninstall.sh && [[ ! -e "$link" && ! -L "$link" ]] \
        && [[ -z "$(find "$host/usr/local/lib" -mindepth 1)" ]] \
        && [[ -f "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs/file" ]] \
        && cmp -s "$WORK/bhost/tree.before" <(tree "$host"); then
        pass "bundle uninstall: link and library directory removed, data dir kept, host tree as before"
    else
        fail "bundle uninstall" "$(tail -3 "$WORK/bhost/log")"
    fi
    # A real directory left by `make install` is replaced by the link.
    host="$(new_host migrate "$FIXTURES/containerd-v2.toml")"
    mkdir -p "$host/usr/local/lib/$LIB_NAME"
    echo old > "$host/usr/local/lib/$LIB_NAME/libold.so.1"
    run_script migrate install.sh && [[ -L "$host/usr/local/lib/$LIB_NAME" && -f "$host/usr/local/lib/$LIB_NAME/libstandin.so.1" ]] \
        && [[ "$(find "$host/usr/local/lib" -mindepth 1 -maxdepth 1 | wc -l)" -eq 2 ]] \
        && pass "bundle install: a plain directory from make install is replaced by the link, nothing left over" \
        || fail "bundle install: migrate" "$(tail -3 "$WORK/migrate/log")"
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
        fail "glibc check: host glibc 2.31 refused"
    else
        grep -q "the host's glibc 2.31 (/usr/lib64/libc.so.6) is older than the $need the binaries need; nothing was changed" "$WORK/glibc-old/log" \
            && untouched glibc-old \
            && pass "glibc check: glibc 2.31 (found via /lib64 -> /usr/lib64) refused clearly, host untouched" \
            || fail "glibc check: too old" "$(tail -2 "$WORK/glibc-old/log")"
    fi
    glibc_case glibc-new 2.40 && grep -q "host glibc 2.40 (/usr/lib64/libc.so.6); the payload needs $need" "$WORK/glibc-new/log" \
        && pass "glibc check: glibc 2.40 accepted (version order, not string order)" \
        || fail "glibc check: 2.40" "$(tail -2 "$WORK/glibc-new/log")"
    if glibc_case glibc-none ""; then
        fail "glibc check: no libc refused"
    else
        grep -q "cannot find the host's libc.so.6" "$WORK/glibc-none/log" && untouched glibc-none \
            && pass "glibc check: no libc.so.6 on the host refused clearly, host untouched" \
            || fail "glibc check: no libc" "$(tail -2 "$WORK/glibc-none/log")"
    fi
    # No banner: the highest version node the libc defines is its version.
    local host
    host="$(new_host glibc-nobanner "$FIXTURES/containerd-v2.toml")"
    use_real_bundle glibc-nobanner
    printf 'GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.35\0' > "$host/usr/lib/x86_64-linux-gnu/libc.so.6"
    ! run_script glibc-nobanner install.sh && grep -q "the host's glibc 2.35 " "$WORK/glibc-nobanner/log" \
        && pass "glibc check: libc without a banner judged by its GLIBC_ version nodes (2.35 refused)" \
        || fail "glibc check: no banner" "$(tail -2 "$WORK/glibc-nobanner/log")"
    host="$(new_host nointerp "$FIXTURES/containerd-v2.toml")"
    rm "$host/usr/lib64/ld-linux-x86-64.so.2"
    tree "$host" > "$WORK/nointerp/tree.before"
    ! run_script nointerp install.sh && grep -q "the host has no /lib64/ld-linux-x86-64.so.2" "$WORK/nointerp/log" \
        && untouched nointerp \
        && pass "glibc check: host without /lib64/ld-linux-x86-64.so.2 refused (the test machine's own is not consulted)" \
        || fail "glibc check: interpreter" "$(tail -2 "$WORK/nointerp/log")"
    # A corrupted payload bundle is refused before anything changes.
    host="$(new_host badpayload "$FIXTURES/containerd-v2.toml")"
    echo corrupted >> "$WORK/badpayload/payload/lib/$LIB_NAME/libstandin.so.1"
    tree "$host" > "$WORK/badpayload/tree.before"
    ! run_script badpayload install.sh && grep -q "does not match its MANIFEST" "$WORK/badpayload/log" && untouched badpayload \
        && pass "payload: a library not matching the MANIFEST is refused, host untouched" \
        || fail "payload: corrupted bundle" "$(tail -2 "$WORK/badpayload/log")"
}

test_bundle() {
    if ! real_binaries_built; then
        fail "bundle: bazel-built binaries present" "build them first (see the header)"
        return
    fi
    test_bundle_contents || return 0
    test_bundle_errors
    test_bundle_runs
    test_install_bundle
    test_glibc_check
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
    test_makefile_bundle
}

# test_makefile_bundle: make install with the bazel-built binaries installs
# the library bundle next to bin/; twice equals once; uninstall removes it.
test_makefile_bundle() {
    local dest="$WORK/make/real" lib out
    lib="$dest/usr/local/lib/$LIB_NAME"
    real_binaries_built > /dev/null || { echo "NOTE binaries not built: make install with the bundle not run"; return 0; }
    if out="$(make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 2>&1)" \
        && [[ -d "$lib" && ! -L "$lib" ]] && (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && cmp -s "$lib/MANIFEST" "$WORK/bundle/lib/$LIB_NAME/MANIFEST" \
        && [[ "$(env -i "$dest/usr/local/bin/guest-pull-verity" --version 2>&1)" == "guest-pull-verity "* ]]; then
        pass "make install: library bundle in PREFIX/lib/$LIB_NAME, installed binaries run under env -i"
    else
        fail "make install: bundle" "$(tail -3 <<< "$out")"; return
    fi
    tree "$dest" > "$WORK/make/real.tree"
    make -s -C "$REPO/deploy" install DESTDIR="$dest" NO_BUILD=1 > /dev/null 2>&1 \
        && cmp -s "$WORK/make/real.tree" <(tree "$dest") \
        && pass "make install: second install gives the same tree" || fail "make install: second install"
    make -s -C "$REPO/deploy" uninstall DESTDIR="$dest" > /dev/null 2>&1 \
        && [[ -z "$(find "$dest/usr/local/lib" -mindepth 1)" ]] \
        && [[ -z "$(find "$dest" -type f ! -name config.toml)" ]] \
        && pass "make uninstall: removes the library bundle" || fail "make uninstall: bundle" "$(find "$dest/usr/local/lib")"
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

test_shellcheck() {
    if command -v shellcheck > /dev/null; then
        check "shellcheck: deploy scripts and this suite" \
            shellcheck -x "$SCRIPTS/install.sh" "$SCRIPTS/uninstall.sh" "$SCRIPTS/lib.sh" "$HERE/run.sh" "$BUNDLE_SCRIPT"
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
    test_install_stock
    test_install_v3
    test_global_snapshotter
    test_failures
    test_missing_config
    test_edited_after_install
    test_bundle
    test_makefile
    test_manifests
    test_shellcheck
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

main "$@"
