#!/usr/bin/env bash
# rolling_update.sh: a rolling update of the DaemonSet keeps the snapshotter
# serving. Simulated on one node without Kubernetes: a fake host root, the
# real deploy/k8s/scripts install.sh and uninstall.sh, a systemctl stand-in
# that runs the real daemon from the host root's /usr/local/bin (restart =
# SIGTERM, then start the binary now installed there), real containerd 1.6,
# a loopback registry. What the DaemonSet's RollingUpdate (maxSurge 1,
# maxUnavailable 0) does on a node:
#   1. pod A's install.sh installs release 1 and starts the service;
#   2. containerd pulls an image and runs a long-lived container; two clients
#      keep calling the snapshotter through containerd (Prepare, Commit,
#      Stat, Remove), retrying only Unavailable;
#   3. pod B's install.sh installs release 2 (another binary) while release
#      1 serves: binaries replaced by rename, only the snapshotter restarted
#      (containerd is not), readiness (is-active) true again;
#   4. pod A's preStop (uninstall.sh) sees pod B's install and leaves
#      everything installed and serving.
# Checks: no RPC failed except a retried Unavailable, every acknowledged
# Commit is there afterwards, the long-lived container still runs and a new
# one starts, the daemon runs release 2, and the manifest's strategy is the
# one simulated. Last, pod B's preStop (no successor) uninstalls.
#
# Usage (as root): tests/e2e/rolling_update.sh (GUEST_PULL_DAEMON=PATH: a
# prebuilt daemon). Last line: "N passed, M failed, K skipped".
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../harness/harness.sh
source "$E2E_REPO/tests/harness/harness.sh"

readonly IMAGE=rolling
readonly CLIENTS=2
# Each client runs at least ROUNDS rounds and on until the update is done
# (STOP_FILE), so the restart happens under load however long the install
# takes; MAX_ROUNDS bounds it.
readonly ROUNDS=40
readonly MAX_ROUNDS=2000
REPO="$E2E_REPO"
LIB_NAME="containerd-guest-pull-grpc"
WORK=""
HOST=""
SYSD=""
STOP_FILE=""
ROLLING_FINISHED=0

# make_payload, fake_libc (they use REPO, LIB_NAME and WORK).
# shellcheck source-path=SCRIPTDIR source=../deploy/fake_host.sh
source "$E2E_LIB_DIR/../deploy/fake_host.sh"

# make_node_systemctl: the stand-in for the host's systemctl. The snapshotter
# unit runs the daemon installed in the host root; containerd's unit is only
# recorded (the suite's containerd must not be restarted by an update).
make_node_systemctl() {
  mkdir -p "$SYSD"
  cat >"$SYSD/systemctl" <<EOF
#!/usr/bin/env bash
set -u
echo "\$*" >>"$SYSD/calls"
unit="\${!#}"
pid="\$(cat "$SYSD/pid" 2>/dev/null || true)"
running() { [[ -n "\$pid" ]] && kill -0 "\$pid" 2>/dev/null; }
stop() {
  running || return 0
  kill -TERM "\$pid"
  for _ in \$(seq 300); do running || return 0; sleep 0.1; done
  return 1
}
start() {
  "$HOST/usr/local/bin/containerd-guest-pull-grpc" --address="$GP_SOCK" --root="$GP_ROOT" \\
    --config="$GP_CONFIG" --log-level=debug >>"$GP_LOG" 2>&1 </dev/null &
  pid=\$!
  echo "\$pid" >"$SYSD/pid"
  for _ in \$(seq 300); do
    running || return 1
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$GP_SOCK" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
[[ "\$unit" == guest-pull-snapshotter.service ]] || exit 0
case "\$1" in
  restart) stop && start ;;
  start) running || start ;;
  stop) stop ;;
  disable) [[ "\${2:-}" != --now ]] || stop ;;
  is-active) running ;;
  show) exit 0 ;;
  *) exit 0 ;;
esac
EOF
  chmod 0755 "$SYSD/systemctl"
}

# node_script POD SCRIPT: install.sh or uninstall.sh as pod POD would run it.
node_script() {
  local pod="$1" script="$2"
  env HOST_ROOT="$HOST" PAYLOAD_DIR="$WORK/payload-$pod" SYSTEMCTL="$SYSD/systemctl" \
    POD_UID="$pod" PRESTOP_MARKER="$WORK/$pod-prestop-started" GUEST_PULL_SLEEP=false POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=30 BUSCTL=none \
    RUNTIME_WAIT_SECONDS=0 MISSING_RUNTIME=skip \
    "$E2E_REPO/deploy/k8s/scripts/$script" >>"$WORK/$pod-$script.log" 2>&1
}

# payload POD RELEASE: pod POD's image: the real daemon (release 2: the same
# program with bytes appended, so the install sees a new binary), stand-ins
# for the helpers.
payload() {
  local dir="$WORK/payload-$1"
  make_payload "$dir"
  cp "$GP_DAEMON" "$dir/bin/containerd-guest-pull-grpc"
  if [[ "$2" == 2 ]]; then printf '\nrelease 2\n' >>"$dir/bin/containerd-guest-pull-grpc"; fi
  # The daemon reads its config from the command line (GP_CONFIG).
}

# client N: Prepare, Commit, Stat of the committed snapshot, Remove of every
# other one, ROUNDS times and on until STOP_FILE exists (at most
# MAX_ROUNDS); each ctr call retried only while it fails with
# Unavailable. Writes "ok NAME" for acknowledged commits, "retry ..." and
# "error ..." lines to $WORK/client-N.
client() {
  local n="$1" out="$WORK/client-$1" i name
  local -a snap=(timeout 30 ctr -a "$CONTAINERD_SOCK" -n rolling snapshots --snapshotter "$GP_SNAPSHOTTER")
  call() {
    local msg
    for _ in $(seq 50); do
      if msg="$("$@" 2>&1)"; then return 0; fi
      if grep -qiE 'Unavailable|connection refused|transport is closing|error reading from server|no such file' <<<"$msg"; then
        echo "retry $* :: $(tr '\n' ' ' <<<"$msg")" >>"$out"
        sleep 0.2
        continue
      fi
      echo "error $* :: $(tr '\n' ' ' <<<"$msg")" >>"$out"
      return 1
    done
    echo "error $* :: still Unavailable after 50 tries" >>"$out"
    return 1
  }
  for ((i = 0; i < MAX_ROUNDS; i++)); do
    ((i < ROUNDS)) || [[ ! -e "$STOP_FILE" ]] || break
    name="c$n-$i"
    call "${snap[@]}" prepare "$name-active" || continue
    call "${snap[@]}" commit "$name" "$name-active" || continue
    echo "ok $name" >>"$out"
    call "${snap[@]}" info "$name" >/dev/null || true
    if ((i % 2 == 1)); then call "${snap[@]}" rm "$name" && echo "removed $name" >>"$out"; fi
  done
}

# snapshot_there NAME: containerd finds snapshot NAME in the daemon;
# retried (bounded) while containerd's connection to the daemon is still
# coming back from the restart (Unavailable), as the clients' calls are.
snapshot_there() {
  local msg
  for _ in $(seq 50); do
    msg="$(ctr_cmd -n rolling snapshots --snapshotter "$GP_SNAPSHOTTER" info "$1" 2>&1)" && return 0
    grep -qiE 'Unavailable|connection refused|transport is closing' <<<"$msg" || return 1
    sleep 0.2
  done
  return 1
}

rolling_teardown() {
  local status=$?
  set +e
  if ((status != 0 && ROLLING_FINISHED == 0)); then h_fail "suite aborted (exit $status; see FATAL above)"; fi
  containerd_stop
  [[ -z "$SYSD" ]] || "$SYSD/systemctl" stop guest-pull-snapshotter.service
  e2e_stop_all
  h_finish
}

main() {
  e2e_init rolling
  h_on_exit rolling_teardown
  WORK="$E2E_DIR/node"
  HOST="$WORK/host"
  SYSD="$WORK/sysd"
  STOP_FILE="$WORK/stop-clients"
  mkdir -p "$HOST/etc/containerd" "$HOST/usr/local/bin" "$HOST/usr/local/lib" \
    "$HOST/etc/systemd/system" "$HOST/usr/lib64"
  ln -s usr/lib "$HOST/lib"
  ln -s /usr/lib64 "$HOST/lib64"
  echo "stand-in ELF interpreter" >"$HOST/usr/lib64/ld-linux-x86-64.so.2"
  fake_libc "$HOST/usr/lib/x86_64-linux-gnu/libc.so.6" 2.36
  cp "$E2E_REPO/tests/deploy/fixtures/containerd-v2.toml" "$HOST/etc/containerd/config.toml"
  make_node_systemctl
  registry_start
  daemon_binary
  daemon_write_config
  payload A 1
  payload B 2

  local ds="$E2E_REPO/deploy/k8s/daemonset.yaml"
  h_check "manifest: RollingUpdate with maxSurge 1, maxUnavailable 0" \
    python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))["spec"]["updateStrategy"]
r = d["rollingUpdate"]
sys.exit(not (d["type"] == "RollingUpdate" and r["maxSurge"] == 1 and r["maxUnavailable"] == 0))' "$ds"
  h_check "manifest: the pod knows its UID (POD_UID) and its preStop runs uninstall.sh" \
    grep -q 'fieldPath: metadata.uid' "$ds"
  # Ready only once the installer is done: the old daemon is active before.
  h_check "manifest: readiness needs install.sh's marker, then the service" \
    python3 -c 'import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]
probe = " ".join(c["readinessProbe"]["exec"]["command"])
marker = re.search(r"READY_MARKER:-([^}]+)\}", open(sys.argv[2]).read()).group(1)
sys.exit(not (f"test -f {marker} &&" in probe and "is-active" in probe))' "$ds" "$E2E_REPO/deploy/k8s/scripts/install.sh"

  # 1. Pod A installs release 1.
  h_check "pod A: install.sh installs release 1 and starts the service" node_script A install.sh
  h_check "pod A: readiness (systemctl is-active)" "$SYSD/systemctl" is-active --quiet guest-pull-snapshotter.service
  containerd_start
  containerd_wait_snapshotter || e2e_die "containerd cannot reach the daemon: $E2E_OUT"

  # 2. An image, a long-lived container and two clients.
  image_build_busybox "$IMAGE" v1 3
  local nonce="$IMAGE_NONCE" ref
  image_push "$IMAGE" v1
  ref="$(image_ref "$IMAGE" v1)"
  h_check "ctr image pull through guest-pull" ctr_pull "$ref"
  h_check "a long-lived container starts before the update" \
    ctr_cmd run -d --runc-root "$CONTAINERD_DIR/runc" --snapshotter "$GP_SNAPSHOTTER" "$ref" rolling-long sleep 600
  local pids=() c t0
  for ((c = 0; c < CLIENTS; c++)); do client "$c" & pids+=($!); done
  sleep 1

  # 3. Pod B installs release 2 while release 1 serves.
  : >"$SYSD/calls"
  local old_pid new_pid
  old_pid="$(cat "$SYSD/pid")"
  t0=$SECONDS
  h_check "pod B: install.sh installs release 2 while release 1 serves" node_script B install.sh
  h_figure "pod B install (s)" "$((SECONDS - t0))"
  new_pid="$(cat "$SYSD/pid")"
  if [[ "$new_pid" != "$old_pid" ]] && cmp -s "/proc/$new_pid/exe" "$WORK/payload-B/bin/containerd-guest-pull-grpc"; then
    h_pass "pod B: the service was restarted and runs release 2"
  else
    h_fail "pod B: the daemon is not release 2 (pid $old_pid -> $new_pid)" "$(cat "$SYSD/calls")"
  fi
  if grep -q 'restart containerd' "$SYSD/calls"; then
    h_fail "pod B: containerd was restarted by an update that did not change its config" "$(cat "$SYSD/calls")"
  else
    h_pass "pod B: containerd was not restarted"
  fi
  h_check "pod B: readiness (systemctl is-active)" "$SYSD/systemctl" is-active --quiet guest-pull-snapshotter.service

  # 4. Pod A's preStop.
  h_check "pod A's preStop: uninstall.sh exits 0" node_script A uninstall.sh
  if grep -q "pod B installed the snapshotter after this pod A" "$WORK/A-uninstall.sh.log" &&
      [[ -x "$HOST/usr/local/bin/containerd-guest-pull-grpc" ]] &&
      "$SYSD/systemctl" is-active --quiet guest-pull-snapshotter.service; then
    h_pass "pod A's preStop leaves pod B's installation installed and serving"
  else
    h_fail "pod A's preStop removed or stopped the new installation" "$(cat "$WORK/A-uninstall.sh.log")"
  fi

  : >"$STOP_FILE"
  for c in "${pids[@]}"; do wait "$c" || true; done
  local acked removed retries errors missing=""
  acked="$(cat "$WORK"/client-* | awk '$1 == "ok" { print $2 }' | sort)"
  removed="$(cat "$WORK"/client-* | awk '$1 == "removed" { print $2 }' | sort)"
  retries="$(cat "$WORK"/client-* | grep -c '^retry' || true)"
  errors="$(cat "$WORK"/client-* | grep '^error' || true)"
  h_figure "client commits acknowledged" "$(grep -c . <<<"$acked")"
  h_figure "Unavailable answers retried" "$retries"
  assert_eq "no RPC failed except a retried Unavailable" "" "$errors"
  local name
  while read -r name; do
    [[ -n "$name" ]] || continue
    grep -qx "$name" <<<"$removed" && continue
    snapshot_there "$name" || missing+="$name "
  done <<<"$acked"
  assert_eq "every acknowledged Commit (not removed since) is there after the update" "" "$missing"
  h_check "the long-lived container still runs" \
    bash -c "ctr -a '$CONTAINERD_SOCK' task ls | grep -E '^rolling-long +[0-9]+ +RUNNING'"
  local out
  out="$(ctr_cmd task exec --exec-id probe rolling-long cat /data/layer3 2>&1 || true)"
  assert_contains "the long-lived container reads its rootfs after the update" "$out" "layer3 $IMAGE:v1 $nonce"
  out="$(ctr_run "$ref" "rolling-new-$RANDOM" cat /etc/layer1 2>&1 || true)"
  assert_contains "a new container starts after the update" "$out" "layer1 $IMAGE:v1 $nonce"
  ctr_cmd task kill -s SIGKILL rolling-long >/dev/null 2>&1 || true
  ctr_cmd task delete -f rolling-long >/dev/null 2>&1 || true
  ctr_cmd container delete rolling-long >/dev/null 2>&1 || true

  # Pod B deleted with no successor (kubectl delete): uninstall.
  h_check "pod B's preStop (no successor): uninstall.sh exits 0" node_script B uninstall.sh
  if [[ ! -e "$HOST/usr/local/bin/containerd-guest-pull-grpc" ]] &&
      ! "$SYSD/systemctl" is-active --quiet guest-pull-snapshotter.service; then
    h_pass "pod B's preStop uninstalls (binary removed, service stopped)"
  else
    h_fail "pod B's preStop left the snapshotter installed" "$(cat "$WORK/B-uninstall.sh.log")"
  fi
  ROLLING_FINISHED=1
}

main "$@"
