# shellcheck shell=bash
# standin_lib.sh: helpers for tests/e2e/functional.sh on top of lib.sh and
# images.sh (source those first): the guest-pull-verity tool and cri-client
# copied into $E2E_BIN, OCI layout inspection (layer digests, diff_ids, chain
# IDs), the registry's blob storage, the daemon config for guest pull with a
# layer cache, CRI pulls, rootfs snapshots and their mounts, and the volume
# option. Every external command is bounded (ctr_cmd / timeout).

# ------------------------------------------------------------------ tools

# standin_tools: builds guest-pull-verity once and copies it into $E2E_BIN
# (a concurrent rebuild cannot change it under the suite); sets VERITY_TOOL
# and CRICTL (crictl from its Go module, tests/tools/go_peers.sh), and
# exports GUEST_PULL_VERITY for the stand-in.
standin_tools() {
  (cd "$E2E_REPO" && timeout 900 bazel build //kata_volume/tools:guest-pull-verity) >&2 \
    || e2e_die "bazel build of guest-pull-verity failed"
  cp "$E2E_REPO/bazel-bin/kata_volume/tools/guest-pull-verity" "$E2E_BIN/"
  VERITY_TOOL="$E2E_BIN/guest-pull-verity"
  # shellcheck source=../tools/go_peers.sh
  source "$E2E_REPO/tests/tools/go_peers.sh"
  CRICTL="$(go_peer_bin crictl)/crictl" || e2e_die "building crictl from its module failed"
  export GUEST_PULL_VERITY="$VERITY_TOOL"
}

# ------------------------------------------------------------- layouts

# layout_manifest LAYOUT: path of the "latest" manifest blob.
layout_manifest() {
  local digest
  digest="$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' \
    "$1/index.json")"
  [[ "$digest" == sha256:* ]] || e2e_die "no latest tag in $1"
  echo "$1/blobs/sha256/${digest#sha256:}"
}

# layout_layer_digests LAYOUT: compressed layer digests, bottom first.
layout_layer_digests() { jq -r '.layers[].digest' "$(layout_manifest "$1")"; }

# layout_diff_ids LAYOUT: uncompressed layer digests, bottom first.
layout_diff_ids() {
  local config
  config="$(jq -r '.config.digest' "$(layout_manifest "$1")")"
  jq -r '.rootfs.diff_ids[]' "$1/blobs/sha256/${config#sha256:}"
}

# chain_ids_from_diff_ids: reads diff_ids (stdin), prints chain IDs.
chain_ids_from_diff_ids() {
  local chain="" id
  while read -r id; do
    if [[ -z "$chain" ]]; then chain="$id"; else
      chain="sha256:$(printf '%s %s' "$chain" "$id" | sha256sum | cut -d' ' -f1)"
    fi
    echo "$chain"
  done
}

# layout_chain_ids LAYOUT: layer chain IDs (snapshot names), bottom first.
layout_chain_ids() { layout_diff_ids "$1" | chain_ids_from_diff_ids; }

# ------------------------------------------------------------- registry

# registry_raw_manifest REF: the manifest as the registry serves it (one
# manifest GET, no blob GET).
registry_raw_manifest() {
  timeout "$E2E_CMD_TIMEOUT" skopeo inspect --raw --tls-verify=false "docker://$1"
}

# registry_blob_file DIGEST: the file the registry serves for DIGEST
# (distribution's filesystem driver layout).
registry_blob_file() {
  local hex="${1#sha256:}"
  echo "$REGISTRY_DIR/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

# registry_log_lines: current number of lines in the registry log (an
# offset for registry_layer_gets_since).
registry_log_lines() { wc -l <"$REGISTRY_LOG"; }

# registry_layer_gets_since OFFSET DIGESTS...: blob GETs for the given
# digests (any repository) logged after line OFFSET. Earlier GETs of shared
# blobs (e.g. by a previous case's guest) do not count.
registry_layer_gets_since() {
  local offset="$1" d total=0 n
  shift
  for d in "$@"; do
    n="$(tail -n "+$((offset + 1))" "$REGISTRY_LOG" |
      grep -cE "\"GET /v2/[^ \"]+/blobs/${d} HTTP" || true)"
    total=$((total + n))
  done
  echo "$total"
}

# -------------------------------------------------------------- daemon

# standin_daemon_config CACHE_FILE MODE: the daemon config for guest pull of
# every CRI image with the given layer cache and verity mode.
standin_daemon_config() {
  daemon_write_config
  daemon_config_append <<EOF

[guest_pull]
enable = true
include = [".*"]
exclude = []

[verity]
mode = "$2"
layer_cache = "$1"
write_passwd = true
EOF
}

# daemon_decisions IMAGE_REF DECISION: number of guest_pull_decision=DECISION
# lines the daemon logged for IMAGE_REF.
daemon_decisions() {
  grep -F "guest_pull_decision=$2 " "$GP_LOG" | grep -cF "image=\"$1\"" || true
}

# ------------------------------------------------------------------ CRI

# cri ARGS...: crictl against our containerd (bounded).
cri() { e2e_crictl "$@"; }

ctr_k8s() { ctr_cmd -n k8s.io "$@"; }

ctr_gp_snap() { ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" "$@"; }

# snapshot_label CHAIN_ID LABEL: a label of a guest-pull snapshot ("" if
# absent); fails if the snapshot does not exist.
snapshot_label() {
  local info
  info="$(ctr_gp_snap info "$1")" || return 1
  jq -r --arg l "$2" '.Labels[$l] // ""' <<<"$info"
}

# wait_backend_stat KEY: waits (bounded by E2E_START_TIMEOUT) until a Stat
# of KEY through containerd reaches the daemon. After a daemon restart
# containerd's gRPC client needs up to ~1 s to reconnect, and
# `ctr snapshots ls` (lib.sh containerd_wait_snapshotter) does not prove it:
# containerd answers List from its own metadata DB. Last error in $E2E_OUT.
# shellcheck disable=SC2034  # E2E_OUT is read by the caller
wait_backend_stat() {
  local deadline=$((SECONDS + E2E_START_TIMEOUT))
  until E2E_OUT="$(ctr_gp_snap info "$1" 2>&1)"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# snapshot_kind CHAIN_ID: Committed / Active / View.
snapshot_kind() {
  local info
  info="$(ctr_gp_snap info "$1")" || return 1
  jq -r '.Kind' <<<"$info"
}

# rootfs_mount_line KEY PARENT TARGET: Prepares KEY on PARENT and prints the
# `mount -t TYPE SOURCE TARGET -o OPTS` line containerd returns.
rootfs_mount_line() {
  ctr_gp_snap prepare "$1" "$2" >/dev/null || return 1
  ctr_gp_snap mounts "$3" "$1"
}

# mount_line_field LINE FIELD: type|source|target|options of a ctr mount line.
mount_line_field() {
  local _m _t mtype source target _o opts
  read -r _m _t mtype source target _o opts <<<"$1"
  case "$2" in
    type) echo "$mtype" ;;
    source) echo "$source" ;;
    target) echo "$target" ;;
    options) echo "$opts" ;;
  esac
}

# volume_option OPTIONS: the io.katacontainers.volume= option in a
# comma-separated option list.
volume_option() { tr ',' '\n' <<<"$1" | grep '^io\.katacontainers\.volume=' || true; }

# decode_volume_json OPTION: the decoded volume JSON (without the validity
# lines).
decode_volume_json() { "$VERITY_TOOL" decode "$1" | sed '/^go_valid: /,$d'; }

# volume_meta JSON KEY: image_pull.metadata[KEY].
volume_meta() { jq -r --arg k "$2" '.image_pull.metadata[$k] // ""' <<<"$1"; }

# ---------------------------------------------------------------- verity

# veritysetup_root_hash FILE: the root hash veritysetup computes over FILE
# (no superblock, zero salt, 4096-byte blocks).
veritysetup_root_hash() {
  local out
  out="$(timeout "$E2E_CMD_TIMEOUT" veritysetup format --no-superblock \
    --salt=0000000000000000000000000000000000000000000000000000000000000000 \
    --hash=sha256 --data-block-size=4096 --hash-block-size=4096 "$1" "$1.hashtree")" || return 1
  rm -f "$1.hashtree"
  sed -n 's/^Root hash:[[:space:]]*//p' <<<"$out"
}

# tool_field OUTPUT KEY: value of a "key: value" line of guest-pull-verity.
tool_field() { sed -n "s/^$2: //p" <<<"$1"; }
