#!/usr/bin/env bash
# Builds ahead, at the lowest CPU priority, what the given suites would
# otherwise build in the foreground: the Go peers (tests/tools/go_peers.sh),
# the sanitizer builds (tests/sanitizers/run.sh --build-only, an output base
# of its own), the fuzz targets (tests/fuzz/run.sh --build-only) and the
# benchmarks' Go tools. scripts/test.sh runs it in the background while the
# first suites run (most of their time is spent waiting on daemons, fsync
# and the network) and waits for it before the sanitizer suite and the
# benchmarks, so it never competes with what they measure.
#
# It runs and counts no test. Every item is independent: one that fails is
# reported here and built again (and its failure reported) by its suite.
# Every build it starts is one a suite would start itself with the same
# flags, and each of them is safe to run twice at once (a lock, or a build
# cache that tolerates it).
#
# Usage: scripts/prebuild.sh SUITE...   (the suites that will run)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# test.sh starts this in a session of its own (setsid): with the kernel's
# autogroup scheduling (Debian's default) a session is weighed as one task
# whatever its processes' nice, so the session itself is set to nice 19 too
# (else it takes half the CPU from the suites and the main build).
echo 19 >"/proc/$$/autogroup" 2>/dev/null || true
# shellcheck source=../tests/harness/harness.sh
source tests/harness/harness.sh

# The suites that use each item (the first one needing it starts it
# itself if it is not built yet).
declare -A USERS=(
  [crictl]="functional compatibility stability standin_selftest deployments deployments_vm layer_cache_formats cri_pull_bench"
  [containerd-1.7]="config_merge deployments deployments_vm"
  [containerd-2.4]="config_merge deployments deployments_vm cri_pull_bench"
  [nydus-snapshotter]="peers_bench cri_pull_bench"
  [sanitizers]="sanitizers"
  [fuzz]="fuzz"
  [bench-tools]="peers_bench cri_pull_bench"
)
# containerd 2.3.7 and 2.2.9 are in the long mode's matrix only.
h_long && USERS[containerd-2.3]="config_merge deployments deployments_vm"
h_long && USERS[containerd-2.2]="config_merge deployments deployments_vm"
# In the order the suites first need them (config_merge is the first
# suite that builds a Go peer).
readonly ITEMS=(containerd-1.7 containerd-2.4 containerd-2.3 containerd-2.2 crictl nydus-snapshotter sanitizers fuzz bench-tools)

# wanted ITEM SUITE...: whether any of SUITE uses ITEM.
wanted() {
  local item="$1" suite
  shift
  for suite in "$@"; do
    [[ " ${USERS[$item]:-} " == *" $suite "* ]] && return 0
  done
  return 1
}

# build ITEM: builds it as its suite would.
build() {
  case "$1" in
    sanitizers) bash tests/sanitizers/run.sh --build-only ;;
    fuzz) bash tests/fuzz/run.sh --build-only ;;
    bench-tools) bash tests/bench/peers_bench.sh --build-only ;;
    *) env -u GO111MODULE -u GOPATH -u GOFLAGS bash -c 'source tests/tools/go_peers.sh && go_peer_bin "$1" >/dev/null' _ "$1" ;;
  esac
}

main() {
  local item start status failed=()
  for item in "${ITEMS[@]}"; do
    wanted "$item" "$@" || continue
    start=$SECONDS
    build "$item"
    status=$?
    echo "prebuild: $item: $( ((status == 0)) && echo built || echo "FAILED (status $status)") in $((SECONDS - start)) s"
    ((status == 0)) || failed+=("$item")
  done
  if ((${#failed[@]})); then
    echo "prebuild: not built: ${failed[*]} (their suites build them again)"
    return 1
  fi
}

main "$@"
