#!/usr/bin/env bash
# cri_client_test.sh: end-to-end test of cri-client against a real containerd
# 1.6 (CRI enabled, private config and dirs) and a real docker-registry on
# 127.0.0.1, with a small multi-layer image built by tests/e2e/images.sh.
# Checks version, pull (OCI and Docker v2s2 manifests, pod annotations), status,
# list, remove, and the error paths (unknown image, dead socket, deadline).
#
# Usage (as root): bazel build //tests/tools/cri:cri-client &&
#                  tests/tools/cri/cri_client_test.sh [--keep]
# Env: CRI_CLIENT (binary, default bazel-bin/tests/tools/cri/cri-client),
#      IMAGES_CACHE (image cache dir, default a temp dir).
# Counts with tests/harness/harness.sh: last line "N passed, M failed,
# K skipped"; exit status 1 if any failed. Building the image and starting
# the registry and containerd are setup steps, not passes.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CRI_CLIENT="${CRI_CLIENT:-$REPO_ROOT/bazel-bin/tests/tools/cri/cri-client}"
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1

# shellcheck source=tests/tools/peers.sh
source "$REPO_ROOT/tests/tools/peers.sh"
# shellcheck source=tests/harness/harness.sh
source "$REPO_ROOT/tests/harness/harness.sh"
# shellcheck source=tests/e2e/images.sh
source "$REPO_ROOT/tests/e2e/images.sh"

TMP=""

teardown() { peers_teardown_suite $? "$TMP" "$KEEP"; }

preflight() {
  [[ $EUID -eq 0 ]] || { echo "must run as root (containerd)" >&2; return 1; }
  [[ -x "$CRI_CLIENT" ]] || {
    echo "no cri-client at $CRI_CLIENT; run: bazel build //tests/tools/cri:cri-client" >&2
    return 1
  }
  local t
  for t in containerd ctr docker-registry skopeo umoci jq curl python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; return 1; }
  done
}

cri() { "$CRI_CLIENT" --address "unix://$PEERS_CONTAINERD_SOCK" --timeout 120s "$@"; }

# ---- checks -----------------------------------------------------------------

check_version() {
  local out
  out="$(cri version)" || return 1
  [[ "$(jq -r .runtime_name <<<"$out")" == containerd ]] &&
    [[ "$(jq -r .runtime_api_version <<<"$out")" == v1 ]] &&
    [[ "$(jq -r .runtime_version <<<"$out")" == *1.6* ]]
}

# check_pull_status REF MANIFEST_DIGEST LAYERS: pull, then status and list
# agree, and containerd really unpacked LAYERS snapshots for it.
check_pull_status() {
  local ref="$1" digest="$2" layers="$3" out id status repo
  repo="${ref%:*}"
  out="$(cri pull "$ref" --pod-annotation io.kubernetes.cri.image-name="$ref" \
    --pod-annotation example.com/test=yes)" || return 1
  id="$(jq -r .image_ref <<<"$out")"
  [[ "$id" == sha256:* ]] || { echo "bad image_ref: $out"; return 1; }
  status="$(cri status "$ref")" || return 1
  jq -e --arg id "$id" --arg tag "$ref" --arg dig "$repo@$digest" \
    '.present and .id == $id and (.repo_tags | index($tag)) != null and
     (.repo_digests | index($dig)) != null and .size > 0' <<<"$status" >/dev/null ||
    { echo "unexpected status: $status"; return 1; }
  cri list | jq -e --arg id "$id" 'map(.id) | index($id) != null' >/dev/null ||
    { echo "list lacks $id"; return 1; }
  # grep reads all of ctr's output (with -q, an early exit could SIGPIPE ctr
  # and fail the pipeline under pipefail).
  ctr -a "$PEERS_CONTAINERD_SOCK" -n k8s.io images ls -q | grep -xF "$ref" >/dev/null ||
    { echo "ctr does not see $ref"; return 1; }
  local chain
  chain="$(ctr -a "$PEERS_CONTAINERD_SOCK" -n k8s.io snapshots ls | awk 'NR > 1' | wc -l)"
  ((chain >= layers)) || { echo "only $chain snapshots, want >= $layers"; return 1; }
  echo "$id" >"$TMP/id-${ref##*:}"
}

# check_same_id TAG1 TAG2: both manifest variants name one image (config).
check_same_id() {
  [[ -s "$TMP/id-$1" && "$(cat "$TMP/id-$1")" == "$(cat "$TMP/id-$2")" ]]
}

# check_named_user REF: CRI reports the image's config.user by name.
check_named_user() {
  local ref="$1" status
  cri pull "$ref" >/dev/null || return 1
  status="$(cri status "$ref")" || return 1
  jq -e '.username == "guest" and (has("uid") | not)' <<<"$status" >/dev/null ||
    { echo "unexpected status: $status"; return 1; }
  cri remove "$ref" >/dev/null
}

check_status_absent() {
  local out
  out="$(cri status "127.0.0.1:$REG_PORT/cri-test/never:1")" || return 1
  [[ "$(jq -c . <<<"$out")" == '{"present":false}' ]]
}

check_pull_unknown_fails() {
  local err rc=0
  err="$(cri pull "127.0.0.1:$REG_PORT/cri-test/never:1" 2>&1 >/dev/null)" || rc=$?
  if ((rc != 1)) || [[ "$err" != "cri-client: pull 127.0.0.1:$REG_PORT/cri-test/never:1: NOT_FOUND: "* ]]; then
    echo "rc=$rc err=$err"
    return 1
  fi
}

# check_remove REF OTHER_REF: removing one tag removes the image and all its
# tags (CRI semantics); a second remove of the gone image still succeeds.
check_remove() {
  local ref="$1" other="$2" id
  id="$(cat "$TMP/id-${ref##*:}")"
  cri remove "$ref" | jq -e --arg r "$ref" '.removed == $r' >/dev/null || return 1
  [[ "$(cri status "$ref" | jq -c .)" == '{"present":false}' ]] || return 1
  [[ "$(cri status "$other" | jq -c .)" == '{"present":false}' ]] || return 1
  cri list | jq -e --arg id "$id" 'map(.id) | index($id) == null' >/dev/null || return 1
  cri remove "$ref" >/dev/null && cri remove "$other" >/dev/null
}

check_dead_socket() {
  local err rc=0
  err="$("$CRI_CLIENT" --address "unix://$TMP/nobody.sock" --timeout 5s version 2>&1)" || rc=$?
  if ((rc != 1)) || [[ "$err" != *"UNAVAILABLE"* ]]; then echo "rc=$rc err=$err"; return 1; fi
}

check_deadline() {
  local err rc=0
  err="$("$CRI_CLIENT" --address "unix://$PEERS_CONTAINERD_SOCK" --timeout 1ms \
    pull "127.0.0.1:$REG_PORT/cri-test/multilayer:docker" 2>&1)" || rc=$?
  if ((rc != 1)) || [[ "$err" != *"DEADLINE_EXCEEDED"* ]]; then echo "rc=$rc err=$err"; return 1; fi
}

check_bad_args() {
  local rc=0
  "$CRI_CLIENT" pull >/dev/null 2>&1 || rc=$?
  ((rc == 1))
}

manifest_digest() {
  skopeo inspect --tls-verify=false "docker://$1" | jq -r .Digest
}

# setup_peers: images, registry and containerd (a setup step, not a test).
setup_peers() {
  local cache="${IMAGES_CACHE:-$TMP/images}" layout user
  layout="$(images_build multilayer "$cache")" || return 1
  user="$(images_build user "$cache")" || return 1
  REG_PORT="$(peers_free_port)" || return 1
  peers_start_registry "$TMP/reg" "$REG_PORT" || return 1
  images_push_media_variants "$layout" "$REG_PORT" cri-test/multilayer >/dev/null || return 1
  images_push "$user" "$REG_PORT" cri-test/user v1 >/dev/null || return 1
  peers_start_containerd "$TMP/ctd" "$REG_PORT" || return 1
  peers_wait_until 30 cri version || { echo "CRI not serving" >&2; return 1; }
}

main() {
  h_on_exit teardown
  h_setup_here "preflight (root, cri-client, tools)" preflight || return 1
  TMP="$(mktemp -d /tmp/cric.XXXXXX)"
  local t0=$SECONDS
  h_setup_here "images, registry and containerd with CRI" setup_peers || return 1
  echo "setup took $((SECONDS - t0))s"

  local oci="127.0.0.1:$REG_PORT/cri-test/multilayer:oci"
  local docker="127.0.0.1:$REG_PORT/cri-test/multilayer:docker"
  h_check "version reports containerd 1.6 / CRI v1" check_version
  h_check "bad arguments exit 1" check_bad_args
  h_check "pull+status+list OCI manifest" check_pull_status "$oci" "$(manifest_digest "$oci")" 3
  h_check "pull+status+list Docker v2s2 manifest" check_pull_status "$docker" "$(manifest_digest "$docker")" 3
  h_check "OCI and Docker variants are one image id" check_same_id oci docker
  h_check "remove by one tag drops image and all tags; idempotent" check_remove "$oci" "$docker"
  h_check "status of unknown image is present=false" check_status_absent
  h_check "pull of unknown image fails with gRPC code" check_pull_unknown_fails
  h_check "named user reported as username" check_named_user "127.0.0.1:$REG_PORT/cri-test/user:v1"
  h_check "dead socket gives UNAVAILABLE" check_dead_socket
  h_check "1ms timeout gives DEADLINE_EXCEEDED" check_deadline
}

main "$@"
