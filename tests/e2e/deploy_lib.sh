# shellcheck shell=bash
# deploy_lib.sh: helpers of tests/e2e/deployments.sh on top of lib.sh: the
# containerd config of each version from what deploy/ installs, crictl and
# the pod/container configs, the kata-shaped shim, and the observations the
# scenarios assert on (registry log by client, snapshots per snapshotter,
# the shim's decision log).
#
#   dep_tools                  builds the daemon, helper, verity tool,
#                              cri-client and the shim into $E2E_BIN
#   dep_pause_image            builds and pushes the pause image (PAUSE_REF)
#   dep_use_version V [RUN]    per-run paths (containerd, daemon, logs, the
#                              node's install root $DEP_HOST)
#   dep_containerd_config V    writes the config of version V (see below)
#   dep_make install|uninstall `make -C deploy` with KATA_MODE=$DEP_KATA_MODE
#   dep_daemonset SCRIPT       the DaemonSet's install.sh or preStop uninstall.sh
#   dep_daemon_config          the installed daemon config + the suite's policy
#   crictl ARGS...             crictl against the current containerd
#   dep_pod NAME kata|runc|HANDLER  writes a pod config; prints its path
#   dep_ctr NAME IMAGE [USER] CMD...  writes a container config; prints its path
#   dep_run_kata/dep_run_runc  pod + container + start; sets POD_ID, CTR_ID
#   host_layer_gets MARK DIGESTS...   layer blob GETs by containerd since MARK
#   in_snapshotter NAME CHAIN_IDS...  all chain IDs are snapshots of NAME
#   ck / ok / ko NAME ...      h_check / h_pass / h_fail named after the run
#   sc_begin / sc_end SCENARIO VERSION  RESULT[SCENARIO,VERSION] = pass|FAIL|skip
#   dep_print_table TITLE      RESULT as a table SCENARIOS x VERSIONS
#   dep_start_version V CV     containerd V + deploy configs + daemon, started
#   dep_teardown               the suites' EXIT trap (ends with print_table,
#                              which each suite defines, and h_finish)
#   dep_stop_all STATUS        end of an EXIT trap: stop everything, clean up
#
# The containerd config of each version is what an operator has after
# installing kata-deploy's runtime and our deploy/ files:
#   base (test-only): root/state/sockets, CNI paths, the sandbox image and the
#     loopback registry (hosts.toml); kata-deploy's runtime registration
#     (runtime_type, runtime_path, pod_annotations), nothing of ours;
#   then `make -C deploy install` (dep_make: KATA_MODE, prefix, the config
#     paths and our socket; containerd-setup.sh, the DaemonSet's code, merges
#     the main file and writes the drop-in, for version 2 and 3 alike).

DEP_HANDLER="kata-qemu-coco-dev"
DEP_SHIM="containerd-shim-kata-qemu-coco-dev-v2"
# patched (kata with deploy/kata/<release>/'s patch) or stock (unpatched
# kata): the KATA_MODE of the install and which shim build plays kata.
DEP_KATA_MODE="${DEP_KATA_MODE:-patched}"

dep_tools() {
  local t
  (cd "$E2E_REPO" && timeout 1800 bazel build //kata_volume/tools:guest-pull-verity \
    //tests/tools/cri:cri-client //mount_helper:guest-pull-overlayfs) >&2 || return 1
  for t in kata_volume/tools/guest-pull-verity tests/tools/cri/cri-client mount_helper/guest-pull-overlayfs; do
    cp "$E2E_REPO/bazel-bin/$t" "$E2E_BIN/" || return 1
  done
  VERITY_TOOL="$E2E_BIN/guest-pull-verity"
  CRI_CLIENT="$E2E_BIN/cri-client"
  dep_build_shims || return 1
  CRICTL="$(go_peer_bin crictl)/crictl" || return 1
  daemon_binary
}

# dep_build_shims: the kata-shaped shim twice, deciding as each kata does:
# $E2E_BIN/kata-stock/ with kata's module as served (IsNydusRootFSType), and
# $E2E_BIN/kata-patched/ (also $E2E_BIN/$DEP_SHIM) against kata's module
# patched with deploy/kata/<release>/ at test time (tests/kata/kata_lib.sh;
# IsGuestPullRootFSType), the release the shim's go.mod pins.
dep_build_shims() {
  local src="$E2E_REPO/tests/tools/kata-shim" tree="$E2E_DIR/kata-src" rel="${DEP_KATA_RELEASE:-3.29.0}"
  # shellcheck source=../kata/kata_lib.sh
  source "$E2E_REPO/tests/kata/kata_lib.sh"
  mkdir -p "$E2E_BIN/kata-stock" "$E2E_BIN/kata-patched" "$tree"
  (cd "$src" && CGO_ENABLED=0 timeout 1200 go build -trimpath -buildvcs=false \
    -o "$E2E_BIN/kata-stock/$DEP_SHIM" .) >&2 || return 1
  kata_patched_tree "$rel" "$tree" >&2 || return 1
  cp "$src/go.mod" "$tree/shim.mod" && cp "$src/go.sum" "$tree/shim.sum" || return 1
  (cd "$src" && go mod edit -modfile="$tree/shim.mod" -replace="$KATA_MODULE=$tree/runtime" &&
    CGO_ENABLED=0 timeout 1200 go build -modfile="$tree/shim.mod" -tags kata_patched -trimpath \
      -buildvcs=false -o "$E2E_BIN/kata-patched/$DEP_SHIM" . &&
    timeout 600 go test -modfile="$tree/shim.mod" -tags kata_patched -count=1 ./...) >&2 || return 1
  cp "$E2E_BIN/kata-patched/$DEP_SHIM" "$E2E_BIN/$DEP_SHIM"
}

# dep_pause_image: one layer with a static busybox and /pause (sleeps).
dep_pause_image() {
  local layout="$IMAGES_DIR/pause" bundle="$IMAGES_DIR/pause.bundle" r
  umoci init --layout "$layout" && umoci new --image "$layout:latest" &&
    umoci unpack --image "$layout:latest" "$bundle" >/dev/null || return 1
  r="$bundle/rootfs"
  mkdir -p "$r/bin" && cp "$(command -v busybox)" "$r/bin/busybox" &&
    ln -s busybox "$r/bin/sh" && ln -s busybox "$r/bin/sleep" || return 1
  printf '#!/bin/sh\nexec /bin/sleep 2147483647\n' >"$r/pause" && chmod 0755 "$r/pause"
  umoci repack --refresh-bundle --image "$layout:latest" "$bundle" >/dev/null &&
    umoci config --image "$layout:latest" --config.entrypoint /pause >/dev/null || return 1
  rm -rf "$bundle"
  image_push pause latest
  PAUSE_REF="$(image_ref pause latest)"
  dep_cache_add pause
}

# dep_cache_add NAME: the image's layers (diff_id, verity hash, passwd) into
# the layer cache the daemon reads (it reloads the file when it changes).
dep_cache_add() {
  timeout "$E2E_CMD_TIMEOUT" "$VERITY_TOOL" cache "$IMAGES_DIR/$1" --output "$DEP_LAYER_CACHE" >/dev/null
}

# dep_image NAME [LAYERS]: a fresh busybox image (lib.sh), pushed, its
# layers in the cache unless DEP_NO_CACHE=1.
dep_image() {
  image_build_busybox "$1" latest "${2:-3}" >&2
  image_push "$1" latest
  [[ "${DEP_NO_CACHE:-0}" == 1 ]] || dep_cache_add "$1" || e2e_die "layer cache of $1"
}

# dep_image_more IMG: IMG:more, IMG:latest (dep_image) with a fourth layer
# (/data/layer4), pushed: an image built on IMG.
dep_image_more() {
  local bundle="$IMAGES_DIR/$1-more.bundle"
  if ! { umoci unpack --image "$IMAGES_DIR/$1:latest" "$bundle" >/dev/null &&
    echo "layer4 $1:more" >"$bundle/rootfs/data/layer4" &&
    umoci repack --image "$IMAGES_DIR/$1:more" "$bundle" >/dev/null; }; then
    e2e_die "umoci: $1:more"
  fi
  rm -rf "$bundle"
  image_push "$1" more
}

# dep_image_zstd SRC IMG: a fresh 3-layer busybox image SRC (lib.sh; sets
# IMAGE_NONCE), recompressed by skopeo into IMG with every layer tar+zstd
# (the same tars, so the same diff_ids), IMG pushed and in the layer cache.
dep_image_zstd() {
  image_build_busybox "$1" latest 3 >&2
  timeout "$E2E_CMD_TIMEOUT" skopeo copy --quiet --dest-compress-format zstd \
    "oci:$IMAGES_DIR/$1:latest" "oci:$IMAGES_DIR/$2:latest" >&2 || return 1
  image_push "$2" latest
  dep_cache_add "$2"
}

# dep_registry_zstd IMG: the registry serves IMG:latest's manifest with
# every layer tar+zstd.
dep_registry_zstd() {
  timeout "$E2E_CMD_TIMEOUT" skopeo inspect --raw --tls-verify=false "docker://$(image_ref "$1" latest)" |
    jq -e '[.layers[].mediaType] | unique == ["application/vnd.oci.image.layer.v1.tar+zstd"]' >/dev/null
}

# dep_use_version V [RUN]: paths of run RUN (default V) of containerd V.
dep_use_version() {
  local v="${2:-$1}"
  DEP_RUN="$v"
  DEP_HOST="$E2E_DIR/host-$v"
  CONTAINERD_DIR="$E2E_DIR/cd-$v"
  CONTAINERD_SOCK="$E2E_DIR/cd-$v.sock"
  CONTAINERD_CONFIG="$CONTAINERD_DIR/config.toml"
  CONTAINERD_LOG="$E2E_DIR/logs/containerd-$v.log"
  GP_ROOT="$E2E_DIR/gp-$v"
  GP_SOCK="$E2E_DIR/gp-$v.sock"
  GP_LOG="$E2E_DIR/logs/daemon-$v.log"
  export GUEST_PULL_SHIM_LOG="$E2E_DIR/logs/shim-$v.log"
  export GUEST_PULL_SHIM_VERITY_TOOL="$VERITY_TOOL"
  export GUEST_PULL_SHIM_BUSYBOX
  GUEST_PULL_SHIM_BUSYBOX="$(command -v busybox)"
  PODS_DIR="$E2E_DIR/pods-$v"
  mkdir -p "$CONTAINERD_DIR/conf.d" "$PODS_DIR" "$DEP_HOST" "$CONTAINERD_DIR/cni/bin" "$CONTAINERD_DIR/cni/conf"
  : >"$GUEST_PULL_SHIM_LOG"
}

dep_hosts_toml() {
  mkdir -p "$CONTAINERD_DIR/certs.d/$REGISTRY_ADDR"
  cat >"$CONTAINERD_DIR/certs.d/$REGISTRY_ADDR/hosts.toml" <<EOF
server = "http://$REGISTRY_ADDR"
[host."http://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
EOF
}

# dep_containerd_config 2|3 [uninstalled]: the main config (+ drop-ins).
dep_containerd_config() {
  local cv="$1" state="${2:-installed}" base="$CONTAINERD_DIR/base.toml" cri rt
  dep_hosts_toml
  rm -f "$CONTAINERD_DIR"/conf.d/*.toml "$CONTAINERD_CONFIG.guest-pull-backup"
  if [[ "$cv" == 2 ]]; then cri='plugins."io.containerd.grpc.v1.cri"'; rt="$cri.containerd"
  else cri='plugins."io.containerd.cri.v1.runtime"'; rt="$cri.containerd"; fi
  {
    echo "version = $cv"
    echo "root = \"$CONTAINERD_DIR/root\""
    echo "state = \"$CONTAINERD_DIR/state\""
    [[ "$cv" == 2 ]] || echo "imports = [\"$CONTAINERD_DIR/conf.d/*.toml\"]"
    printf '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n' "$CONTAINERD_SOCK" "$CONTAINERD_SOCK"
    printf '[plugins."io.containerd.internal.v1.opt"]\n  path = "%s/opt"\n' "$CONTAINERD_DIR"
    if [[ "$cv" == 2 ]]; then
      printf '[%s]\n  disable_tcp_service = true\n  stream_server_address = "127.0.0.1"\n' "$cri"
      printf '  stream_server_port = "0"\n  sandbox_image = "%s"\n' "$PAUSE_REF"
      printf '  restrict_oom_score_adj = true\n'
      printf '[%s.registry]\n  config_path = "%s/certs.d"\n' "$cri" "$CONTAINERD_DIR"
    else
      printf '[plugins."io.containerd.grpc.v1.cri"]\n  disable_tcp_service = true\n'
      printf '  stream_server_address = "127.0.0.1"\n  stream_server_port = "0"\n'
      printf '[plugins."io.containerd.cri.v1.images".pinned_images]\n  sandbox = "%s"\n' "$PAUSE_REF"
      printf '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "%s/certs.d"\n' "$CONTAINERD_DIR"
    fi
    # This machine's root lacks CAP_SYS_RESOURCE: clamp the pods' oom_score_adj.
    if [[ "$cv" == 2 ]]; then
      printf '[%s.cni]\n  bin_dir = "%s/cni/bin"\n' "$cri" "$CONTAINERD_DIR"
    else
      printf '[%s]\n  restrict_oom_score_adj = true\n' "$cri"
      printf '[%s.cni]\n  bin_dirs = ["%s/cni/bin"]\n' "$cri" "$CONTAINERD_DIR"
    fi
    printf '  conf_dir = "%s/cni/conf"\n' "$CONTAINERD_DIR"
    # containerd 1.7 drops its default runc runtime once the file names any
    # runtime: an operator's 1.7 config (containerd config default) has it.
    [[ "$cv" == 3 ]] || printf '[%s.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n' "$rt"
    # kata-deploy's registration of the runtime (its values, our shim).
    printf '[%s.runtimes.%s]\n  runtime_type = "io.containerd.%s.v2"\n' "$rt" "$DEP_HANDLER" "$DEP_HANDLER"
    printf '  runtime_path = "%s/kata-%s/%s"\n  privileged_without_host_devices = true\n' \
      "$E2E_BIN" "$DEP_KATA_MODE" "$DEP_SHIM"
    printf '  pod_annotations = ["io.katacontainers.*"]\n'
    printf '  container_annotations = ["io.kubernetes.container.terminationMessage*"]\n'
  } >"$base"
  cp "$base" "$CONTAINERD_CONFIG"
  [[ "$state" != installed ]] || dep_make install
}

# dep_make install|uninstall: `make -C deploy install` (KATA_MODE=$DEP_KATA_MODE)
# or `uninstall` as an operator runs it on a node, with the prebuilt
# binaries and this run's paths: the install prefix, daemon config and unit
# under $DEP_HOST, containerd's config and drop-in of this run, our socket.
# install also merges containerd's config (containerd-setup.sh).
dep_make() {
  SOCKET="$GP_SOCK" make -s -C "$E2E_REPO/deploy" "$1" NO_BUILD=1 BIN_DIR="$E2E_BIN" \
    KATA_MODE="$DEP_KATA_MODE" PREFIX="$DEP_HOST/usr/local" CONFDIR="$DEP_HOST/etc/containerd-guest-pull-grpc" \
    SYSTEMDDIR="$DEP_HOST/etc/systemd/system" CONTAINERD_CONFIG="$CONTAINERD_CONFIG" \
    CONTAINERD_DROPIN="$CONTAINERD_DIR/conf.d/guest-pull.toml" >>"$E2E_DIR/logs/install-$DEP_RUN.log" 2>&1
}

# dep_daemonset SCRIPT: one of the DaemonSet's scripts (deploy/k8s/scripts/
# install.sh, or uninstall.sh as its preStop) with its environment as in
# deploy/k8s/daemonset.yaml but the host root / and this run's paths; the
# payload is laid out as deploy/Dockerfile does (bundle-libs.sh). Its
# systemctl calls are recorded in $DEP_HOST/systemctl.log: the caller
# carries them out (stops/starts the daemon, restarts containerd).
dep_daemonset() {
  local rec="$E2E_BIN/systemctl-recorder" payload="$E2E_DIR/payload"
  printf '#!/bin/sh\necho "$*" >>"%s/systemctl.log"\n' "$DEP_HOST" >"$rec" && chmod +x "$rec"
  : >"$DEP_HOST/systemctl.log"
  if [[ ! -d "$payload/bin" ]]; then
    "$E2E_REPO/deploy/bundle-libs.sh" "$payload" "$E2E_BIN/containerd-guest-pull-grpc" \
      "$E2E_BIN/guest-pull-overlayfs" "$E2E_BIN/guest-pull-verity" >/dev/null &&
      mkdir -p "$payload/systemd" "$payload/config" "$payload/doc" &&
      cp "$E2E_REPO/deploy/systemd/guest-pull-snapshotter.service" "$payload/systemd/" &&
      cp "$E2E_REPO/deploy/config/config.toml" "$payload/config/" &&
      cp "$E2E_REPO"/docs/*.md "$payload/doc/" || return 1
  fi
  HOST_ROOT=/ SYSTEMCTL="$rec" CONTAINERD="env PATH=$E2E_BIN:$PATH containerd" \
    PAYLOAD_DIR="$payload" PREFIX="$DEP_HOST/usr/local" \
    CONFIG_DIR="$DEP_HOST/etc/containerd-guest-pull-grpc" \
    UNIT_PATH="$DEP_HOST/etc/systemd/system/guest-pull-snapshotter.service" \
    CONTAINERD_CONFIG="$CONTAINERD_CONFIG" CONTAINERD_DROPIN="$CONTAINERD_DIR/conf.d/guest-pull.toml" \
    SNAPSHOTTER_HANDLER_MAPPING=qemu-coco-dev:guest-pull MISSING_RUNTIME=fail GLOBAL_SNAPSHOTTER=false \
    RUNTIME_WAIT_SECONDS=0 GUEST_PULL_SLEEP=false SOCKET="$GP_SOCK" DATA_DIR="$GP_ROOT" POD_UID="pod-$DEP_RUN" \
    PRESTOP_MARKER="$E2E_DIR/prestop-started-$DEP_RUN" BUSCTL=none \
    KATA_MODE="$DEP_KATA_MODE" "$E2E_REPO/deploy/k8s/scripts/$1" >>"$E2E_DIR/logs/install-$DEP_RUN.log" 2>&1
}

# dep_daemon_config: the daemon config `make -C deploy install` put in place
# (its mount_type is the mode's), with this suite's policy: guest pull of
# every image but the excluded ones, verity required, the suite's layer
# cache. Without an installed config (not installed), the same policy on
# the defaults.
dep_daemon_config() {
  local installed="$DEP_HOST/etc/containerd-guest-pull-grpc/config.toml"
  if [[ -f "$installed" ]]; then
    sed -e 's|^exclude = \[\]$|exclude = [".*/excluded-.*"]|' -e 's|^mode = "best_effort"$|mode = "required"|' \
      -e "s|^layer_cache = \"\"\$|layer_cache = \"$DEP_LAYER_CACHE\"|" "$installed" >"$GP_CONFIG"
    grep -qF 'excluded-' "$GP_CONFIG" && grep -qx 'mode = "required"' "$GP_CONFIG" &&
      grep -qF "$DEP_LAYER_CACHE" "$GP_CONFIG" || { echo "installed config not in the expected shape" >&2; return 1; }
    return 0
  fi
  daemon_write_config
  daemon_config_append <<EOF

[guest_pull]
enable = true
include = [".*"]
exclude = [".*/excluded-.*"]

[verity]
mode = "required"
layer_cache = "$DEP_LAYER_CACHE"
write_passwd = true
EOF
}

# dep_mount_type: the mount type the daemon's config names.
dep_mount_type() { sed -n 's/^mount_type = "\(.*\)"$/\1/p' "$GP_CONFIG"; }

crictl() { e2e_crictl "$@"; }

# dep_pod NAME kata|runc|HANDLER: prints the pod config path (kata or
# another handler: the annotation that pulls for that handler).
# DEP_POD_ANNOTATIONS (a JSON object) adds pod annotations; DEP_USERNS (a
# CRI userns_options JSON object) puts the pod in a user namespace.
dep_pod() {
  local name="$1" kind="$2" f="$PODS_DIR/$1.pod.json" ann='{}' handler="$2"
  [[ "$kind" == kata ]] && handler="$DEP_HANDLER"
  [[ "$kind" == runc ]] || ann="{\"io.containerd.cri.runtime-handler\": \"$handler\"}"
  ann="$(jq -c --argjson x "${DEP_POD_ANNOTATIONS:-{\}}" '. + $x' <<<"$ann")" || return 1
  mkdir -p "$PODS_DIR/$name"
  jq -n --arg n "$name" --arg d "$PODS_DIR/$name" --argjson a "$ann" \
    --argjson u "${DEP_USERNS:-null}" '{
    metadata: {name: $n, namespace: "deploy", uid: ("uid-" + $n), attempt: 0},
    log_directory: $d, annotations: $a,
    linux: {security_context: {namespace_options: ({network: 2} +
      (if $u == null then {} else {userns_options: $u} end))}}}' >"$f"
  echo "$f"
}

# dep_ctr NAME IMAGE USER CMD...: prints the container config path (USER ""
# = the image's; DEP_MOUNTS: the CRI mounts, a JSON array; DEP_USERNS: the
# pod's user namespace, which CRI wants repeated here; DEP_CTR_SECURITY: more
# of the container's CRI security_context, a JSON object).
dep_ctr() {
  local name="$1" image="$2" user="$3" f="$PODS_DIR/$1.ctr.json"
  shift 3
  local cmd
  # Not jq --args: jq would take a "-c" of the command as its own option.
  cmd="$(printf '%s\n' "$@" | jq -R . | jq -s -c .)"
  jq -n --arg n "$name" --arg i "$image" --arg u "$user" --argjson cmd "$cmd" \
    --argjson mounts "${DEP_MOUNTS:-[]}" --argjson ns "${DEP_USERNS:-null}" \
    --argjson sec "${DEP_CTR_SECURITY:-{\}}" '{
    metadata: {name: $n}, image: {image: $i}, command: $cmd,
    log_path: ($n + ".log"), mounts: $mounts,
    linux: (((if $u == "" then {} else {run_as_username: $u} end) +
      (if $ns == null then {} else {namespace_options: {network: 2, userns_options: $ns}} end) + $sec)
      | if . == {} then {} else {security_context: .} end)}' >"$f"
  echo "$f"
}

# dep_run KIND POD_NAME IMAGE USER CMD...: runp (with the kata handler for
# kata, handler KIND for another than runc), create, start. Sets POD_ID and
# CTR_ID; the failing step's output is in E2E_OUT.
dep_run() {
  local kind="$1" name="$2" image="$3" user="$4" pod ctr
  shift 4
  POD_ID=""; CTR_ID=""
  pod="$(dep_pod "$name" "$kind")"
  ctr="$(dep_ctr "$name-c" "$image" "$user" "$@")"
  local -a rt=()
  [[ "$kind" == kata ]] && rt=(--runtime "$DEP_HANDLER")
  [[ "$kind" == kata || "$kind" == runc ]] || rt=(--runtime "$kind")
  E2E_OUT="$(crictl runp "${rt[@]}" "$pod" 2>&1)" || return 1
  POD_ID="$(tail -n 1 <<<"$E2E_OUT")"
  E2E_OUT="$(crictl create "$POD_ID" "$ctr" "$pod" 2>&1)" || return 1
  CTR_ID="$(tail -n 1 <<<"$E2E_OUT")"
  E2E_OUT="$(crictl start "$CTR_ID" 2>&1)" || return 1
}

# dep_wait_log CTR_ID TEXT: waits (bounded) until the container's log holds
# TEXT.
dep_wait_log() {
  local deadline=$((SECONDS + 60))
  until crictl logs "$1" 2>&1 | grep -qF -- "$2"; do
    ((SECONDS < deadline)) || { E2E_OUT="$(crictl logs "$1" 2>&1)"; return 1; }
    sleep 0.3
  done
}

dep_state() { crictl inspect "$1" 2>/dev/null | jq -r '.status.state'; }

# host_layer_gets MARK DIGESTS...: blob GETs of those digests made by
# containerd (its user agent; DEP_CLIENT names another) since
# registry_log_mark MARK.
host_layer_gets() {
  local mark="$1" d n total=0
  shift
  for d in "$@"; do
    n="$(tail -n "+$mark" "$REGISTRY_LOG" | grep -E "\"GET /v2/[^ \"]+/blobs/$d HTTP" |
      grep -cF "${DEP_CLIENT:-containerd/}" || true)"
    total=$((total + n))
  done
  echo "$total"
}

# in_snapshotter NAME CHAIN_IDS...: every chain ID is a snapshot of NAME.
in_snapshotter() {
  local name="$1" list c
  shift
  (($# > 0)) || return 1  # no chain IDs read: nothing was checked
  list="$(ctr_cmd -n k8s.io snapshots --snapshotter "$name" ls 2>&1)" || return 1
  for c in "$@"; do grep -qF -- "$c" <<<"$list" || return 1; done
}

# none_in_snapshotter NAME CHAIN_IDS...: no chain ID is a snapshot of NAME.
none_in_snapshotter() {
  local name="$1" list c
  shift
  (($# > 0)) || return 1  # no chain IDs read: nothing was checked
  list="$(ctr_cmd -n k8s.io snapshots --snapshotter "$name" ls 2>&1)" || return 1
  for c in "$@"; do ! grep -qF -- "$c" <<<"$list" || return 1; done
}

# shim_says CTR_ID TEXT: the shim's decision log has TEXT for the container.
shim_says() { grep -F "container $1" "$GUEST_PULL_SHIM_LOG" | grep -qF -- "$2"; }

# dep_kata_checked: patched runs (scenario K): every guest-pull rootfs the
# shim took this run (its IsGuestPullRootFSType decision, sandboxes and
# containers alike: the mounts containerd's CreateTask really carried) had
# first passed the patch's own virtcontainers.CheckGuestPullRootFS, and the
# only refusals were of volumes the tamper hook rewrote (scenario 7).
dep_kata_checked() {
  local counts taken accepted tampered bad
  counts="$(awk '
    { id = "" }
    match($0, /container [^:]+:/) { id = substr($0, RSTART + 10, RLENGTH - 11) }
    / kata patched: virtcontainers\.IsGuestPullRootFSType\("[^"]*"\) = true$/ { taken[id] = 1; nt++ }
    / kata patched: virtcontainers\.CheckGuestPullRootFS\(.*\) = accepted$/ { ok[id] = 1; na++ }
    / TEST HOOK io\.katacontainers\.guest-pull\.test\.tamper-volume: / { hook[id] = 1; nh++ }
    / kata patched: .* = refused: / { refused[id] = $0 }
    END {
      bad = ""
      for (i in taken) if (!(i in ok)) bad = bad " unchecked:" i
      for (i in refused) if (!(i in hook)) bad = bad " refused:" i
      printf "%d %d %d%s\n", nt, na, nh, bad
    }' "$GUEST_PULL_SHIM_LOG")"
  read -r taken accepted tampered bad <<<"$counts"
  ck "K every guest-pull rootfs the shim took ($taken) passed kata's CheckGuestPullRootFS first ($accepted accepted); refused only tampered volumes ($tampered)${bad:+; not so:$bad}" \
    test "$taken" -gt 0 -a "$taken" -eq "$accepted" -a -z "$bad"
}

# dep_stop_all STATUS: the end of a suite's EXIT trap: stops containerd,
# the daemon and the registry, unmounts, counts an abort (STATUS != 0 with
# no failure yet) as a failure, dumps the logs after a failure and removes
# $E2E_DIR unless E2E_KEEP=1 or something stayed mounted.
dep_stop_all() {
  local status="$1"
  containerd_stop
  [[ -z "$GP_PID" ]] || stop_daemon
  registry_stop
  e2e_unmount_all || h_fail "could not unmount everything under $E2E_DIR"
  if ((status != 0 && H_FAILED == 0)); then h_fail "suite aborted (status $status)"; fi
  ((H_FAILED == 0)) || e2e_dump_logs
  if [[ "${E2E_KEEP:-0}" != 1 ]] && ! grep -qF " $E2E_DIR/" /proc/self/mounts; then rm -rf "$E2E_DIR"; fi
}

# dep_rm_pods: stops and removes every pod (bounded).
dep_rm_pods() { crictl rmp -a -f >/dev/null 2>&1 || true; }

# dep_decider: the kata function that takes the rootfs for guest pull in
# this mode (the shim logs it with its verdict).
dep_decider() {
  if [[ "$DEP_KATA_MODE" == stock ]]; then echo virtcontainers.IsNydusRootFSType
  else echo virtcontainers.IsGuestPullRootFSType; fi
}

# ------------------------------------------------- the suites' bookkeeping

SC_FAILED=0
SC_PASSED=0
sc_begin() { SC_FAILED=$H_FAILED; SC_PASSED=$H_PASSED; }
sc_end() {
  local key="$1,$2"
  if ((H_FAILED > SC_FAILED)); then RESULT[$key]="FAIL"
  elif ((H_PASSED > SC_PASSED)); then RESULT[$key]="pass"
  else RESULT[$key]="skip"; fi
}

# dep_start_version V CONFIG_VERSION [LABEL]: containerd V (built from its
# module) with the deploy configs and our daemon, started; h_fail and
# non-zero when it cannot be built or configured. Environment the shim is to
# inherit must be exported before.
dep_start_version() {
  local v="$1" cv="$2" label="${3:-$1}" bin
  if ! bin="$(go_peer_bin "containerd-$v")"; then
    h_fail "[$label] build containerd $v from its module"
    return 1
  fi
  containerd_use_version "$bin"
  dep_use_version "$v"
  # make install (in dep_containerd_config) first: the daemon then starts
  # on the config it installed, as on a node.
  dep_containerd_config "$cv" || { h_fail "[$label] containerd config from deploy/"; return 1; }
  dep_daemon_config || { h_fail "[$label] daemon config from the installed one"; return 1; }
  start_daemon
  containerd_start
}

# dep_print_table TITLE: RESULT as a table, SCENARIOS x the runs (RUNS
# when the suite keeps one, e.g. "2.4" and "2.4-stock"; else VERSIONS).
# ck NAME CMD... / ok NAME / ko NAME [DETAIL]: h_check, h_pass and h_fail
# with the run in front of the name: the version $V and the suite's
# $DEP_CASE_TAG (e.g. "vm").
dep_case() { echo "[$V${DEP_CASE_TAG:+ $DEP_CASE_TAG}] $1"; }
ck() { local n="$1"; shift; h_check "$(dep_case "$n")" "$@"; }
ok() { h_pass "$(dep_case "$1")"; }
ko() { h_fail "$(dep_case "$1")" "${2:-}"; }

dep_print_table() {
  local v s line
  local -a cols=("${VERSIONS[@]}")
  if declare -p RUNS >/dev/null 2>&1; then cols=("${RUNS[@]}"); fi
  echo "$1"
  line="$(printf '%-10s' scenario)"
  for v in "${cols[@]}"; do line+="$(printf '%-10s' "$v")"; done
  echo "$line"
  for s in "${SCENARIOS[@]}"; do
    line="$(printf '%-10s' "$s")"
    for v in "${cols[@]}"; do line+="$(printf '%-10s' "${RESULT[$s,$v]:-skip}")"; done
    echo "$line"
  done
}

dep_teardown() {
  local status=$?
  set +e
  dep_rm_pods 2>/dev/null
  dep_stop_all "$status"
  print_table
  h_finish
}
