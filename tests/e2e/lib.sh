# shellcheck shell=bash
# lib.sh: shared library for the end-to-end suites in tests/e2e. Source it from
# a bash script running as root with `set -euo pipefail`, then call e2e_init.
# It starts real peers under one temporary directory: a loopback registry
# (docker-registry), Debian's containerd 1.6 with its own config and our
# daemon as proxy snapshotter "guest-pull". An EXIT trap stops them all by
# PID, unmounts what is left under the temp dir, dumps every peer's log when
# something failed and prints "N passed, M failed, K skipped" (harness.sh
# h_finish) as the very last line.
#
# Typical suite:
#   source "$(dirname "$0")/lib.sh"
#   e2e_init foundation
#   registry_start; start_daemon; containerd_start
#   image_build_busybox demo v1 3 && image_push demo v1
#   check "pull" ctr_cmd image pull --plain-http --snapshotter guest-pull "$(image_ref demo v1)"
#   finish
#
# Environment knobs:
#   GUEST_PULL_DAEMON     daemon binary (default: bazel build it)
#   GUEST_PULL_REFERENCE  1 = use tests/conformance/refserver (containerd's
#                         overlayfs) instead of our daemon
#   E2E_KEEP              1 = keep the temp dir (peers are still stopped)
#   E2E_LOG_LINES         lines per log dumped on failure (default 200)
#   E2E_VERBOSE           1 = show output of passing checks too
#
# Another containerd version than Debian's (e.g. one of tests/tools/go_peers.sh):
#   containerd_use_version BIN_DIR   its containerd, ctr and
#                         containerd-shim-runc-v2 come first on PATH from now on

E2E_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_REPO="$(cd "$E2E_LIB_DIR/../.." && pwd)"
readonly E2E_LIB_DIR E2E_REPO
# shellcheck source=../tools/peers.sh
source "$E2E_REPO/tests/tools/peers.sh"
# shellcheck source=../harness/harness.sh
source "$E2E_REPO/tests/harness/harness.sh"

# Bounds (seconds) for every wait in this library.
E2E_START_TIMEOUT=${E2E_START_TIMEOUT:-30}
E2E_STOP_TIMEOUT=${E2E_STOP_TIMEOUT:-20}
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-120}

# Snapshotter name used by containerd for our daemon.
readonly GP_SNAPSHOTTER="guest-pull"

E2E_FINISHED=0
E2E_DIR=""
E2E_BIN=""
E2E_SBIN_LINKS=()
REGISTRY_PID=""
CONTAINERD_PID=""
GP_PID=""

# ---------------------------------------------------------------- logging

e2e_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# e2e_die MSG: counts a failure and aborts the suite (teardown still runs).
e2e_die() {
  e2e_log "FATAL: $*"
  h_fail "aborted: $*"
  exit 1
}

e2e_require_cmds() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || e2e_die "required command '$cmd' not found"
  done
}

# ------------------------------------------------------------- assertions
# The assertions below count through tests/harness/harness.sh (h_pass,
# h_fail; h_skip and h_setup are used directly). Every assertion counts one
# pass or one failure and returns 0, so a failed assertion never aborts a
# `set -e` suite. last_ok tells whether the most recent assertion passed:
#   check "pull" ctr_pull "$ref"; last_ok || finish
# Setup steps (builds, fixtures) are not assertions: e2e_setup.

E2E_OK=1

pass() { E2E_OK=1; h_pass "$1"; }

# fail MSG [DETAILS]: counts a failure and keeps going.
fail() { E2E_OK=0; h_fail "$@"; }

# last_ok: true if the most recent assertion passed.
last_ok() { ((E2E_OK == 1)); }

# e2e_bounded CMD...: runs CMD; external commands are bounded by
# E2E_CMD_TIMEOUT (shell functions must bound their own commands, as the
# ones in this library do).
e2e_bounded() {
  if declare -F "$1" >/dev/null; then "$@"; else timeout "$E2E_CMD_TIMEOUT" "$@"; fi
}

# check DESC CMD...: passes if CMD exits 0 (within E2E_CMD_TIMEOUT). The
# command's combined output is left in $E2E_OUT (and shown on failure).
# CMD runs in a subshell: do not pass functions that change library state
# (start_daemon, stop_daemon, ...); call those directly and assert on $?.
check() {
  local desc="$1" status=0
  shift
  E2E_OUT="$(e2e_bounded "$@" 2>&1)" || status=$?
  if ((status == 0)); then
    pass "$desc"
    if [[ "${E2E_VERBOSE:-0}" == 1 && -n "$E2E_OUT" ]]; then printf '%s\n' "$E2E_OUT" | sed 's/^/    | /' >&2; fi
    return 0
  fi
  local why="exit $status"
  ((status != 124)) || why="timed out after ${E2E_CMD_TIMEOUT}s"
  fail "$desc ($why: $*)" "$E2E_OUT"
}

# check_fails DESC CMD...: passes if CMD exits non-zero (a timeout is not
# accepted as a failure). Output in $E2E_OUT.
check_fails() {
  local desc="$1" status=0
  shift
  E2E_OUT="$(e2e_bounded "$@" 2>&1)" || status=$?
  if ((status != 0 && status != 124)); then pass "$desc"; return 0; fi
  fail "$desc (expected failure, got exit $status: $*)" "$E2E_OUT"
}

# e2e_setup DESC CMD...: a setup step (bounded like check), not a test:
# success counts nothing, failure counts one failure ("setup: DESC") and
# returns 1, e.g.  e2e_setup "fetch the image" skopeo copy ... || return 0
e2e_setup() {
  local desc="$1"
  shift
  h_setup "$desc" e2e_bounded "$@"
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1"; return 0; fi
  fail "$1" "expected: $2"$'\n'"actual:   $3"
}

# assert_contains DESC HAYSTACK NEEDLE (fixed string)
assert_contains() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; return 0; fi
  fail "$1 (missing '$3')" "$2"
}

# assert_not_contains DESC HAYSTACK NEEDLE (fixed string)
assert_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass "$1"; return 0; fi
  fail "$1 (unexpected '$3')" "$2"
}

# assert_status DESC EXPECTED_STATUS ACTUAL_STATUS: for functions run
# directly, e.g.  stop_daemon && st=0 || st=$?; assert_status "..." 0 "$st"
assert_status() {
  if [[ "$2" == "$3" ]]; then pass "$1"; return 0; fi
  fail "$1 (exit status $3, expected $2)"
}

# finish: ends the suite; the EXIT trap prints the totals line and the exit
# status is non-zero if any check failed.
finish() {
  E2E_FINISHED=1
  if ((H_FAILED > 0)); then exit 1; fi
  exit 0
}

# ------------------------------------------------------------------- init

# e2e_init NAME: creates the temp dir, installs the EXIT trap and sets the
# paths of every peer. Must run as root.
e2e_init() {
  local name="${1:-e2e}"
  ((EUID == 0)) || { echo "$name: must run as root" >&2; exit 1; }
  h_on_exit e2e_teardown
  e2e_require_cmds docker-registry containerd ctr runc skopeo umoci busybox jq curl python3 timeout
  # Short path: unix socket paths are limited to 108 bytes.
  E2E_DIR="$(mktemp -d "/tmp/gp${name:0:6}.XXXXXX")"
  chmod 0755 "$E2E_DIR"
  E2E_BIN="$E2E_DIR/bin"
  mkdir -p "$E2E_BIN" "$E2E_DIR/logs"
  REGISTRY_DIR="$E2E_DIR/registry"
  REGISTRY_LOG="$E2E_DIR/logs/registry.log"
  CONTAINERD_DIR="$E2E_DIR/containerd"
  CONTAINERD_SOCK="$E2E_DIR/containerd.sock"
  CONTAINERD_CONFIG="$CONTAINERD_DIR/config.toml"
  CONTAINERD_LOG="$E2E_DIR/logs/containerd.log"
  GP_ROOT="$E2E_DIR/gp-root"
  GP_SOCK="$E2E_DIR/gp.sock"
  GP_CONFIG="$E2E_DIR/gp-config.toml"
  GP_LOG="$E2E_DIR/logs/daemon.log"
  IMAGES_DIR="$E2E_DIR/images"
  mkdir -p "$IMAGES_DIR"
  e2e_log "suite $name: temp dir $E2E_DIR"
}

# ---------------------------------------------------------- process utils

# e2e_wait_until TIMEOUT DESC CMD...: polls CMD every 0.1 s until it succeeds.
e2e_wait_until() {
  local timeout="$1" desc="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { e2e_log "timed out after ${timeout}s waiting for $desc"; return 1; }
    sleep 0.1
  done
}

# e2e_unix_listening PATH: true if something accepts connections on PATH.
e2e_unix_listening() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(1)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(1)
EOF
}

e2e_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# e2e_stop_pid NAME PID [SIGNAL]: sends SIGNAL (default TERM), waits
# (bounded) and SIGKILLs a process that outlives the wait. Returns the
# process's exit status, or 124 if it had to be killed.
e2e_stop_pid() {
  local name="$1" pid="$2" sig="${3:-TERM}" status=0 deadline
  [[ -n "$pid" ]] || return 0
  if kill "-$sig" "$pid" 2>/dev/null; then
    deadline=$((SECONDS + E2E_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      e2e_log "$name (pid $pid) still running ${E2E_STOP_TIMEOUT}s after SIG$sig; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 124
    fi
  fi
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}

# ---------------------------------------------------------------- registry

registry_start() {
  local attempt
  mkdir -p "$REGISTRY_DIR/data"
  for attempt in 1 2 3; do
    REGISTRY_PORT="$(e2e_free_port)"
    REGISTRY_ADDR="127.0.0.1:$REGISTRY_PORT"
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    docker-registry serve "$REGISTRY_DIR/config.yml" >>"$REGISTRY_LOG" 2>&1 &
    REGISTRY_PID=$!
    if e2e_wait_until "$E2E_START_TIMEOUT" "registry on $REGISTRY_ADDR" \
        curl -fsS --max-time 5 "http://$REGISTRY_ADDR/v2/"; then
      e2e_log "registry listening on $REGISTRY_ADDR (pid $REGISTRY_PID)"
      return 0
    fi
    e2e_log "registry did not come up on port $REGISTRY_PORT (attempt $attempt)"
    e2e_stop_pid registry "$REGISTRY_PID" || true
    REGISTRY_PID=""
  done
  e2e_die "docker-registry failed to start (see $REGISTRY_LOG)"
}

registry_stop() {
  local pid="$REGISTRY_PID"
  REGISTRY_PID=""
  e2e_stop_pid registry "$pid" || true
}

# registry_blob_gets DIGEST: prints how many GET requests the registry
# served for that blob (any repository), from its access log.
registry_blob_gets() {
  local digest="$1" from="${2:-1}"
  tail -n "+$from" "$REGISTRY_LOG" |
    grep -cE "\"GET /v2/[^ \"]+/blobs/${digest} HTTP" || true
}

# registry_log_mark: the line number the next registry log line will have;
# pass it to registry_blob_gets to count only what happened after the mark
# (blobs shared between images are fetched by earlier steps too).
registry_log_mark() { echo $(($(wc -l <"$REGISTRY_LOG") + 1)); }

# registry_manifest_gets REF_OR_DIGEST: prints how many GET requests hit a
# manifest by tag or digest.
registry_manifest_gets() {
  grep -cE "\"GET /v2/[^ \"]+/manifests/$1 HTTP" "$REGISTRY_LOG" || true
}

# ------------------------------------------------------------------ daemon

# daemon_binary: sets GP_DAEMON to the binary to run, copied into $E2E_BIN
# so a concurrent rebuild cannot change it under a running suite.
daemon_binary() {
  [[ -z "${GP_DAEMON:-}" ]] || return 0
  local src
  if [[ "${GUEST_PULL_REFERENCE:-0}" == 1 ]]; then
    e2e_build_reference
    src="$E2E_DIR/refserver"
  elif [[ -n "${GUEST_PULL_DAEMON:-}" ]]; then
    src="$GUEST_PULL_DAEMON"
  else
    e2e_log "bazel build //snapshotter:containerd-guest-pull-grpc"
    (cd "$E2E_REPO" && bazel build //snapshotter:containerd-guest-pull-grpc) >&2 \
      || e2e_die "bazel build of the daemon failed"
    src="$E2E_REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
  fi
  [[ -x "$src" ]] || e2e_die "daemon binary $src is not executable"
  cp "$src" "$E2E_BIN/containerd-guest-pull-grpc"
  GP_DAEMON="$E2E_BIN/containerd-guest-pull-grpc"
  e2e_log "daemon: $src"
}

# e2e_build_reference: builds tests/conformance/refserver (containerd's own
# overlayfs snapshotter behind the same flags) with go in GOPATH mode.
e2e_build_reference() {
  local gopath="$E2E_DIR/gopath"
  (peers_gopath "$gopath" conformance="$E2E_REPO/tests/conformance" &&
    cd "$gopath/src/guestpull/conformance" &&
    go build -o "$E2E_DIR/refserver" ./refserver) >&2 \
    || e2e_die "building the reference server failed"
}

# daemon_write_config: writes the daemon's config file with every setting at
# its default. Append settings with daemon_config_append before a (re)start.
daemon_write_config() {
  cat >"$GP_CONFIG" <<EOF
# containerd-guest-pull-grpc config written by tests/e2e/lib.sh; root,
# address and log level come from the command line.
version = 1
EOF
}

# daemon_config_append: appends TOML read from stdin to the daemon config.
daemon_config_append() { cat >>"$GP_CONFIG"; }

# start_daemon [EXTRA_FLAGS...]: starts the daemon on $GP_SOCK with root
# $GP_ROOT and waits (bounded) until it accepts connections.
start_daemon() {
  [[ -z "$GP_PID" ]] || e2e_die "start_daemon: daemon already running (pid $GP_PID)"
  daemon_binary
  [[ -f "$GP_CONFIG" ]] || daemon_write_config
  mkdir -p "$GP_ROOT"
  printf '\n===== %s start_daemon %s\n' "$(date +%T)" "$*" >>"$GP_LOG"
  "$GP_DAEMON" --address="$GP_SOCK" --root="$GP_ROOT" --config="$GP_CONFIG" \
    --log-level=debug "$@" >>"$GP_LOG" 2>&1 &
  GP_PID=$!
  local deadline=$((SECONDS + E2E_START_TIMEOUT))
  until e2e_unix_listening "$GP_SOCK"; do
    if ! kill -0 "$GP_PID" 2>/dev/null; then
      local status=0
      wait "$GP_PID" || status=$?
      GP_PID=""
      e2e_die "daemon exited with status $status during startup (see its log)"
    fi
    ((SECONDS < deadline)) || e2e_die "daemon not listening on $GP_SOCK after ${E2E_START_TIMEOUT}s"
    sleep 0.1
  done
  e2e_log "daemon listening on $GP_SOCK (pid $GP_PID)"
}

# stop_daemon: SIGTERM; returns non-zero unless the daemon exited 0 in time.
stop_daemon() {
  local pid="$GP_PID" status=0
  [[ -n "$pid" ]] || return 0
  GP_PID=""
  e2e_stop_pid daemon "$pid" || status=$?
  e2e_log "daemon (pid $pid) stopped with status $status"
  return "$status"
}

# kill9_daemon: SIGKILL, as a crash would; the stale socket stays behind.
kill9_daemon() {
  local pid="$GP_PID"
  [[ -n "$pid" ]] || e2e_die "kill9_daemon: daemon is not running"
  GP_PID=""
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  e2e_log "daemon (pid $pid) killed with SIGKILL"
}

# restart_daemon [EXTRA_FLAGS...]: clean stop (must exit 0) then start.
restart_daemon() {
  local status=0
  stop_daemon || status=$?
  start_daemon "$@"
  return "$status"
}

# -------------------------------------------------------------- containerd

containerd_write_config() {
  mkdir -p "$CONTAINERD_DIR"
  [[ -n "${REGISTRY_PORT:-}" ]] || e2e_die "containerd_write_config: start the registry first"
  cat >"$CONTAINERD_CONFIG" <<EOF
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$GP_SNAPSHOTTER"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "$CONTAINERD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CONTAINERD_DIR/cni/bin"
    conf_dir = "$CONTAINERD_DIR/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY_ADDR"]
    endpoint = ["http://$REGISTRY_ADDR"]

[proxy_plugins.$GP_SNAPSHOTTER]
  type = "snapshot"
  address = "$GP_SOCK"
EOF
  if [[ -n "${E2E_CONTAINERD_EXTRA:-}" ]]; then
    printf '\n%s\n' "$E2E_CONTAINERD_EXTRA" >>"$CONTAINERD_CONFIG"
  fi
}

# containerd_use_version BIN_DIR: containerd, ctr and containerd-shim-runc-v2
# of another version (a dir holding all three) are used from now on.
containerd_use_version() {
  local b
  for b in containerd ctr containerd-shim-runc-v2; do
    [[ -x "$1/$b" ]] || e2e_die "containerd_use_version: no $b in $1"
  done
  PATH="$1:$PATH"
  e2e_log "containerd: $("$1/containerd" --version)"
}

# containerd_start: writes the config (unless one exists) and starts
# containerd with $E2E_BIN first on its PATH; waits until ctr answers.
containerd_start() {
  [[ -z "$CONTAINERD_PID" ]] || e2e_die "containerd_start: already running (pid $CONTAINERD_PID)"
  [[ -f "$CONTAINERD_CONFIG" ]] || containerd_write_config
  printf '\n===== %s containerd_start\n' "$(date +%T)" >>"$CONTAINERD_LOG"
  PATH="$E2E_BIN:$PATH" containerd --config "$CONTAINERD_CONFIG" >>"$CONTAINERD_LOG" 2>&1 &
  CONTAINERD_PID=$!
  local deadline=$((SECONDS + E2E_START_TIMEOUT))
  until ctr -a "$CONTAINERD_SOCK" version >/dev/null 2>&1; do
    kill -0 "$CONTAINERD_PID" 2>/dev/null || { CONTAINERD_PID=""; e2e_die "containerd exited during startup (see its log)"; }
    ((SECONDS < deadline)) || e2e_die "containerd not answering on $CONTAINERD_SOCK after ${E2E_START_TIMEOUT}s"
    sleep 0.1
  done
  e2e_log "containerd ready on $CONTAINERD_SOCK (pid $CONTAINERD_PID)"
}

# containerd_wait_snapshotter: waits (bounded) until containerd reaches our
# snapshotter again, e.g. after a daemon restart (containerd's gRPC client
# reconnects with a backoff of up to a few seconds). Returns non-zero on
# timeout, with the last error in $E2E_OUT.
containerd_wait_snapshotter() {
  # `snapshots ls` is answered from containerd's own database; a Prepare of a
  # probe snapshot really reaches the daemon (containerd reconnects to a
  # restarted proxy with a delay of about a second).
  local deadline=$((SECONDS + E2E_START_TIMEOUT)) probe="e2e-probe-$$"
  local -a snap=(timeout 10 ctr -a "$CONTAINERD_SOCK" -n e2e-probe snapshots
                 --snapshotter "$GP_SNAPSHOTTER")
  until E2E_OUT="$("${snap[@]}" prepare "$probe" 2>&1)"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  "${snap[@]}" rm "$probe" >/dev/null 2>&1 || true
}

# containerd_cleanup_tasks: kills and deletes every task and container in
# every namespace (bounded per call), so no shim or runc process outlives us.
containerd_cleanup_tasks() {
  local ns id
  for ns in $(timeout 10 ctr -a "$CONTAINERD_SOCK" namespaces ls -q 2>/dev/null); do
    for id in $(timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
      timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
      timeout 10 ctr -a "$CONTAINERD_SOCK" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

# e2e_kill_shims: SIGKILLs leftover containerd shims started for our
# containerd (their command line names our socket), by PID.
e2e_kill_shims() {
  local proc pid exe
  for proc in /proc/[0-9]*; do
    pid="${proc#/proc/}"
    exe="$(readlink "$proc/exe" 2>/dev/null)" || continue
    [[ "$(basename "$exe")" == containerd-shim* ]] || continue
    tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF -- "$CONTAINERD_SOCK" || continue
    e2e_log "killing leftover shim pid $pid ($exe)"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# containerd_stop: deletes every task and container, stops containerd and
# kills leftover shims.
containerd_stop() {
  local pid="$CONTAINERD_PID"
  [[ -n "$pid" ]] || return 0
  containerd_cleanup_tasks
  CONTAINERD_PID=""
  e2e_stop_pid containerd "$pid" || true
  e2e_kill_shims
}

# containerd_restart: stops only the containerd process (tasks and shims
# live on, as in a real upgrade) and starts it again with the same config.
containerd_restart() {
  local pid="$CONTAINERD_PID"
  [[ -n "$pid" ]] || e2e_die "containerd_restart: containerd is not running"
  CONTAINERD_PID=""
  e2e_stop_pid containerd "$pid" || true
  containerd_start
}

# e2e_start_all: registry, daemon, then containerd (the usual order).
e2e_start_all() {
  registry_start
  start_daemon
  containerd_start
}

# ctr_cmd ARGS...: ctr against our containerd (bounded by E2E_CMD_TIMEOUT).
ctr_cmd() { timeout "$E2E_CMD_TIMEOUT" ctr -a "$CONTAINERD_SOCK" "$@"; }

# e2e_crictl ARGS...: crictl ($CRICTL, go_peer_bin crictl) against our
# containerd's CRI, bounded by E2E_CMD_TIMEOUT; each CRI call by
# CRICTL_TIMEOUT (default 110s).
e2e_crictl() {
  [[ -f "$E2E_DIR/crictl.yaml" ]] || echo "debug: false" >"$E2E_DIR/crictl.yaml"
  timeout "$E2E_CMD_TIMEOUT" "$CRICTL" --config "$E2E_DIR/crictl.yaml" -r "unix://$CONTAINERD_SOCK" \
    -i "unix://$CONTAINERD_SOCK" --timeout "${CRICTL_TIMEOUT:-110s}" "$@"
}

# ctr_pull REF [NAMESPACE]: plain-HTTP pull unpacked into our snapshotter.
ctr_pull() {
  ctr_cmd -n "${2:-default}" image pull --plain-http --snapshotter "$GP_SNAPSHOTTER" "$1"
}

# ctr_run REF ID CMD...: runs a container with runc through our snapshotter,
# removing it afterwards; prints its stdout/stderr. runc keeps its state
# under the temp dir so concurrent suites cannot collide on container IDs.
ctr_run() {
  local ref="$1" id="$2"
  shift 2
  ctr_cmd run --rm --runc-root "$CONTAINERD_DIR/runc" --snapshotter "$GP_SNAPSHOTTER" \
    "$ref" "$id" "$@"
}

# ------------------------------------------------------- helper binaries

# install_helpers LABEL...: bazel-builds the given targets (e.g.
# //mount_helper:guest-pull-overlayfs), copies them into $E2E_BIN (first on
# containerd's PATH) and links them from /usr/local/sbin for mount(8); the
# links are removed at teardown.
install_helpers() {
  local label pkg name link
  ((${#@})) || return 0
  (cd "$E2E_REPO" && bazel build "$@") >&2 || e2e_die "bazel build $* failed"
  for label in "$@"; do
    pkg="${label#//}"; pkg="${pkg%%:*}"; name="${label##*:}"
    [[ -x "$E2E_REPO/bazel-bin/$pkg/$name" ]] || e2e_die "no executable bazel-bin/$pkg/$name for $label"
    cp "$E2E_REPO/bazel-bin/$pkg/$name" "$E2E_BIN/$name"
    link="/usr/local/sbin/$name"
    if [[ -L "$link" && ! -e "$link" ]]; then
      e2e_log "replacing dangling $link -> $(readlink "$link")"
      rm -f "$link"
    fi
    [[ ! -e "$link" && ! -L "$link" ]] \
      || e2e_die "$link already exists ($(readlink "$link" || echo 'a file')); another suite running?"
    ln -s "$E2E_BIN/$name" "$link"
    E2E_SBIN_LINKS+=("$link")
    e2e_log "installed helper $name ($link)"
  done
}

# ------------------------------------------------------------------ images

# image_build_busybox NAME TAG [LAYERS]: builds an OCI layout
# $IMAGES_DIR/NAME with LAYERS (>= 3, default 3) layers:
#   1: static busybox in /bin (+ applet links) and /etc/layer1
#   2: /etc/passwd, /etc/group, /data/layer2, /data/remove-me
#   3: /data/layer3 and a whiteout deleting /data/remove-me
#   n>3: /data/layer<n>
# Each /data/layer<n> and /etc/layer1 holds "layer<n> NAME:TAG <nonce>";
# the nonce makes every blob unique, so fetch counts in the registry log are
# about this image alone. IMAGE_NONCE holds it after the call.
image_build_busybox() {
  local name="$1" tag="$2" layers="${3:-3}" layout bundle n app
  ((layers >= 3)) || e2e_die "image_build_busybox: need at least 3 layers"
  layout="$IMAGES_DIR/$name"
  bundle="$IMAGES_DIR/$name-$tag.bundle"
  IMAGE_NONCE="$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  [[ -d "$layout" ]] || umoci init --layout "$layout" || e2e_die "umoci init failed"
  umoci new --image "$layout:$tag" || e2e_die "umoci new failed"
  umoci unpack --image "$layout:$tag" "$bundle" >/dev/null || e2e_die "umoci unpack failed"
  local rootfs="$bundle/rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/data" "$rootfs/tmp"
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for app in $("$rootfs/bin/busybox" --list); do
    [[ "$app" == busybox ]] || ln -sf busybox "$rootfs/bin/$app"
  done
  echo "layer1 $name:$tag $IMAGE_NONCE" >"$rootfs/etc/layer1"
  _image_repack "$layout:$tag" "$bundle" "layer 1: busybox"

  printf 'root:x:0:0:root:/root:/bin/sh\nguest:x:1000:1000:guest:/tmp:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nguest:x:1000:\n' >"$rootfs/etc/group"
  echo "layer2 $name:$tag $IMAGE_NONCE" >"$rootfs/data/layer2"
  echo "deleted by layer 3" >"$rootfs/data/remove-me"
  _image_repack "$layout:$tag" "$bundle" "layer 2: users, data"

  echo "layer3 $name:$tag $IMAGE_NONCE" >"$rootfs/data/layer3"
  rm -f "$rootfs/data/remove-me"
  _image_repack "$layout:$tag" "$bundle" "layer 3: data, whiteout"

  for ((n = 4; n <= layers; n++)); do
    echo "layer$n $name:$tag $IMAGE_NONCE" >"$rootfs/data/layer$n"
    _image_repack "$layout:$tag" "$bundle" "layer $n: data"
  done
  umoci config --image "$layout:$tag" --config.cmd /bin/sh \
    --config.env PATH=/bin --config.workingdir / >/dev/null || e2e_die "umoci config failed"
  rm -rf "$bundle"
  e2e_log "built image $name:$tag ($layers layers, nonce $IMAGE_NONCE)"
}

_image_repack() {
  umoci repack --refresh-bundle --history.comment "$3" --image "$1" "$2" >/dev/null \
    || e2e_die "umoci repack ($3) failed"
}

# image_push NAME TAG: copies the OCI layout image to the registry.
image_push() {
  local name="$1" tag="$2"
  timeout "$E2E_CMD_TIMEOUT" skopeo copy --quiet --dest-tls-verify=false \
    "oci:$IMAGES_DIR/$name:$tag" "docker://$REGISTRY_ADDR/$name:$tag" >&2 \
    || e2e_die "skopeo copy of $name:$tag to the registry failed"
  e2e_log "pushed $(image_ref "$name" "$tag")"
}

# image_ref NAME TAG: prints the registry reference.
image_ref() { printf '%s/%s:%s\n' "$REGISTRY_ADDR" "$1" "$2"; }

# image_manifest NAME TAG: prints the OCI manifest JSON from the layout.
image_manifest() {
  local layout="$IMAGES_DIR/$1" digest
  digest="$(jq -r --arg tag "$2" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $tag) | .digest' \
    "$layout/index.json")"
  [[ -n "$digest" ]] || e2e_die "no tag $2 in $layout"
  cat "$layout/blobs/${digest%%:*}/${digest#*:}"
}

# image_layer_digests NAME TAG: prints the compressed layer digests, base first.
image_layer_digests() { image_manifest "$1" "$2" | jq -r '.layers[].digest'; }

# image_diff_ids NAME TAG: prints the uncompressed layer digests, base first.
image_diff_ids() {
  local config
  config="$(image_manifest "$1" "$2" | jq -r '.config.digest')"
  jq -r '.rootfs.diff_ids[]' "$IMAGES_DIR/$1/blobs/${config%%:*}/${config#*:}"
}

# image_chain_ids NAME TAG: prints the layer chain IDs (snapshot names
# containerd uses for committed layers), base first.
image_chain_ids() {
  local chain="" id
  while read -r id; do
    if [[ -z "$chain" ]]; then chain="$id"; else
      chain="sha256:$(printf '%s %s' "$chain" "$id" | sha256sum | cut -d' ' -f1)"
    fi
    echo "$chain"
  done < <(image_diff_ids "$1" "$2")
}

# ---------------------------------------------------------------- teardown

# e2e_unmount_all: unmounts everything below $E2E_DIR (peers.sh).
e2e_unmount_all() { peers_umount_under "$E2E_DIR"; }

e2e_dump_logs() {
  local lines="${E2E_LOG_LINES:-200}" f
  for f in "$E2E_DIR"/logs/*.log; do
    [[ -s "$f" ]] || continue
    printf '\n======== %s (last %s lines) ========\n' "$(basename "$f")" "$lines" >&2
    tail -n "$lines" "$f" >&2
  done
}

# e2e_teardown [STATUS]: the EXIT trap. STATUS (default $?) is the
# script's exit status: a trap that runs something before it must pass it,
# as that something overwrites $?.
e2e_teardown() {
  local status=${1:-$?}
  set +e
  if ((status != 0 && E2E_FINISHED == 0)); then
    e2e_log "suite aborted (status $status)"
    ((H_FAILED > 0)) || h_fail "suite aborted (status $status)"
  fi
  e2e_stop_all
  h_finish
}

# e2e_stop_all: stops the peers, unmounts, dumps the logs after a failure
# and removes the temp dir; what fails counts as a failure. A suite with an
# EXIT trap of its own calls it in its shell (in a subshell, its failures
# would not be counted).
e2e_stop_all() {
  local link
  if [[ -n "$E2E_DIR" ]]; then
    containerd_stop
    if [[ -n "$GP_PID" ]]; then
      stop_daemon || fail "daemon did not exit 0 on SIGTERM at teardown"
    fi
    registry_stop
    e2e_unmount_all || fail "could not unmount everything under $E2E_DIR"
    for link in "${E2E_SBIN_LINKS[@]}"; do rm -f "$link"; done
    ((H_FAILED == 0)) || e2e_dump_logs
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then
      e2e_log "keeping $E2E_DIR"
    elif ! grep -qF " $E2E_DIR/" /proc/self/mounts; then
      rm -rf "$E2E_DIR"
    else
      e2e_log "not removing $E2E_DIR: mounts remain"
    fi
  fi
}
