#!/usr/bin/env bash
# guest_standin.sh: a stand-in for the patched kata runtime + agent (no VM).
#
# It does what a confidential guest does with a guest-pulled rootfs:
#  1. host side (kata shim): Prepares a container rootfs snapshot on the
#     chain ID through containerd's snapshot API (ctr -n NS snapshots
#     --snapshotter NAME prepare/mounts), i.e. the mounts containerd hands the
#     shim, and finds the `io.katacontainers.volume=` option on the single
#     fuse.guest-pull-overlayfs mount;
#  2. decodes it and requires it valid under kata's Go and Rust rules
#     (guest-pull-verity decode) and well formed (image_guest_pull, source
#     pinned by the manifest digest, layer-count, per-layer keys);
#  3. guest side (agent): pulls the image BY MANIFEST DIGEST with skopeo into
#     a private "guest" dir, checks the raw manifest's digest, every layer
#     blob's digest and diff_id (in order) against the volume metadata and the
#     image config, and each layer's dm-verity root hash (guest-pull-verity
#     layer, and guest-pull-verity index + veritysetup for the tree) against
#     the expected one;
#  4. assembles the rootfs in layer order with whiteouts honoured (umoci
#     unpack) and runs the image's entrypoint (from the image config: args,
#     env, working dir, user) in private mount/pid/ipc/uts/net namespaces
#     chrooted into it (unshare --root), printing its output on stdout.
# Any mismatch refuses loudly: a "guest-standin: REFUSED: ..." line on stderr
# and exit status 1. Progress goes to stderr; stdout is the entrypoint's
# output only.
#
# Usage: guest_standin.sh --address SOCK --chain-id sha256:HEX [options]
#        guest_standin.sh --option 'io.katacontainers.volume=...' [options]
#   --address SOCK        containerd socket
#   --chain-id ID         top layer chain ID of the image (snapshot parent)
#   --namespace NS        containerd namespace (default k8s.io)
#   --snapshotter NAME    snapshotter name (default guest-pull)
#   --option OPT          skip step 1: use this mount option string (one
#                         option or the whole comma-separated list)
#   --workdir DIR         private guest dir (default: a new temp dir, removed
#                         at exit); must not exist or be empty
#   --keep                keep the workdir and the rootfs snapshot
#   --allow-missing-hash  accept layers without an expected verity hash
#   --no-run              verify and assemble, but do not run the entrypoint
#   --timeout SECS        bound for every external command (default 300)
#   --verity-tool PATH    guest-pull-verity binary (default $GUEST_PULL_VERITY,
#                         else bazel-bin/kata_volume/tools/guest-pull-verity)
# Exit: 0 ok, 1 refused (verification failed), 2 usage, 3 other error
# (containerd, registry, tools), 4 the entrypoint failed.
set -euo pipefail

STANDIN_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly STANDIN_REPO
readonly VOLUME_PREFIX="io.katacontainers.volume="
readonly ZERO_SALT="0000000000000000000000000000000000000000000000000000000000000000"
readonly EXPECTED_VERITY_PARAMS="format=tarfs-index,hash=sha256,data-block=4096,hash-block=4096,salt=${ZERO_SALT},superblock=none"

ADDRESS=""
CHAIN_ID=""
NAMESPACE="k8s.io"
SNAPSHOTTER="guest-pull"
OPTION_STRING=""
WORKDIR=""
KEEP=0
ALLOW_MISSING_HASH=0
RUN_ENTRYPOINT=1
CMD_TIMEOUT=300
VERITY_TOOL="${GUEST_PULL_VERITY:-}"

SNAPSHOT_KEY=""
OWN_WORKDIR=0

# ------------------------------------------------------------------ output

log() { printf 'guest-standin: %s\n' "$*" >&2; }

refuse() {
  printf 'guest-standin: REFUSED: %s\n' "$*" >&2
  exit 1
}

die() {
  printf 'guest-standin: ERROR: %s\n' "$*" >&2
  exit 3
}

usage() {
  sed -n '/^# Usage:/,/^# Exit:/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

usage_error() {
  printf 'guest-standin: %s\n' "$*" >&2
  printf 'Usage: %s --address SOCK --chain-id sha256:HEX [options] (--help for more)\n' "$0" >&2
  exit 2
}

# bounded CMD...: runs CMD with the per-command time bound.
bounded() { timeout "$CMD_TIMEOUT" "$@"; }

# ------------------------------------------------------------------- setup

parse_args() {
  while (($#)); do
    case "$1" in
      --address) ADDRESS="${2:?--address needs a value}"; shift 2 ;;
      --chain-id) CHAIN_ID="${2:?--chain-id needs a value}"; shift 2 ;;
      --namespace) NAMESPACE="${2:?--namespace needs a value}"; shift 2 ;;
      --snapshotter) SNAPSHOTTER="${2:?--snapshotter needs a value}"; shift 2 ;;
      --option) OPTION_STRING="${2:?--option needs a value}"; shift 2 ;;
      --workdir) WORKDIR="${2:?--workdir needs a value}"; shift 2 ;;
      --keep) KEEP=1; shift ;;
      --allow-missing-hash) ALLOW_MISSING_HASH=1; shift ;;
      --no-run) RUN_ENTRYPOINT=0; shift ;;
      --timeout) CMD_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --verity-tool) VERITY_TOOL="${2:?--verity-tool needs a value}"; shift 2 ;;
      -h | --help) usage ;;
      *) usage_error "unknown argument '$1'" ;;
    esac
  done
  [[ "$CMD_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a positive integer"
  if [[ -z "$OPTION_STRING" ]]; then
    [[ -n "$ADDRESS" ]] || usage_error "--address is required (or --option)"
    [[ "$CHAIN_ID" =~ ^sha256:[0-9a-f]{64}$ ]] || usage_error "--chain-id must be sha256:<64 hex>"
  fi
}

require_tools() {
  local t
  for t in ctr skopeo umoci jq veritysetup unshare gzip zstd sha256sum base64 timeout; do
    command -v "$t" >/dev/null 2>&1 || die "required command '$t' not found"
  done
  if [[ -z "$VERITY_TOOL" ]]; then
    VERITY_TOOL="$STANDIN_REPO/bazel-bin/kata_volume/tools/guest-pull-verity"
  fi
  [[ -x "$VERITY_TOOL" ]] || die "guest-pull-verity not executable at $VERITY_TOOL (bazel build //kata_volume/tools:guest-pull-verity or set GUEST_PULL_VERITY)"
}

make_workdir() {
  if [[ -z "$WORKDIR" ]]; then
    WORKDIR="$(mktemp -d /tmp/guest-standin.XXXXXX)"
    OWN_WORKDIR=1
  else
    mkdir -p "$WORKDIR"
    [[ -z "$(ls -A "$WORKDIR")" ]] || die "workdir $WORKDIR is not empty"
    OWN_WORKDIR=1
  fi
  chmod 0700 "$WORKDIR"
}

cleanup() {
  local status=$?
  set +e
  if [[ -n "$SNAPSHOT_KEY" && "$KEEP" == 0 ]]; then
    ctr_snap rm "$SNAPSHOT_KEY" >/dev/null 2>&1 ||
      log "warning: could not remove rootfs snapshot $SNAPSHOT_KEY"
  fi
  if [[ "$OWN_WORKDIR" == 1 && "$KEEP" == 0 && -n "$WORKDIR" ]]; then
    # Nothing is mounted there: the entrypoint's /proc lived in its own
    # mount namespace, gone with it.
    rm -rf "$WORKDIR"
  elif [[ -n "$WORKDIR" ]]; then
    log "kept $WORKDIR"
  fi
  exit "$status"
}

# ------------------------------------------------- step 1: containerd side

ctr_snap() {
  bounded ctr -a "$ADDRESS" -n "$NAMESPACE" snapshots --snapshotter "$SNAPSHOTTER" "$@"
}

# prepare_rootfs: Prepares the container rootfs on CHAIN_ID and sets
# OPTION_STRING from the single mount containerd returns.
prepare_rootfs() {
  local out lines mtype opts
  SNAPSHOT_KEY="guest-standin-$$-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  log "preparing rootfs snapshot $SNAPSHOT_KEY on $CHAIN_ID ($SNAPSHOTTER, namespace $NAMESPACE)"
  if ! out="$(ctr_snap prepare "$SNAPSHOT_KEY" "$CHAIN_ID" 2>&1)"; then
    SNAPSHOT_KEY=""
    die "rootfs Prepare failed: $out"
  fi
  out="$(ctr_snap mounts "$WORKDIR/rootfs-mnt" "$SNAPSHOT_KEY" 2>&1)" ||
    die "ctr snapshots mounts $SNAPSHOT_KEY failed: $out"
  lines="$(grep -c '^mount ' <<<"$out" || true)"
  [[ "$lines" == 1 ]] || refuse "expected exactly one rootfs mount, containerd returned $lines: $out"
  # Format (ctr): mount -t TYPE SOURCE TARGET -o OPT1,OPT2,...
  read -r _ _ mtype _ _ _ opts <<<"$out"
  log "rootfs mount type $mtype"
  [[ "$mtype" == fuse.* || "$mtype" == fuse3.* ]] ||
    refuse "rootfs mount type '$mtype' is not a FUSE guest-pull type (the shim would mount it on the host)"
  [[ "${mtype#*.}" == guest-pull-overlayfs* ]] ||
    refuse "rootfs mount type '$mtype' is not guest-pull-overlayfs (the patched shim would not skip the host mount)"
  OPTION_STRING="$opts"
}

# --------------------------------------------------- step 2: the volume

# extract_volume_option: the io.katacontainers.volume= option from
# OPTION_STRING (exactly one).
extract_volume_option() {
  local -a opts found=()
  local o
  IFS=',' read -r -a opts <<<"$OPTION_STRING"
  for o in "${opts[@]}"; do
    [[ "$o" == "$VOLUME_PREFIX"* ]] && found+=("$o")
  done
  ((${#found[@]} == 1)) || refuse "expected one ${VOLUME_PREFIX} option, found ${#found[@]} in: $OPTION_STRING"
  VOLUME_OPTION="${found[0]}"
}

# decode_volume: decodes and validates under both rule sets; writes the JSON
# to $WORKDIR/volume.json.
decode_volume() {
  local out status=0 go rust
  out="$(bounded "$VERITY_TOOL" decode "$VOLUME_OPTION" 2>&1)" || status=$?
  go="$(sed -n 's/^go_valid: //p' <<<"$out")"
  rust="$(sed -n 's/^rust_valid: //p' <<<"$out")"
  [[ -n "$go" && -n "$rust" ]] || refuse "volume option does not decode (exit $status): $out"
  log "volume: go_valid: $go; rust_valid: $rust"
  [[ "$go" == yes* ]] || refuse "kata's Go runtime would reject the volume: go_valid: $go"
  [[ "$rust" == yes* ]] || refuse "kata's Rust runtime would reject the volume: rust_valid: $rust"
  ((status == 0)) || refuse "decode exited $status: $out"
  sed '/^go_valid: /,$d' <<<"$out" >"$WORKDIR/volume.json"
  jq -e . "$WORKDIR/volume.json" >/dev/null || refuse "decoded volume is not JSON: $out"
}

# meta KEY: prints image_pull.metadata[KEY] ("" if absent).
meta() { jq -r --arg k "$1" '.image_pull.metadata[$k] // ""' "$WORKDIR/volume.json"; }

# read_volume: checks the volume's shape and loads the expected image:
# SOURCE, MANIFEST_DIGEST, LAYER_COUNT, EXP_DIGEST[i], EXP_DIFF_ID[i],
# EXP_HASH[i] (bottom layer first).
read_volume() {
  local vtype i
  vtype="$(jq -r '.volume_type // ""' "$WORKDIR/volume.json")"
  [[ "$vtype" == image_guest_pull ]] || refuse "volume_type is '$vtype', not image_guest_pull"
  SOURCE="$(jq -r '.source // ""' "$WORKDIR/volume.json")"
  MANIFEST_DIGEST="$(meta guest-pull.manifest-digest)"
  [[ "$MANIFEST_DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]] ||
    refuse "guest-pull.manifest-digest '$MANIFEST_DIGEST' is not sha256:<64 hex>"
  [[ "$SOURCE" == *"@$MANIFEST_DIGEST" ]] ||
    refuse "source '$SOURCE' is not pinned by the manifest digest $MANIFEST_DIGEST"
  [[ -n "$(meta guest-pull.image-ref)" ]] || refuse "guest-pull.image-ref is missing"
  [[ "$(meta guest-pull.verity-params)" == "$EXPECTED_VERITY_PARAMS" ]] ||
    refuse "guest-pull.verity-params '$(meta guest-pull.verity-params)' is not '$EXPECTED_VERITY_PARAMS'"
  LAYER_COUNT="$(meta guest-pull.layer-count)"
  [[ "$LAYER_COUNT" =~ ^[1-9][0-9]*$ ]] || refuse "guest-pull.layer-count '$LAYER_COUNT' is not a positive number"
  EXP_DIGEST=(); EXP_DIFF_ID=(); EXP_HASH=()
  for ((i = 0; i < LAYER_COUNT; i++)); do
    EXP_DIGEST[i]="$(meta "guest-pull.layer.$i.digest")"
    EXP_DIFF_ID[i]="$(meta "guest-pull.layer.$i.diff-id")"
    EXP_HASH[i]="$(meta "guest-pull.layer.$i.verity-root-hash")"
    [[ "${EXP_DIGEST[i]}" =~ ^sha256:[0-9a-f]{64}$ ]] ||
      refuse "guest-pull.layer.$i.digest '${EXP_DIGEST[i]}' is not sha256:<64 hex>"
    if [[ -z "${EXP_HASH[i]}" && "$ALLOW_MISSING_HASH" == 0 ]]; then
      refuse "layer $i (${EXP_DIGEST[i]}) has no expected verity root hash; cannot verify it"
    fi
  done
  [[ -z "$(meta "guest-pull.layer.$LAYER_COUNT.digest")" ]] ||
    refuse "metadata lists more layers than guest-pull.layer-count=$LAYER_COUNT"
  log "image $(meta guest-pull.image-ref): source $SOURCE, $LAYER_COUNT layer(s)"
}

# ------------------------------------------------------ step 3: the guest

# fetch_raw_manifest: the manifest by digest, hashed here (not trusting the
# registry or skopeo); sets RAW_LAYERS (digests, bottom first).
fetch_raw_manifest() {
  local raw="$WORKDIR/manifest.raw" got mtype
  bounded skopeo inspect --raw --tls-verify=false "docker://$SOURCE" >"$raw" 2>"$WORKDIR/skopeo.err" ||
    die "skopeo inspect --raw docker://$SOURCE failed: $(cat "$WORKDIR/skopeo.err")"
  got="sha256:$(sha256sum <"$raw" | cut -d' ' -f1)"
  [[ "$got" == "$MANIFEST_DIGEST" ]] ||
    refuse "registry served manifest $got for $SOURCE, expected $MANIFEST_DIGEST"
  mtype="$(jq -r '.mediaType // ""' "$raw")"
  jq -e '.layers | type == "array"' "$raw" >/dev/null ||
    refuse "manifest $MANIFEST_DIGEST ($mtype) has no layers array (an index/manifest list is not accepted here)"
  mapfile -t RAW_LAYERS < <(jq -r '.layers[].digest' "$raw")
  log "manifest $MANIFEST_DIGEST verified (${mtype:-no mediaType}, ${#RAW_LAYERS[@]} layers)"
}

# pull_image: skopeo copy by digest into a private OCI layout (skopeo
# verifies each blob against its digest while copying).
pull_image() {
  log "pulling $SOURCE into $WORKDIR/oci"
  bounded skopeo copy --quiet --src-tls-verify=false "docker://$SOURCE" "oci:$WORKDIR/oci:x" \
    >"$WORKDIR/skopeo.out" 2>&1 ||
    refuse "skopeo copy of $SOURCE failed (tampered or missing blob?): $(tail -n 5 "$WORKDIR/skopeo.out")"
}

blob_path() { printf '%s/oci/blobs/%s/%s\n' "$WORKDIR" "${1%%:*}" "${1#*:}"; }

# read_pulled_image: the layout's manifest and config; sets LAYERS and
# CONFIG_DIFF_IDS (bottom first).
read_pulled_image() {
  local mdigest mfile config
  mdigest="$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "x") | .digest' \
    "$WORKDIR/oci/index.json")"
  mfile="$(blob_path "$mdigest")"
  [[ -f "$mfile" ]] || die "pulled layout has no manifest for tag x"
  mapfile -t LAYERS < <(jq -r '.layers[].digest' "$mfile")
  config="$(jq -r '.config.digest' "$mfile")"
  CONFIG_FILE="$(blob_path "$config")"
  [[ "sha256:$(sha256sum <"$CONFIG_FILE" | cut -d' ' -f1)" == "$config" ]] ||
    refuse "image config blob does not match its digest $config"
  mapfile -t CONFIG_DIFF_IDS < <(jq -r '.rootfs.diff_ids[]' "$CONFIG_FILE")
}

# check_layer_lists: the volume, the manifest by digest, the pulled layout
# and the image config agree on the layers, in order.
check_layer_lists() {
  local i
  ((${#RAW_LAYERS[@]} == LAYER_COUNT)) ||
    refuse "volume says $LAYER_COUNT layers, manifest $MANIFEST_DIGEST has ${#RAW_LAYERS[@]}"
  ((${#LAYERS[@]} == LAYER_COUNT)) || refuse "pulled image has ${#LAYERS[@]} layers, expected $LAYER_COUNT"
  ((${#CONFIG_DIFF_IDS[@]} == LAYER_COUNT)) ||
    refuse "image config lists ${#CONFIG_DIFF_IDS[@]} diff_ids, expected $LAYER_COUNT"
  for ((i = 0; i < LAYER_COUNT; i++)); do
    [[ "${RAW_LAYERS[i]}" == "${EXP_DIGEST[i]}" ]] ||
      refuse "layer $i: manifest has ${RAW_LAYERS[i]}, volume expects ${EXP_DIGEST[i]} (wrong layer or order)"
    [[ "${LAYERS[i]}" == "${EXP_DIGEST[i]}" ]] ||
      refuse "layer $i: pulled layout has ${LAYERS[i]}, volume expects ${EXP_DIGEST[i]}"
    if [[ -n "${EXP_DIFF_ID[i]}" && "${CONFIG_DIFF_IDS[i]}" != "${EXP_DIFF_ID[i]}" ]]; then
      refuse "layer $i: image config diff_id ${CONFIG_DIFF_IDS[i]}, volume expects ${EXP_DIFF_ID[i]}"
    fi
  done
}

# kv KEY TEXT: the value of a "key: value" line.
kv() { sed -n "s/^$1: //p" <<<"$2"; }

# verify_layer I: digest, diff_id and verity root hash of layer I, each
# computed independently of the volume.
verify_layer() {
  local i="$1" blob digest diff_id out idx vs hash tree magic
  blob="$(blob_path "${EXP_DIGEST[i]}")"
  [[ -f "$blob" ]] || refuse "layer $i blob ${EXP_DIGEST[i]} missing from the pulled layout"
  digest="sha256:$(sha256sum <"$blob" | cut -d' ' -f1)"
  [[ "$digest" == "${EXP_DIGEST[i]}" ]] ||
    refuse "layer $i: blob content hashes to $digest, volume expects ${EXP_DIGEST[i]}"
  magic="$(head -c 4 "$blob" | od -An -tx1 | tr -d ' \n')"
  if [[ "$magic" == 1f8b* ]]; then
    diff_id="sha256:$(bounded gzip -dc <"$blob" | sha256sum | cut -d' ' -f1)"
  elif [[ "$magic" == 28b52ffd || "$magic" =~ ^5[0-9a-f]2a4d18$ ]]; then
    diff_id="sha256:$(bounded zstd -q -dc <"$blob" | sha256sum | cut -d' ' -f1)"
  else
    diff_id="$digest"
  fi
  [[ "$diff_id" == "${CONFIG_DIFF_IDS[i]}" ]] ||
    refuse "layer $i: uncompressed content hashes to $diff_id, image config says ${CONFIG_DIFF_IDS[i]}"
  [[ -z "${EXP_DIFF_ID[i]}" || "$diff_id" == "${EXP_DIFF_ID[i]}" ]] ||
    refuse "layer $i: diff_id $diff_id, volume expects ${EXP_DIFF_ID[i]}"

  out="$(bounded "$VERITY_TOOL" layer "$blob" 2>&1)" || die "guest-pull-verity layer failed on layer $i: $out"
  hash="$(kv verity_hash "$out")"
  [[ "$(kv diff_id "$out")" == "$diff_id" ]] ||
    refuse "layer $i: guest-pull-verity computes diff_id $(kv diff_id "$out"), expected $diff_id"

  idx="$WORKDIR/layer-$i.indexed"
  out="$(bounded "$VERITY_TOOL" index "$blob" "$idx" 2>&1)" || die "guest-pull-verity index failed on layer $i: $out"
  vs="$(bounded veritysetup format --no-superblock --salt="$ZERO_SALT" --hash=sha256 \
    --data-block-size=4096 --hash-block-size=4096 "$idx" "$idx.hashtree" 2>&1)" ||
    die "veritysetup format failed on layer $i: $vs"
  tree="$(sed -n 's/^Root hash:[[:space:]]*//p' <<<"$vs")"
  rm -f "$idx" "$idx.hashtree"
  [[ "$hash" == "$tree" ]] ||
    refuse "layer $i: guest-pull-verity root hash $hash but veritysetup computes $tree over the indexed layer"
  [[ "$(kv verity_hash "$out")" == "$tree" ]] ||
    refuse "layer $i: index wrote a file whose tree hash $tree differs from its reported $(kv verity_hash "$out")"
  if [[ -z "${EXP_HASH[i]}" ]]; then
    log "layer $i: ${EXP_DIGEST[i]} verity $tree (no expected hash; allowed by --allow-missing-hash)"
  elif [[ "$tree" != "${EXP_HASH[i]}" ]]; then
    refuse "layer $i (${EXP_DIGEST[i]}): dm-verity root hash $tree, volume expects ${EXP_HASH[i]}"
  fi
}

verify_layers() {
  local i start=$SECONDS
  for ((i = 0; i < LAYER_COUNT; i++)); do
    verify_layer "$i"
  done
  log "all $LAYER_COUNT layer(s) verified: digest, diff_id, dm-verity root hash ($((SECONDS - start))s)"
}

# ------------------------------------------------- step 4: rootfs and run

assemble_rootfs() {
  local out
  out="$(bounded umoci unpack --image "$WORKDIR/oci:x" "$WORKDIR/bundle" 2>&1)" ||
    die "umoci unpack failed: $out"
  ROOTFS="$WORKDIR/bundle/rootfs"
  log "rootfs assembled in $ROOTFS"
}

# run_entrypoint: the process from the runtime config umoci derived from the
# image config (entrypoint+cmd, env, cwd, user resolved in the image's
# /etc/passwd).
run_entrypoint() {
  local cfg="$WORKDIR/bundle/config.json" uid gid cwd status=0
  local -a args envs
  mapfile -t args < <(jq -r '.process.args[]' "$cfg")
  mapfile -t envs < <(jq -r '.process.env[]?' "$cfg")
  ((${#args[@]})) || refuse "image config has neither entrypoint nor cmd"
  uid="$(jq -r '.process.user.uid // 0' "$cfg")"
  gid="$(jq -r '.process.user.gid // 0' "$cfg")"
  cwd="$(jq -r '.process.cwd // "/"' "$cfg")"
  mkdir -p "$ROOTFS/proc"
  log "running entrypoint as $uid:$gid in $cwd: ${args[*]}"
  # --mount-proc mounts a fresh /proc at <new root>/proc after --root.
  env -i "${envs[@]}" "$(command -v timeout)" "$CMD_TIMEOUT" "$(command -v unshare)" \
    --mount --pid --ipc --uts --net --fork --kill-child --mount-proc=/proc \
    --root="$ROOTFS" --wd="$cwd" --setgid="$gid" --setuid="$uid" -- "${args[@]}" || status=$?
  ((status == 0)) || { log "entrypoint exited with status $status"; exit 4; }
}

main() {
  parse_args "$@"
  require_tools
  trap cleanup EXIT
  make_workdir
  [[ -n "$OPTION_STRING" ]] || prepare_rootfs
  extract_volume_option
  decode_volume
  read_volume
  fetch_raw_manifest
  pull_image
  read_pulled_image
  check_layer_lists
  verify_layers
  assemble_rootfs
  if ((RUN_ENTRYPOINT)); then run_entrypoint; fi
  log "OK: $SOURCE verified and run"
}

main "$@"
