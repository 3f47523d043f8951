#!/usr/bin/env bash
# layer_cache_formats.sh: both layer cache formats end to end, on real
# containerd, our daemon and the guest stand-in:
#   guest-pull-verity cache writes the cache -> the daemon reads it (mode
#   required: a rootfs is refused unless every layer's hash is known) -> the
#   volume carries the hashes -> the stand-in recomputes every layer's
#   dm-verity root hash and compares.
# 1. --format tardev: {diff_id, verity_hash, passwd, group} in one file.
# 2. --format genpolicy on the same path: the file becomes upstream
#    genpolicy's {diff_id, passwd, group} (no verity_hash anywhere in it), the
#    hashes go to <cache>.verity.json; the daemon reloads both (no restart)
#    and the same image still verifies and runs, with the named user of the
#    image's /etc/passwd (from the genpolicy-form cache).
# 3. The companion removed: the rootfs is refused (the hashes came from it).
# 4. genpolicy deletes a cache it cannot parse: with only the companion left
#    the image still verifies.
#
# Usage (as root): tests/e2e/layer_cache_formats.sh
# Last line: "N passed, M failed"; exit status non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=images.sh
source "$(dirname "${BASH_SOURCE[0]}")/images.sh"
# shellcheck source-path=SCRIPTDIR source=standin_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/standin_lib.sh"

readonly STANDIN="$E2E_LIB_DIR/guest_standin.sh"
IMAGES_CACHE="${E2E_IMAGES_CACHE:-/var/tmp/guest-pull-e2e-images}"

# standin_run DESC TOP: the stand-in verifies the image and runs it.
standin_run() {
  local desc="$1" top="$2" out status=0
  out="$(timeout 300 "$STANDIN" --address "$CONTAINERD_SOCK" --namespace k8s.io \
    --snapshotter "$GP_SNAPSHOTTER" --chain-id "$top" --timeout "$E2E_CMD_TIMEOUT" \
    2>"$E2E_DIR/standin.err")" || status=$?
  if ((status == 0)) && images_check_output user "$IMAGES_CACHE" "$out"; then
    pass "$desc: the stand-in verified every layer's hash and ran the image ($out)"
  else
    fail "$desc: stand-in exit $status" "$(tail -n 20 "$E2E_DIR/standin.err")"$'\n'"stdout: $out"
  fi
}

# rootfs_refused DESC TOP: the daemon refuses the rootfs (hashes unknown).
rootfs_refused() {
  local desc="$1" top="$2"
  check_fails "$desc: rootfs Prepare refused under verity mode required" \
    ctr_gp_snap prepare "refused-$RANDOM" "$top"
  assert_contains "$desc: the error is FailedPrecondition" "$E2E_OUT" "failed precondition"
}

# wait_reload: the daemon reloads on the next Get(); file stamps use mtime,
# so give a rewritten file a distinct one on coarse-timestamp filesystems.
wait_reload() { sleep 0.02; }

main() {
  local layout ref top cache hashes
  e2e_init lcfmt
  e2e_require_cmds veritysetup unshare findmnt mount.fuse3 jq
  standin_tools
  registry_start
  layout="$(images_build user "$IMAGES_CACHE" lcfmt)" || e2e_die "building the user image failed"
  ref="$(images_push "$layout" "$REGISTRY_PORT" "lcfmt$$" v1 oci)" || e2e_die "pushing failed"
  top="$(layout_chain_ids "$layout" | tail -n 1)"
  cache="$E2E_DIR/layers-cache.json"
  hashes="$cache.verity.json"

  check "tardev: guest-pull-verity cache --format tardev --output" \
    "$VERITY_TOOL" cache "$layout" --format tardev --output "$cache"
  assert_eq "tardev: every entry carries verity_hash" \
    "$(jq length "$cache")" "$(jq '[.[] | select(.verity_hash | length == 64)] | length' "$cache")"
  standin_daemon_config "$cache" required
  install_helpers //mount_helper:guest-pull-overlayfs
  start_daemon
  containerd_start
  check "CRI PullImage $ref" cri pull "$ref"
  standin_run "tardev" "$top"

  wait_reload
  check "genpolicy: guest-pull-verity cache --format genpolicy --output (same path)" \
    "$VERITY_TOOL" cache "$layout" --format genpolicy --output "$cache"
  assert_eq "genpolicy: the cache has exactly upstream's fields" '["diff_id","group","passwd"]' \
    "$(jq -c '[.[] | keys] | unique | add | unique' "$cache")"
  assert_eq "genpolicy: the companion holds every layer's hash" \
    "$(jq length "$cache")" "$(jq '[.[] | select(.verity_hash | length == 64)] | length' "$hashes")"
  standin_run "genpolicy" "$top"

  mv "$hashes" "$hashes.away"
  wait_reload
  rootfs_refused "genpolicy without its companion" "$top"

  mv "$hashes.away" "$hashes"
  rm -f "$cache"
  wait_reload
  standin_run "companion only (genpolicy deleted the cache)" "$top"

  local status=0
  stop_daemon || status=$?
  assert_status "daemon exits 0 on SIGTERM" 0 "$status"
  finish
}

main "$@"
