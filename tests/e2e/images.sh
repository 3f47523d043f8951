# shellcheck shell=bash
# Entrypoint scripts are single-quoted on purpose: they expand in the image.
# shellcheck disable=SC2016
# images.sh: builds the e2e test images as OCI layouts (umoci + skopeo,
# busybox from busybox-static, no Docker engine) and pushes them to a
# loopback registry.
#
# Source it:   source tests/e2e/images.sh
#
#   images_names                         names of all images, one per line
#   images_build NAME CACHE_DIR [VARIANT]
#                                        build (or reuse) one image; prints the
#                                        OCI layout dir (tag "latest"). A
#                                        VARIANT ([A-Za-z0-9_.-]+) builds a
#                                        separate copy whose every layer blob
#                                        is unique (a /.variant file per
#                                        layer), for tests that count fetches
#   images_build_all CACHE_DIR [--with-large]
#                                        build every image (large only with
#                                        the flag); prints "NAME SECONDS" lines
#   images_ref NAME CACHE_DIR [VARIANT]  prints "oci:<layout>:latest"
#   images_push LAYOUT PORT REPO TAG [oci|v2s2]
#                                        push to 127.0.0.1:PORT/REPO:TAG with
#                                        OCI (default) or Docker v2s2 media
#                                        types; prints the pushed reference
#   images_push_media_variants LAYOUT PORT REPO
#                                        push REPO:oci and REPO:docker; prints
#                                        both references
#   images_expected_output NAME CACHE_DIR
#                                        the line the entrypoint prints
#   images_check_output NAME CACHE_DIR OUTPUT
#                                        0 if OUTPUT is what NAME must print
#   images_manifest LAYOUT               path of the "latest" manifest blob
#   images_layer_count LAYOUT            layers of the "latest" manifest
#   images_layer_blobs LAYOUT            layer blob paths, bottom first
#
# Images (each entrypoint prints one checkable line):
#   multilayer  3 layers, one file per layer
#   whiteout    deleted files (.wh.X), a directory replaced wholesale by umoci
#               (per-entry whiteouts) and an opaque directory (.wh..wh..opq,
#               hand-made layer added with `umoci raw add-layer`)
#   links       hardlinks (same and other directory), relative, absolute,
#               directory and dangling symlinks, a symlink target > 100 bytes
#   deep        IMAGES_DEEP_LAYERS (42) layers, each adding one small file
#   user        /etc/passwd and /etc/group with guest (uid/gid 1234),
#               config.user=guest, entrypoint `id`
#   large       one layer holding IMAGES_LARGE_MB (300) MiB of random data;
#               the data file is generated once into CACHE_DIR
# Docker vs OCI manifest media types: images_push ... v2s2 / oci, or
# images_push_media_variants.
#
# Each build is idempotent (a stamp file per image and recipe version), atomic
# (built in a temp dir, then renamed) and serialised per image with flock, so
# concurrent callers may share one cache dir. Every public function runs its
# work in a fresh bash with `set -euo pipefail` (errexit stays effective even
# when called from `if`/`||`), and sourcing does not change the caller's shell
# options. Needs: umoci, skopeo, busybox (static), jq, flock,
# tar, gzip, sha256sum.

IMAGES_RECIPE_VERSION="${IMAGES_RECIPE_VERSION:-7}"
IMAGES_DEEP_LAYERS="${IMAGES_DEEP_LAYERS:-42}"
IMAGES_LARGE_MB="${IMAGES_LARGE_MB:-300}"
IMAGES_BUSYBOX="${IMAGES_BUSYBOX:-/bin/busybox}"
IMAGES_TIMEOUT_SECS="${IMAGES_TIMEOUT_SECS:-900}"
IMAGES_LONG_DIR="links-long-target-directory-name-$(printf 'x%.0s' $(seq 1 80))"

IMAGES_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

_images_log() { echo "images.sh: $*" >&2; }
_images_die() { echo "images.sh: ERROR: $*" >&2; return 1; }

images_names() { printf '%s\n' multilayer whiteout links deep user large; }

# _images_run FUNC ARGS...: runs FUNC in a fresh bash with `set -euo pipefail`.
# A new process (not a subshell) keeps errexit effective even when the caller
# runs us inside `if`, `||` or `!`, where bash would silently ignore it.
_images_run() {
  IMAGES_RECIPE_VERSION="$IMAGES_RECIPE_VERSION" \
  IMAGES_DEEP_LAYERS="$IMAGES_DEEP_LAYERS" IMAGES_LARGE_MB="$IMAGES_LARGE_MB" \
  IMAGES_BUSYBOX="$IMAGES_BUSYBOX" IMAGES_TIMEOUT_SECS="$IMAGES_TIMEOUT_SECS" \
    bash -c 'set -euo pipefail; shopt -s inherit_errexit; source "$0"; "$@"' "$IMAGES_SH" "$@"
}

# _images_known NAME: fails unless NAME is one of images_names.
_images_known() {
  local n
  for n in $(images_names); do [[ "$n" == "$1" ]] && return 0; done
  _images_die "unknown image \"$1\" (known: $(images_names | tr '\n' ' '))"
}

_images_require_tools() {
  local t
  for t in umoci skopeo jq flock tar gzip sha256sum timeout; do
    command -v "$t" >/dev/null || _images_die "missing tool: $t"
  done
  [[ -x "$IMAGES_BUSYBOX" ]] || _images_die "missing static busybox at $IMAGES_BUSYBOX"
}

# _images_umoci ARGS...: umoci with a time bound.
_images_umoci() { timeout "$IMAGES_TIMEOUT_SECS" umoci "$@"; }

# _images_new_bundle LAYOUT BUNDLE: empty image "latest" unpacked to BUNDLE.
_images_new_bundle() {
  local layout="$1" bundle="$2"
  _images_umoci init --layout "$layout"
  _images_umoci new --image "$layout:latest"
  _images_umoci unpack --image "$layout:latest" "$bundle" >/dev/null
}

# _images_add_busybox ROOTFS: /bin/busybox plus the applets the entrypoints use.
_images_add_busybox() {
  local rootfs="$1" applet
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cp "$IMAGES_BUSYBOX" "$rootfs/bin/busybox"
  for applet in sh cat ls echo id readlink test [ stat sleep true false wc \
                head tail cut sha256sum tr find seq; do
    ln -sf busybox "$rootfs/bin/$applet"
  done
  # Images built within the same second would otherwise share a
  # byte-identical base layer (same chain ID), and containerd would skip it
  # for every image after the first. A stable per-image mtime on /bin keeps
  # each image's base layer its own.
  touch -d "@$(_images_identity_epoch)" "$rootfs/bin"
}

# _images_identity_epoch: a timestamp derived from the image being built
# (name and variant), the same on every rebuild.
_images_identity_epoch() {
  local sum
  sum="$(printf '%s/%s' "${_IMAGES_CURRENT:-}" "${_IMAGES_VARIANT:-}" | cksum | cut -d' ' -f1)"
  echo $((1500000000 + sum % 100000000))
}

# _images_variant_mark ROOT: with a variant, (re)writes ROOT/.variant so the
# next layer's blob is unique to this variant and layer.
_IMAGES_LAYER_NO=0
_images_variant_mark() {
  _IMAGES_LAYER_NO=$((_IMAGES_LAYER_NO + 1))
  [[ -n "${_IMAGES_VARIANT:-}" ]] || return 0
  echo "image=${_IMAGES_CURRENT:-} variant=$_IMAGES_VARIANT layer=$_IMAGES_LAYER_NO" >"$1/.variant"
}

# _images_repack LAYOUT BUNDLE: commit the bundle's changes as a new layer.
_images_repack() {
  _images_variant_mark "$2/rootfs"
  _images_umoci repack --refresh-bundle --image "$1:latest" "$2"
}

# _images_entrypoint LAYOUT SCRIPT [USER]: entrypoint /bin/sh -c SCRIPT.
_images_entrypoint() {
  local layout="$1" script="$2" user="${3:-}"
  local args=(--image "$layout:latest" --config.env PATH=/bin
              --config.workingdir /
              --config.entrypoint /bin/sh --config.entrypoint -c
              --config.entrypoint "$script")
  [[ -n "$user" ]] && args+=(--config.user "$user")
  _images_umoci config "${args[@]}"
}

# ---- recipes: each gets (LAYOUT, BUNDLE, CACHE_DIR) --------------------------

_images_recipe_multilayer() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs" i
  _images_add_busybox "$rootfs"
  for i in 1 2 3; do
    echo "layer-$i" >"$rootfs/etc/layer$i"
    _images_repack "$layout" "$bundle"
  done
  _images_entrypoint "$layout" 'echo multilayer $(cat /etc/layer1 /etc/layer2 /etc/layer3)'
}

# _images_opaque_layer_tar OUT: a hand-made layer making /opaque opaque.
_images_opaque_layer_tar() {
  local out="$1" stage
  stage="$(mktemp -d)"
  mkdir -p "$stage/opaque"
  : >"$stage/opaque/.wh..wh..opq"
  echo "new-1" >"$stage/opaque/new-1"
  _images_variant_mark "$stage"
  local entries=(opaque)
  [[ -e "$stage/.variant" ]] && entries+=(.variant)
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
    -C "$stage" -cf "$out" "${entries[@]}"
  rm -rf "$stage"
}

_images_recipe_whiteout() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs" tarfile
  _images_add_busybox "$rootfs"
  _images_repack "$layout" "$bundle"
  mkdir -p "$rootfs/data" "$rootfs/replaced/old-sub" "$rootfs/opaque/old-dir"
  echo keep >"$rootfs/data/keep"
  echo remove-me >"$rootfs/data/remove-me"
  echo gone >"$rootfs/gone"
  echo old-a >"$rootfs/replaced/old-a"
  echo old-b >"$rootfs/replaced/old-sub/old-b"
  echo old-1 >"$rootfs/opaque/old-1"
  echo old-2 >"$rootfs/opaque/old-dir/old-2"
  _images_repack "$layout" "$bundle"
  rm -rf "$rootfs/gone" "$rootfs/data/remove-me" "$rootfs/replaced"
  mkdir "$rootfs/replaced"
  echo new-file >"$rootfs/replaced/new-file"
  _images_repack "$layout" "$bundle"
  tarfile="$(mktemp)"
  _images_opaque_layer_tar "$tarfile"
  _images_umoci raw add-layer --image "$layout:latest" "$tarfile"
  rm -f "$tarfile"
  _images_entrypoint "$layout" \
    'e() { [ -e "$1" ] && echo present || echo absent; }; echo whiteout gone=$(e /gone) remove-me=$(e /data/remove-me) keep=$(cat /data/keep) replaced=$(ls -A /replaced) opaque=$(ls -A /opaque)'
}

_images_recipe_links() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs" long
  _images_add_busybox "$rootfs"
  _images_repack "$layout" "$bundle"
  long="/links/$IMAGES_LONG_DIR/target"
  mkdir -p "$rootfs/links/subdir" "$rootfs/links/$IMAGES_LONG_DIR"
  echo hardlink-content >"$rootfs/links/file"
  ln "$rootfs/links/file" "$rootfs/links/hard"
  ln "$rootfs/links/file" "$rootfs/links/subdir/hard2"
  ln -s file "$rootfs/links/rel"
  ln -s /links/file "$rootfs/links/abs"
  ln -s /links/subdir "$rootfs/links/dirlink"
  ln -s /does/not/exist "$rootfs/links/dangling"
  echo long-target >"$rootfs$long"
  ln -s "$long" "$rootfs/links/long"
  _images_repack "$layout" "$bundle"
  _images_entrypoint "$layout" \
    'cd /links; s() { [ "$1" -ef "$2" ] && echo yes || echo no; }; echo links hard=$(cat hard) same-inode=$(s file hard)$(s file subdir/hard2) nlink=$(stat -c %h file) rel=$(cat rel) abs=$(cat abs) dir=$(cat dirlink/hard2) dangling=$(readlink dangling) long=$(cat long) long-len=$(readlink long | wc -c)'
}

_images_recipe_deep() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs" i n
  _images_add_busybox "$rootfs"
  _images_repack "$layout" "$bundle"
  mkdir -p "$rootfs/deep"
  for ((i = 2; i <= IMAGES_DEEP_LAYERS; i++)); do
    # Three digits keep `ls` order numeric up to 999 layers.
    printf -v n '%03d' "$i"
    echo "layer-$n" >"$rootfs/deep/layer-$n"
    _images_repack "$layout" "$bundle"
  done
  _images_entrypoint "$layout" \
    'echo deep files=$(ls /deep | wc -l) first=$(cat /deep/layer-002) last=$(cat $(ls /deep/* | tail -n 1))'
}

_images_recipe_user() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs"
  _images_add_busybox "$rootfs"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'guest:x:1234:1234:Guest User:/home/guest:/bin/sh' >"$rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'guest:x:1234:' >"$rootfs/etc/group"
  mkdir -p "$rootfs/root" "$rootfs/home/guest"
  chown 1234:1234 "$rootfs/home/guest"
  _images_repack "$layout" "$bundle"
  _images_entrypoint "$layout" 'id' guest
}

# _images_random_file CACHE_DIR: prints the path of the shared random data
# file, generating it once (under a lock) if needed.
_images_random_file() {
  local cache="$1" file
  file="$cache/random-${IMAGES_LARGE_MB}M.bin"
  (
    flock -w "$IMAGES_TIMEOUT_SECS" 9 || _images_die "lock on $file timed out"
    if [[ ! -f "$file" ]]; then
      head -c "$((IMAGES_LARGE_MB * 1024 * 1024))" /dev/urandom >"$file.tmp"
      mv "$file.tmp" "$file"
    fi
  ) 9>"$file.lock"
  echo "$file"
}

_images_recipe_large() {
  local layout="$1" bundle="$2" rootfs="$2/rootfs" cache="$3" data
  _images_add_busybox "$rootfs"
  _images_repack "$layout" "$bundle"
  data="$(_images_random_file "$cache")"
  mkdir -p "$rootfs/large"
  cp "$data" "$rootfs/large/random.bin"
  _images_repack "$layout" "$bundle"
  _images_entrypoint "$layout" \
    'echo large size=$(stat -c %s /large/random.bin) head-sha256=$(head -c 1048576 /large/random.bin | sha256sum | cut -d" " -f1)'
}

# ---- building ---------------------------------------------------------------

# _images_add_manifest_media_type LAYOUT: umoci leaves the optional
# "mediaType" out of its manifests; real builders (buildkit, skopeo) set it and
# some clients expect it. Rewrites the "latest" manifest with the field and
# repoints index.json at the new blob.
_images_add_manifest_media_type() {
  local layout="$1" old new digest size
  old="$(_images_manifest "$layout")"
  new="$(mktemp "$layout/blobs/sha256/.manifest.XXXXXX")"
  jq -c '{schemaVersion, mediaType: "application/vnd.oci.image.manifest.v1+json"} + .' \
    "$old" | tr -d '\n' >"$new"
  digest="$(sha256sum "$new" | cut -d' ' -f1)"
  size="$(stat -c %s "$new")"
  mv "$new" "$layout/blobs/sha256/$digest"
  jq -c --arg d "sha256:$digest" --argjson s "$size" \
    '.manifests |= map(if .annotations["org.opencontainers.image.ref.name"] == "latest"
                       then .digest = $d | .size = $s else . end)' \
    "$layout/index.json" >"$layout/index.json.tmp"
  mv "$layout/index.json.tmp" "$layout/index.json"
  [[ "$old" == "$layout/blobs/sha256/$digest" ]] || rm -f "$old"
}

# _images_stamp NAME: recipe identity; a change rebuilds the cached image.
_images_stamp() {
  echo "recipe=$IMAGES_RECIPE_VERSION name=$1 variant=${_IMAGES_VARIANT:-} deep=$IMAGES_DEEP_LAYERS large_mb=$IMAGES_LARGE_MB busybox=$(sha256sum <"$IMAGES_BUSYBOX" | cut -c1-16)"
}

# _images_layout_name NAME: NAME, or NAME@VARIANT for a variant build.
_images_layout_name() { echo "$1${_IMAGES_VARIANT:+@$_IMAGES_VARIANT}"; }

# _images_set_variant VARIANT: validates and selects the variant.
_images_set_variant() {
  [[ -z "$1" || "$1" =~ ^[A-Za-z0-9_.-]+$ ]] ||
    _images_die "variant must match [A-Za-z0-9_.-]+, got \"$1\""
  _IMAGES_VARIANT="$1"
}

# _images_build_locked NAME CACHE: builds NAME unless its stamp matches.
_images_build_locked() {
  local name="$1" cache="$2" layout stamp want work
  layout="$cache/$(_images_layout_name "$name")"
  stamp="$layout.stamp"
  want="$(_images_stamp "$name")"
  if [[ -d "$layout" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  rm -rf "$layout" "$stamp"
  work="$(mktemp -d "$cache/.build-$(_images_layout_name "$name").XXXXXX")"
  _IMAGES_CURRENT="$name"
  _images_new_bundle "$work/oci" "$work/bundle"
  "_images_recipe_$name" "$work/oci" "$work/bundle" "$cache"
  _images_umoci gc --layout "$work/oci"
  _images_add_manifest_media_type "$work/oci"
  mv "$work/oci" "$layout"
  rm -rf "$work"
  echo "$want" >"$stamp"
}

_images_build_impl() {
  local name="$1" cache="${2:-}" start=$SECONDS dir
  [[ -n "$cache" ]] || _images_die "usage: images_build NAME CACHE_DIR [VARIANT]"
  _images_known "$name"
  _images_set_variant "${3:-}"
  _images_require_tools
  mkdir -p "$cache"
  cache="$(cd "$cache" && pwd)"
  dir="$(_images_layout_name "$name")"
  (
    flock -w "$IMAGES_TIMEOUT_SECS" 8 || _images_die "lock for $dir timed out"
    _images_build_locked "$name" "$cache"
  ) 8>"$cache/.$dir.lock"
  _images_log "$dir ready in $((SECONDS - start))s: $cache/$dir"
  echo "$cache/$dir"
}

_images_build_all_impl() {
  local cache="${1:-}" with_large="${2:-}" name t0 t1
  [[ -n "$cache" ]] || _images_die "usage: images_build_all CACHE_DIR [--with-large]"
  [[ -z "$with_large" || "$with_large" == "--with-large" ]] ||
    _images_die "unknown option $with_large"
  for name in $(images_names); do
    [[ "$name" == large && -z "$with_large" ]] && continue
    t0=$(date +%s%N)
    _images_build_impl "$name" "$cache" >/dev/null
    t1=$(date +%s%N)
    printf '%s %d.%01d\n' "$name" "$(((t1 - t0) / 1000000000))" \
      "$(((t1 - t0) / 100000000 % 10))"
  done
}

_images_ref_impl() {
  local dir
  _images_known "$1"
  _images_set_variant "${3:-}"
  dir="$(_images_layout_name "$1")"
  [[ -d "${2:-}/$dir" ]] || _images_die "$dir is not built in \"${2:-}\""
  echo "oci:$(cd "$2" && pwd)/$dir:latest"
}

images_build() { _images_run _images_build_impl "$@"; }
images_build_all() { _images_run _images_build_all_impl "$@"; }
images_ref() { _images_run _images_ref_impl "$@"; }

# ---- inspecting -------------------------------------------------------------

# _images_manifest LAYOUT: path of the manifest blob tagged "latest".
_images_manifest() {
  local layout="$1" digest
  digest="$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' \
    "$layout/index.json")"
  [[ "$digest" == sha256:* ]] || _images_die "no \"latest\" tag in $layout"
  echo "$layout/blobs/sha256/${digest#sha256:}"
}

_images_layer_count_impl() {
  local manifest
  manifest="$(_images_manifest "$1")"
  jq '.layers | length' "$manifest"
}

_images_layer_blobs_impl() {
  local manifest digests d
  manifest="$(_images_manifest "$1")"
  digests="$(jq -r '.layers[].digest' "$manifest")"
  for d in $digests; do
    echo "$1/blobs/sha256/${d#sha256:}"
  done
}

_images_expected_output_impl() {
  local name="$1" cache="${2:-}" long file
  _images_known "$name"
  case "$name" in
    multilayer) echo "multilayer layer-1 layer-2 layer-3" ;;
    whiteout) echo "whiteout gone=absent remove-me=absent keep=keep replaced=new-file opaque=new-1" ;;
    links)
      long="/links/$IMAGES_LONG_DIR/target"
      echo "links hard=hardlink-content same-inode=yesyes nlink=3 rel=hardlink-content abs=hardlink-content dir=hardlink-content dangling=/does/not/exist long=long-target long-len=$((${#long} + 1))"
      ;;
    deep)
      printf 'deep files=%d first=layer-002 last=layer-%03d\n' \
        "$((IMAGES_DEEP_LAYERS - 1))" "$IMAGES_DEEP_LAYERS"
      ;;
    user) echo "uid=1234(guest) gid=1234(guest)" ;;
    large)
      [[ -n "$cache" ]] || _images_die "large needs CACHE_DIR"
      file="$cache/random-${IMAGES_LARGE_MB}M.bin"
      [[ -f "$file" ]] || _images_die "no random data in $cache (build large first)"
      echo "large size=$((IMAGES_LARGE_MB * 1024 * 1024)) head-sha256=$(head -c 1048576 "$file" | sha256sum | cut -d' ' -f1)"
      ;;
  esac
}

images_manifest() { _images_run _images_manifest "$@"; }
images_layer_count() { _images_run _images_layer_count_impl "$@"; }
images_layer_blobs() { _images_run _images_layer_blobs_impl "$@"; }
images_expected_output() { _images_run _images_expected_output_impl "$@"; }

# images_check_output NAME CACHE OUTPUT: exact match, except `user`, whose
# groups= suffix depends on the runtime (supplementary groups).
images_check_output() {
  local name="$1" cache="$2" output="$3" want
  want="$(images_expected_output "$name" "$cache")" || return 1
  output="$(printf '%s' "$output" | tr -d '\r' | sed -e '/^$/d' | tail -n 1)"
  if [[ "$name" == user ]]; then
    [[ "$output" == "$want" || "$output" == "$want groups="* ]]
  else
    [[ "$output" == "$want" ]]
  fi
}

# ---- pushing ----------------------------------------------------------------

_images_push_impl() {
  local layout="${1:-}" port="${2:-}" repo="${3:-}" tag="${4:-}" format="${5:-oci}"
  [[ -n "$layout" && -n "$port" && -n "$repo" && -n "$tag" ]] ||
    _images_die "usage: images_push LAYOUT PORT REPO TAG [oci|v2s2]"
  [[ "$format" == oci || "$format" == v2s2 ]] ||
    _images_die "format must be oci or v2s2, got \"$format\""
  [[ -f "$layout/index.json" ]] || _images_die "$layout is not an OCI layout"
  local dest="127.0.0.1:$port/$repo:$tag"
  timeout "$IMAGES_TIMEOUT_SECS" skopeo --insecure-policy copy --quiet \
    --dest-tls-verify=false --format "$format" \
    "oci:$layout:latest" "docker://$dest" >&2 ||
    _images_die "skopeo copy of $layout to $dest ($format) failed"
  echo "$dest"
}

_images_push_media_variants_impl() {
  _images_push_impl "${1:-}" "${2:-}" "${3:-}" oci oci
  _images_push_impl "${1:-}" "${2:-}" "${3:-}" docker v2s2
}

images_push() { _images_run _images_push_impl "$@"; }
images_push_media_variants() { _images_run _images_push_media_variants_impl "$@"; }
