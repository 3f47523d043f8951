#!/usr/bin/env bash
# functional.sh: guest pull end to end, with a guest stand-in instead of a VM.
#
# Real peers: a loopback registry, containerd 1.6 (CRI, global snapshotter
# "guest-pull", snapshot annotations on) and our daemon configured with a
# genpolicy layer cache made BEFORE the pull and verity mode "required".
# For every test image (tests/e2e/images.sh: multilayer, whiteout, links,
# deep, user, large) with OCI media types, and the small ones again with
# Docker v2s2 media types (separate variants, so no layer is shared), each
# under a fresh repository name, it CRI-pulls the image (cri-client) and
# asserts:
#   - the registry served no layer blob (manifest/config GETs only);
#   - `ctr images check` reports the image incomplete (layers not local);
#   - every layer chain ID is a Committed snapshot labelled
#     containerd.io/snapshot/guest-pull.remote=true;
#   - the daemon logged guest_pull_decision=skip for every new layer;
#   - the rootfs mounts through the real mount(8) -> mount.fuse3 ->
#     guest-pull-overlayfs chain and is empty, except /etc/passwd and
#     /etc/group (from the layer cache) for the user image;
#   - the io.katacontainers.volume option decodes, is valid for kata's Go and
#     Rust rules and describes the image (pinned source, manifest digest,
#     layer digests and diff_ids in order);
#   - its expected verity hashes equal what guest-pull-verity and
#     veritysetup compute from the layers fetched separately with skopeo;
#   - a View of the image carries the same volume;
#   - after a SIGKILL + restart of the daemon the stand-in still runs an
#     image; CRI RemoveImage makes containerd's GC remove its snapshots;
#   - tests/e2e/guest_standin.sh (kata runtime + agent stand-in) verifies,
#     assembles and runs the image, and it prints what the image must print.
# Negative cases: a layer missing from the cache makes the rootfs Prepare fail
# with FailedPrecondition naming that layer (once the operator adds it to the
# cache file, the daemon reloads it and the image runs); a layer blob
# replaced in the registry's storage after the cache was made, and a wrong
# expected hash in the cache, both make the stand-in refuse. The user image
# pulled before the cache had any of its layers, which are added afterwards:
# the rootfs still shows /etc/passwd and /etc/group, and containerd resolves
# the user by name, with no re-pull.
#
# Usage (as root): tests/e2e/functional.sh
#   E2E_SKIP_LARGE=1        skip the 300 MiB image
#   E2E_IMAGES_CACHE=DIR    image build cache (default
#                           /var/tmp/guest-pull-e2e-images; reused across runs)
#   GUEST_PULL_DAEMON=PATH  prebuilt daemon (else bazel-built); see lib.sh
#                           for E2E_KEEP, E2E_VERBOSE, E2E_LOG_LINES
# Last line: "N passed, M failed, K skipped" (tests/harness/harness.sh);
# exit status non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=images.sh
source "$(dirname "${BASH_SOURCE[0]}")/images.sh"
# shellcheck source-path=SCRIPTDIR source=standin_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/standin_lib.sh"

readonly STANDIN="$E2E_LIB_DIR/guest_standin.sh"
readonly REMOTE_LABEL="containerd.io/snapshot/guest-pull.remote"
IMAGES_CACHE="${E2E_IMAGES_CACHE:-/var/tmp/guest-pull-e2e-images}"
STANDIN_TIMEOUT="${E2E_STANDIN_TIMEOUT:-300}"

# Cases: "ID IMAGE VARIANT FORMAT" (VARIANT "-" = none).
CASES=(
  "multilayer-oci multilayer - oci"
  "whiteout-oci whiteout - oci"
  "links-oci links - oci"
  "deep-oci deep - oci"
  "user-oci user - oci"
  "large-oci large - oci"
  "multilayer-docker multilayer docker v2s2"
  "whiteout-docker whiteout docker v2s2"
  "links-docker links docker v2s2"
  "deep-docker deep docker v2s2"
  "user-docker user docker v2s2"
)
# Negative cases, each on its own variant of multilayer.
NEG_MISSING="missing-hash multilayer nocache oci"
NEG_BADHASH="wrong-hash multilayer badhash oci"
NEG_TAMPER="tampered-blob multilayer tamper oci"
# The user image with no layer in the cache until after its pull.
LATE_CACHE="user-late user latecache oci"

declare -A LAYOUT REF TIMING
LAYER_CACHE=""
RUN_ID="$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# ------------------------------------------------------------ preparation

# case_enabled ID: false for the large image under E2E_SKIP_LARGE=1.
case_enabled() { [[ "$1" != large-* || "${E2E_SKIP_LARGE:-0}" != 1 ]]; }

# skip_disabled_cases: one skip (with its reason) per case left out.
skip_disabled_cases() {
  local c
  for c in "${CASES[@]}"; do
    case_enabled "${c%% *}" ||
      h_skip "${c%% *}: every check of the case" "E2E_SKIP_LARGE=1 leaves out the 300 MiB image"
  done
}

all_cases() {
  local c
  for c in "${CASES[@]}"; do
    # shellcheck disable=SC2086
    set -- $c
    case_enabled "$1" && echo "$c"
  done
  printf '%s\n' "$NEG_MISSING" "$NEG_BADHASH" "$NEG_TAMPER" "$LATE_CACHE"
}

# build_and_push ID IMAGE VARIANT FORMAT: builds (or reuses) the layout and
# pushes it under a fresh repository name.
build_and_push() {
  local id="$1" image="$2" variant="$3" format="$4" t0=$SECONDS layout
  [[ "$variant" != - ]] || variant=""
  layout="$(images_build "$image" "$IMAGES_CACHE" "$variant")" || e2e_die "building $image ($variant) failed"
  LAYOUT[$id]="$layout"
  REF[$id]="$(images_push "$layout" "$REGISTRY_PORT" "fn$RUN_ID-$id" v1 "$format")" ||
    e2e_die "pushing $id failed"
  TIMING[$id.build]=$((SECONDS - t0))
}

# cache_entries LAYOUT: the layer cache entries of one image (JSON array).
cache_entries() { timeout "$E2E_CMD_TIMEOUT" "$VERITY_TOOL" cache "$1"; }

# make_layer_cache: one layers-cache.json for every case, written before any
# pull. missing-hash loses its top layer; wrong-hash gets another layer's
# (well-formed, wrong) hash for its middle layer; user-late has none.
make_layer_cache() {
  local line id image variant format entries t0=$SECONDS all="[]"
  LAYER_CACHE="$E2E_DIR/layers-cache.json"
  while read -r id image variant format; do
    entries="$(cache_entries "${LAYOUT[$id]}")" || e2e_die "guest-pull-verity cache failed for $id"
    case "$id" in
      missing-hash) entries="$(jq 'del(.[-1])' <<<"$entries")" ;;
      wrong-hash) entries="$(jq '.[1].verity_hash = .[0].verity_hash' <<<"$entries")" ;;
      user-late) entries="[]" ;;
    esac
    all="$(jq -c --argjson e "$entries" '. + $e | unique_by(.diff_id)' <<<"$all")"
  done < <(all_cases)
  printf '%s\n' "$all" >"$LAYER_CACHE"
  e2e_log "layer cache: $(jq length "$LAYER_CACHE") layers in $((SECONDS - t0))s ($LAYER_CACHE)"
  TIMING[cache]=$((SECONDS - t0))
}

# ------------------------------------------------------------ assertions

# pull_image ID: CRI pull (fresh name); records which chain IDs existed.
pull_image() {
  local id="$1" chain
  PRE_EXISTING=0
  PULL_LOG_OFFSET="$(registry_log_lines)"
  while read -r chain; do
    if ctr_gp_snap info "$chain" >/dev/null 2>&1; then PRE_EXISTING=$((PRE_EXISTING + 1)); fi
  done < <(layout_chain_ids "${LAYOUT[$id]}")
  check "$id: CRI PullImage ${REF[$id]}" cri pull "${REF[$id]}"
}

# assert_no_layer_fetch ID: no layer blob GET, at least one manifest GET.
assert_no_layer_fetch() {
  local id="$1" gets
  mapfile -t DIGESTS < <(jq -r '.layers[].digest' <<<"$RAW_MANIFEST")
  gets="$(registry_layer_gets_since "$PULL_LOG_OFFSET" "${DIGESTS[@]}")"
  if ((${#DIGESTS[@]} == 0)); then
    fail "$id: no layer digest read from the manifest: nothing to check"
  elif [[ "$gets" == 0 ]]; then
    pass "$id: registry served none of the ${#DIGESTS[@]} layer blobs"
  else
    fail "$id: registry served $gets layer blob GET(s) during the pull" \
      "$(tail -n "+$((PULL_LOG_OFFSET + 1))" "$REGISTRY_LOG" | grep -F '"GET ' | tail -n 20)"
  fi
}

# assert_image_check ID: ctr reports the image incomplete: of the manifest's
# children only the config is local (images.Check counts config + layers),
# yet unpacked for the guest-pull snapshotter (the chain exists).
assert_image_check() {
  local id="$1" line want
  check "$id: ctr images check" ctr_k8s images check --snapshotter "$GP_SNAPSHOTTER" "name==${REF[$id]}"
  last_ok || return 0
  line="$(grep -F "${REF[$id]} " <<<"$E2E_OUT" || true)"
  want="incomplete (1/$((${#DIGESTS[@]} + 1)))"
  assert_contains "$id: image check says $want (config only, no layer blob)" "$line" "$want"
  assert_eq "$id: image check says unpacked for $GP_SNAPSHOTTER" true "$(awk '{print $NF}' <<<"$line")"
  check "$id: ctr images check -q" ctr_k8s images check -q --snapshotter "$GP_SNAPSHOTTER" "name==${REF[$id]}"
  assert_not_contains "$id: image not listed as ready by images check -q" "$E2E_OUT" "${REF[$id]}"
}

# assert_snapshots ID: every chain ID committed with the guest-pull label.
assert_snapshots() {
  local id="$1" chain bad="" n=0 label kind
  while read -r chain; do
    n=$((n + 1))
    kind="$(snapshot_kind "$chain" 2>&1)" || { bad+="layer $n $chain: missing ($kind)"$'\n'; continue; }
    label="$(snapshot_label "$chain" "$REMOTE_LABEL")"
    [[ "$kind" == Committed && "$label" == true ]] ||
      bad+="layer $n $chain: kind=$kind $REMOTE_LABEL=$label"$'\n'
  done < <(layout_chain_ids "${LAYOUT[$id]}")
  if [[ -z "$bad" ]]; then pass "$id: $n layer snapshots committed with $REMOTE_LABEL=true"
  else fail "$id: layer snapshots not all guest-pulled" "$bad"; fi
}

# assert_decisions ID: one skip decision per newly pulled layer, no unpack.
assert_decisions() {
  local id="$1" skips unpacks want
  skips="$(daemon_decisions "${REF[$id]}" skip)"
  unpacks="$(daemon_decisions "${REF[$id]}" unpack)"
  want=$((${#DIGESTS[@]} - PRE_EXISTING))
  if [[ "$skips" == "$want" && "$unpacks" == 0 ]]; then
    pass "$id: daemon logged guest_pull_decision=skip for the $want new layer(s)"
  else
    fail "$id: daemon logged $skips skip / $unpacks unpack decisions, expected $want / 0" \
      "$(grep -F "image=\"${REF[$id]}\"" "$GP_LOG" | tail -n 10)"
  fi
}

# host_mount ID TOP: prepares a rootfs, mounts it through mount(8) and the
# helper; checks the content; sets MOUNT_OPTIONS.
host_mount() {
  local id="$1" top="$2" key="host-$1" mnt="$E2E_DIR/mnt/$1" line mtype source opts listing want=""
  mkdir -p "$mnt"
  MOUNT_OPTIONS=""
  check "$id: rootfs Prepare on the top layer" rootfs_mount_line "$key" "$top" "$mnt"
  last_ok || return 0
  line="$(grep '^mount ' <<<"$E2E_OUT")"
  assert_eq "$id: containerd returns one rootfs mount" 1 "$(grep -c . <<<"$line")"
  mtype="$(mount_line_field "$line" type)"
  source="$(mount_line_field "$line" source)"
  opts="$(mount_line_field "$line" options)"
  MOUNT_OPTIONS="$opts"
  assert_eq "$id: mount type" "fuse.guest-pull-overlayfs" "$mtype"
  check "$id: mount(8) -t $mtype through the helper" \
    mount -t "$mtype" -o "$opts" "$source" "$mnt"
  last_ok || { ctr_gp_snap rm "$key" >/dev/null 2>&1 || true; return 0; }
  check "$id: mounted as overlay" findmnt -n -t overlay "$mnt"
  listing="$(cd "$mnt" && find . -mindepth 1 | sort | tr '\n' ' ')"
  if [[ "${id%%-*}" == user ]]; then
    want="./etc ./etc/group ./etc/passwd "
    assert_eq "$id: host rootfs holds only /etc/passwd and /etc/group" "$want" "$listing"
    assert_contains "$id: /etc/passwd from the layer cache" "$(cat "$mnt/etc/passwd" 2>&1)" \
      "guest:x:1234:1234:Guest User:/home/guest:/bin/sh"
    assert_contains "$id: /etc/group from the layer cache" "$(cat "$mnt/etc/group" 2>&1)" "guest:x:1234:"
  else
    assert_eq "$id: host rootfs is empty" "$want" "$listing"
  fi
  check "$id: umount" umount "$mnt"
  check "$id: remove the host rootfs snapshot" ctr_gp_snap rm "$key"
}

# build_userlookup: builds tests/tools/userlookup (containerd's client in
# GOPATH mode, offline) into $E2E_DIR/bin once; sets USERLOOKUP.
USERLOOKUP=""
build_userlookup() {
  [[ -z "$USERLOOKUP" ]] || return 0
  local gopath="$E2E_DIR/gopath"
  mkdir -p "$E2E_DIR/bin"
  (peers_gopath "$gopath" userlookup="$E2E_REPO/tests/tools/userlookup" &&
    cd "$gopath/src/guestpull/userlookup" &&
    timeout 300 go build -o "$E2E_DIR/bin/userlookup" .) || return 1
  USERLOOKUP="$E2E_DIR/bin/userlookup"
}

# assert_user_lookup ID: containerd itself resolves a user by name on the
# host (kata #11162): containerd's client option oci.WithUsername -- what
# CRI uses for runAsUsername -- mounts the rootfs through mount.fuse3 and
# the helper and reads the /etc/passwd written from the layer cache; the
# spec must carry uid/gid 1234.
assert_user_lookup() {
  local id="$1"
  # Called directly, not through check (a subshell would lose USERLOOKUP).
  if [[ -z "$USERLOOKUP" ]]; then
    echo "SETUP: $id: build the containerd client user lookup"
    if ! build_userlookup >"$E2E_DIR/logs/userlookup-build.log" 2>&1; then
      fail "setup: $id: build the containerd client user lookup" "$(tail -n 20 "$E2E_DIR/logs/userlookup-build.log")"
      return 0
    fi
  fi
  check "$id: containerd resolves user guest on the host" \
    "$USERLOOKUP" -address "$CONTAINERD_SOCK" -namespace k8s.io \
    -snapshotter "$GP_SNAPSHOTTER" -image "${REF[$id]}" -user guest \
    -id "user-lookup-$id"
  last_ok || return 0
  assert_eq "$id: spec user from the host-side lookup" '{"uid":1234,"gid":1234}' \
    "$E2E_OUT"
}

# assert_volume ID: the volume option decodes, is valid and describes the
# image; sets VOLUME_JSON.
assert_volume() {
  local id="$1" opt out md n i bad="" repo
  VOLUME_JSON=""
  opt="$(volume_option "$MOUNT_OPTIONS")"
  [[ -n "$opt" ]] || { fail "$id: no io.katacontainers.volume option on the rootfs mount" "$MOUNT_OPTIONS"; return 0; }
  pass "$id: rootfs mount carries io.katacontainers.volume"
  check "$id: volume decodes and is valid (decode exit 0)" "$VERITY_TOOL" decode "$opt"
  out="$E2E_OUT"
  assert_contains "$id: go_valid" "$out" "go_valid: yes"
  assert_contains "$id: rust_valid" "$out" "rust_valid: yes"
  VOLUME_JSON="$(sed '/^go_valid: /,$d' <<<"$out")"
  md="sha256:$(printf '%s' "$RAW_MANIFEST" | sha256sum | cut -d' ' -f1)"
  repo="${REF[$id]%:*}"
  assert_eq "$id: volume_type" image_guest_pull "$(jq -r .volume_type <<<"$VOLUME_JSON")"
  assert_eq "$id: source pinned by manifest digest" "$repo@$md" "$(jq -r .source <<<"$VOLUME_JSON")"
  assert_eq "$id: guest-pull.image-ref" "${REF[$id]}" "$(volume_meta "$VOLUME_JSON" guest-pull.image-ref)"
  assert_eq "$id: guest-pull.manifest-digest" "$md" "$(volume_meta "$VOLUME_JSON" guest-pull.manifest-digest)"
  n="${#DIGESTS[@]}"
  assert_eq "$id: guest-pull.layer-count" "$n" "$(volume_meta "$VOLUME_JSON" guest-pull.layer-count)"
  mapfile -t DIFF_IDS < <(layout_diff_ids "${LAYOUT[$id]}")
  for ((i = 0; i < n; i++)); do
    [[ "$(volume_meta "$VOLUME_JSON" "guest-pull.layer.$i.digest")" == "${DIGESTS[i]}" ]] ||
      bad+="layer $i digest $(volume_meta "$VOLUME_JSON" "guest-pull.layer.$i.digest") != ${DIGESTS[i]}"$'\n'
    [[ "$(volume_meta "$VOLUME_JSON" "guest-pull.layer.$i.diff-id")" == "${DIFF_IDS[i]}" ]] ||
      bad+="layer $i diff-id $(volume_meta "$VOLUME_JSON" "guest-pull.layer.$i.diff-id") != ${DIFF_IDS[i]}"$'\n'
  done
  if [[ -z "$bad" ]]; then pass "$id: $n layer digests and diff_ids in order"
  else fail "$id: volume layer list differs from the image" "$bad"; fi
}

# assert_expected_hashes ID: the volume's expected hashes equal what
# guest-pull-verity layer and veritysetup compute from layers fetched
# separately from the registry.
assert_expected_hashes() {
  local id="$1" dir="$E2E_DIR/fetched/$1" i n blob out tree want bad_tool="" bad_tree=""
  mkdir -p "$E2E_DIR/fetched"
  e2e_setup "$id: skopeo fetches the image separately" \
    skopeo copy --quiet --src-tls-verify=false "docker://${REF[$id]}" "oci:$dir:x" || return 0
  n="${#DIGESTS[@]}"
  for ((i = 0; i < n; i++)); do
    blob="$dir/blobs/sha256/${DIGESTS[i]#sha256:}"
    want="$(volume_meta "$VOLUME_JSON" "guest-pull.layer.$i.verity-root-hash")"
    out="$(timeout "$E2E_CMD_TIMEOUT" "$VERITY_TOOL" layer "$blob" 2>&1)" || out="error: $out"
    [[ "$(tool_field "$out" verity_hash)" == "$want" && -n "$want" ]] ||
      bad_tool+="layer $i: volume '$want', guest-pull-verity layer: $out"$'\n'
    out="$(timeout "$E2E_CMD_TIMEOUT" "$VERITY_TOOL" index "$blob" "$dir/indexed" 2>&1)" || out="error: $out"
    tree="$(veritysetup_root_hash "$dir/indexed" 2>&1)" || tree="error: $tree"
    rm -f "$dir/indexed"
    [[ "$tree" == "$want" ]] || bad_tree+="layer $i: volume '$want', veritysetup '$tree' ($out)"$'\n'
  done
  if [[ -z "$bad_tool" ]]; then pass "$id: $n expected hashes = guest-pull-verity layer on the fetched blobs"
  else fail "$id: expected hashes differ from guest-pull-verity layer" "$bad_tool"; fi
  if [[ -z "$bad_tree" ]]; then pass "$id: $n expected hashes = veritysetup tree over the indexed layers"
  else fail "$id: expected hashes differ from veritysetup" "$bad_tree"; fi
  rm -rf "$dir"
}

# assert_view_volume ID: a View of the image (what `ctr` and CRI use to read
# the image's files on the host) is the same guest-pull mount with the same
# volume (the option differs only in the overlay part). ctr's View holds no
# lease, so containerd's garbage collector (scheduled by an earlier Remove)
# may take it at any moment: its mounts come from the View's own answer,
# and a Remove that finds it already collected passes.
assert_view_volume() {
  local id="$1" key="view-$1" json mtype opts out
  if ! json="$(ctr_gp_snap view --mounts "$key" "$TOP" 2>&1)"; then
    fail "$id: View on the top layer" "$json"
    return 0
  fi
  pass "$id: View on the top layer"
  mtype="$(jq -r '.[0].Type // .[0].type // empty' <<<"$json" 2>/dev/null)" || mtype=""
  opts="$(jq -r '(.[0].Options // .[0].options // []) | join(",")' <<<"$json" 2>/dev/null)" || opts=""
  assert_eq "$id: View mount type" fuse.guest-pull-overlayfs "$mtype"
  assert_eq "$id: View carries the same volume" "$(volume_option "$MOUNT_OPTIONS")" "$(volume_option "$opts")"
  assert_not_contains "$id: View has no upperdir" "$opts" "upperdir="
  if out="$(ctr_gp_snap rm "$key" 2>&1)" || [[ "$out" == *"view-$id does not exist"* ]]; then
    pass "$id: remove the View"
  else
    fail "$id: remove the View" "$out"
  fi
}

# run_standin ID TOP: runs the stand-in; sets STANDIN_OUT, STANDIN_STATUS
# and STANDIN_LOG (its stderr).
run_standin() {
  local id="$1" top="$2"
  STANDIN_LOG="$E2E_DIR/standin-$id.log"
  STANDIN_STATUS=0
  STANDIN_OUT="$(timeout "$STANDIN_TIMEOUT" "$STANDIN" --address "$CONTAINERD_SOCK" \
    --namespace k8s.io --snapshotter "$GP_SNAPSHOTTER" --chain-id "$top" \
    --timeout "$E2E_CMD_TIMEOUT" 2>"$STANDIN_LOG")" || STANDIN_STATUS=$?
}

assert_standin_runs() {
  local id="$1" image="$2" top="$3" t0=$SECONDS
  run_standin "$id" "$top"
  TIMING[$id.standin]=$((SECONDS - t0))
  if ((STANDIN_STATUS == 0)); then pass "$id: guest stand-in verified and ran the image"
  else fail "$id: guest stand-in exited $STANDIN_STATUS" "$(tail -n 20 "$STANDIN_LOG")"; fi
  if images_check_output "$image" "$IMAGES_CACHE" "$STANDIN_OUT"; then
    pass "$id: entrypoint printed: $STANDIN_OUT"
  else
    fail "$id: entrypoint output" "got:  $STANDIN_OUT"$'\n'"want: $(images_expected_output "$image" "$IMAGES_CACHE")"
  fi
}

# ------------------------------------------------------------------ cases

# common_pull_checks ID: pull + host-side assertions; sets TOP.
common_pull_checks() {
  local id="$1"
  pull_image "$id"
  last_ok || return 1
  RAW_MANIFEST="$(registry_raw_manifest "${REF[$id]}")" || { fail "$id: cannot read the manifest back"; return 1; }
  assert_no_layer_fetch "$id"
  assert_image_check "$id"
  assert_snapshots "$id"
  assert_decisions "$id"
  TOP="$(layout_chain_ids "${LAYOUT[$id]}" | tail -n 1)"
}

run_positive_case() {
  local id="$1" image="$2" t0=$SECONDS
  e2e_log "===== case $id (${REF[$id]})"
  if common_pull_checks "$id"; then
    host_mount "$id" "$TOP"
    [[ "${id%%-*}" != user ]] || assert_user_lookup "$id"
    assert_volume "$id"
    [[ -z "$VOLUME_JSON" ]] || assert_expected_hashes "$id"
    assert_view_volume "$id"
    assert_standin_runs "$id" "$image" "$TOP"
  fi
  TIMING[$id.case]=$((SECONDS - t0))
}

# A layer without an expected hash under mode required: the rootfs Prepare
# fails with FailedPrecondition naming exactly that layer.
run_missing_hash_case() {
  local id="missing-hash" out i
  e2e_log "===== case $id (${REF[$id]})"
  common_pull_checks "$id" || return 0
  check_fails "$id: rootfs Prepare refused" ctr_gp_snap prepare "rootfs-$id" "$TOP"
  out="$E2E_OUT"
  e2e_log "$id: Prepare said: $out"
  assert_contains "$id: error is FailedPrecondition" "$out" "failed precondition"
  assert_contains "$id: error names the layer without hash" "$out" "${DIGESTS[-1]}"
  for ((i = 0; i < ${#DIGESTS[@]} - 1; i++)); do
    assert_not_contains "$id: error does not blame layer $i (its hash is known)" "$out" "${DIGESTS[i]}"
  done
  ctr_gp_snap rm "rootfs-$id" >/dev/null 2>&1 || true
  check_fails "$id: guest stand-in does not get a rootfs" true_if_standin_fails "$TOP"

  # The operator adds the layer to the cache: the daemon reloads the file
  # (no restart) and the same pulled image now verifies and runs.
  e2e_setup "$id: add the missing layer to the layer cache" \
    "$VERITY_TOOL" cache "${LAYOUT[$id]}" --output "$LAYER_CACHE" || return 0
  assert_standin_runs "$id" multilayer "$TOP"
}

# The user image pulled before the layer cache had its layers (a pre-pull,
# genpolicy run later): once the operator adds them, a container's rootfs
# gets /etc/passwd and /etc/group in its own upper directory, so the host
# mount shows them and containerd resolves the user by name.
run_late_cache_case() {
  local id="user-late"
  e2e_log "===== case $id (${REF[$id]})"
  common_pull_checks "$id" || return 0
  e2e_setup "$id: add the image's layers to the layer cache" \
    "$VERITY_TOOL" cache "${LAYOUT[$id]}" --output "$LAYER_CACHE" || return 0
  host_mount "$id" "$TOP"
  assert_user_lookup "$id"
}

# shellcheck disable=SC2317  # called through check_fails
true_if_standin_fails() { run_standin missing-hash "$1"; return "$STANDIN_STATUS"; }

# A wrong expected hash in the cache: the volume carries it and the guest
# refuses the layer.
run_wrong_hash_case() {
  local id="wrong-hash" wrong
  e2e_log "===== case $id (${REF[$id]})"
  common_pull_checks "$id" || return 0
  host_mount "$id" "$TOP"
  assert_volume "$id"
  wrong="$(jq -r '.[] | select(.diff_id == "'"$(layout_diff_ids "${LAYOUT[$id]}" | sed -n 1p)"'") | .verity_hash' "$LAYER_CACHE")"
  assert_eq "$id: volume carries the (wrong) hash from the cache for layer 1" "$wrong" \
    "$(volume_meta "$VOLUME_JSON" guest-pull.layer.1.verity-root-hash)"
  run_standin "$id" "$TOP"
  e2e_log "$id: stand-in said: $(grep -E 'REFUSED|ERROR' "$STANDIN_LOG" || tail -n 3 "$STANDIN_LOG")"
  assert_eq "$id: stand-in refuses (exit 1)" 1 "$STANDIN_STATUS"
  assert_contains "$id: refusal names the layer's verity hash" "$(cat "$STANDIN_LOG")" \
    "REFUSED: layer 1 (${DIGESTS[1]}): dm-verity root hash"
  assert_eq "$id: nothing ran" "" "$STANDIN_OUT"
}

# A layer blob replaced in the registry's storage after the cache was made
# (same digest path, other content: what an attacker controlling the
# registry can do to an image pinned by digest): the guest refuses.
run_tampered_blob_case() {
  local id="tampered-blob" file stage
  e2e_log "===== case $id (${REF[$id]})"
  common_pull_checks "$id" || return 0
  file="$(registry_blob_file "${DIGESTS[1]}")"
  e2e_setup "$id: registry stores layer 1 at $file" test -f "$file" || return 0
  stage="$E2E_DIR/tamper"
  mkdir -p "$stage/etc"
  echo "layer-2 (evil)" >"$stage/etc/layer2"
  tar --numeric-owner --owner=0 --group=0 -C "$stage" -czf "$file" etc
  e2e_log "$id: replaced layer 1's blob content in the registry storage"
  run_standin "$id" "$TOP"
  e2e_log "$id: stand-in said: $(grep -E 'REFUSED|ERROR' "$STANDIN_LOG" || tail -n 3 "$STANDIN_LOG")"
  assert_eq "$id: stand-in refuses (exit 1)" 1 "$STANDIN_STATUS"
  assert_contains "$id: refusal is about the layer blob" "$(cat "$STANDIN_LOG")" "REFUSED:"
  assert_contains "$id: refusal names the digest" "$(cat "$STANDIN_LOG")" "${DIGESTS[1]#sha256:}"
  assert_eq "$id: nothing ran" "" "$STANDIN_OUT"
}

# After a crash (SIGKILL) and restart of the daemon on the same root, the
# guest-pulled layers are still there and a new rootfs still carries the
# volume: the stand-in verifies and runs the image again.
run_restart_case() {
  local id="$1" image chain bad=""
  image="$(sed -n "s/^$id \([a-z]*\) .*/\1/p" < <(all_cases))"
  e2e_log "===== restart: SIGKILL the daemon, start it again, rerun $id"
  kill9_daemon
  start_daemon
  TOP="$(layout_chain_ids "${LAYOUT[$id]}" | tail -n 1)"
  if wait_backend_stat "$TOP"; then pass "restart: containerd reaches the restarted daemon (Stat)"
  else fail "restart: containerd did not reach the restarted daemon" "$E2E_OUT"; return 0; fi
  while read -r chain; do
    [[ "$(snapshot_label "$chain" "$REMOTE_LABEL" 2>&1)" == true ]] || bad+="$chain"$'\n'
  done < <(layout_chain_ids "${LAYOUT[$id]}")
  if [[ -z "$bad" ]]; then pass "restart: $id layers still guest-pulled"
  else fail "restart: $id layers lost their label or vanished" "$bad"; fi
  assert_standin_runs "$id-after-restart" "$image" "$TOP"
}

# CRI RemoveImage: containerd's GC removes the guest-pulled layer snapshots
# from the daemon (bounded wait).
run_removal_case() {
  local id="$1" deadline left chain
  e2e_log "===== removal of $id"
  check "removal: CRI RemoveImage ${REF[$id]}" cri rmi "${REF[$id]}"
  last_ok || return 0
  deadline=$((SECONDS + 30))
  while :; do
    left=0
    while read -r chain; do
      if ctr_gp_snap info "$chain" >/dev/null 2>&1; then left=$((left + 1)); fi
    done < <(layout_chain_ids "${LAYOUT[$id]}")
    ((left > 0 && SECONDS < deadline)) || break
    sleep 0.5
  done
  assert_eq "removal: $id layer snapshots removed by containerd's GC" 0 "$left"
  check_fails "removal: image gone from CRI (ImageStatus, crictl inspecti)" cri inspecti "${REF[$id]}"
  assert_contains "removal: ImageStatus says not present" "$E2E_OUT" 'no such image'
}

# ------------------------------------------------------------------- main

print_timings() {
  local k
  for k in $(printf '%s\n' "${!TIMING[@]}" | sort); do
    e2e_log "timing: $k ${TIMING[$k]}s"
  done
}

main() {
  local t0=$SECONDS id image variant format
  e2e_init functional
  e2e_require_cmds veritysetup unshare findmnt mount.fuse3 tar gzip
  standin_tools
  registry_start
  while read -r id image variant format; do
    build_and_push "$id" "$image" "$variant" "$format"
  done < <(all_cases)
  TIMING[images]=$((SECONDS - t0))
  make_layer_cache
  standin_daemon_config "$LAYER_CACHE" required
  install_helpers //mount_helper:guest-pull-overlayfs
  start_daemon
  containerd_start
  TIMING[setup]=$((SECONDS - t0))
  skip_disabled_cases

  while read -r id image variant format; do
    case "$id" in
      missing-hash) run_missing_hash_case ;;
      wrong-hash) run_wrong_hash_case ;;
      tampered-blob) run_tampered_blob_case ;;
      user-late) run_late_cache_case ;;
      *) run_positive_case "$id" "$image" ;;
    esac
  done < <(all_cases)

  run_restart_case multilayer-oci
  run_removal_case multilayer-docker

  local status=0
  stop_daemon || status=$?
  assert_status "daemon exits 0 on SIGTERM" 0 "$status"
  TIMING[total]=$((SECONDS - t0))
  print_timings
  finish
}

main "$@"
