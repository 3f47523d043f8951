#!/usr/bin/env bash
# standin_selftest.sh: proves tests/e2e/guest_standin.sh refuses what a guest
# must refuse, without containerd or our daemon: it pushes images to a
# loopback registry, builds image_guest_pull volume options by hand (as the
# daemon would) and feeds them to the stand-in with --option.
#
# Accepted: the correct volume (the entrypoint runs and prints its line),
# Docker v2s2 media types, a missing hash only with --allow-missing-hash.
# Refused (exit 1, "REFUSED:"): layers swapped, a wrong diff_id, a wrong
# digest, a wrong or missing verity hash, a source not pinned by digest, a
# manifest digest naming another image, wrong verity params, a layer count
# that does not match, two volume options, volumes kata's Go or Rust rules
# reject, manifest bytes replaced in the registry's storage.
# Usage errors exit 2.
#
# Usage (as root): tests/e2e/standin_selftest.sh
#   E2E_IMAGES_CACHE=DIR   image build cache (default /var/tmp/guest-pull-e2e-images)
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
readonly PARAMS="format=tarfs-index,hash=sha256,data-block=4096,hash-block=4096,salt=0000000000000000000000000000000000000000000000000000000000000000,superblock=none"
IMAGES_CACHE="${E2E_IMAGES_CACHE:-/var/tmp/guest-pull-e2e-images}"

# describe_image REF LAYOUT: sets REF_, MD_ (manifest digest as served), and
# the metadata JSON META_ the daemon would write (hashes from the cache).
describe_image() {
  local ref="$1" layout="$2" raw cache
  raw="$(registry_raw_manifest "$ref")" || e2e_die "cannot read the manifest of $ref"
  cache="$(timeout "$E2E_CMD_TIMEOUT" "$VERITY_TOOL" cache "$layout")" || e2e_die "cache failed for $layout"
  REF_="$ref"
  MD_="sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
  META_="$(jq -c -n --arg ref "$ref" --arg md "$MD_" --arg params "$PARAMS" \
    --argjson m "$raw" --argjson c "$cache" '
    ($m.layers | map(.digest)) as $d |
    {"guest-pull.image-ref": $ref, "guest-pull.manifest-digest": $md,
     "guest-pull.layer-count": ($d | length | tostring), "guest-pull.verity-params": $params}
    + ([range(0; $d | length) as $i |
        {("guest-pull.layer.\($i).digest"): $d[$i],
         ("guest-pull.layer.\($i).diff-id"): $c[$i].diff_id,
         ("guest-pull.layer.\($i).verity-root-hash"): $c[$i].verity_hash}] | add)')"
}

# volume_opt [JQ_FILTER]: the option for the current image, after applying
# JQ_FILTER to the volume {volume_type, source, image_pull.metadata}.
volume_opt() {
  local filter="${1:-.}" vol
  vol="$(jq -c -n --arg src "${REF_%:*}@$MD_" --argjson meta "$META_" \
    '{volume_type: "image_guest_pull", source: $src, image_pull: {metadata: $meta}}' | jq -c "$filter")"
  printf 'lowerdir=/x,io.katacontainers.volume=%s' "$(printf '%s' "$vol" | base64 -w0)"
}

# standin OPTION [ARGS...]: runs the stand-in; sets OUT, ERR, STATUS.
standin() {
  local opt="$1"
  shift
  STATUS=0
  OUT="$(timeout 300 "$STANDIN" --option "$opt" --timeout "$E2E_CMD_TIMEOUT" "$@" 2>"$E2E_DIR/standin.err")" || STATUS=$?
  ERR="$(cat "$E2E_DIR/standin.err")"
}

# expect_refused DESC WHY OPTION [ARGS...]: exit 1 with a REFUSED line
# containing WHY, and nothing ran.
expect_refused() {
  local desc="$1" why="$2"
  shift 2
  standin "$@"
  if [[ "$STATUS" == 1 && "$ERR" == *"REFUSED: "*"$why"* && -z "$OUT" ]]; then
    pass "refused: $desc"
  else
    fail "refused: $desc (exit $STATUS, want 1 with '$why')" "$ERR"$'\n'"stdout: $OUT"
  fi
}

# expect_runs DESC IMAGE OPTION [ARGS...]: exit 0 and IMAGE's output.
expect_runs() {
  local desc="$1" image="$2"
  shift 2
  standin "$@"
  if [[ "$STATUS" == 0 ]] && images_check_output "$image" "$IMAGES_CACHE" "$OUT"; then
    pass "runs: $desc ($OUT)"
  else
    fail "runs: $desc (exit $STATUS)" "$ERR"$'\n'"stdout: $OUT"
  fi
}

main() {
  local ml_layout user_layout ml_ref user_ref v2_ref user_md mf
  e2e_init standin
  e2e_require_cmds veritysetup unshare
  standin_tools
  registry_start
  ml_layout="$(images_build multilayer "$IMAGES_CACHE" standin)"
  user_layout="$(images_build user "$IMAGES_CACHE" standin)"
  ml_ref="$(images_push "$ml_layout" "$REGISTRY_PORT" st-multilayer v1 oci)"
  user_ref="$(images_push "$user_layout" "$REGISTRY_PORT" st-multilayer user oci)"
  v2_ref="$(images_push "$ml_layout" "$REGISTRY_PORT" st-docker v1 v2s2)"

  describe_image "$user_ref" "$user_layout"
  user_md="$MD_"
  expect_runs "user image (named user from the image's /etc/passwd)" user "$(volume_opt)"

  describe_image "$v2_ref" "$ml_layout"
  expect_runs "Docker v2s2 manifest" multilayer "$(volume_opt)"

  describe_image "$ml_ref" "$ml_layout"
  expect_runs "correct volume" multilayer "$(volume_opt)"
  expect_runs "only the volume option given" multilayer "$(volume_opt | cut -d, -f2)"

  local m='.image_pull.metadata'
  expect_refused "layers 0 and 1 swapped" "wrong layer or order" "$(volume_opt \
    "${m}[\"guest-pull.layer.0.digest\"] as \$a | ${m}[\"guest-pull.layer.0.digest\"] = ${m}[\"guest-pull.layer.1.digest\"] | ${m}[\"guest-pull.layer.1.digest\"] = \$a")"
  expect_refused "wrong diff_id" "diff_id" "$(volume_opt \
    "${m}[\"guest-pull.layer.2.diff-id\"] = ${m}[\"guest-pull.layer.1.diff-id\"]")"
  expect_refused "wrong layer digest" "volume expects" "$(volume_opt \
    "${m}[\"guest-pull.layer.1.digest\"] = \"sha256:$(printf '%064d' 0)\"")"
  expect_refused "wrong verity hash" "dm-verity root hash" "$(volume_opt \
    "${m}[\"guest-pull.layer.2.verity-root-hash\"] = ${m}[\"guest-pull.layer.0.verity-root-hash\"]")"
  expect_refused "missing verity hash" "no expected verity root hash" "$(volume_opt \
    "del(${m}[\"guest-pull.layer.1.verity-root-hash\"])")"
  expect_runs "missing verity hash with --allow-missing-hash" multilayer "$(volume_opt \
    "del(${m}[\"guest-pull.layer.1.verity-root-hash\"])")" --allow-missing-hash
  expect_refused "source by tag, not digest" "not pinned" "$(volume_opt ".source = \"$ml_ref\"")"
  expect_refused "manifest digest of another image" "layer" "$(volume_opt \
    ".source = \"${ml_ref%:*}@$user_md\" | ${m}[\"guest-pull.manifest-digest\"] = \"$user_md\"")"
  expect_refused "unknown verity params" "verity-params" "$(volume_opt \
    "${m}[\"guest-pull.verity-params\"] = \"format=tarfs-index,hash=sha1\"")"
  expect_refused "layer count too small" "more layers" "$(volume_opt \
    "${m}[\"guest-pull.layer-count\"] = \"2\"")"
  # (kata's Rust rules already reject an image_raw_block without fs_type.)
  expect_refused "wrong volume type (image_raw_block)" "" "$(volume_opt '.volume_type = "image_raw_block"')"
  expect_refused "wrong volume type (image_raw_block with fs_type)" "not image_guest_pull" \
    "$(volume_opt '.volume_type = "image_raw_block" | .fs_type = "ext4"')"
  expect_refused "Go rules: image_pull.metadata missing" "Go runtime would reject" "$(volume_opt \
    '.image_pull = {}')"
  expect_refused "Rust rules: empty source" "Rust runtime would reject" "$(volume_opt '.source = ""')"
  local opt
  opt="$(volume_opt)"
  expect_refused "two volume options" "expected one" "$opt,${opt#*,}"
  expect_refused "no volume option" "expected one" "lowerdir=/x,upperdir=/y"

  # The registry's stored manifest replaced (same digest path, other bytes).
  mf="$(registry_blob_file "$MD_")"
  if e2e_setup "registry stores the manifest at $mf" test -f "$mf"; then
    opt="$(volume_opt)"
    jq -c '.annotations = {"evil": "yes"}' "$mf" >"$mf.new" && mv "$mf.new" "$mf"
    expect_refused "manifest bytes replaced in the registry" "registry served manifest" "$opt"
  fi

  STATUS=0
  "$STANDIN" >/dev/null 2>&1 || STATUS=$?
  assert_eq "no arguments: usage error" 2 "$STATUS"
  STATUS=0
  "$STANDIN" --address /x --chain-id nope >/dev/null 2>&1 || STATUS=$?
  assert_eq "malformed chain ID: usage error" 2 "$STATUS"
  finish
}

main "$@"
