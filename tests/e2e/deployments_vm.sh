#!/usr/bin/env bash
# deployments_vm.sh: the real deployments of deployments.sh with the
# kata-shaped shim in VM mode (GUEST_PULL_SHIM_GUEST=vm, issue 10): a crictl
# pod of RuntimeClass kata-qemu-coco-dev, on a private containerd with the
# configs deploy/ installs and our daemon as its runtime-specific snapshotter,
# runs its container in a real Linux guest (QEMU TCG, no network device)
# whose kernel verifies every layer with dm-verity against the root hashes
# of the snapshotter's volume (tests/vm/README.md). The shim runs
# `guestvm run` as the container's process: the guest process's output is
# the container's CRI log, its exit code the container's.
#
# Matrix: containerd 2.4.2 (default); 1.7.35, 2.3.7 and 2.2.9 too in the long mode.
# Scenarios (issue 11 numbering, in VM mode), each per version:
#   1 kata pod from a fresh 3-layer image prints a file of the image, its
#     kernel release (the guest's, not the host's) and cmdline, from inside
#     the VM; each layer read through dm-verity (the agent's log); no layer
#     blob GET by containerd (the guest's courier fetched each layer once);
#     the snapshots are guest-pull's only; exec is refused; crictl stop of a
#     running one stops its QEMU
#   4 runAsUser by name: the guest runs the process as uid 1000, in the
#     pod's supplementalGroups
#   7 bad input: verity required with a missing hash (refused at create); an
#     excluded image runs through the host path (no VM); a blob altered in
#     the registry is refused by the guest's digest check (exit 125, the log
#     names the layer)
#   Z an image whose layers are zstd-compressed (tar+zstd, recompressed by
#     skopeo): its layer cache entries equal the gzip original's (the same
#     tars), and the guest fetches, decompresses and verifies every layer
#   T tamper cases refused by the guest KERNEL (dm-verity), each in crictl's
#     output: a blob altered in the registry after the layer cache was
#     written, with the guest's digest checks switched off by a test-only pod
#     annotation; a volume whose root hash the host altered (the layer cache
#     entry the daemon reads)
#   K every guest-pull rootfs the shim took had passed patched kata's
#     CheckGuestPullRootFS (deploy_lib.sh dep_kata_checked)
# Figures (default version): VM start to container output, 1 and 10 layers.
# Prints a table scenario x version and "N passed, M failed, K skipped".
#
# Environment: DEP_VERSIONS (e.g. "2.4"), GUEST_VM_CACHE (kernel/initramfs
# cache, default /var/cache/guest-pull-vm), E2E_KEEP=1.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../harness/harness.sh
source "$E2E_REPO/tests/harness/harness.sh"
# shellcheck source=../tools/go_peers.sh
source "$E2E_REPO/tests/tools/go_peers.sh"
# shellcheck source-path=SCRIPTDIR source=standin_lib.sh
source "$E2E_LIB_DIR/standin_lib.sh"
# shellcheck source-path=SCRIPTDIR source=suite_lib.sh
source "$E2E_LIB_DIR/suite_lib.sh"
# shellcheck source-path=SCRIPTDIR source=deploy_lib.sh
source "$E2E_LIB_DIR/deploy_lib.sh"

declare -A RESULT=()
if h_long; then DEFAULT_VERSIONS="2.4 1.7 2.3 2.2"; else DEFAULT_VERSIONS="2.4"; fi
read -r -a VERSIONS <<<"${DEP_VERSIONS:-$DEFAULT_VERSIONS}"
SCENARIOS=(1 4 7 Z T K)
VM_CACHE="${GUEST_VM_CACHE:-/var/cache/guest-pull-vm}"
SKIP_ANNOTATION="io.katacontainers.guest-pull.test.skip-blob-checks"
GUEST_RELEASE=""

# ------------------------------------------------------------ bookkeeping

DEP_CASE_TAG=vm

print_table() {
  dep_print_table "Scenario x containerd version, kata shim in VM mode (Z: zstd layers; T: tamper cases refused by the guest kernel; K: every guest-pull rootfs passed patched kata's CheckGuestPullRootFS):"
}

# ------------------------------------------------------------------ setup

# vm_tools: the guest agent, its kernel + initramfs and the static runner.
vm_tools() {
  (cd "$E2E_REPO" && timeout 1800 bazel build //guest_agent:guest-agent) >&2 || return 1
  bash "$E2E_REPO/tests/vm/build_initramfs.sh" --cache "$VM_CACHE" >"$E2E_DIR/guest.paths" || return 1
  (cd "$E2E_REPO/tests/tools/guestvm" && CGO_ENABLED=0 GOFLAGS=-mod=mod timeout 600 go build -trimpath \
    -buildvcs=false -o "$E2E_BIN/guestvm" .) >&2
}

# vm_shim_env V: what the test sets in containerd's environment (the shim
# inherits it): VM mode, the runner, kernel and initrd.
vm_shim_env() {
  export GUEST_PULL_SHIM_GUEST=vm
  export GUEST_PULL_SHIM_VM_RUNNER="$E2E_BIN/guestvm"
  export GUEST_PULL_SHIM_VM_KERNEL GUEST_PULL_SHIM_VM_INITRD
  GUEST_PULL_SHIM_VM_KERNEL="$(sed -n 's/^kernel=//p' "$E2E_DIR/guest.paths")"
  GUEST_PULL_SHIM_VM_INITRD="$(sed -n 's/^initrd=//p' "$E2E_DIR/guest.paths")"
  export GUEST_PULL_SHIM_VM_TIMEOUT=300s
  export GUEST_PULL_SHIM_VM_DIR="$E2E_DIR/vm-$1"
  export GUEST_PULL_SHIM_VM_TEST_HOOKS=1
  mkdir -p "$GUEST_PULL_SHIM_VM_DIR"
}

# vm_one_layer_image NAME: a 1-layer image (static busybox, /data/layer1),
# pushed, its layer in the cache (image_build_busybox makes 3 or more).
vm_one_layer_image() {
  local layout="$IMAGES_DIR/$1" bundle="$IMAGES_DIR/$1.bundle" r
  umoci init --layout "$layout" && umoci new --image "$layout:latest" &&
    umoci unpack --image "$layout:latest" "$bundle" >/dev/null || return 1
  r="$bundle/rootfs"
  mkdir -p "$r/bin" "$r/data" && cp "$(command -v busybox)" "$r/bin/busybox" && ln -s busybox "$r/bin/sh" &&
    echo "layer1 $1:latest" >"$r/data/layer1" || return 1
  umoci repack --refresh-bundle --image "$layout:latest" "$bundle" >/dev/null &&
    umoci config --image "$layout:latest" --config.cmd /bin/sh --config.env PATH=/bin >/dev/null || return 1
  rm -rf "$bundle"
  image_push "$1" latest && dep_cache_add "$1"
}

# ------------------------------------------------------------ observations

# vm_run NAME IMAGE USER CMD...: pulls IMAGE for the kata handler, runs the
# kata pod (dep_run), waits (bounded) for the container to exit. Sets
# CTR_ID, VM_EXIT (exit code), VM_LOG (crictl logs), VM_FILES (the shim's
# per-container directory); E2E_OUT has the failing step's output.
vm_run() {
  local name="$1" image="$2" deadline
  shift 2
  VM_EXIT=""; VM_LOG=""; VM_FILES=""
  E2E_OUT="$(crictl pull --pod-config "$(dep_pod "pull-$name" kata)" "$image" 2>&1)" || return 1
  dep_run kata "$name" "$image" "$@" || return 1
  VM_FILES="$GUEST_PULL_SHIM_VM_DIR/$CTR_ID"
  deadline=$((SECONDS + 300))
  until [[ "$(dep_state "$CTR_ID")" == CONTAINER_EXITED ]]; do
    ((SECONDS < deadline)) || { E2E_OUT="container $CTR_ID still $(dep_state "$CTR_ID") after 300s"; return 1; }
    sleep 0.5
  done
  VM_EXIT="$(crictl inspect "$CTR_ID" | jq -r '.status.exitCode')"
  VM_LOG="$(crictl logs "$CTR_ID" 2>&1)"
}

vm_detail() {
  echo "exit ${VM_EXIT:-?}; crictl logs:"
  echo "${VM_LOG:-$E2E_OUT}"
  [[ -z "$VM_FILES" ]] || tail -n 20 "$VM_FILES/agent.log" "$VM_FILES/console.log" 2>/dev/null
}

# verified_layers: how many layers the agent read through dm-verity.
verified_layers() { grep -c 'tar bytes read through dm-verity' "$VM_FILES/agent.log" 2>/dev/null || true; }

# vm_figure NAME: VM start (QEMU's) to the container's first output.
vm_figure() {
  local ms
  ms="$(jq -r '.timings.first_output_ms' "$VM_FILES/result.json" 2>/dev/null)"
  if [[ "$ms" =~ ^[1-9][0-9]*$ ]]; then
    h_figure "$1" "$(awk -v m="$ms" 'BEGIN { printf "%.1f", m / 1000 }')" s
  fi
}

# expect_refused NAME DIGEST TEXT: exit 125 and crictl logs carrying the
# guest's error that names the layer and says TEXT.
expect_refused() {
  local name="$1" digest="$2" text="$3"
  if [[ "$VM_EXIT" == 125 ]] && grep -qF "guestvm: guest: layer $digest: " <<<"$VM_LOG" &&
    grep -qF -- "$text" <<<"$VM_LOG"; then
    ok "$name: exit 125, crictl logs: $(grep -o -- "layer sha256:.\{12\}.*$text.\{0,50\}" <<<"$VM_LOG" | head -n 1 | cut -c1-220)"
  else
    ko "$name: expected exit 125 and \"layer $digest: … $text\" in crictl logs" "$(vm_detail)"
  fi
}

# replace_blob DIGEST: the registry's blob file gets other (valid tar.gz)
# content under the same digest.
replace_blob() {
  local file stage
  file="$(registry_blob_file "$1")"
  [[ -f "$file" ]] || return 1
  stage="$(mktemp -d "$E2E_DIR/evil.XXXXXX")"
  mkdir -p "$stage/etc" && echo evil >"$stage/etc/evil"
  tar --numeric-owner --owner=0 --group=0 -C "$stage" -czf "$file" etc
}

# alter_cached_hash DIFF_ID: the layer cache entry's verity hash gets its
# first hex digit changed (what a host tampering with the volume produces).
alter_cached_hash() {
  local tmp="$DEP_LAYER_CACHE.tmp"
  jq --arg d "$1" 'map(if .diff_id == $d then .verity_hash |= ((if startswith("0") then "1" else "0" end) + .[1:]) else . end)' \
    "$DEP_LAYER_CACHE" >"$tmp" && mv "$tmp" "$DEP_LAYER_CACHE" &&
    jq -e --arg d "$1" 'any(.[]; .diff_id == $d)' "$DEP_LAYER_CACHE" >/dev/null
}

# ---------------------------------------------------------------- scenarios

s1_vm_pod() {
  local img="fresh-$V" ref mark out n
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  mapfile -t DIGESTS < <(image_layer_digests "$img" latest)
  mapfile -t CHAINS < <(image_chain_ids "$img" latest)
  mark="$(registry_log_mark)"
  if ! vm_run "s1" "$ref" "" /bin/sh -c 'cat /data/layer3; echo "kernel=$(uname -r)"; cat /proc/cmdline'; then
    ko "s1 kata pod in VM mode runs" "$E2E_OUT"
    return 0
  fi
  ck "s1 image snapshots are guest-pull's" in_snapshotter "$GP_SNAPSHOTTER" "${CHAINS[@]}"
  ck "s1 and not overlayfs's" none_in_snapshotter overlayfs "${CHAINS[@]}"
  if [[ "$VM_EXIT" == 0 ]] && grep -qF "layer3 $img:latest $IMAGE_NONCE" <<<"$VM_LOG"; then
    ok "s1 crictl logs: the container printed /data/layer3 of its image, exit code 0"
  else ko "s1 the container prints /data/layer3, exit 0" "$(vm_detail)"; fi
  if grep -qx "kernel=$GUEST_RELEASE" <<<"$VM_LOG" && [[ "$GUEST_RELEASE" != "$(uname -r)" ]] &&
    grep -qF "console=ttyS0 panic=-1" <<<"$VM_LOG"; then
    ok "s1 it ran inside the guest VM (kernel $GUEST_RELEASE, host $(uname -r))"
  else ko "s1 it ran inside the guest VM (kernel=$GUEST_RELEASE)" "$(vm_detail)"; fi
  n="$(verified_layers)"
  h_check "[$V vm] s1 the guest read each of the ${#DIGESTS[@]} layers through dm-verity ($n)" test "$n" = "${#DIGESTS[@]}"
  ck "s1 shim: no host mount, guest pull" shim_says "$CTR_ID" "no host mount (guest pull)"
  ck "s1 shim: VM mode" shim_says "$CTR_ID" "VM mode:"
  out="$(host_layer_gets "$mark" "${DIGESTS[@]}")"
  h_check "[$V vm] s1 no layer blob GET by containerd (got $out)" test "$out" = 0
  out="$(DEP_CLIENT='guest-pull-guestvm' host_layer_gets "$mark" "${DIGESTS[@]}")"
  h_check "[$V vm] s1 the guest's courier fetched each layer ($out GETs)" test "$out" = "${#DIGESTS[@]}"
  if out="$(crictl exec "$CTR_ID" /bin/true 2>&1)"; then ko "s1 crictl exec is refused in VM mode" "$out"
  else ok "s1 crictl exec is refused in VM mode"; fi
}

# s1_vm_stop: a container whose guest process keeps running is stopped by
# crictl stop; its QEMU (the runner's child) is gone with it.
s1_vm_stop() {
  local ref pid qemu
  ref="$(image_ref "fresh-$V" latest)"
  if ! dep_run kata "s1-stop" "$ref" "" /bin/sh -c 'echo running-in-guest; exec sleep 600' ||
    ! dep_wait_log "$CTR_ID" running-in-guest; then
    ko "s1 a long-running guest process runs" "$E2E_OUT"
    return 0
  fi
  pid="$(crictl inspect "$CTR_ID" | jq -r '.info.pid')"
  qemu="$(pgrep -P "$pid" -f qemu-system || true)"
  ck "s1 crictl stop of a running VM container" crictl stop --timeout 5 "$CTR_ID"
  # QEMU dies with the pid namespace's init; the shim (subreaper) reaps it.
  local deadline=$((SECONDS + 30))
  while [[ -n "$qemu" ]] && kill -0 "$qemu" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if [[ -n "$qemu" && "$(dep_state "$CTR_ID")" == CONTAINER_EXITED ]] && ! kill -0 "$qemu" 2>/dev/null; then
    ok "s1 stopped: the container exited and its QEMU (pid $qemu) is gone"
  else ko "s1 stopped: container exited, QEMU gone (qemu pid '${qemu}', state $(dep_state "$CTR_ID"))"; fi
}

s4_vm_user() {
  local img="user-$V" ref
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  # The pod's supplementalGroups reach the guest through the spec's
  # additionalGids (the shim's request, the agent's setgroups).
  if DEP_CTR_SECURITY='{"supplemental_groups": [4321]}' \
    vm_run "s4" "$ref" guest /bin/sh -c 'echo "uid=$(id -u) user=$(id -un) groups=$(id -G)"'; then
    if [[ "$VM_EXIT" == 0 ]] && grep -qx "uid=1000 user=guest groups=1000\( [0-9]*\)* 4321\( [0-9]*\)*" <<<"$VM_LOG"; then
      ok "s4 runAsUsername guest, supplementalGroups [4321]: the guest runs the process as uid 1000 in group 4321 ($(grep -o 'groups=.*' <<<"$VM_LOG"))"
    else ko "s4 runAsUsername guest runs as uid 1000 in group 4321" "$(vm_detail)"; fi
  else ko "s4 kata pod with runAsUsername guest" "$E2E_OUT"; fi
}

s7_vm_bad_input() {
  local img ref out digest
  img="nohash-$V"
  DEP_NO_CACHE=1 dep_image "$img"
  ref="$(image_ref "$img" latest)"
  if vm_run "s7-nohash" "$ref" "" /bin/cat /data/layer3; then
    ko "s7 image without expected verity hashes is refused" "$(vm_detail)"
  else
    h_check "[$V vm] s7 no verity hash: crictl's error names the layers and the cause" \
      grep -qE "verity mode is required .*$(image_layer_digests "$img" latest | head -n1)" <<<"$E2E_OUT"
  fi
  img="excluded-$V"
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  if vm_run "s7-excluded" "$ref" "" /bin/cat /data/layer3 && grep -qF "layer3 $img:latest" <<<"$VM_LOG"; then
    ok "s7 excluded image runs"
    ck "s7 excluded image: shim took the host path (no VM)" shim_says "$CTR_ID" "host path"
  else ko "s7 excluded image runs (host path)" "$E2E_OUT $(vm_detail)"; fi
  img="tampered-$V"
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  digest="$(image_layer_digests "$img" latest | sed -n 2p)"
  ck "s7 pull of the image to tamper" crictl pull --pod-config "$(dep_pod "pull-$img" kata)" "$ref"
  h_setup "[$V vm] s7 alter layer 1's blob in the registry" replace_blob "$digest" || return 0
  if vm_run "s7-tampered" "$ref" "" /bin/cat /data/layer3; then
    expect_refused "s7 tampered blob refused by the guest's digest check" "$digest" "blob digest mismatch"
  else ko "s7 tampered blob: the kata pod's container is created and reports" "$E2E_OUT"; fi
}

# sz_vm_zstd: a 3-layer image recompressed with zstd runs in the guest.
sz_vm_zstd() {
  local src="zsrc-$V" img="zstd-$V" ref n want got
  h_setup_here "[$V vm] Z a busybox image recompressed with zstd, pushed, in the layer cache" \
    dep_image_zstd "$src" "$img" || return 0
  ck "Z the registry serves the manifest with tar+zstd layers" dep_registry_zstd "$img"
  want="$("$VERITY_TOOL" cache "$IMAGES_DIR/$src" | jq -c 'sort_by(.diff_id)')"
  got="$("$VERITY_TOOL" cache "$IMAGES_DIR/$img" | jq -c 'sort_by(.diff_id)')"
  h_check "[$V vm] Z its layer cache entries equal the gzip original's" test "$got" = "$want"
  ref="$(image_ref "$img" latest)"
  if vm_run "sz" "$ref" "" /bin/cat /data/layer3 && [[ "$VM_EXIT" == 0 ]] &&
    grep -qF "layer3 $src:latest $IMAGE_NONCE" <<<"$VM_LOG"; then
    ok "Z the zstd image's container printed /data/layer3 from the guest, exit 0"
  else ko "Z the zstd image's container runs in the guest" "$E2E_OUT $(vm_detail)"; fi
  n="$(verified_layers)"
  h_check "[$V vm] Z the guest read each of the 3 zstd layers through dm-verity ($n)" test "$n" = 3
}

tamper_kernel() {
  local img ref digest diff
  # A blob altered after the layer cache was written; the guest's digest
  # checks off (test-only pod annotation): dm-verity in the guest kernel.
  img="tkernel-$V"
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  digest="$(image_layer_digests "$img" latest | sed -n 2p)"
  ck "T pull of the image to tamper" crictl pull --pod-config "$(dep_pod "pull-$img" kata)" "$ref"
  h_setup "[$V vm] T alter layer 1's blob in the registry after the layer cache was written" \
    replace_blob "$digest" || return 0
  if DEP_POD_ANNOTATIONS="{\"$SKIP_ANNOTATION\": \"true\"}" vm_run "t-blob" "$ref" "" /bin/cat /data/layer3; then
    expect_refused "T altered blob refused by the guest kernel's dm-verity" "$digest" "is corrupted"
  else ko "T altered blob: the container is created and reports" "$E2E_OUT"; fi
  # The host alters the root hash the volume carries (the layer cache entry
  # the daemon reads): intact blobs, the guest kernel refuses layer 0.
  img="thash-$V"
  dep_image "$img"
  ref="$(image_ref "$img" latest)"
  digest="$(image_layer_digests "$img" latest | sed -n 1p)"
  diff="$(image_diff_ids "$img" latest | sed -n 1p)"
  h_setup "[$V vm] T alter layer 0's verity hash in the layer cache" alter_cached_hash "$diff" || return 0
  if vm_run "t-hash" "$ref" "" /bin/cat /data/layer3; then
    expect_refused "T volume with an altered root hash refused by the guest kernel's dm-verity" "$digest" "is corrupted"
  else ko "T altered root hash: the container is created and reports" "$E2E_OUT"; fi
}

# bench: VM start to container output, 1 and 10 layers.
bench() {
  local img="one-$V"
  vm_one_layer_image "$img" || { ko "bench: 1-layer image"; return 0; }
  if vm_run "b1" "$(image_ref "$img" latest)" "" /bin/sh -c 'cat /data/layer1' &&
    [[ "$VM_EXIT" == 0 ]] && grep -qF "layer1 $img:latest" <<<"$VM_LOG"; then
    ok "1-layer image prints its file from the VM"
    vm_figure "[$V vm] VM start to container output, 1 layer (TCG)"
  else ko "1-layer image prints its file from the VM" "$E2E_OUT $(vm_detail)"; fi
  img="ten-$V"
  dep_image "$img" 10
  if vm_run "b10" "$(image_ref "$img" latest)" "" /bin/sh -c 'cat /data/layer10' &&
    [[ "$VM_EXIT" == 0 ]] && grep -qF "layer10 $img:latest" <<<"$VM_LOG" && [[ "$(verified_layers)" == 10 ]]; then
    ok "10-layer image: 10 layers through dm-verity, prints its top layer's file"
    vm_figure "[$V vm] VM start to container output, 10 layers (TCG)"
  else ko "10-layer image prints its file from the VM" "$E2E_OUT $(vm_detail)"; fi
}

# ---------------------------------------------------------------- versions

run_version() {
  V="$1"
  local cv=3 s
  [[ "$V" == 1.* ]] && cv=2
  vm_shim_env "$V"
  dep_start_version "$V" "$cv" "$V vm" || return 0
  for s in 1 4 7 Z T K; do
    sc_begin
    case "$s" in
      1) s1_vm_pod; s1_vm_stop ;;
      4) s4_vm_user ;;
      7) s7_vm_bad_input ;;
      Z) sz_vm_zstd ;;
      T) tamper_kernel ;;
      K) dep_kata_checked ;;
    esac
    dep_rm_pods
    sc_end "$s" "$V"
  done
  [[ "$V" != "${VERSIONS[0]}" ]] || bench
  dep_rm_pods
  containerd_stop
  stop_daemon || true
}

main() {
  local t v
  for t in qemu-system-x86_64 cpio dpkg-deb umoci jq docker-registry; do
    command -v "$t" >/dev/null || { h_skip "deployments in VM mode" "missing $t (scripts/install-deps.sh)"; h_finish; }
  done
  e2e_init deployvm
  h_on_exit dep_teardown
  GP_CONFIG="$E2E_DIR/gp-config.toml"
  DEP_LAYER_CACHE="$E2E_DIR/layers-cache.json"
  t=$SECONDS
  echo "SETUP: build daemon, tools, kata-shaped shim, crictl, guest agent, guest kernel + initramfs, guestvm"
  if ! { dep_tools && vm_tools; } >"$E2E_DIR/logs/build.log" 2>&1; then
    h_fail "setup: builds" "$(tail -n 30 "$E2E_DIR/logs/build.log")"
    exit 1
  fi
  h_figure "tool builds" "$((SECONDS - t))" s
  GUEST_RELEASE="$(basename "$(sed -n 's/^kernel=//p' "$E2E_DIR/guest.paths")")"
  GUEST_RELEASE="${GUEST_RELEASE#vmlinuz-}"
  registry_start
  dep_pause_image || e2e_die "pause image"
  for v in "${VERSIONS[@]}"; do
    t=$SECONDS
    run_version "$v"
    h_figure "containerd $v scenarios in VM mode" "$((SECONDS - t))" s
  done
  h_long || h_skip "VM mode on containerd 1.7.35, 2.3.7 and 2.2.9" "long mode only (GUEST_PULL_TEST_MODE=long)"
}

main "$@"
