#!/usr/bin/env bash
# compatibility.sh: every e2e test image (multilayer, whiteout, links, deep,
# user), pushed with OCI and with Docker v2s2 media types, must look and run
# the same three ways:
#   guest  CRI pull through our daemon (layers committed without content, no
#          layer blob fetched by the host), then tests/e2e/guest_standin.sh
#          (kata runtime + agent stand-in: verified pull by digest, rootfs
#          assembled with umoci, entrypoint run chrooted);
#   ours   `ctr image pull --snapshotter guest-pull` (host unpack through our
#          daemon) and `ctr run` with runc;
#   ovl    the same with containerd's built-in overlayfs snapshotter.
# Checked per image: the entrypoint prints its expected line in all three;
# a checksummed listing (path, type, mode, uid:gid, size, link count, sha256,
# symlink target, device numbers) of our host-unpacked rootfs (a read-only
# view mounted with `ctr images mount`) and of the guest-assembled rootfs
# equals the overlayfs one; no whiteout leaks into any of them.
# Policy case: an image matching `[guest_pull] exclude` is unpacked on the
# host even via CRI (guest_pull_decision=unpack reason=policy, layer blobs
# fetched, plain overlay rootfs) and runs with runc.
# At the end, containerd's snapshot records and the daemon's agree (see
# check_consistent in suite_lib.sh).
#
# The Docker variant of each image is built with images.sh VARIANT "v2s2"
# (unique layer blobs), so each media type really goes through unpack and
# guest pull instead of reusing the other's snapshots.
#
# Usage (as root): tests/e2e/compatibility.sh [IMAGE...]
#   IMAGE              restrict to these images (default: all five)
#   E2E_IMAGES_CACHE   image cache dir (default /tmp/gp-e2e-images)
#   GUEST_PULL_DAEMON  prebuilt daemon binary; E2E_KEEP=1 keeps the temp dir
# Needs the sqlite3 CLI (Debian package sqlite3).
# Last line: "N passed, M failed, K skipped" (tests/harness/harness.sh);
# exit status non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=suite_lib.sh
source "$E2E_LIB_DIR/suite_lib.sh"

readonly ALL_IMAGES=(multilayer whiteout links deep user)
readonly MEDIA_TYPES=(oci v2s2)
readonly EXCLUDED_REPO=compat-excluded
# Top-level names not compared: the stand-in creates /proc in its rootfs
# to mount a private procfs there; none of the images has one.
readonly LISTING_EXCLUDES=(proc)

declare -A LAYOUT=() REF=()

# layout_variant MEDIA: images.sh variant of the media type's copy.
layout_variant() { [[ "$1" == oci ]] && echo "" || echo "$1"; }

# prepare_images NAMES...: builds, pushes and caches every image variant.
prepare_images() {
  local name media id
  for name in "$@"; do
    for media in "${MEDIA_TYPES[@]}"; do
      id="$name/$media"
      LAYOUT[$id]="$(suite_image "$name" "$(layout_variant "$media")")"
      REF[$id]="$(suite_push "${LAYOUT[$id]}" "compat-$name" "$media" "$media")"
      suite_cache_add "${LAYOUT[$id]}"
    done
  done
  LAYOUT[excluded]="$(suite_image multilayer excluded)"
  REF[excluded]="$(suite_push "${LAYOUT[excluded]}" "$EXCLUDED_REPO" v1 oci)"
  e2e_log "images ready: ${!REF[*]}"
}

write_daemon_config() {
  daemon_write_config
  daemon_config_append <<EOF

[guest_pull]
include = ['.*']
exclude = ['127\.0\.0\.1:[0-9]+/${EXCLUDED_REPO}:.*']

[verity]
mode = "required"
layer_cache = "$SUITE_LAYER_CACHE"
EOF
}

# registry_layers REF: layer digests of the pushed manifest.
registry_layers() {
  timeout "$E2E_CMD_TIMEOUT" skopeo inspect --raw --tls-verify=false "docker://$1" | jq -r '.layers[].digest'
}

# last_line TEXT: the last non-empty line (the entrypoint's result line),
# without the " groups=..." suffix of `id`: supplementary groups are the
# runtime's business (runc adds the primary group, the stand-in does not).
last_line() { printf '%s\n' "$1" | tr -d '\r' | sed -e '/^$/d' | tail -n 1 | sed -e 's/ groups=.*$//'; }

# assert_output DESC NAME OUTPUT: OUTPUT is what image NAME must print.
assert_output() {
  local want
  want="$(images_expected_output "$2" "$SUITE_IMAGES_CACHE")"
  if images_check_output "$2" "$SUITE_IMAGES_CACHE" "$3"; then pass "$1"; else
    fail "$1" "expected: $want"$'\n'"output:"$'\n'"$3"
  fi
}

# assert_listing DESC LISTING: non-empty and free of whiteouts.
assert_listing_clean() {
  local leaks
  leaks="$(listing_whiteout_leaks "$2")"
  if [[ -z "$2" ]]; then fail "$1: empty listing"; return 0; fi
  if [[ -z "$leaks" ]]; then pass "$1: no whiteout entries ($(wc -l <<<"$2") entries)"; else
    fail "$1: whiteouts leak into the rootfs" "$leaks"
  fi
}

# assert_same_listing DESC EXPECTED ACTUAL: equal listings, else a diff.
assert_same_listing() {
  if [[ "$2" == "$3" ]]; then pass "$1"; return 0; fi
  fail "$1" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -n 40)"
}

# guest_path NAME ID: CRI pull with guest pull, then the stand-in runs it.
# Sets OUT_guest and LIST_guest.
guest_path() {
  local name="$1" id="$2" ref="${REF[$2]}" layers chain digest digests gets=0 work mark
  layers="$(images_layer_count "${LAYOUT[$id]}")"
  mark="$(registry_log_mark)"
  check "$id guest: CRI pull" cri_cmd pull "$ref"
  last_ok || return 0
  assert_eq "$id guest: every layer decided skip (guest-pull)" "$layers" \
    "$(decision_count "$ref" skip guest-pull)"
  assert_eq "$id guest: no layer decided unpack" 0 "$(decision_count "$ref" unpack)"
  # No digest read (skopeo failed) would make the count below 0 by itself.
  digests="$(registry_layers "$ref" || true)"
  if [[ "$(grep -c . <<<"$digests")" == "$layers" ]]; then
    for digest in $digests; do
      gets=$((gets + $(registry_blob_gets "$digest" "$mark")))
    done
    assert_eq "$id guest: host fetched no layer blob" 0 "$gets"
  else
    fail "$id guest: host fetched no layer blob (not checked: skopeo did not read $layers layer digests from the registry)" "$digests"
  fi
  chain="$(suite_top_chain "${LAYOUT[$id]}")"
  work="$E2E_DIR/standin/${id//\//-}"
  mkdir -p "$(dirname "$work")"
  check "$id guest: stand-in verifies and runs the image" standin_stdout "$work.log" "$chain" --workdir "$work" --keep
  OUT_guest="$E2E_OUT"
  standin_drop_snapshots
  last_ok || return 0
  assert_output "$id guest: entrypoint output" "$name" "$OUT_guest"
  LIST_guest="$(rootfs_listing "$work/bundle/rootfs" "${LISTING_EXCLUDES[@]}")"
  assert_listing_clean "$id guest rootfs" "$LIST_guest"
  rm -rf "$work" "$work.log"
}

# host_path NAME ID SNAPSHOTTER TAG: ctr pull + run + mounted listing with
# SNAPSHOTTER in the default namespace. Sets OUT_<TAG> and LIST_<TAG>.
host_path() {
  local name="$1" id="$2" sn="$3" tag="$4" ref="${REF[$2]}" target cid out="" list=""
  check "$id $tag: ctr image pull --snapshotter $sn" \
    ctr_cmd image pull --plain-http --snapshotter "$sn" "$ref"
  if last_ok; then
    cid="compat-${id//\//-}-$tag"
    check "$id $tag: ctr run (runc)" ctr_cmd run --rm --runc-root "$CONTAINERD_DIR/runc" \
      --snapshotter "$sn" "$ref" "$cid"
    out="$E2E_OUT"
    if last_ok; then assert_output "$id $tag: entrypoint output" "$name" "$out"; fi
    target="$E2E_DIR/mnt/${id//\//-}-$tag"
    check "$id $tag: ctr images mount (read-only view)" mount_image default "$sn" "$ref" "$target"
    if last_ok; then
      list="$(rootfs_listing "$target" "${LISTING_EXCLUDES[@]}")"
      assert_listing_clean "$id $tag rootfs" "$list"
      check "$id $tag: ctr images unmount --rm" unmount_image default "$sn" "$target"
    fi
  fi
  printf -v "OUT_$tag" '%s' "$out"
  printf -v "LIST_$tag" '%s' "$list"
}

# compat_case NAME MEDIA: the three paths for one image copy, compared.
compat_case() {
  local name="$1" id="$1/$2"
  OUT_guest="" LIST_guest="" OUT_ours="" LIST_ours="" OUT_ovl="" LIST_ovl=""
  e2e_log "---- $id (${REF[$id]})"
  # Guest first: the CRI pull must not find layer blobs fetched by ctr.
  guest_path "$name" "$id"
  host_path "$name" "$id" "$GP_SNAPSHOTTER" ours
  host_path "$name" "$id" overlayfs ovl
  if [[ -n "$OUT_ovl" && -n "$OUT_ours" && -n "$OUT_guest" ]]; then
    assert_eq "$id: same output via guest-pull host unpack and overlayfs" \
      "$(last_line "$OUT_ovl")" "$(last_line "$OUT_ours")"
    assert_eq "$id: same output via guest stand-in and overlayfs" \
      "$(last_line "$OUT_ovl")" "$(last_line "$OUT_guest")"
  else
    fail "$id: an output is missing, cannot compare (see above)"
  fi
  if [[ -n "$LIST_ovl" && -n "$LIST_ours" && -n "$LIST_guest" ]]; then
    assert_same_listing "$id: host-unpacked rootfs (guest-pull) == overlayfs rootfs" "$LIST_ovl" "$LIST_ours"
    assert_same_listing "$id: guest-assembled rootfs == overlayfs rootfs" "$LIST_ovl" "$LIST_guest"
  else
    fail "$id: a rootfs listing is missing, cannot compare (see above)"
  fi
}

# policy_case: an excluded image goes to the host even through the CRI.
policy_case() {
  local ref="${REF[excluded]}" layers digest n=0 gets out key="compat-policy-rootfs"
  layers="$(images_layer_count "${LAYOUT[excluded]}")"
  e2e_log "---- policy: $ref"
  check "policy: CRI pull of an excluded image" cri_cmd pull "$ref"
  last_ok || return 0
  assert_eq "policy: every layer decided unpack reason=policy" "$layers" \
    "$(decision_count "$ref" unpack policy)"
  assert_eq "policy: no layer decided skip" 0 "$(decision_count "$ref" skip)"
  for digest in $(registry_layers "$ref"); do
    n=$((n + 1))
    gets="$(registry_blob_gets "$digest")"
    if ((gets >= 1)); then pass "policy: host fetched layer $n blob"; else
      fail "policy: host never fetched layer $n blob $digest"; fi
  done
  check "policy: rootfs Prepare on the excluded image" \
    ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" prepare "$key" \
    "$(suite_top_chain "${LAYOUT[excluded]}")"
  if last_ok; then
    check "policy: rootfs mounts" ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" mounts /mnt "$key"
    out="$E2E_OUT"
    assert_contains "policy: rootfs is a plain overlay mount" "$out" "mount -t overlay "
    assert_not_contains "policy: rootfs carries no kata volume" "$out" "io.katacontainers.volume="
    check "policy: remove the rootfs snapshot" \
      ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" rm "$key"
  fi
  check "policy: ctr run (runc) of the CRI-pulled excluded image" \
    ctr_cmd -n k8s.io run --rm --runc-root "$CONTAINERD_DIR/runc" --snapshotter "$GP_SNAPSHOTTER" \
    "$ref" compat-policy
  if last_ok; then assert_output "policy: entrypoint output" multilayer "$E2E_OUT"; fi
}

main() {
  local images=("$@") name media status=0 t0=$SECONDS
  ((${#images[@]})) || images=("${ALL_IMAGES[@]}")
  e2e_init compat
  e2e_require_cmds sqlite3
  suite_install_tools
  registry_start
  prepare_images "${images[@]}"
  write_daemon_config
  start_daemon
  containerd_start
  e2e_log "setup took $((SECONDS - t0))s"

  for name in "${images[@]}"; do
    for media in "${MEDIA_TYPES[@]}"; do
      compat_case "$name" "$media"
    done
  done
  policy_case
  check_consistent "compatibility: at the end"

  stop_daemon || status=$?
  assert_status "daemon exits 0 on SIGTERM" 0 "$status"
  e2e_log "compatibility took $((SECONDS - t0))s"
  finish
}

main "$@"
