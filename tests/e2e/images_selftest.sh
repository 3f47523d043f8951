#!/usr/bin/env bash
# images_selftest.sh: builds every e2e test image with tests/e2e/images.sh in a
# temp dir and checks it: layer counts, whiteout/opaque/hardlink/long-symlink
# entries in the layer tars, the named user, that each entrypoint prints its
# expected line when the image is unpacked by umoci (an independent OCI
# applier) and run in a chroot, idempotent and concurrent rebuilds, and the
# manifest/layer media types after pushing to a loopback docker-registry with
# OCI and Docker v2s2 formats.
#
# With containerd (default), each image is also pulled by a private containerd
# 1.6 and run with `ctr run` (runc, overlayfs): the real applier must give the
# same entrypoint output.
#
# Usage (as root): tests/e2e/images_selftest.sh [--with-large] [--no-containerd] [--keep]
#   --with-large     also build and check the 300 MiB image (the default in
#                    the long mode, GUEST_PULL_TEST_MODE=long, unless
#                    E2E_SKIP_LARGE=1; else its checks are skips)
#   --no-containerd  skip the containerd/runc run
#   --keep           keep the temp dir
# Counts with tests/harness/harness.sh: last line "N passed, M failed,
# K skipped"; exit status 1 if any failed. Building the images and starting
# the registry and containerd are setup steps; build times are figures.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/e2e/images.sh
source "$HERE/images.sh"
# shellcheck source=tests/tools/peers.sh
source "$REPO_ROOT/tests/tools/peers.sh"
# shellcheck source=tests/harness/harness.sh
source "$REPO_ROOT/tests/harness/harness.sh"

WITH_LARGE=""
KEEP=0
WITH_CONTAINERD=1
TMP=""
CACHE=""

parse_args() {
  local a
  for a in "$@"; do
    case "$a" in
      --with-large) WITH_LARGE="--with-large" ;;
      --keep) KEEP=1 ;;
      --no-containerd) WITH_CONTAINERD=0 ;;
      *) echo "unknown argument: $a (want --with-large, --no-containerd, --keep)" >&2; return 1 ;;
    esac
  done
}

teardown() { peers_teardown_suite $? "$TMP" "$KEEP"; }

built_names() {
  local n
  for n in $(images_names); do
    [[ "$n" == large && -z "$WITH_LARGE" ]] && continue
    echo "$n"
  done
}

# layer_listing NAME INDEX: `tar -tv` of layer INDEX (1-based) of NAME.
layer_listing() {
  local blob
  blob="$(images_layer_blobs "$CACHE/$1" | sed -n "${2}p")"
  [[ -n "$blob" ]] || { echo "no layer $2 in $1" >&2; return 1; }
  tar -tvzf "$blob"
}

# listing_has LISTING ENTRY: LISTING (tar -tv output) has a line ending in
# " ENTRY" (no pipe into grep -q: with pipefail an early exit is a failure).
listing_has() { grep -q " ${2//./\\.}\$" <<<"$1"; }

# ---- checks -----------------------------------------------------------------

check_layer_counts() {
  local -A want=([multilayer]=3 [whiteout]=4 [links]=2 [deep]="$IMAGES_DEEP_LAYERS"
    [user]=1 [large]=2)
  local n got ok=0
  for n in $(built_names); do
    got="$(images_layer_count "$CACHE/$n")"
    [[ "$got" == "${want[$n]}" ]] || { echo "$n: $got layers, want ${want[$n]}"; ok=1; }
  done
  return "$ok"
}

check_multilayer_files() {
  local i listing
  for i in 1 2 3; do
    listing="$(layer_listing multilayer "$i")" || return 1
    listing_has "$listing" "etc/layer$i" || return 1
  done
}

check_whiteouts() {
  local l2 l3 l4 entry
  l2="$(layer_listing whiteout 2)" && l3="$(layer_listing whiteout 3)" &&
    l4="$(layer_listing whiteout 4)" || return 1
  for entry in .wh.gone data/.wh.remove-me replaced/.wh.old-a replaced/.wh.old-sub replaced/new-file; do
    listing_has "$l3" "$entry" || { echo "layer 3 lacks $entry"; return 1; }
  done
  for entry in opaque/.wh..wh..opq opaque/new-1; do
    listing_has "$l4" "$entry" || { echo "layer 4 lacks $entry"; return 1; }
  done
  # The earlier layer still carries what the later ones hide.
  listing_has "$l2" opaque/old-dir/old-2 && listing_has "$l2" gone
}

check_links() {
  local listing target
  listing="$(layer_listing links 2)" || return 1
  grep -q '^h.* links/hard link to links/file$' <<<"$listing" || { echo "no hardlink hard"; return 1; }
  grep -q '^h.* links/subdir/hard2 link to links/file$' <<<"$listing" || { echo "no hardlink hard2"; return 1; }
  grep -q '^l.* links/rel -> file$' <<<"$listing" || return 1
  grep -q '^l.* links/dangling -> /does/not/exist$' <<<"$listing" || return 1
  target="$(sed -n 's/^l.* links\/long -> //p' <<<"$listing")"
  ((${#target} > 100)) || { echo "long symlink target is ${#target} bytes"; return 1; }
}

check_deep_one_file_per_layer() {
  local i n files
  for ((i = 2; i <= IMAGES_DEEP_LAYERS; i++)); do
    printf -v n '%03d' "$i"
    files="$(layer_listing deep "$i")" || return 1
    files="$(grep -v '^d' <<<"$files" || true)"
    [[ "$(wc -l <<<"$files")" == 1 && "$files" == *" deep/layer-$n" ]] ||
      { echo "layer $i: $files"; return 1; }
  done
}

check_user_config() {
  local manifest config
  manifest="$CACHE/user/blobs/sha256/$(jq -r '.manifests[0].digest' "$CACHE/user/index.json" | cut -d: -f2)"
  config="$CACHE/user/blobs/sha256/$(jq -r .config.digest "$manifest" | cut -d: -f2)"
  [[ "$(jq -r .config.User "$config")" == guest ]] || return 1
  local blob
  blob="$(images_layer_blobs "$CACHE/user")"
  tar -xzOf "$blob" etc/passwd | grep -qx 'guest:x:1234:1234:Guest User:/home/guest:/bin/sh' &&
    tar -xzOf "$blob" etc/group | grep -qx 'guest:x:1234:'
}

check_large_layer() {
  local blob size
  blob="$(images_layer_blobs "$CACHE/large" | sed -n 2p)"
  size="$(stat -c %s "$blob")"
  ((size >= IMAGES_LARGE_MB * 1024 * 1024)) || { echo "large layer only $size bytes"; return 1; }
}

# run_entrypoint LAYOUT: unpack with umoci and run the entrypoint in a chroot
# as the image's user; prints its output.
run_entrypoint() {
  local layout="$1" bundle uid gid
  bundle="$TMP/run/$(basename "$layout")"
  rm -rf "$bundle"
  umoci unpack --image "$layout:latest" "$bundle" >/dev/null || return 1
  uid="$(jq -r .process.user.uid "$bundle/config.json")"
  gid="$(jq -r .process.user.gid "$bundle/config.json")"
  local -a args env
  mapfile -t args < <(jq -r '.process.args[]' "$bundle/config.json")
  mapfile -t env < <(jq -r '.process.env[]' "$bundle/config.json")
  timeout 60 env -i "${env[@]}" "$(command -v chroot)" --userspec="$uid:$gid" --groups="$gid" \
    "$bundle/rootfs" "${args[@]}"
  rm -rf "$bundle"
}

check_entrypoint() {
  local name="$1" out
  out="$(run_entrypoint "${2:-$CACHE/$name}")" || { echo "$name entrypoint failed"; return 1; }
  images_check_output "$name" "$CACHE" "$out" ||
    { echo "$name printed: $out"; echo "want: $(images_expected_output "$name" "$CACHE")"; return 1; }
}

# check_variant NAME: a variant build has the same layer count and output but
# no layer blob in common with the plain build or with another variant.
check_variant() {
  local name="$1" a b base va vb
  a="$(images_build "$name" "$CACHE" t1 2>/dev/null)" &&
    b="$(images_build "$name" "$CACHE" t2 2>/dev/null)" || return 1
  [[ "$a" == "$CACHE/$name@t1" ]] || { echo "variant layout $a"; return 1; }
  [[ "$(images_ref "$name" "$CACHE" t1)" == "oci:$a:latest" ]] || return 1
  base="$(images_layer_blobs "$CACHE/$name" | xargs -n1 basename)"
  va="$(images_layer_blobs "$a" | xargs -n1 basename)"
  vb="$(images_layer_blobs "$b" | xargs -n1 basename)"
  [[ "$(wc -l <<<"$va")" == "$(wc -l <<<"$base")" ]] || { echo "layer count differs"; return 1; }
  if [[ -n "$(sort <(echo "$base") <(echo "$va") <(echo "$vb") | uniq -d)" ]]; then
    echo "variants share layer blobs"
    return 1
  fi
  check_entrypoint "$name" "$a"
}

check_bad_variant_rejected() {
  ! images_build multilayer "$CACHE" "bad/variant" 2>/dev/null
}

check_output_mismatch_rejected() {
  ! images_check_output multilayer "$CACHE" "multilayer layer-1 layer-2" &&
    ! images_check_output user "$CACHE" "uid=0(root) gid=0(root)"
}

index_digests() {
  local n
  for n in $(built_names); do sha256sum "$CACHE/$n/index.json"; done
}

check_idempotent_rebuild() {
  local before after t0
  before="$(index_digests)"
  t0=$SECONDS
  images_build_all "$CACHE" $WITH_LARGE >/dev/null 2>&1 || return 1
  after="$(index_digests)"
  [[ "$before" == "$after" ]] || { echo "layouts changed on rebuild"; return 1; }
  ((SECONDS - t0 <= 3)) || { echo "cached rebuild took $((SECONDS - t0))s"; return 1; }
}

check_concurrent_builds() {
  local c="$TMP/concurrent" p1 p2 rc=0
  images_build multilayer "$c" >"$TMP/c1" 2>/dev/null & p1=$!
  images_build multilayer "$c" >"$TMP/c2" 2>/dev/null & p2=$!
  wait "$p1" || rc=1
  wait "$p2" || rc=1
  ((rc == 0)) && [[ "$(cat "$TMP/c1")" == "$(cat "$TMP/c2")" ]] &&
    [[ "$(images_layer_count "$c/multilayer")" == 3 ]] &&
    [[ -z "$(find "$c" -maxdepth 1 -name '.build-*')" ]]
}

check_usage_errors() {
  if images_build no-such-image "$TMP/x" 2>/dev/null; then return 1; fi
  if images_build multilayer "" 2>/dev/null; then return 1; fi
  if images_push "$CACHE/multilayer" 1 r t zstd 2>/dev/null; then return 1; fi
  if images_push "$TMP/not-a-layout" 1 r t 2>/dev/null; then return 1; fi
  return 0
}

raw_manifest() { skopeo inspect --raw --tls-verify=false "docker://$1"; }

# content_type REF: the Content-Type the registry serves the manifest with.
content_type() {
  local ref="$1" repo tag
  repo="${ref#*/}" tag="${ref##*:}"
  repo="${repo%:*}"
  curl -fsS -o /dev/null -w '%{content_type}' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$REG_PORT/v2/$repo/manifests/$tag"
}

check_media_types() {
  local oci_ref docker_ref oci docker refs
  mapfile -t refs < <(images_push_media_variants "$CACHE/multilayer" "$REG_PORT" selftest/multilayer)
  oci_ref="${refs[0]}" docker_ref="${refs[1]}"
  oci="$(raw_manifest "$oci_ref")" && docker="$(raw_manifest "$docker_ref")" || return 1
  jq -e '.mediaType == "application/vnd.oci.image.manifest.v1+json" and
         .config.mediaType == "application/vnd.oci.image.config.v1+json" and
         ([.layers[].mediaType] | unique) == ["application/vnd.oci.image.layer.v1.tar+gzip"]' \
    <<<"$oci" >/dev/null || { echo "OCI manifest: $oci"; return 1; }
  jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json" and
         .config.mediaType == "application/vnd.docker.container.image.v1+json" and
         ([.layers[].mediaType] | unique) == ["application/vnd.docker.image.rootfs.diff.tar.gzip"]' \
    <<<"$docker" >/dev/null || { echo "Docker manifest: $docker"; return 1; }
  [[ "$(content_type "$oci_ref")" == application/vnd.oci.image.manifest.v1+json ]] ||
    { echo "OCI Content-Type: $(content_type "$oci_ref")"; return 1; }
  [[ "$(content_type "$docker_ref")" == application/vnd.docker.distribution.manifest.v2+json ]] ||
    { echo "Docker Content-Type: $(content_type "$docker_ref")"; return 1; }
  # Same image: identical layer blobs and config, only the media types differ.
  [[ "$(jq -c '[.layers[].digest]' <<<"$oci")" == "$(jq -c '[.layers[].digest]' <<<"$docker")" ]] &&
    [[ "$(jq -r .config.digest <<<"$oci")" == "$(jq -r .config.digest <<<"$docker")" ]]
}

check_pushed_layer_counts() {
  local n ref got
  for n in $(built_names); do
    ref="$(images_push "$CACHE/$n" "$REG_PORT" "selftest/$n" v1)" || return 1
    got="$(raw_manifest "$ref" | jq '.layers | length')"
    [[ "$got" == "$(images_layer_count "$CACHE/$n")" ]] || { echo "$n: registry has $got layers"; return 1; }
  done
}

# check_ctr_run NAME: pull NAME:v1 (pushed by check_pushed_layer_counts) into
# containerd and run it with runc; the output must match.
check_ctr_run() {
  local name="$1" ref="127.0.0.1:$REG_PORT/selftest/$1:v1" out
  ctr -a "$PEERS_CONTAINERD_SOCK" image pull -q --plain-http "$ref" >/dev/null || return 1
  out="$(timeout 120 ctr -a "$PEERS_CONTAINERD_SOCK" run --rm "$ref" "selftest-$name" 2>&1)" ||
    { echo "ctr run failed: $out"; return 1; }
  images_check_output "$name" "$CACHE" "$out" || { echo "$name printed: $out"; return 1; }
}

main() {
  h_on_exit teardown
  parse_args "$@"
  if [[ -z "$WITH_LARGE" ]] && h_long && [[ "${E2E_SKIP_LARGE:-0}" != 1 ]]; then
    WITH_LARGE="--with-large"
  fi
  [[ $EUID -eq 0 ]] || { h_fail "setup: must run as root (chroot, chown)"; return 1; }
  TMP="$(mktemp -d /tmp/imgself.XXXXXX)"
  CACHE="$TMP/cache"

  # Building every image is setup (what the images hold is checked below).
  local times name secs
  times="$(images_build_all "$CACHE" $WITH_LARGE 2>/dev/null)" \
    || { h_fail "setup: images_build_all"; return 1; }
  echo "SETUP: images_build_all builds $(built_names | wc -l) images"
  while read -r name secs; do
    [[ -n "$name" ]] && h_figure "build $name (cold cache)" "$secs" s
  done <<<"$times"

  h_check "layer counts" check_layer_counts
  h_check "multilayer: one file per layer" check_multilayer_files
  h_check "whiteout: .wh. files and opaque marker in layer tars" check_whiteouts
  h_check "links: hardlinks, symlinks, target > 100 bytes" check_links
  h_check "deep: one file per layer" check_deep_one_file_per_layer
  h_check "user: config.user and /etc/passwd, /etc/group" check_user_config
  if [[ -n "$WITH_LARGE" ]]; then
    h_check "large: >= ${IMAGES_LARGE_MB} MiB layer" check_large_layer
  else
    h_skip "large: the ${IMAGES_LARGE_MB} MiB image (layer size, entrypoint under umoci and containerd)" \
      "built only with --with-large or in the long mode (GUEST_PULL_TEST_MODE=long)"
  fi
  local n
  for n in $(built_names); do
    h_check "$n: entrypoint output after umoci unpack" check_entrypoint "$n"
  done
  h_check "wrong outputs are rejected" check_output_mismatch_rejected
  h_check "whiteout variants: unique blobs, same output" check_variant whiteout
  h_check "multilayer variants: unique blobs, same output" check_variant multilayer
  h_check "bad variant name rejected" check_bad_variant_rejected
  h_check "rebuild is cached and unchanged" check_idempotent_rebuild
  h_check "concurrent builds of one image" check_concurrent_builds
  h_check "usage errors fail" check_usage_errors

  REG_PORT="$(peers_free_port)"
  h_setup_here "start the registry" peers_start_registry "$TMP/registry" "$REG_PORT" || return 1
  h_check "OCI vs Docker v2s2 media types after push" check_media_types
  h_check "pushed manifests keep layer counts" check_pushed_layer_counts

  if ((!WITH_CONTAINERD)); then
    h_skip "entrypoint output under containerd+runc" "--no-containerd"
  else
    h_setup_here "start containerd" peers_start_containerd "$TMP/ctd" "$REG_PORT" || return 1
    for n in $(built_names); do
      h_check "$n: entrypoint output under containerd+runc" check_ctr_run "$n"
    done
  fi
}

main "$@"
