#!/usr/bin/env bash
# foundation.sh: real containerd 1.6 + our daemon as proxy snapshotter
# "guest-pull" + a loopback registry. A plain `ctr image pull` (no CRI
# labels) must unpack every layer through the daemon, runc must run the image
# from it, and after a SIGKILL and restart of the daemon (same root) the
# committed layers must still be listed and the image must still run.
# Removing the image must then remove the snapshots and free their space.
#
# Usage (as root): tests/e2e/foundation.sh
#   GUEST_PULL_REFERENCE=1  run against containerd's overlayfs reference
#   GUEST_PULL_DAEMON=PATH  use a prebuilt daemon binary
# Last line: "N passed, M failed, K skipped" (tests/harness/harness.sh);
# exit status non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly IMAGE=foundation
readonly TAG=v1
readonly LAYERS=3
# Printed in one write (its status is the last command's): under load, ctr
# run has been seen to pass on only a container's first write.
readonly SHOW_CMD='out=$(cat /etc/layer1 /data/layer2 /data/layer3; ls /data; id -un guest 2>&1); s=$?; echo "$out"; exit $s'

# assert_image_content DESC OUTPUT: every layer's marker is visible, the
# whiteout of layer 3 hides /data/remove-me, /etc/passwd from layer 2 works.
assert_image_content() {
  local desc="$1" out="$2" n
  for ((n = 1; n <= LAYERS; n++)); do
    assert_contains "$desc: layer $n content visible" "$out" "layer$n $IMAGE:$TAG $IMAGE_NONCE"
  done
  assert_not_contains "$desc: file deleted by layer 3 is hidden" "$out" "remove-me"
  assert_contains "$desc: /etc/passwd of layer 2 resolves user guest" "$out" $'\nguest'
}

# assert_layers_committed DESC: every chain ID of the image is a Committed
# snapshot of the guest-pull snapshotter.
assert_layers_committed() {
  local desc="$1" listing chain n=0
  check "$desc: ctr snapshots ls" ctr_cmd snapshots --snapshotter "$GP_SNAPSHOTTER" ls
  last_ok || return 0
  listing="$E2E_OUT"
  while read -r chain; do
    n=$((n + 1))
    if grep -qE "^${chain}[[:space:]].*Committed[[:space:]]*$" <<<"$listing"; then
      pass "$desc: layer $n ($chain) committed"
    else
      fail "$desc: layer $n ($chain) not listed as Committed" "$listing"
    fi
  done < <(image_chain_ids "$IMAGE" "$TAG")
  ((n > 0)) || fail "$desc: no chain ID read for $IMAGE:$TAG: nothing checked"
}

# run_and_check ID DESC: ctr run with runc through the snapshotter.
run_and_check() {
  local id="$1" desc="$2"
  check "$desc: ctr run $id" ctr_run "$(image_ref "$IMAGE" "$TAG")" "$id" sh -c "$SHOW_CMD"
  if last_ok; then assert_image_content "$desc" "$E2E_OUT"; fi
}

# root_kib: disk usage of the daemon's root in KiB, without the spare
# directories its background thread keeps ready (made and removed at its
# own pace).
root_kib() { du -sk --exclude='spare-*' "$GP_ROOT" | cut -f1; }

# snapshot_count: snapshots containerd lists for guest-pull (default ns).
snapshot_count() {
  ctr_cmd snapshots --snapshotter "$GP_SNAPSHOTTER" ls | tail -n +2 | grep -c . || true
}

# check_removal_frees_space REF: after `ctr image rm --sync`, containerd's
# GC removes every snapshot from the daemon, and the daemon deletes the
# layer data (at least 3/4 of what the pull added to its root is freed).
check_removal_frees_space() {
  local ref="$1" deadline count after
  check "ctr image rm --sync" ctr_cmd image rm --sync "$ref"
  deadline=$((SECONDS + 20))
  count="$(snapshot_count)"
  while ((count > 0 && SECONDS < deadline)); do
    sleep 0.2
    count="$(snapshot_count)"
  done
  assert_eq "no guest-pull snapshot left after image removal" 0 "$count"
  after="$(root_kib)"
  # Metadata may grow a little; the layer data (about 2 MiB) must be gone.
  if ((after <= ROOT_KIB_BEFORE + (ROOT_KIB_PULLED - ROOT_KIB_BEFORE) / 4)); then
    pass "daemon root back to ${after} KiB (was ${ROOT_KIB_BEFORE} KiB before the pull, ${ROOT_KIB_PULLED} KiB with the image)"
  else
    fail "daemon root still holds ${after} KiB after removal (${ROOT_KIB_BEFORE} KiB before the pull)" \
      "$(find "$GP_ROOT" -maxdepth 3 | head -n 40)"
  fi
}

# start_notify_listener: a stand-in for systemd's notification socket. It
# records each sd_notify message and, on READY=1, whether the daemon's
# socket already accepts connections (Type=notify promises that it does).
start_notify_listener() {
  NOTIFY_LOG="$E2E_DIR/notify.log"
  NOTIFY_SOCK="$E2E_DIR/notify.sock"
  python3 - "$NOTIFY_SOCK" "$GP_SOCK" "$NOTIFY_LOG" <<'PY' &
import socket, sys, time
notify, daemon, log = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(notify)
s.settimeout(120)
with open(log, "a", buffering=1) as out:
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        for line in msg.splitlines():
            out.write(line + "\n")
            if line == "READY=1":
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    c.connect(daemon)
                    out.write("daemon-accepting-at-ready\n")
                except OSError as e:
                    out.write("daemon-not-accepting-at-ready %s\n" % e)
                c.close()
            if line == "STOPPING=1":
                sys.exit(0)
PY
  NOTIFY_PID=$!
  e2e_wait_until 10 "the notify listener" test -S "$NOTIFY_SOCK"
}

# own_daemon: true unless GUEST_PULL_REFERENCE=1 runs containerd's overlayfs
# reference server in the daemon's place (it has no sd_notify or metrics).
own_daemon() { [[ "${GUEST_PULL_REFERENCE:-0}" != 1 ]]; }

# scrape_metrics: the daemon's Prometheus endpoint.
# shellcheck disable=SC2317  # invoked through check
scrape_metrics() { curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics"; }

# metric NAME_AND_LABELS: the value of one series in E2E_OUT.
metric() { awk -v k="$1" '$1 == k { print $2 }' <<<"$E2E_OUT"; }

main() {
  e2e_init foundation
  registry_start
  if own_daemon; then
    METRICS_PORT="$(e2e_free_port)"
    daemon_write_config
    printf '\n[metrics]\naddress = "127.0.0.1:%s"\n' "$METRICS_PORT" | daemon_config_append
    # Build first: the listener waits at most 120 s for the daemon.
    daemon_binary
    start_notify_listener
    export NOTIFY_SOCKET="$NOTIFY_SOCK"
    start_daemon
    unset NOTIFY_SOCKET
    if e2e_wait_until 10 "READY=1" grep -qx READY=1 "$NOTIFY_LOG"; then
      pass "daemon sent READY=1 to NOTIFY_SOCKET"
    else
      fail "daemon sent no READY=1" "$(cat "$NOTIFY_LOG" 2>&1)"
    fi
    assert_contains "the socket accepted connections when READY=1 arrived" \
      "$(cat "$NOTIFY_LOG")" "daemon-accepting-at-ready"
    e2e_stop_pid "notify listener" "$NOTIFY_PID" || true
  else
    h_skip "sd_notify: READY=1 once the socket accepts" \
      "GUEST_PULL_REFERENCE=1: the overlayfs reference server has no sd_notify"
    start_daemon
  fi
  containerd_start

  image_build_busybox "$IMAGE" "$TAG" "$LAYERS"
  image_push "$IMAGE" "$TAG"
  local ref digest n=0
  ref="$(image_ref "$IMAGE" "$TAG")"
  e2e_setup "the test image has $LAYERS layers" \
    test "$(image_layer_digests "$IMAGE" "$TAG" | wc -l)" -eq "$LAYERS" || finish

  ROOT_KIB_BEFORE="$(root_kib)"
  check "ctr image pull --snapshotter guest-pull" ctr_pull "$ref"
  last_ok || finish
  ROOT_KIB_PULLED="$(root_kib)"
  # Without CRI labels the host unpacks every layer itself.
  while read -r digest; do
    n=$((n + 1))
    local gets
    gets="$(registry_blob_gets "$digest")"
    if ((gets >= 1)); then pass "plain pull fetched layer $n blob ($gets GET)"
    else fail "plain pull never fetched layer $n blob $digest"; fi
  done < <(image_layer_digests "$IMAGE" "$TAG")
  check "ctr image check reports the image complete" ctr_cmd image check
  assert_contains "image check lists $ref as complete" "$E2E_OUT" "$ref"

  assert_layers_committed "before restart"
  run_and_check c1 "first run"

  if own_daemon; then check "scrape the daemon's /metrics" scrape_metrics; else
    h_skip "metrics: /metrics counts snapshots and RPCs" \
      "GUEST_PULL_REFERENCE=1: the overlayfs reference server has no metrics"
  fi
  if own_daemon && last_ok; then
    assert_eq "metrics: committed snapshots" "$LAYERS" "$(metric 'guest_pull_snapshots{kind="committed"}')"
    assert_eq "metrics: no guest-pulled snapshot" 0 "$(metric 'guest_pull_snapshots{kind="guest_pulled"}')"
    local prepares
    prepares="$(metric 'guest_pull_rpc_requests_total{rpc="Prepare"}')"
    if ((${prepares:-0} >= LAYERS)); then pass "metrics: $prepares Prepare RPCs counted"
    else fail "metrics: Prepare RPCs not counted" "$E2E_OUT"; fi
    assert_contains "metrics: Prepare latency histogram" "$E2E_OUT" \
      'guest_pull_rpc_duration_seconds_count{rpc="Prepare"}'
    assert_contains "metrics: build info" "$E2E_OUT" 'guest_pull_build_info{version="'
  fi

  kill9_daemon
  start_daemon
  pass "daemon restarted on the same root after SIGKILL"
  if containerd_wait_snapshotter; then
    pass "containerd reconnected to the restarted daemon"
  else
    fail "containerd did not reach the restarted daemon in ${E2E_START_TIMEOUT}s" "$E2E_OUT"
  fi
  assert_layers_committed "after SIGKILL restart"
  run_and_check c2 "run after restart"

  check_removal_frees_space "$ref"

  local status=0
  stop_daemon || status=$?
  assert_status "daemon exits 0 on SIGTERM" 0 "$status"
  finish
}

main "$@"
