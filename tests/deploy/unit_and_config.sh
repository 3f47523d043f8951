# shellcheck shell=bash
# unit_and_config.sh: the shipped files on their own: the systemd unit
# (systemd-analyze verify, required settings, no mount namespace), the
# default daemon config (its values, equal to --print-default-config, the
# daemon starts with it) and the containerd drop-ins (what install writes).
# Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_unit() {
    local unit="$REPO/deploy/systemd/guest-pull-snapshotter.service" copy out
    copy="$WORK/unit/guest-pull-snapshotter.service"
    mkdir -p "$WORK/unit/bin"
    printf '#!/bin/sh\nexit 0\n' > "$WORK/unit/bin/containerd-guest-pull-grpc"
    chmod 0755 "$WORK/unit/bin/containerd-guest-pull-grpc"
    sed "s|/usr/local/bin/|$WORK/unit/bin/|" "$unit" > "$copy"
    if out="$(systemd-analyze verify "$copy" 2>&1)" && [[ -z "$out" ]]; then
        h_pass "unit: systemd-analyze verify is clean"
    else
        h_fail "unit: systemd-analyze verify" "$out"
    fi
    local key
    for key in Type=notify Restart=always Before=containerd.service KillMode=process \
            NoNewPrivileges=yes LimitNOFILE=1048576 RuntimeDirectoryPreserve=yes WatchdogSec=30; do
        grep -qx "$key" "$unit" || { h_fail "unit: has $key"; return; }
    done
    h_pass "unit: required settings present"
    # Options that give the service its own mount namespace would hide its
    # mounts from containerd.
    if grep -E '^(PrivateMounts|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ReadOnlyPaths|InaccessiblePaths|ProtectKernelTunables|ProtectKernelModules|ProtectControlGroups|ProtectProc|TemporaryFileSystem|BindPaths|MountFlags|DeviceAllow|ProtectClock)=' "$unit"; then
        h_fail "unit: no mount-namespace options"
    else
        h_pass "unit: no mount-namespace options"
    fi
}

test_default_config() {
    local cfg="$REPO/deploy/config/config.toml" daemon="$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
    h_check "config: default config parses, expected values" python3 - "$cfg" <<'EOF'
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
assert c["root"] == "/var/lib/containerd-guest-pull-grpc", c["root"]
assert c["address"] == "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"
assert c["guest_pull"]["mount_type"] == "fuse.guest-pull-overlayfs"
assert c["verity"]["mode"] in ("off", "best_effort", "required")
assert c["metrics"]["address"] == ""
EOF
    if [[ -x "$daemon" ]] && "$daemon" --print-default-config > "$WORK/printed.toml" 2>/dev/null; then
        h_check "config: equals the daemon's --print-default-config" python3 -c '
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
            h_pass "config: the daemon starts with the shipped config and listens"
        else
            h_fail "config: daemon with the shipped config" "$(tail -3 "$WORK/daemon/log")"
        fi
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    else
        h_skip "config: equals the daemon's --print-default-config; the daemon starts with it" \
            "daemon not built ($daemon)"
    fi
}

test_dropins_match_tool() {
    local v
    for v in 2 3; do
        h_check "containerd: deploy/containerd/conf.d/guest-pull-v$v.toml is what install writes" \
            cmp "$REPO/deploy/containerd/conf.d/guest-pull-v$v.toml" <(python3 "$TOOL" dropin --version "$v")
    done
    h_check "containerd: config-v3.toml equals the v3 drop-in settings" python3 -c '
import sys, tomllib
a = tomllib.load(open(sys.argv[1], "rb")); b = tomllib.load(open(sys.argv[2], "rb"))
assert a == b, (a, b)' "$REPO/deploy/containerd/config-v3.toml" "$REPO/deploy/containerd/conf.d/guest-pull-v3.toml"
}
