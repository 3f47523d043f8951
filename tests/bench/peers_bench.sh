#!/usr/bin/env bash
# Peers benchmark: containerd-guest-pull-grpc, containerd 1.6's and 2.x's
# overlayfs, nydus-snapshotter in proxy mode (the guest-pull peer) and the
# original Go guest-pull-snapshotter, all served over the same Snapshots
# API on unix sockets and driven in the same run, interleaved, by one client
# (tests/bench/peers/peerbench). The floor (tests/bench/peers/floorserver,
# snapshots in a Go map, nothing on disk) runs the API figures beside them:
# what the client and a Go server's RPC cost with no work behind them, the
# reference for what is left to gain. Prints a table with ratios against both overlayfs versions and
# the floor, and one harness figure per (figure, server); a figure
# a server could not produce, or a peer that could not be built, is a skip
# with its reason. No thresholds (nothing timed is asserted).
#
# Data figures (both modes; formerly tests/bench/snapshots_bench.sh): a
# chain whose layers are mounted and written between Prepare and Commit,
# Stat p99, Usage of an active snapshot of 1000 files (computed), a 100 MiB
# Commit under 8 goroutines of Stat calls, Remove of the chain.
# Noisy neighbour (both modes, 11 rounds): one chain of 10 CRI-labelled
# layer Prepares/Commits per server on a clean (synced) filesystem and
# again right after 800 MiB of another process's dirty, unsynced data was
# written to the same filesystem; the slowdown (dirty / clean) per server.
#
# Default mode: short (~3 min here once the peers are cached; the noisy
# neighbour rows add about a minute). Long mode
# (GUEST_PULL_TEST_MODE=long): more rounds, List of 10,000 snapshots, then
# every server restarted on its root: time from its start to the first
# answered RPC (peerbench dials the socket every 1 ms) + a full Walk, and
# its memory after that (RSS, PSS, anonymous); then the same for a second
# root per server filled with 10,000 CRI-labelled snapshots (the
# guest-pull path for ours and nydus). Three restarts of each, the servers
# taking turns; the table shows the median.
# Usage: tests/bench/peers_bench.sh [peerbench flags...]
# Environment: GUEST_PULL_DAEMON (prebuilt daemon), GP_PEERS_CACHE,
# PEERS_NOISY_MB (dirty data of the noisy-neighbour rows, default 800),
# PEERS_BENCH_DIR (the directory the servers' roots, sockets and the noise
# are made in, default /tmp: point it at the filesystem to be measured).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
readonly HERE REPO
# shellcheck source=../tools/peers.sh
source "$REPO/tests/tools/peers.sh"
# shellcheck source=../tools/go_peers.sh
source "$REPO/tests/tools/go_peers.sh"
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
readonly SOCKET_WAIT_S=30
readonly BENCH_TIMEOUT_S=900
# Long mode: restarts of each server per store; the table shows the median.
readonly RESTART_ROUNDS=3

work=""
declare -A pid_of=() bin_of=() sock_of=() root_of=() conf_of=() restart_row=() restart_samples=()
servers=()
helper_path=""  # directories prepended to PATH for the mount helpers of peers

log() { printf 'peers_bench: %s\n' "$*" >&2; }

teardown() {
  local rc=$? name
  trap - EXIT INT TERM
  for name in "${servers[@]}"; do peers_stop_pid "${pid_of[$name]:-}" "$name"; done
  peers_teardown_suite "$rc" "$work" 0
}

# start NAME: launch NAME (below), then wait for its socket (0.1 s polls:
# setup only, never a figure).
start() {
  local name="$1"
  launch "$name"
  peers_wait_until "$SOCKET_WAIT_S" test -S "${sock_of[$name]}"
}

# launch NAME: starts server NAME on its socket, root and config (default
# $work/NAME.*) in the background; its start time (ns) goes to
# $work/NAME.t0.
launch() {
  local name="$1"
  rm -f "${sock_of[$name]}"
  date +%s%N >"$work/$name.t0"
  "${bin_of[$name]}" --address="${sock_of[$name]}" --root="${root_of[$name]:-$work/$name}" \
    --config="${conf_of[$name]:-$work/$name.toml}" --log-level=warn >>"$work/$name.log" 2>&1 &
  pid_of[$name]=$!
}

# build_tools DIR: peerbench, refserver2 and floorserver into DIR (module
# mode; scripts/prebuild.sh runs it ahead through --build-only).
build_tools() {
  (cd "$HERE/peers" && GOFLAGS=-mod=readonly go build -o "$1/" ./peerbench ./refserver2 ./floorserver)
}

build_servers() {
  local daemon="${GUEST_PULL_DAEMON:-$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc}" nydus
  if [[ -z "${GUEST_PULL_DAEMON:-}" && ! -x "$daemon" ]]; then
    h_setup "bazel build of the daemon" bash -c "cd '$REPO' && bazel build //snapshotter:containerd-guest-pull-grpc >&2"
  fi
  cp "$daemon" "$work/daemon"  # private copy: a concurrent build cannot swap it
  bin_of[ours]="$work/daemon"; : >"$work/ours.toml"; servers+=(ours)
  # Module-mode builds first (peers_gopath below switches to GOPATH mode).
  h_setup "go build peerbench, refserver2 and floorserver (containerd v2.4.2 module)" \
    build_tools "$work"
  bin_of[ovl2.x]="$work/refserver2"; : >"$work/ovl2.x.toml"
  bin_of[floor]="$work/floorserver"; : >"$work/floor.toml"
  peers_gopath "$work/gopath" conformance="$REPO/tests/conformance"
  h_setup "go build refserver (containerd 1.6, GOPATH mode)" \
    bash -c "cd '$work/gopath/src/guestpull/conformance' && go build -o '$work/refserver' ./refserver"
  bin_of[ovl1.6]="$work/refserver"; : >"$work/ovl1.6.toml"
  servers+=(ovl1.6 ovl2.x)
  if nydus=$(env -u GO111MODULE -u GOPATH -u GOFLAGS bash -c "source '$REPO/tests/tools/go_peers.sh' && go_peer_bin nydus-snapshotter"); then
    bin_of[nydus]="$nydus/containerd-nydus-grpc"
    helper_path="$nydus:"  # nydus-overlayfs, run by mount.fuse for its mounts
    go_peer_nydus_proxy_toml "$work" >"$work/nydus.toml"
    servers+=(nydus)
  else
    h_skip "nydus-snapshotter v$(go_peer_version nydus-snapshotter) built" "go build of the pinned module failed (log above)"
  fi
  servers+=(floor)
  h_skip "guest-pull-snapshotter (Go) measured" \
    "module github.com/ChengyuZhu6/guest-pull-snapshotter is not served by the Go module proxy (go list -m -versions and @main: 403 'This module version is not available')"
}

server_list() {
  local name out=()
  for name in "${servers[@]}"; do out+=("$name=${sock_of[$name]}"); done
  (IFS=,; echo "${out[*]}")
}

# count_rows OUT: one pass (figure + h_figure) or skip per table line.
count_rows() {
  local line label server rest in_table=0 rows=0
  while IFS= read -r line; do
    if [[ "$line" == ------* ]]; then in_table=1; continue; fi
    ((in_table)) || continue
    IFS='|' read -r label server rest <<<"$line"
    # read with the default IFS trims the padding around each column.
    read -r label <<<"$label"; read -r server <<<"$server"; read -r rest <<<"$rest"
    rows=$((rows + 1))
    if [[ "$rest" == SKIP* ]]; then
      h_skip "$label: $server" "not measured: ${rest#SKIP }"
    else
      h_pass "$label: $server measured"
      h_figure "$label $server" "$rest (value | /ovl1.6 | /ovl2.x | /floor)"
    fi
  done <"$1"
  ((rows > 0)) || h_fail "peerbench printed no table" "$(tail -n 20 "$1")"
}

# memory_of PID: "RSS PSS anonymous" in MB after the Walk (RSS counts every
# resident page mapped, shared libraries and mmapped files included; PSS
# shares them out among the processes mapping them; anonymous is the
# process's own heap and stacks).
memory_of() {
  awk '/^(Rss|Pss|Anonymous):/ { v[$1] = $2 / 1024 }
       END { printf "%.1f %.1f %.1f", v["Rss:"], v["Pss:"], v["Anonymous:"] }' "/proc/$1/smaps_rollup"
}

# timed_restart NAME STORE ROUND: (re)starts NAME, times it to its first
# answered RPC, a full Walk and containerd's remote-snapshot lookup
# (peerbench -restart-since), reads its memory; figures, and one sample
# for median_restart.
timed_restart() {
  local name="$1" store="$2" round="$3" out ready n ms lookup err mem
  peers_stop_pid "${pid_of[$name]}" "$name"
  launch "$name"
  out=$("$work/peerbench" -restart-since "$(cat "$work/$name.t0")" -dial-wait "${SOCKET_WAIT_S}s" \
    -servers "$name=${sock_of[$name]}")
  read -r _ _ ready n ms lookup err <<<"$out"
  if [[ "$ready" == - || "$err" != "<nil>" ]]; then
    h_skip "restart $round of $name ($store store)" "not measured: $out"
    return 0
  fi
  mem=$(memory_of "${pid_of[$name]}")
  h_pass "restart $round of $name ($store store) to serving + full Walk measured"
  h_figure "restart $round to serving + full Walk $name $store" "$ready ms to the first answered RPC + $ms ms Walk of $n snapshots"
  h_figure "memory after restart $round + Walk + lookups $name $store" "RSS/PSS/anonymous $(tr ' ' / <<<"$mem") MB"
  if [[ "$lookup" == - ]]; then
    h_skip "remote-snapshot lookup $name $store (restart $round)" "the lookup failed (peerbench's message above)"
  else
    h_figure "remote-snapshot lookup after restart $round $name $store" "$lookup ms (median of 15 Walks filtered by snapshot.ref and parent, over $n snapshots)"
  fi
  restart_samples[$name.$store]+="$ready $ms $mem $lookup $n"$'\n'
}

# median_restart NAME STORE: of NAME's restarts on STORE, the one whose
# time to serving + Walk is the median (of two, the faster) becomes its
# row of the table, with its memory and lookup; their figures.
median_restart() {
  local samples="${restart_samples[$1.$2]:-}" row count which
  local -a v
  [[ -n "$samples" ]] || return 0
  row=$(awk 'NF { print $1 + $2, $0 }' <<<"$samples" | sort -g |
    awk '{ line[NR] = $0 } END { m = line[int((NR + 1) / 2)]; sub(/^[^ ]+ /, "", m); print m }')
  read -r -a v <<<"$row"
  restart_row[$1.$2]="${v[*]:0:6}"
  count=$(grep -c . <<<"$samples")
  which="the median of $count restarts"
  ((count == 2)) && which="the faster of 2 restarts"
  ((count == 1)) && which="1 restart"
  h_figure "restart to serving + full Walk $1 $2" "${v[0]} ms to the first answered RPC + ${v[1]} ms Walk of ${v[6]} snapshots ($which)"
  h_figure "memory after restart + Walk + lookups $1 $2" "RSS/PSS/anonymous ${v[2]}/${v[3]}/${v[4]} MB ($which)"
  if [[ "${v[5]}" != - ]]; then
    h_figure "remote-snapshot lookup $1 $2" "${v[5]} ms (median of 15 Walks filtered by snapshot.ref and parent, over ${v[6]} snapshots; $which)"
  fi
}

# restart_figures: long mode; every server (holding the -list snapshots)
# restarted on its root, then again there during another writer's
# writeback (store "busy"); then each on a second root filled with 10,000
# CRI-labelled snapshots (untimed), restarted on it. RESTART_ROUNDS
# restarts of each server per store, the servers taking turns.
restart_figures() {
  local name out round syncer store
  local -a restartable=() cri=()
  for name in "${servers[@]}"; do
    [[ "$name" == floor ]] || restartable+=("$name")  # keeps nothing to restart on
  done
  for ((round = 1; round <= RESTART_ROUNDS; round++)); do
    for name in "${restartable[@]}"; do timed_restart "$name" plain "$round"; done
  done
  # The same restart on a busy node: another writer's data (as much as the
  # noisy rows use) is being written back meanwhile, so every flush a start
  # waits for queues behind it.
  for ((round = 1; round <= RESTART_ROUNDS; round++)); do
    for name in "${restartable[@]}"; do
      dd if=/dev/zero of="$work/scratch/busy" bs=1M count="${PEERS_NOISY_MB:-800}" status=none
      sync &
      syncer=$!
      timed_restart "$name" busy "$round"
      wait "$syncer"
      rm -f "$work/scratch/busy"
      sync
    done
  done
  for name in "${restartable[@]}"; do
    peers_stop_pid "${pid_of[$name]}" "$name"
    root_of[$name]="$work/$name-cri"
    sock_of[$name]="$work/$name-cri.sock"
    conf_of[$name]="$work/$name-cri.toml"
    sed "s#$work/$name\([.\"/-]\)#$work/$name-cri\1#g" "$work/$name.toml" >"${conf_of[$name]}"
    if ! start "$name"; then h_skip "restart of $name (CRI store)" "socket did not appear in ${SOCKET_WAIT_S}s"; continue; fi
    out=$("$work/peerbench" -populate 10000 -populate-cri -servers "$name=${sock_of[$name]}")
    if [[ "$out" != "POPULATE $name 10000 <nil>" ]]; then
      h_skip "restart of $name (CRI store)" "filling 10,000 CRI-labelled snapshots failed: $out"
      continue
    fi
    cri+=("$name")
  done
  for ((round = 1; round <= RESTART_ROUNDS; round++)); do
    for name in "${cri[@]}"; do timed_restart "$name" cri "$round"; done
  done
  for store in plain busy cri; do
    for name in "${restartable[@]}"; do median_restart "$name" "$store"; done
  done
  print_restart_table
}

# print_restart_table: the restart figures side by side (each row the
# median restart, median_restart), ratio ours / overlayfs 1.6 (restart +
# Walk summed; RSS; remote-snapshot lookup).
print_restart_table() {
  local store name r base ratio
  printf '\n%-6s %-6s %12s %10s %8s %8s %8s %12s %30s\n' store server "to RPC [ms]" "Walk [ms]" "RSS" "PSS" "anon" "lookup [ms]" "sum/ovl1.6"
  for store in plain busy cri; do
    base=${restart_row[ovl1.6.$store]:-}
    for name in "${servers[@]}"; do
      r=${restart_row[$name.$store]:-}
      [[ -n "$r" ]] || continue
      ratio=-
      if [[ -n "$base" ]]; then
        ratio=$(awk -v a="$r" -v b="$base" 'BEGIN { split(a, x, " "); split(b, y, " ");
          printf "%.2f (RSS %.2f, lookup %.2f)", (x[1] + x[2]) / (y[1] + y[2]), x[3] / y[3], (y[6] > 0 ? x[6] / y[6] : -1) }' | sed 's/lookup -1.00/lookup -/')
      fi
      read -r -a v <<<"$r"
      printf '%-6s %-6s %12s %10s %8s %8s %8s %12s %30s\n' "$store" "$name" "${v[0]}" "${v[1]}" "${v[2]}" "${v[3]}" "${v[4]}" "${v[5]}" "$ratio"
    done
  done
}

main() {
  if [[ "${1:-}" == --build-only ]]; then
    # scripts/prebuild.sh: the Go build cache filled, the binaries dropped.
    local out status=0
    out=$(mktemp -d /tmp/gpp-build.XXXXXX) || exit 1
    build_tools "$out" || status=$?
    rm -rf "$out"
    exit "$status"
  fi
  h_on_exit teardown
  trap 'exit 130' INT TERM
  work="$(mktemp -d "${PEERS_BENCH_DIR:-/tmp}/gpp.XXXXXX")"
  build_servers
  mkdir -p "$work/scratch"
  local name args=(-noisy-mb "${PEERS_NOISY_MB:-800}" -noisy-dir "$work" -scratch "$work/scratch")
  for name in "${servers[@]}"; do
    sock_of[$name]="$work/$name.sock"
    h_setup_here "start $name" start "$name"
  done
  if h_long; then
    args+=(-rounds 5 -chains 8 -list 10000 -data-layers 200)
    export PEERBENCH_KEEP=1
  fi
  log "running peerbench on: ${servers[*]}"
  PATH="$helper_path$PATH" timeout -s KILL "$BENCH_TIMEOUT_S" "$work/peerbench" -servers "$(server_list)" "${args[@]}" "$@" \
    >"$work/bench.out" || h_fail "peerbench exited with status $?" "$(tail -n 5 "$work/bench.out")"
  cat "$work/bench.out"
  count_rows "$work/bench.out"
  if h_long; then restart_figures; else
    h_skip "restart to serving + full Walk of 10,000, RSS after restart" "long mode only (GUEST_PULL_TEST_MODE=long)"
  fi
}

main "$@"
