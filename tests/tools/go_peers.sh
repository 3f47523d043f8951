# shellcheck shell=bash
# go_peers.sh: real peers built from Go modules at pinned versions, once
# per machine, into a cache keyed by name, version and Go version.
#
#   go_peer_bin NAME            prints the bin dir of a pinned peer, building
#                               it first if the cache lacks it (returns 1 with
#                               the build log's tail on stderr if it fails)
#   go_peer_nydus_proxy_toml DIR
#                               prints a config of nydus-snapshotter in proxy
#                               mode with its root and sockets under DIR
#
# Pinned peers (NAME: module@version, packages):
#   containerd-1.7   github.com/containerd/containerd v1.7.35
#   containerd-2.4   github.com/containerd/containerd/v2 v2.4.2
#   containerd-2.3   github.com/containerd/containerd/v2 v2.3.7 (long mode)
#   containerd-2.2   github.com/containerd/containerd/v2 v2.2.9 (long mode)
#   crictl           sigs.k8s.io/cri-tools v1.37.0
#   nydus-snapshotter github.com/containerd/nydus-snapshotter v0.16.1
#                    (containerd-nydus-grpc, proxy mode in tests/bench; and
#                    nydus-overlayfs, the helper that mounts its
#                    fuse.nydus-overlayfs mounts)
#   guest-pull-snapshotter github.com/ChengyuZhu6/guest-pull-snapshotter:
#                    not served by the module proxy (403 "not available"),
#                    so go_peer_bin reports that and returns 1
#
# Environment: GP_PEERS_CACHE (default /var/cache/guest-pull-peers).
# The Go module and build caches are Go's own (kept between runs).

GP_PEERS_CACHE="${GP_PEERS_CACHE:-/var/cache/guest-pull-peers}"

# _go_peer_spec NAME: prints "MODULE VERSION TAGS PKG..." of a pinned peer.
_go_peer_spec() {
  case "$1" in
    containerd-1.7) echo "github.com/containerd/containerd v1.7.35 no_btrfs,no_devmapper,no_zfs cmd/containerd cmd/ctr cmd/containerd-shim-runc-v2" ;;
    containerd-2.4) echo "github.com/containerd/containerd/v2 v2.4.2 no_btrfs,no_devmapper,no_zfs cmd/containerd cmd/ctr cmd/containerd-shim-runc-v2" ;;
    containerd-2.3) echo "github.com/containerd/containerd/v2 v2.3.7 no_btrfs,no_devmapper,no_zfs cmd/containerd cmd/ctr cmd/containerd-shim-runc-v2" ;;
    containerd-2.2) echo "github.com/containerd/containerd/v2 v2.2.9 no_btrfs,no_devmapper,no_zfs cmd/containerd cmd/ctr cmd/containerd-shim-runc-v2" ;;
    crictl) echo "sigs.k8s.io/cri-tools v1.37.0 - cmd/crictl" ;;
    nydus-snapshotter) echo "github.com/containerd/nydus-snapshotter v0.16.1 - cmd/containerd-nydus-grpc cmd/nydus-overlayfs" ;;
    *) return 1 ;;
  esac
}

go_peer_version() { local s; s=$(_go_peer_spec "$1") || return 1; set -- $s; echo "$2"; }

# _go_peer_cached DIR PKG...: DIR holds a finished build with a binary of
# every PKG (a spec that gained a package builds again).
_go_peer_cached() {
  local dir="$1" pkg
  shift
  [[ -f "$dir/.complete" ]] || return 1
  for pkg in "$@"; do [[ -x "$dir/bin/${pkg##*/}" ]] || return 1; done
}

go_peer_bin() {
  local name="$1" spec module version tags pkgs gover dir pkg src args=() local_pkgs=()
  spec=$(_go_peer_spec "$name") || { echo "go_peers: unknown peer $name" >&2; return 1; }
  read -r module version tags pkgs <<<"$spec"
  gover=$(go env GOVERSION) || { echo "go_peers: no go on PATH" >&2; return 1; }
  dir="$GP_PEERS_CACHE/$name-$version-$gover"
  if _go_peer_cached "$dir" $pkgs; then echo "$dir/bin"; return 0; fi
  mkdir -p "$GP_PEERS_CACHE" || return 1
  (
    flock 9
    _go_peer_cached "$dir" $pkgs && exit 0
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/bin" || exit 1
    [[ "$tags" != "-" ]] && args+=(-tags "$tags")
    # Built as the main module from a writable copy of its own source, so
    # its go.mod (replace/exclude directives included) and go.sum apply,
    # as in the project's own release builds.
    src=$(GOFLAGS=-mod=mod go mod download -json "$module@$version" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') || exit 1
    cp -r "$src" "$dir.tmp/src" && chmod -R u+w "$dir.tmp/src" || exit 1
    local_pkgs=()
    for pkg in $pkgs; do local_pkgs+=("./$pkg"); done
    echo "go_peers: building ${local_pkgs[*]} of $module@$version ($gover)" >&2
    if ! (cd "$dir.tmp/src" && GOFLAGS=-mod=mod CGO_ENABLED=1 timeout 1200 \
      go build "${args[@]}" -o "$dir.tmp/bin/" "${local_pkgs[@]}") >"$dir.tmp/build.log" 2>&1; then
      tail -n 20 "$dir.tmp/build.log" >&2
      exit 1
    fi
    rm -rf "$dir.tmp/src"
    touch "$dir.tmp/.complete" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
  ) 9>"$GP_PEERS_CACHE/.$name.lock" || return 1
  echo "$dir/bin"
}

# go_peer_nydus_proxy_toml DIR: prints the config of nydus-snapshotter in
# proxy mode (the guest-pull peer of the benchmarks): root DIR/nydus,
# socket DIR/nydus.sock, no daemon, no system controller, no metrics,
# kata volumes on.
go_peer_nydus_proxy_toml() {
  cat <<TOML
version = 1
root = "$1/nydus"
address = "$1/nydus.sock"
daemon_mode = "none"
[system]
enable = false
address = "$1/nydus-system.sock"
[metrics]
address = ""
[log]
log_to_stdout = true
level = "warn"
[daemon]
fs_driver = "proxy"
[snapshot]
enable_kata_volume = true
TOML
}
