#!/usr/bin/env bash
# CRI pull benchmark: host time of `crictl pull` of a 40-layer image on a
# private containerd 2.4.2 (built from its Go module) configured as deploy/
# installs it, with a loopback registry:
#   guest pull  the kata handler's pull (--pod-config with the annotation
#               io.containerd.cri.runtime-handler): our daemon is the
#               runtime-specific snapshotter, the layers are never fetched
#               on the host (checked in the registry log)
#   nydus       the guest-pull peer: nydus-snapshotter v0.16.1 in proxy mode
#               (built from its module, cached) as the snapshotter of a
#               second handler, kata-nydus; it answers the CRI-labelled
#               layers as ours does (checked: no layer GET). A skip with the
#               reason if it cannot be built
#   floor       the measuring floor: tests/bench/peers/floorserver (snapshots
#               in a Go map, nothing on disk) as the snapshotter of a third
#               handler, kata-floor, answering the layers as a guest-pull
#               snapshotter does: what containerd's own part of a guest
#               pull costs, with a snapshotter that does no disk work
#   overlayfs   the same image pulled for the default runtime: containerd
#               downloads and unpacks every layer (checked: 40 blob GETs)
# All pull the same layers (tags of one image), interleaved, the image
# removed (crictl rmi) after every pull and the filesystem synced (untimed)
# before every pull. Layers are uncompressed tars of
# random data (tests/bench/make_layers_image.py): overlayfs's best case, no
# decompression. Two layer sizes show the flatness of guest pull:
#   default mode: 1 MiB and 16 MiB layers, 5 rounds (~1.5 min here, + the
#                 nydus build on a machine's first run)
#   long mode:    1 MiB and 100 MiB layers (4 GiB image), 5 rounds
# Prints a table (median ms, ratios ours/overlayfs, ours/nydus and
# floor/overlayfs, big/small) and harness
# figures; no thresholds (a pass is a completed, checked measurement).
# Environment: CRI_BENCH_SIZES ("1 16"), CRI_BENCH_ROUNDS (5: with 3 the
# median moved by a round's 20-50 ms spread, enough to swing flatness),
# GUEST_PULL_DAEMON, GP_PEERS_CACHE.
set -euo pipefail

# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=../harness/harness.sh
source "$E2E_REPO/tests/harness/harness.sh"
# shellcheck source=../tools/go_peers.sh
source "$E2E_REPO/tests/tools/go_peers.sh"
# shellcheck source=../e2e/deploy_lib.sh
source "$E2E_REPO/tests/e2e/deploy_lib.sh"

readonly LAYERS=40
if h_long; then default_sizes="1 100"; else default_sizes="1 16"; fi
read -r -a SIZES <<<"${CRI_BENCH_SIZES:-$default_sizes}"
ROUNDS="${CRI_BENCH_ROUNDS:-5}"
declare -A times=()  # [kind,size] = space-separated ms
declare -A fetch_failed=()  # [size] = 1 when a pull's layer GETs were wrong
rows=()
KINDS=(gp ovl)  # ny and fl join when nydus-snapshotter and the floor run
# The guest-pull peers, by kind: the handler whose pulls they serve, their
# server's pid.
declare -A PEER_HANDLER=([ny]=kata-nydus [fl]=kata-floor) PEER_PID=()

bench_teardown() {
  local status=$? k
  set +e
  for k in "${!PEER_PID[@]}"; do peer_stop "$k"; done  # before their directory goes
  dep_stop_all "$status"
  h_finish
}

# tools: what `make -C deploy install` (dep_containerd_config) installs,
# plus crictl.
tools() {
  local t
  (cd "$E2E_REPO" && timeout 1800 bazel build //kata_volume/tools:guest-pull-verity \
    //mount_helper:guest-pull-overlayfs) >&2 || return 1
  for t in kata_volume/tools/guest-pull-verity mount_helper/guest-pull-overlayfs; do
    cp "$E2E_REPO/bazel-bin/$t" "$E2E_BIN/" || return 1
  done
  VERITY_TOOL="$E2E_BIN/guest-pull-verity"
  CRICTL="$(go_peer_bin crictl)/crictl" || return 1
  daemon_binary
}

# image SIZE: builds img<SIZE> (LAYERS layers of SIZE MiB), pushes it as
# one tag per kind (gp, ovl, ny), puts its verity hashes in the layer cache.
image() {
  local name="img$1"
  python3 "$E2E_REPO/tests/bench/make_layers_image.py" "$IMAGES_DIR/$name" gp "$LAYERS" "$1" \
    || return 1
  local tag
  for tag in "${KINDS[@]}"; do  # --preserve-digests: skopeo would gzip the tars
    timeout "$E2E_CMD_TIMEOUT" skopeo copy --quiet --preserve-digests --dest-tls-verify=false \
      "oci:$IMAGES_DIR/$name:gp" "docker://$REGISTRY_ADDR/$name:$tag" >&2 || return 1
  done
  dep_cache_add "$name"
}

# peer_start KIND SOCK CMD...: runs CMD (the peer's server, on SOCK, its
# files under $E2E_DIR) in the background; waits (bounded) until SOCK
# accepts a connection.
peer_start() {
  local kind="$1" sock="$2" i
  shift 2
  "$@" >"$E2E_DIR/logs/$kind.log" 2>&1 &
  PEER_PID[$kind]=$!
  for ((i = 0; i < 200; i++)); do
    e2e_unix_listening "$sock" && return 0
    kill -0 "${PEER_PID[$kind]}" 2>/dev/null || break
    sleep 0.05
  done
  echo "$(kind_name "$kind") did not listen on $sock (log: $(tail -n 5 "$E2E_DIR/logs/$kind.log"))" >&2
  return 1
}

peer_stop() {
  local pid="${PEER_PID[$1]:-}"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PEER_PID[$1]"
}

# peer_handler KIND SOCK: a containerd 2.x drop-in (merged key by key) that
# makes the server on SOCK the snapshotter of KIND's handler's pulls, as
# deploy/ does for ours with the kata handler.
peer_handler() {
  local kind="$1" sock="$2" handler="${PEER_HANDLER[$1]}"
  cat >"$CONTAINERD_DIR/conf.d/$handler-bench.toml" <<TOML
version = 3
[proxy_plugins.$handler]
  type = "snapshot"
  address = "$sock"
[plugins."io.containerd.cri.v1.images".runtime_platforms.$handler]
  snapshotter = "$handler"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.$handler]
  runtime_type = "io.containerd.$handler.v2"
  snapshotter = "$handler"
TOML
}

now_ms() { echo "${EPOCHREALTIME/./}" | sed 's/...$//'; }

# pull KIND SIZE ROUND: one timed crictl pull, checked in the registry log,
# then removed.
pull() {
  local kind="$1" size="$2" ref mark t0 t1 gets args=()
  ref="$(image_ref "img$size" "$kind")"
  [[ "$kind" == gp ]] && args=(--pod-config "$(dep_pod "pull-$size-$3" kata)")
  [[ -n "${PEER_HANDLER[$kind]:-}" ]] && args=(--pod-config "$(DEP_POD_ANNOTATIONS="{\"io.containerd.cri.runtime-handler\": \"${PEER_HANDLER[$kind]}\"}" \
    dep_pod "pull-$kind-$size-$3" runc)")
  # Every pull starts on a clean filesystem: the previous overlayfs pull's
  # unpacked layers are not left dirty for the next pull's syncs (that
  # effect is peers_bench's noisy-neighbour figure).
  sync
  mark="$(registry_log_mark)"
  t0="$(now_ms)"
  if ! E2E_OUT="$(crictl pull "${args[@]}" "$ref" 2>&1)"; then
    h_fail "$(kind_name "$kind") pull ${size}MiB round $3" "$E2E_OUT"
    return 0
  fi
  t1="$(now_ms)"
  gets="$(host_layer_gets "$mark" "${DIGESTS[@]}")"
  if [[ "$kind" != ovl && "$gets" != 0 ]]; then
    h_fail "$(kind_name "$kind") ${size}MiB round $3: no layer fetched on the host" "$gets layer GETs"
    fetch_failed[$size]=1
  elif [[ "$kind" == ovl && "$gets" -lt "$LAYERS" ]]; then
    fetch_failed[$size]=1
    h_fail "overlayfs pull ${size}MiB round $3 fetched every layer" "$gets of $LAYERS layer GETs (${#DIGESTS[@]} digests, registry log from line $mark)"
  else
    times[$kind,$size]+="$((t1 - t0)) "
  fi
  crictl rmi "$ref" >/dev/null 2>&1 || h_fail "crictl rmi $ref" ""
}

median() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
kind_name() { case "$1" in gp) echo "guest pull" ;; ny) echo "nydus proxy" ;; fl) echo "floor" ;; *) echo overlayfs ;; esac; }

# has KIND: true if KIND's pulls ran (its peer started).
has() { [[ " ${KINDS[*]} " == *" $1 "* ]]; }

report() {
  local size k small="${SIZES[0]}" detail figure
  declare -A med=() first=()
  for size in "${SIZES[@]}"; do
    for k in "${KINDS[@]}"; do med[$k]="$(median "${times[$k,$size]:-}")"; done
    if [[ -z "${med[gp]}" || -z "${med[ovl]}" ]]; then
      rows+=("$(printf '%-26s %s' "${LAYERS} x ${size} MiB" "no figure (a pull failed, see above)")")
      continue
    fi
    if [[ "$size" == "$small" ]]; then for k in "${KINDS[@]}"; do first[$k]="${med[$k]}"; done; fi
    [[ -n "${fetch_failed[$size]:-}" ]] ||
      h_pass "CRI pull ${LAYERS} x ${size} MiB: the guest pulls fetched no layer on the host, overlayfs all ${LAYERS} (registry log, every round)"
    rows+=("$(printf '%-26s %10s %12s %8s %10s %9s %10s %10s' "${LAYERS} layers x ${size} MiB" "${med[gp]}" \
      "${med[ny]:--}" "${med[fl]:--}" "${med[ovl]}" "$(ratio "${med[gp]}" "${med[ovl]}")" \
      "$(ratio "${med[gp]}" "${med[ny]:-0}")" "$(ratio "${med[fl]:-0}" "${med[ovl]}")")")
    h_pass "CRI pull ${LAYERS} x ${size} MiB: ${KINDS[*]} measured ($ROUNDS rounds)"
    figure="guest pull ${med[gp]} ms, overlayfs ${med[ovl]} ms, ratio $(ratio "${med[gp]}" "${med[ovl]}")"
    detail="rounds: guest ${times[gp,$size]% }, overlayfs ${times[ovl,$size]% }"
    if has ny; then
      figure+=", nydus proxy ${med[ny]:--} ms, ours / nydus $(ratio "${med[gp]}" "${med[ny]:-0}")"
      detail+=", nydus ${times[ny,$size]:-none}"
    fi
    if has fl; then
      figure+=", floor ${med[fl]:--} ms, floor / overlayfs $(ratio "${med[fl]:-0}" "${med[ovl]}")"
      detail+=", floor ${times[fl,$size]:-none}"
    fi
    h_figure "CRI pull host time ${LAYERS} x ${size} MiB" "$figure (median of $ROUNDS; ${detail% })"
  done
  echo "CRI pull host time, containerd 2.4.2, ${LAYERS}-layer image, median of $ROUNDS [ms]"
  printf '%-26s %10s %12s %8s %10s %9s %10s %10s\n' "image" "guest pull" "nydus proxy" "floor" "overlayfs" \
    "ours/ovl" "ours/nydus" "floor/ovl"
  printf '%s\n' "${rows[@]}"
  has ny || echo "nydus proxy: skipped (see the SKIP line above)"
  has fl || echo "floor: skipped (see the SKIP line above)"
  if [[ -n "${first[gp]:-}" ]]; then
    for size in "${SIZES[@]:1}"; do
      for k in "${KINDS[@]}"; do med[$k]="$(median "${times[$k,$size]:-}")"; done
      [[ -n "${med[gp]}" && -n "${med[ovl]}" ]] || continue
      detail="guest pull $(ratio "${med[gp]}" "${first[gp]}"), overlayfs $(ratio "${med[ovl]}" "${first[ovl]}")"
      has ny && detail+=", nydus proxy $(ratio "${med[ny]:-0}" "${first[ny]:-0}")"
      has fl && detail+=", floor $(ratio "${med[fl]:-0}" "${first[fl]:-0}")"
      echo "flatness $size MiB / $small MiB layers: $detail"
      h_figure "CRI pull flatness ${size}/${small} MiB layers" "$detail"
    done
  fi
}

# nydus_peer: nydus-snapshotter built, running and registered for its
# handler; else a skip with the reason (the others still run).
nydus_peer() {
  local bin version sock="$E2E_DIR/nydus.sock"
  version="$(go_peer_version nydus-snapshotter)"
  if ! bin="$(go_peer_bin nydus-snapshotter)"; then
    h_skip "nydus proxy rows" "go build of nydus-snapshotter v$version failed (log above)"
    return 0
  fi
  go_peer_nydus_proxy_toml "$E2E_DIR" >"$E2E_DIR/nydus.toml"
  if ! peer_start ny "$sock" "$bin/containerd-nydus-grpc" --config "$E2E_DIR/nydus.toml"; then
    h_skip "nydus proxy rows" "nydus-snapshotter v$version did not start (log above)"
    peer_stop ny
    return 0
  fi
  echo "SETUP: nydus-snapshotter v$version in proxy mode"
  peer_handler ny "$sock"
  KINDS+=(ny)
}

# floor_peer: tests/bench/peers/floorserver built (its module, as
# peers_bench builds it), running and registered for its handler; else a
# skip with the reason.
floor_peer() {
  local sock="$E2E_DIR/floor.sock"
  if ! (cd "$E2E_REPO/tests/bench/peers" && GOFLAGS=-mod=readonly go build -o "$E2E_BIN/" ./floorserver) >&2; then
    h_skip "floor rows" "go build of tests/bench/peers/floorserver failed (log above)"
    return 0
  fi
  if ! peer_start fl "$sock" "$E2E_BIN/floorserver" --address="$sock" --root="$E2E_DIR/floor"; then
    h_skip "floor rows" "floorserver did not start (log above)"
    peer_stop fl
    return 0
  fi
  echo "SETUP: floorserver (snapshots in memory, nothing on disk)"
  peer_handler fl "$sock"
  KINDS+=(fl)
}

main() {
  e2e_init cribench
  h_on_exit bench_teardown
  GP_CONFIG="$E2E_DIR/gp-config.toml"
  DEP_LAYER_CACHE="$E2E_DIR/layers-cache.json"
  echo "SETUP: daemon, verity tool, crictl, containerd 2.4.2, nydus-snapshotter, floorserver"
  h_setup_here "build daemon, mount helper, verity tool, crictl" tools
  local bin size r k order
  h_setup "build containerd 2.4.2 from its module" go_peer_bin containerd-2.4
  bin="$(go_peer_bin containerd-2.4)"
  registry_start
  PAUSE_REF="$(image_ref pause latest)"  # never pulled: no pod runs
  containerd_use_version "$bin"
  dep_use_version 2.4
  h_setup_here "containerd config from deploy/" dep_containerd_config 3
  h_setup_here "daemon config from the installed one" dep_daemon_config
  start_daemon
  nydus_peer
  floor_peer
  containerd_start
  for size in "${SIZES[@]}"; do
    h_setup_here "build and push the ${LAYERS} x ${size} MiB image, verity hashes" image "$size"
    mapfile -t DIGESTS < <(image_layer_digests "img$size" gp)
    for ((r = 1; r <= ROUNDS; r++)); do
      # Interleaved: the order rotates per round (two kinds: alternates);
      # with more it runs backwards in even rounds, so no kind always
      # follows the same other one.
      order=("${KINDS[@]:r % ${#KINDS[@]}}" "${KINDS[@]:0:r % ${#KINDS[@]}}")
      if ((${#order[@]} > 2 && r % 2 == 0)); then
        for ((k = ${#order[@]} - 1; k >= 0; k--)); do pull "${order[k]}" "$size" "$r"; done
      else
        for k in "${order[@]}"; do pull "$k" "$size" "$r"; done
      fi
    done
    rm -rf "${IMAGES_DIR:?}/img$size"
  done
  report
}

main "$@"
