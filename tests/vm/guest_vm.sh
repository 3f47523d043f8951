#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run through h_setup/h_check and the EXIT trap
# guest_vm.sh: a real Linux guest verifies every layer with dm-verity.
#
# Builds the static guest agent, the guest kernel + initramfs
# (build_initramfs.sh) and the host runner (tests/tools/guestvm), pushes test
# images (tests/e2e/images.sh: umoci + busybox-static) to a loopback
# docker-registry, computes each layer's expected dm-verity root hash with
# guest-pull-verity, writes the request as kata's shim would hand the
# snapshotter's volume to its agent, and boots QEMU (TCG, no network device):
#   - a 4-layer image with whiteouts and an opaque directory, an image with
#     hardlinks and long symlinks, a 1-layer image with a named user and a
#     10-layer image print what they hold (42 layers in the long mode);
#   - the 1-layer image with its layer a plain tar is indexed in place;
#   - a layer's file capability (a PAX xattr) holds in the guest;
#   - the process's stdout, stderr and exit code are relayed; --timeout bounds
#     a run (exit 124);
#   - a layer blob altered in the registry after the hashes were computed is
#     refused by the guest's digest check, naming the layer;
#   - the same blob with the digest checks switched off (a test-only request
#     flag) is refused by the guest KERNEL's dm-verity, naming the layer;
#   - an intact image whose volume carries an altered root hash (what a host
#     tampering with the volume produces) is refused by dm-verity.
# Figures: VM start to container output for 1 and 10 layers.
#
# Usage (as root): tests/vm/guest_vm.sh [--keep]
# Environment: GUEST_VM_CACHE (kernel/initramfs/image cache, default
# /var/cache/guest-pull-vm), GUEST_VM_ACCEL (tcg, or kvm to opt in),
# GUEST_VM_TIMEOUT (per VM run, default 300s).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tests/harness/harness.sh
source "$REPO/tests/harness/harness.sh"
# shellcheck source=tests/tools/peers.sh
source "$REPO/tests/tools/peers.sh"
# shellcheck source=tests/e2e/images.sh
source "$REPO/tests/e2e/images.sh"

readonly ZERO_SALT="0000000000000000000000000000000000000000000000000000000000000000"
readonly VERITY_PARAMS="format=tarfs-index,hash=sha256,data-block=4096,hash-block=4096,salt=${ZERO_SALT},superblock=none"
readonly CACHE="${GUEST_VM_CACHE:-/var/cache/guest-pull-vm}"
readonly ACCEL="${GUEST_VM_ACCEL:-tcg}"
readonly VM_TIMEOUT="${GUEST_VM_TIMEOUT:-300s}"
KEEP=0
[[ "${1:-}" == --keep ]] && KEEP=1
TMP="$(mktemp -d /tmp/guestvm-suite.XXXXXX)"
VERITY_TOOL="$REPO/bazel-bin/kata_volume/tools/guest-pull-verity"
GUESTVM="$TMP/guestvm-runner"
KERNEL=""
INITRD=""
PORT=""

cleanup() {
  peers_stop_pid "${PEERS_REGISTRY_PID:-}" docker-registry
  if ((KEEP)); then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
h_on_exit cleanup

# ------------------------------------------------------------------ setup

build_binaries() {
  (cd "$REPO" && timeout 1800 bazel build //guest_agent:guest-agent //kata_volume/tools:guest-pull-verity) &&
    (cd "$REPO/tests/tools/guestvm" && GOFLAGS=-mod=mod timeout 600 go build -o "$GUESTVM" .)
}

# h_setup runs its command in a subshell: steps hand results back in files.
build_guest() { bash "$REPO/tests/vm/build_initramfs.sh" --cache "$CACHE" >"$TMP/guest.paths"; }

# push NAME REPO [VARIANT] [DEEP]: builds the image (cached) and pushes it to
# 127.0.0.1:PORT/REPO:v1.
push() {
  local name="$1" repo="$2" variant="${3:-}" deep="${4:-}" layout
  layout="$(IMAGES_DEEP_LAYERS="${deep:-42}" images_build "$name" "$CACHE/images" ${variant:+"$variant"})" &&
    images_push "$layout" "$PORT" "$repo" v1 >/dev/null
}

# push_uncompressed NAME REPO: the image with its layers gunzipped (media
# type ...layer.v1.tar; the config's diff_ids stay right) as
# 127.0.0.1:PORT/REPO:v1, uploaded blob by blob: skopeo compresses layers
# again for a registry.
push_uncompressed() {
  local name="$1" repo="$2" layout manifest config blob d layers="[]" raw="$TMP/raw-$1"
  layout="$(images_build "$name" "$CACHE/images")" && manifest="$(images_manifest "$layout")" || return 1
  config="$(jq -r .config.digest "$manifest")"
  upload_blob "$repo" "$layout/blobs/sha256/${config#sha256:}" "$config" || return 1
  for blob in $(images_layer_blobs "$layout"); do
    gzip -dc "$blob" >"$raw" || return 1
    d="$(sha256_of "$raw")"
    upload_blob "$repo" "$raw" "$d" || return 1
    layers="$(jq -c --arg d "$d" --argjson n "$(stat -c %s "$raw")" \
      '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $n}]' <<<"$layers")"
  done
  rm -f "$raw"
  jq -c --argjson l "$layers" '.layers = $l' "$manifest" >"$TMP/$name.tar-manifest" &&
    put_manifest "$repo" "$TMP/$name.tar-manifest"
}

# push_file_caps REPO: the user image plus a layer whose /bin/grep (a copy
# of busybox) carries a file capability, cap_net_raw effective, as a PAX
# SCHILY.xattr.security.capability record (GNU tar --xattrs, as image
# builders write it), uploaded blob by blob as 127.0.0.1:PORT/REPO:v1.
push_file_caps() {
  local repo="$1" layout manifest config stage="$TMP/caps" blob diff d n c
  layout="$(images_build user "$CACHE/images")" && manifest="$(images_manifest "$layout")" || return 1
  config="$layout/blobs/sha256/$(jq -r .config.digest "$manifest" | cut -d: -f2)"
  mkdir -p "$stage/rootfs/bin" && cp "$IMAGES_BUSYBOX" "$stage/rootfs/bin/grep" || return 1
  # VFS_CAP_REVISION_2 with the effective flag; permitted: cap_net_raw (13).
  python3 -c 'import os, sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex("0100000200200000" + "00" * 12))' \
    "$stage/rootfs/bin/grep" || return 1
  tar --format=posix --xattrs --xattrs-include='security.capability' --numeric-owner --owner=0 --group=0 \
    -C "$stage/rootfs" -cf "$stage/layer.tar" bin || return 1
  grep -qa 'SCHILY.xattr.security.capability=' "$stage/layer.tar" || { echo "tar wrote no xattr record"; return 1; }
  diff="$(sha256_of "$stage/layer.tar")"
  gzip -n <"$stage/layer.tar" >"$stage/layer.tar.gz" || return 1
  d="$(sha256_of "$stage/layer.tar.gz")"
  n="$(stat -c %s "$stage/layer.tar.gz")"
  for blob in $(images_layer_blobs "$layout"); do
    upload_blob "$repo" "$blob" "sha256:$(basename "$blob")" || return 1
  done
  upload_blob "$repo" "$stage/layer.tar.gz" "$d" || return 1
  jq -c --arg diff "$diff" '.rootfs.diff_ids += [$diff] | .history += [{created_by: "guest_vm: file capability"}]' \
    "$config" >"$stage/config.json" || return 1
  c="$(sha256_of "$stage/config.json")"
  upload_blob "$repo" "$stage/config.json" "$c" || return 1
  jq -c --arg c "$c" --argjson cs "$(stat -c %s "$stage/config.json")" \
    --arg d "$d" --argjson n "$n" '.config.digest = $c | .config.size = $cs |
      .layers += [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $n}]' \
    "$manifest" >"$stage/manifest.json" && put_manifest "$repo" "$stage/manifest.json"
}

# sha256_of FILE: "sha256:<hex>" of FILE's bytes.
sha256_of() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }

# put_manifest REPO FILE: FILE (an OCI image manifest) as 127.0.0.1:PORT/REPO:v1.
put_manifest() {
  curl -fsS -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary "@$2" "http://127.0.0.1:$PORT/v2/$1/manifests/v1" >/dev/null
}

# upload_blob REPO FILE DIGEST: a monolithic upload (POST, then PUT).
upload_blob() {
  local loc
  loc="$(curl -fsS -D - -o /dev/null -X POST "http://127.0.0.1:$PORT/v2/$1/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')" && [[ -n "$loc" ]] || return 1
  [[ "$loc" == /* ]] && loc="http://127.0.0.1:$PORT$loc"
  [[ "$loc" == *\?* ]] && loc+="&" || loc+="?"
  curl -fsS -X PUT -H "Content-Type: application/octet-stream" --data-binary "@$2" "${loc}digest=$3" >/dev/null
}

# ----------------------------------------------------------- the request

registry_get() {  # PATH [ACCEPT]
  curl -fsS ${2:+-H "Accept: $2"} "http://127.0.0.1:$PORT/v2/$1"
}

# make_request REPO OUT [JQ_FILTER]: the request for 127.0.0.1:PORT/REPO:v1,
# with expected hashes computed here from the registry's blobs; JQ_FILTER
# edits the request (tamper cases).
make_request() {
  local repo="$1" out="$2" filter="${3:-.}" ref manifest mdigest i=0 d blob info meta
  ref="127.0.0.1:$PORT/$repo:v1"
  manifest="$TMP/$repo.manifest" && mkdir -p "$(dirname "$manifest")"
  registry_get "$repo/manifests/v1" "application/vnd.oci.image.manifest.v1+json" >"$manifest" || return 1
  mdigest="$(sha256_of "$manifest")"
  meta="$(jq -n --arg ref "$ref" --arg md "$mdigest" --arg vp "$VERITY_PARAMS" \
    '{"guest-pull.image-ref": $ref, "guest-pull.manifest-digest": $md, "guest-pull.verity-params": $vp}')"
  blob="$TMP/blob"
  for d in $(jq -r '.layers[].digest' "$manifest"); do
    registry_get "$repo/blobs/$d" >"$blob" || return 1
    info="$("$VERITY_TOOL" layer "$blob")" || return 1
    meta="$(jq --arg i "$i" --arg d "$d" \
      --arg diff "$(sed -n 's/^diff_id: //p' <<<"$info")" --arg h "$(sed -n 's/^verity_hash: //p' <<<"$info")" \
      '. + {("guest-pull.layer." + $i + ".digest"): $d, ("guest-pull.layer." + $i + ".diff-id"): $diff,
            ("guest-pull.layer." + $i + ".verity-root-hash"): $h}' <<<"$meta")"
    i=$((i + 1))
  done
  rm -f "$blob"
  meta="$(jq --arg n "$i" '. + {"guest-pull.layer-count": $n}' <<<"$meta")"
  jq -n --arg src "127.0.0.1:$PORT/$repo@$mdigest" --arg opt "image_guest_pull=$(jq -c '{metadata: .}' <<<"$meta")" \
    '{storage: {driver: "image_guest_pull", driver_options: [$opt], source: $src, fstype: "overlay",
                mount_point: "/run/kata-containers/guestvm/rootfs"},
      process: {args: [], env: [], cwd: ""}}' | jq "$filter" >"$out"
}

# layer_digest REPO INDEX
layer_digest() { jq -r ".layers[$2].digest" "$TMP/$1.manifest"; }

# ------------------------------------------------------------------ a run

# vm RUN_ID REQUEST [TIMEOUT]: runs the VM; sets VM_STATUS and leaves
# $TMP/RUN_ID.{out,err,result.json}.
vm() {
  local id="$1" request="$2" timeout="${3:-$VM_TIMEOUT}"
  VM_STATUS=0
  "$GUESTVM" run --kernel "$KERNEL" --initrd "$INITRD" --registry "127.0.0.1:$PORT" \
    --request "$request" --accel "$ACCEL" --timeout "$timeout" --verbose \
    --console "$TMP/$id.console" --result "$TMP/$id.result.json" \
    >"$TMP/$id.out" 2>"$TMP/$id.err" || VM_STATUS=$?
}

detail() { echo "exit $VM_STATUS"; cat "$TMP/$1.out"; tail -n 40 "$TMP/$1.err"; }

# expect_output ID IMAGE: exit 0 and the image's line on stdout.
expect_output() {
  local id="$1" image="$2"
  if ((VM_STATUS == 0)) && images_check_output "$image" "$CACHE/images" "$(cat "$TMP/$id.out")"; then
    h_pass "$id: the guest verified every layer with dm-verity and the container printed what the image holds"
  else
    h_fail "$id: expected exit 0 and \"$(images_expected_output "$image")\"" "$(detail "$id")"
  fi
}

# expect_refusal ID KIND DIGEST TEXT: exit 125, the failure kind, the layer
# named in the error, and TEXT in the error.
expect_refusal() {
  local id="$1" kind="$2" digest="$3" text="$4" got_kind got_layer err
  got_kind="$(jq -r '.kind // ""' "$TMP/$id.result.json" 2>/dev/null)"
  got_layer="$(jq -r '.layer // ""' "$TMP/$id.result.json" 2>/dev/null)"
  err="$(jq -r '.error // ""' "$TMP/$id.result.json" 2>/dev/null)"
  if ((VM_STATUS == 125)) && [[ "$got_kind" == "$kind" && "$got_layer" == "$digest" ]] &&
    grep -qF "layer $digest: " <<<"$err" && grep -qF -- "$text" <<<"$err" &&
    grep -qF "guestvm: guest: layer $digest" "$TMP/$id.err" && [[ ! -s "$TMP/$id.out" ]]; then
    h_pass "$id: refused ($kind), the error names layer ${digest:0:19}…: $(grep -o -- "$text.\{0,60\}" <<<"$err" | head -n 1)"
  else
    h_fail "$id: expected exit 125, kind $kind, layer $digest, \"$text\"" "$(detail "$id")"
  fi
}

figure() {  # NAME ID
  local ms
  ms="$(jq -r '.timings.first_output_ms' "$TMP/$2.result.json" 2>/dev/null)"
  [[ "$ms" =~ ^[1-9][0-9]*$ ]] && h_figure "$1" "$(awk -v m="$ms" 'BEGIN { printf "%.1f", m / 1000 }')" s
}

# -------------------------------------------------------------- the cases

case_whiteout() {
  make_request guestvm/whiteout "$TMP/whiteout.json" || { h_fail "whiteout: request"; return; }
  vm whiteout "$TMP/whiteout.json"
  expect_output whiteout whiteout
}

# case_image IMAGE [DEEP]: the image's entrypoint prints its line.
case_image() {
  local image="$1" id="$1${2:-}"
  make_request "guestvm/$id" "$TMP/$id.json" || { h_fail "$id: request"; return; }
  vm "$id" "$TMP/$id.json"
  expect_output "$id" "$image"
}

case_one_layer() {
  make_request guestvm/user "$TMP/user.json" || { h_fail "one-layer: request"; return; }
  vm one-layer "$TMP/user.json"
  expect_output one-layer user
  figure "guest VM start to container output, 1 layer ($ACCEL)" one-layer
}

# An image whose layers are plain tars: the guest indexes each fetched blob
# in place (no second copy of the layer in its memory) and verifies it.
case_uncompressed() {
  make_request guestvm/user-tar "$TMP/user-tar.json" || { h_fail "uncompressed: request"; return; }
  if [[ "$(jq -r '.layers[0].mediaType' "$TMP/guestvm/user-tar.manifest")" != *.tar ]]; then
    h_fail "uncompressed: the registry serves a plain tar layer" "$(cat "$TMP/guestvm/user-tar.manifest")"
    return
  fi
  vm uncompressed "$TMP/user-tar.json"
  expect_output uncompressed user
  if grep -q "bytes laid out in place" "$TMP/uncompressed.err"; then
    h_pass "uncompressed: the guest indexed the plain tar layer in place"
  else
    h_fail "uncompressed: no layer indexed in place" "$(detail uncompressed)"
  fi
}

case_ten_layers() {
  make_request guestvm/deep10 "$TMP/deep10.json" || { h_fail "ten-layers: request"; return; }
  vm ten-layers "$TMP/deep10.json"
  if ((VM_STATUS == 0)) && [[ "$(cat "$TMP/ten-layers.out")" == "deep files=9 first=layer-002 last=layer-010" ]]; then
    h_pass "ten-layers: 10 layers verified by dm-verity and assembled"
  else
    h_fail "ten-layers: expected the 10-layer image's line" "$(detail ten-layers)"
  fi
  figure "guest VM start to container output, 10 layers ($ACCEL)" ten-layers
}

case_process_io() {
  make_request guestvm/user "$TMP/io.json" \
    '.process = {args: ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"], env: ["X=1"], cwd: "/tmp"}' ||
    { h_fail "process-io: request"; return; }
  vm process-io "$TMP/io.json"
  if ((VM_STATUS == 7)) && [[ "$(cat "$TMP/process-io.out")" == to-stdout ]] && grep -qx to-stderr "$TMP/process-io.err"; then
    h_pass "process-io: stdout, stderr and exit code 7 relayed from the guest"
  else
    h_fail "process-io: expected exit 7, to-stdout, to-stderr" "$(detail process-io)"
  fi
}

# A layer's file capability reaches the guest: /bin/grep, run as uid 1000,
# has cap_net_raw effective (without the layer's xattrs it has none).
case_file_caps() {
  local out
  if ! out="$(push_file_caps guestvm/caps 2>&1)"; then
    h_fail "file-caps: the image with a file capability" "$out"
    return
  fi
  make_request guestvm/caps "$TMP/caps.json" \
    '.process = {args: ["/bin/grep", "CapEff", "/proc/self/status"], env: [], cwd: "", user: "1000:1000"}' ||
    { h_fail "file-caps: request"; return; }
  vm file-caps "$TMP/caps.json"
  if ((VM_STATUS == 0)) && grep -qx 'CapEff:[[:space:]]*0000000000002000' "$TMP/file-caps.out"; then
    h_pass "file-caps: the layer's security.capability reached the guest (uid 1000 runs /bin/grep with cap_net_raw effective)"
  else
    h_fail "file-caps: expected exit 0 and CapEff 0000000000002000 (cap_net_raw)" "$(detail file-caps)"
  fi
}

# tamper_blob REPO INDEX: replaces layer INDEX's blob in the registry's
# storage (same digest path, other content).
tamper_blob() {
  local digest file stage
  digest="$(layer_digest "$1" "$2")"
  file="$(find "$TMP/registry/registry-data" -path "*/blobs/sha256/*/${digest#sha256:}/data")"
  [[ -f "$file" ]] || return 1
  stage="$(mktemp -d "$TMP/evil.XXXXXX")"
  mkdir -p "$stage/etc" && echo evil >"$stage/etc/evil"
  tar --numeric-owner --owner=0 --group=0 -C "$stage" -czf "$file" etc
}

case_tampered_blob() {
  local digest
  make_request guestvm/tamper "$TMP/tamper.json" || { h_fail "tampered-blob: request"; return; }
  make_request guestvm/tamper "$TMP/tamper-kernel.json" '.test_options = {skip_blob_checks: true}' ||
    { h_fail "tampered-blob: request"; return; }
  digest="$(layer_digest guestvm/tamper 1)"
  h_setup "replace layer 1's blob in the registry after the hashes were computed" tamper_blob guestvm/tamper 1 || return
  vm tampered-blob "$TMP/tamper.json"
  expect_refusal tampered-blob digest "$digest" "blob digest mismatch"
  vm tampered-blob-kernel "$TMP/tamper-kernel.json"
  expect_refusal tampered-blob-kernel verification "$digest" "is corrupted"
}

# The run is bounded: a VM that cannot finish in time is stopped, exit 124.
case_timeout() {
  local start=$SECONDS
  vm timeout "$TMP/user.json" 1s
  if ((VM_STATUS == 124)) && [[ "$(jq -r .kind "$TMP/timeout.result.json")" == timeout ]] &&
    ((SECONDS - start < 60)); then
    h_pass "timeout: a run bounded by --timeout 1s is stopped with exit 124"
  else
    h_fail "timeout: expected exit 124 and kind timeout" "$(detail timeout)"
  fi
}

case_altered_root_hash() {
  local digest
  make_request guestvm/user "$TMP/badhash.json" \
    '.storage.driver_options[0] |= (sub("^image_guest_pull="; "") | fromjson
       | .metadata["guest-pull.layer.0.verity-root-hash"] |= (if startswith("0") then "1" else "0" end) + .[1:]
       | "image_guest_pull=" + tojson)' || { h_fail "altered-root-hash: request"; return; }
  digest="$(layer_digest guestvm/user 0)"
  vm altered-root-hash "$TMP/badhash.json"
  expect_refusal altered-root-hash verification "$digest" "is corrupted"
}

main() {
  local t out
  echo "guest_vm: mode $(h_mode), accel $ACCEL, tmp $TMP"
  for t in qemu-system-x86_64 go jq curl docker-registry skopeo umoci cpio; do
    command -v "$t" >/dev/null || { h_skip "guest VM suite" "missing $t (scripts/install-deps.sh)"; h_finish; }
  done
  h_setup "build guest-agent, guest-pull-verity, guestvm" build_binaries || h_finish
  h_check "guestvm unit tests (frames, sources, blob relay, loopback only)" \
    bash -c "cd '$REPO/tests/tools/guestvm' && timeout 600 go test ./..."
  h_setup "guest kernel and initramfs" build_guest || h_finish
  KERNEL="$(sed -n 's/^kernel=//p' "$TMP/guest.paths")"
  INITRD="$(sed -n 's/^initrd=//p' "$TMP/guest.paths")"
  PORT="$(peers_free_port)"
  # Not in $(...): its PEERS_REGISTRY_PID must reach cleanup (a subshell's
  # left every run's registry running).
  if ! peers_start_registry "$TMP/registry" "$PORT" >"$TMP/registry-start.log" 2>&1; then
    h_fail "setup: loopback registry" "$(cat "$TMP/registry-start.log")"
    h_finish
  fi
  h_setup "images (whiteout, links, user, 10 layers, a private copy to tamper with)" eval \
    'push whiteout guestvm/whiteout && push user guestvm/user && push deep guestvm/deep10 "" 10 &&
     push links guestvm/links && push whiteout guestvm/tamper guestvm-tamper &&
     push_uncompressed user guestvm/user-tar' || h_finish
  if h_long; then
    h_setup "long mode: 42-layer image" push deep guestvm/deep42 "" 42 && IMAGES_DEEP_LAYERS=42 case_image deep 42
  fi
  case_whiteout
  case_image links
  case_one_layer
  case_uncompressed
  case_ten_layers
  case_process_io
  case_file_caps
  case_timeout
  case_altered_root_hash
  case_tampered_blob
  h_finish
}

main
