# shellcheck shell=bash
# The PEERS_* variables are set here for the caller.
# shellcheck disable=SC2034
# peers.sh: start and stop real peers for tool tests, all on loopback or unix
# sockets under a caller-given temp dir: a docker-registry (distribution) and
# a containerd 1.6 with CRI enabled. Sourceable; functions return non-zero with
# a message on stderr instead of exiting.
#
#   peers_free_port                       prints a free 127.0.0.1 TCP port
#   peers_start_registry DIR PORT         sets PEERS_REGISTRY_PID
#   peers_start_containerd DIR [REG_PORT] sets PEERS_CONTAINERD_PID and
#                                         PEERS_CONTAINERD_SOCK (DIR/c.sock;
#                                         keep DIR short: 108-byte socket limit)
#   peers_stop_pid PID NAME               TERM, wait up to 15 s, then KILL
#   peers_umount_under DIR                unmount leftover mounts below DIR
#   peers_wait_until SECONDS CMD...       retry CMD every 0.1 s until it works

PEERS_REGISTRY_PID=""
PEERS_CONTAINERD_PID=""
PEERS_CONTAINERD_SOCK=""

_peers_err() { echo "peers.sh: ERROR: $*" >&2; return 1; }

peers_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

peers_wait_until() {
  local secs="$1" deadline
  shift
  deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@" >/dev/null 2>&1
}

peers_start_registry() {
  local dir="$1" port="$2"
  mkdir -p "$dir/registry-data" || return 1
  cat >"$dir/registry.yml" <<EOF || return 1
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  PEERS_REGISTRY_PID=$!
  peers_wait_until 20 curl -fsS --max-time 5 "http://127.0.0.1:$port/v2/" ||
    _peers_err "registry on 127.0.0.1:$port not ready in 20 s; see $dir/registry.log"
}

# _peers_containerd_config DIR REG_PORT: a private containerd 1.6 config with
# CRI on, nothing under /var/lib, /run/containerd or /opt.
_peers_containerd_config() {
  local dir="$1" reg_port="$2"
  cat <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$dir/c.sock"

[ttrpc]
  address = "$dir/c.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$dir/cni/bin"
    conf_dir = "$dir/cni/conf"
EOF
  if [[ -n "$reg_port" ]]; then
    cat <<EOF
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."127.0.0.1:$reg_port"]
    endpoint = ["http://127.0.0.1:$reg_port"]
EOF
  fi
}

peers_start_containerd() {
  local dir="$1" reg_port="${2:-}"
  mkdir -p "$dir/root" "$dir/state" "$dir/opt" "$dir/cni/bin" "$dir/cni/conf" || return 1
  _peers_containerd_config "$dir" "$reg_port" >"$dir/containerd.toml" || return 1
  PEERS_CONTAINERD_SOCK="$dir/c.sock"
  ((${#PEERS_CONTAINERD_SOCK} < 100)) ||
    _peers_err "socket path $PEERS_CONTAINERD_SOCK too long for a unix socket" || return 1
  containerd --config "$dir/containerd.toml" --log-level debug \
    >"$dir/containerd.log" 2>&1 &
  PEERS_CONTAINERD_PID=$!
  peers_wait_until 30 ctr -a "$PEERS_CONTAINERD_SOCK" version ||
    _peers_err "containerd not ready in 30 s; see $dir/containerd.log"
}

peers_stop_pid() {
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "peers.sh: $name (pid $pid) ignored TERM for 15 s; killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# peers_umount_under DIR [PASSES]: unmounts everything mounted below DIR,
# deepest first so nested mounts go before their parents, in at most PASSES
# passes (default 5); the last two passes unmount lazily. Returns non-zero
# if something is still mounted.
peers_umount_under() {
  local dir="$1" passes="${2:-5}" pass target targets
  for ((pass = 1; pass <= passes; pass++)); do
    mapfile -t targets < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    ((${#targets[@]})) || return 0
    echo "unmounting ${#targets[@]} mount(s) under $dir (pass $pass)" >&2
    for target in "${targets[@]}"; do
      if ((pass < passes - 1)); then umount "$target" 2>/dev/null || true
      else umount -l "$target" 2>/dev/null || true; fi
    done
  done
  echo "WARNING: mounts still present under $dir" >&2
  return 1
}

# EXIT-trap body of a suite counting with tests/harness/harness.sh: stops
# the containerd and registry it started (PEERS_*_PID), unmounts and removes
# its temp dir (kept with keep=1), counts one failure when the suite died
# (RC != 0) without counting one, and ends with h_finish ("N passed, M
# failed, K skipped"; exit 1 on any failure).
#   peers_teardown_suite RC TMP KEEP
peers_teardown_suite() {
  local rc="$1" tmp="$2" keep="$3"
  peers_stop_pid "${PEERS_CONTAINERD_PID:-}" containerd
  peers_stop_pid "${PEERS_REGISTRY_PID:-}" docker-registry
  if [[ -n "$tmp" ]]; then
    peers_umount_under "$tmp" || true
    if ((keep)); then echo "kept $tmp"; else rm -rf "$tmp"; fi
  fi
  if ((rc != 0 && H_FAILED == 0)); then h_fail "suite aborted (status $rc)"; fi
  h_finish
}

# peers_gopath DIR NAME=SRC...: makes DIR a GOPATH, in front of Debian's Go
# sources (/usr/share/gocode), in which guestpull/NAME links to SRC, and
# exports the offline GOPATH-mode environment for go build / go test.
# The go first on PATH builds it: Debian's 1.19 (what those sources are
# packaged for) and Go 1.26 (GOPATH mode still supported) both build and
# vet the conformance test, refserver and userlookup.
peers_gopath() {
  local dir="$1" spec
  shift
  export GO111MODULE=off GOFLAGS="" GOPATH="$dir:/usr/share/gocode"
  export GOCACHE="${GOCACHE:-/tmp/guest-pull-gocache}"
  mkdir -p "$dir/src/guestpull"
  for spec in "$@"; do
    ln -sfn "${spec#*=}" "$dir/src/guestpull/${spec%%=*}"
  done
}
