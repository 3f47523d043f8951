#!/usr/bin/env bash
# CRI pull benchmark: host time of `crictl pull` of a 40-layer image on a
# private containerd 2.4.2 (built from its Go module) configured as deploy/
# installs it, with a loopback registry:
#   guest pull  the kata handler's pull (--pod-config with the annotation
#               io.containerd.cri.runtime-handler): our daemon is the
#               runtime-specific snapshotter, the layers are never fetched
#               on the host (checked in the registry log)
#   overlayfs   the same image pulled for the default runtime: containerd
#               downloads and unpacks every layer (checked: 40 blob GETs)
# Both pull the same layers (two tags of one image), interleaved, the image
# removed (crictl rmi) after every pull and the filesystem synced (untimed)
# before every pull. Layers are uncompressed tars of
# random data (tests/bench/make_layers_image.py): overlayfs's best case, no
# decompression. Two layer sizes show the flatness of guest pull:
#   default mode: 1 MiB and 16 MiB layers, 3 rounds (~2 min here)
#   long mode:    1 MiB and 100 MiB layers (4 GiB image), 3 rounds
# Prints a table (median ms, ratio guest/overlayfs, big/small) and harness
# figures; no thresholds (a pass is a completed, checked measurement).
# Environment: CRI_BENCH_SIZES ("1 16"), CRI_BENCH_ROUNDS (3),
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
ROUNDS="${CRI_BENCH_ROUNDS:-3}"
declare -A times=()  # [kind,size] = space-separated ms
declare -A fetch_failed=()  # [size] = 1 when a pull's layer GETs were wrong
rows=()

bench_teardown() {
  local status=$?
  set +e
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
# tags gp and ovl, puts its verity hashes in the layer cache.
image() {
  local name="img$1"
  python3 "$E2E_REPO/tests/bench/make_layers_image.py" "$IMAGES_DIR/$name" gp "$LAYERS" "$1" \
    || return 1
  local tag
  for tag in gp ovl; do  # --preserve-digests: skopeo would gzip the tars
    timeout "$E2E_CMD_TIMEOUT" skopeo copy --quiet --preserve-digests --dest-tls-verify=false \
      "oci:$IMAGES_DIR/$name:gp" "docker://$REGISTRY_ADDR/$name:$tag" >&2 || return 1
  done
  dep_cache_add "$name"
}

now_ms() { echo "${EPOCHREALTIME/./}" | sed 's/...$//'; }

# pull KIND SIZE ROUND: one timed crictl pull, checked in the registry log,
# then removed.
pull() {
  local kind="$1" size="$2" ref mark t0 t1 gets args=()
  ref="$(image_ref "img$size" "$kind")"
  [[ "$kind" == gp ]] && args=(--pod-config "$(dep_pod "pull-$size-$3" kata)")
  # Every pull starts on a clean filesystem: the previous overlayfs pull's
  # unpacked layers are not left dirty for the next pull's syncs (that
  # effect is peers_bench's noisy-neighbour figure).
  sync
  mark="$(registry_log_mark)"
  t0="$(now_ms)"
  if ! E2E_OUT="$(crictl pull "${args[@]}" "$ref" 2>&1)"; then
    h_fail "pull $kind ${size}MiB round $3" "$E2E_OUT"
    return 0
  fi
  t1="$(now_ms)"
  gets="$(host_layer_gets "$mark" "${DIGESTS[@]}")"
  if [[ "$kind" == gp && "$gets" != 0 ]]; then
    h_fail "guest pull ${size}MiB round $3: no layer fetched on the host" "$gets layer GETs"
    fetch_failed[$size]=1
  elif [[ "$kind" == ovl && "$gets" -lt "$LAYERS" ]]; then
    fetch_failed[$size]=1
    h_fail "overlayfs pull ${size}MiB round $3 fetched every layer" "$gets of $LAYERS layer GETs (${#DIGESTS[@]} digests, registry log from line $mark)"
  else
    times[$kind,$size]+="$((t1 - t0)) "
  fi
  crictl rmi "$ref" >/dev/null 2>&1 || h_fail "crictl rmi $ref" ""
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

report() {
  local size gp ovl small="${SIZES[0]}" gp_small="" ovl_small=""
  for size in "${SIZES[@]}"; do
    gp="$(median "${times[gp,$size]:-}")"
    ovl="$(median "${times[ovl,$size]:-}")"
    if [[ -z "$gp" || -z "$ovl" ]]; then
      rows+=("$(printf '%-34s %s' "${LAYERS} x ${size} MiB" "no figure (a pull failed, see above)")")
      continue
    fi
    [[ "$size" == "$small" ]] && { gp_small="$gp"; ovl_small="$ovl"; }
    [[ -n "${fetch_failed[$size]:-}" ]] ||
      h_pass "CRI pull ${LAYERS} x ${size} MiB: guest pull fetched no layer on the host, overlayfs all ${LAYERS} (registry log, every round)"
    rows+=("$(printf '%-34s %10s %10s %12s' "${LAYERS} layers x ${size} MiB" "$gp" "$ovl" "$(ratio "$gp" "$ovl")")")
    h_pass "CRI pull ${LAYERS} x ${size} MiB: guest pull and overlayfs measured ($ROUNDS rounds)"
    h_figure "CRI pull host time ${LAYERS} x ${size} MiB" \
      "guest pull $gp ms, overlayfs $ovl ms, ratio $(ratio "$gp" "$ovl") (median of $ROUNDS; rounds: guest ${times[gp,$size]% }, overlayfs ${times[ovl,$size]% })"
  done
  echo "CRI pull host time, containerd 2.4.2, ${LAYERS}-layer image, median of $ROUNDS [ms]"
  printf '%-34s %10s %10s %12s\n' "image" "guest pull" "overlayfs" "guest/ovl"
  printf '%s\n' "${rows[@]}"
  if [[ -n "$gp_small" ]]; then
    for size in "${SIZES[@]:1}"; do
      gp="$(median "${times[gp,$size]:-}")"; ovl="$(median "${times[ovl,$size]:-}")"
      [[ -n "$gp" && -n "$ovl" ]] || continue
      printf 'flatness %s MiB / %s MiB layers: guest pull %s, overlayfs %s\n' "$size" "$small" \
        "$(ratio "$gp" "$gp_small")" "$(ratio "$ovl" "$ovl_small")"
      h_figure "CRI pull flatness ${size}/${small} MiB layers" \
        "guest pull $(ratio "$gp" "$gp_small"), overlayfs $(ratio "$ovl" "$ovl_small")"
    done
  fi
}

main() {
  e2e_init cribench
  trap bench_teardown EXIT
  GP_CONFIG="$E2E_DIR/gp-config.toml"
  DEP_LAYER_CACHE="$E2E_DIR/layers-cache.json"
  echo "SETUP: daemon, verity tool, crictl, containerd 2.4.2"
  h_setup_here "build daemon, mount helper, verity tool, crictl" tools
  local bin size r kind
  h_setup "build containerd 2.4.2 from its module" go_peer_bin containerd-2.4
  bin="$(go_peer_bin containerd-2.4)"
  registry_start
  PAUSE_REF="$(image_ref pause latest)"  # never pulled: no pod runs
  containerd_use_version "$bin"
  dep_use_version 2.4
  h_setup_here "containerd config from deploy/" dep_containerd_config 3
  h_setup_here "daemon config from the installed one" dep_daemon_config
  start_daemon
  containerd_start
  for size in "${SIZES[@]}"; do
    h_setup_here "build and push the ${LAYERS} x ${size} MiB image, verity hashes" image "$size"
    mapfile -t DIGESTS < <(image_layer_digests "img$size" gp)
    for ((r = 1; r <= ROUNDS; r++)); do
      # Interleaved, the order alternating per round.
      if ((r % 2)); then kind="gp ovl"; else kind="ovl gp"; fi
      for k in $kind; do pull "$k" "$size" "$r"; done
    done
    rm -rf "${IMAGES_DIR:?}/img$size"
  done
  report
}

main "$@"
