#!/usr/bin/env bash
# dm-verity benchmark: bazel-bin/kata_volume/tools/guest-pull-verity against
# the standard tools on the same files, in the same run.
#
#   index      `guest-pull-verity index LAYER.tar OUT` (and `index --in-place`
#              on a copy of LAYER.tar, which becomes OUT) vs `veritysetup format
#              OUT HASH`, on the same bytes: ours reads the tar, parses its
#              headers, writes OUT (the tar followed by its tarfs index, 8 KiB
#              more here) and hashes every byte twice (the diff_id SHA-256 and
#              the dm-verity tree); veritysetup reads OUT (the file ours
#              wrote: the exact bytes the root hash covers), hashes it once
#              (the tree) and writes only the tree HASH (1/128 of the size).
#              The runs alternate (ours, veritysetup, ours, ...) so that both
#              see the same load; wall and CPU time of the fastest of each.
#              Ours spreads its work over three threads (diff_id, tree,
#              read+write), veritysetup uses one: ours needs more CPU (the
#              CPU table) and is faster in wall time only when a second
#              core is free; on a saturated machine the CPU ratio rules.
#   layer .tar `guest-pull-verity layer LAYER.tar` vs `sha256sum LAYER.tar`
#              + `veritysetup format` on the indexed file
#   layer .gz  `guest-pull-verity layer LAYER.tar.gz` vs `sha256sum` of the
#              blob + `gzip -dc | sha256sum` (diff_id) + `veritysetup format`
# The peers never build the tarfs index (no standard tool does), so they do
# less work than guest-pull-verity. Every root hash is cross-checked: a row
# fails if guest-pull-verity and veritysetup disagree.
# Then the peak RSS of guest-pull-verity on a 64 MiB and a 256 MiB layer
# (/usr/bin/time -v, else VmHWM polled from /proc) to show that memory does
# not grow with the layer size.
#
# Usage: tests/bench/verity_bench.sh [--small MiB] [--large MiB] [--runs N]
#   defaults: --small 64 --large 256 --runs 3 (best of N runs is reported)
# Environment: GUEST_PULL_VERITY  tool binary (skips the bazel build)
# Counts with tests/harness/harness.sh; the last line is always "N passed,
# M failed, K skipped" (a pass is a completed, cross-checked measurement;
# nothing timed is asserted); every figure is an h_figure line as well.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
readonly HERE REPO
# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
readonly SALT="0000000000000000000000000000000000000000000000000000000000000000"
readonly CMD_TIMEOUT_S=120

small_mb=64
large_mb=256
runs=3
work=""
rows=()
rss_rows=()
cpu_rows=()

log() { printf 'verity_bench: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; h_fail "setup: $*"; exit 1; }

parse_args() {
  while (($#)); do
    case "$1" in
      --small) small_mb="${2:?}"; shift ;;
      --large) large_mb="${2:?}"; shift ;;
      --runs) runs="${2:?}"; shift ;;
      -h|--help) trap - EXIT; sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}"; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$small_mb" =~ ^[0-9]+$ && "$large_mb" =~ ^[0-9]+$ && "$runs" =~ ^[1-9]$ ]] \
    || die "--small/--large must be MiB counts and --runs 1..9"
}

build() {
  tool="${GUEST_PULL_VERITY:-$REPO/bazel-bin/kata_volume/tools/guest-pull-verity}"
  if [[ -z "${GUEST_PULL_VERITY:-}" && ! -x "$tool" ]]; then
    log "bazel build //kata_volume/tools:guest-pull-verity"
    (cd "$REPO" && bazel build //kata_volume/tools:guest-pull-verity) >&2 \
      || die "bazel build of guest-pull-verity failed"
  fi
  [[ -x "$tool" ]] || die "$tool is not executable"
  cp "$tool" "$work/guest-pull-verity"
  tool="$work/guest-pull-verity"
  command -v veritysetup >/dev/null || die "veritysetup not found (package cryptsetup-bin)"
}

# make_layer MiB: $work/l<MiB>.tar (16 files of random data plus a few small
# files and directories) and $work/l<MiB>.tar.gz.
make_layer() {
  local mb="$1" dir="$work/src$1" i per
  per=$(((mb * 1024) / 16))
  mkdir -p "$dir/usr/lib/data" "$dir/etc"
  for i in $(seq -w 1 16); do
    head -c "${per}K" /dev/urandom >"$dir/usr/lib/data/blob$i"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
  ln -s ../usr/lib "$dir/etc/lib"
  tar -C "$dir" -cf "$work/l$mb.tar" .
  gzip -1 -c "$work/l$mb.tar" >"$work/l$mb.tar.gz"
  rm -rf "$dir"
}

# run_timed OUT_PREFIX CMD...: runs CMD once with stdout to OUT_PREFIX.out;
# sets $elapsed (seconds), $rss_kib (peak RSS of CMD, a single process) and
# $cpu_s (user + system CPU seconds of CMD and its children; "" without
# /usr/bin/time). The dirty data of the setup and of the previous command
# (ours writes the whole layer again) is written back first, untimed: else
# the kernel's writeback of it competes with whichever command runs next.
run_timed() {
  local prefix="$1"; shift
  local t0 t1 status=0
  sync -f "$work"
  t0=$EPOCHREALTIME
  if [[ -x /usr/bin/time ]]; then
    timeout "$CMD_TIMEOUT_S" /usr/bin/time -f '%M %U %S' -o "$prefix.rss" "$@" >"$prefix.out" || status=$?
    t1=$EPOCHREALTIME
    read -r rss_kib cpu_s <<<"$(tail -n 1 "$prefix.rss" | awk '{ printf "%s %.2f", $1, $2 + $3 }')"
  else
    "$@" >"$prefix.out" &
    local pid=$! hwm="" line n=0
    while kill -0 "$pid" 2>/dev/null && ((n < CMD_TIMEOUT_S * 200)); do
      line="$(grep -s '^VmHWM:' "/proc/$pid/status" || true)"
      [[ -n "$line" ]] && hwm="$(awk '{print $2}' <<<"$line")"
      sleep 0.005; n=$((n + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    wait "$pid" || status=$?
    t1=$EPOCHREALTIME
    rss_kib="${hwm:-0}"
    cpu_s=""
  fi
  elapsed="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  return "$status"
}

# best_of FUNC: runs FUNC $runs times, sets $best (min seconds) and
# $best_rss (max peak RSS KiB over the runs, of the measured process).
best_of() {
  local func="$1" r
  best=""; best_rss=0
  for ((r = 0; r < runs; r++)); do
    "$func" || return 1
    if [[ -z "$best" ]] || awk -v a="$elapsed" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best="$elapsed"
    fi
    ((rss_kib > best_rss)) && best_rss="$rss_kib"
  done
  return 0
}

warm() { cat "$@" >/dev/null; }

field() { awk -v k="$1:" '$1 == k { print $2 }' "$2"; }

verity_format() { # DATA HASHFILE -> prints root hash
  veritysetup format --no-superblock --salt="$SALT" --hash=sha256 \
    --data-block-size=4096 --hash-block-size=4096 "$1" "$2" | awk '/^Root hash:/ { print $3 }'
}

# --- the measured commands -------------------------------------------------

ours_index() { rm -f "$work/idx"; run_timed "$work/ours_index" "$tool" index "$cur.tar" "$work/idx"; }
# A fresh copy of the tar (untimed, and written back by run_timed) indexed
# in place: the same bytes come out, without the copy ours_index writes.
ours_in_place() {
  cp "$cur.tar" "$work/in_place.tar"
  run_timed "$work/ours_in_place" "$tool" index --in-place "$work/in_place.tar"
}
ours_layer_tar() { run_timed "$work/ours_tar" "$tool" layer "$cur.tar"; }
ours_layer_gz() { run_timed "$work/ours_gz" "$tool" layer "$cur.tar.gz"; }

peer_format() { rm -f "$work/hash"; run_timed "$work/peer_format" bash -c verity_format_cmd; }
verity_format_cmd() { verity_format "$cur.idx" "$work/hash"; }
peer_tar() { rm -f "$work/hash"; run_timed "$work/peer_tar" bash -c peer_tar_cmd; }
peer_tar_cmd() { sha256sum "$cur.tar" | cut -d' ' -f1; verity_format "$cur.idx" "$work/hash"; }
peer_gz() { rm -f "$work/hash"; run_timed "$work/peer_gz" bash -c peer_gz_cmd; }
peer_gz_cmd() {
  sha256sum "$cur.tar.gz" | cut -d' ' -f1
  gzip -dc "$cur.tar.gz" | sha256sum | cut -d' ' -f1
  verity_format "$cur.idx" "$work/hash"
}
export -f verity_format verity_format_cmd peer_tar_cmd peer_gz_cmd
export SALT

mbps() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? mb / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# row LABEL OURS_S PEER_S MB: one throughput row.
row() {
  rows+=("$(printf '%-50s %8ss %6s MB/s %8ss %6s MB/s %6s' "$1" "$2" "$(mbps "$4" "$2")" \
    "$3" "$(mbps "$4" "$3")" "$(ratio "$2" "$3")")")
  h_pass "$1: completed, hashes agree"
  h_figure "$1" "ours $2 s ($(mbps "$4" "$2") MB/s), peer $3 s ($(mbps "$4" "$3") MB/s), ratio $(ratio "$2" "$3")"
}
fail_row() { rows+=("$(printf '%-50s FAILED: %s' "$1" "$2")"); h_fail "$1" "$2"; }

# index_vs_format: $runs alternating runs of ours_index, peer_format on the
# file that run of ours wrote (left as $cur.idx) and ours_in_place (its
# result must be that file, byte for byte); sets ours_s/ours_cpu,
# peer_s/peer_cpu and place_s/place_cpu (the fastest run of each and its
# CPU seconds), rss_index_<MiB>, or index_error (place_error: --in-place
# alone failed).
index_vs_format() {
  local r rss=0
  ours_s=""; ours_cpu=""; peer_s=""; peer_cpu=""; place_s=""; place_cpu=""; index_error=""
  place_error=""
  for ((r = 0; r < runs; r++)); do
    if ! ours_index; then index_error="guest-pull-verity index failed"; return 1; fi
    mv "$work/idx" "$cur.idx"
    # Ours writes around the page cache; veritysetup reads what it wrote
    # from memory, as ours read the tar.
    warm "$cur.idx"
    if [[ -z "$ours_s" ]] || awk -v a="$elapsed" -v b="$ours_s" 'BEGIN { exit !(a < b) }'; then
      ours_s="$elapsed"; ours_cpu="$cpu_s"
    fi
    ((rss_kib > rss)) && rss="$rss_kib"
    if ! peer_format; then index_error="veritysetup format failed"; return 1; fi
    if [[ -z "$peer_s" ]] || awk -v a="$elapsed" -v b="$peer_s" 'BEGIN { exit !(a < b) }'; then
      peer_s="$elapsed"; peer_cpu="$cpu_s"
    fi
    [[ -z "$place_error" ]] || continue
    if ! ours_in_place; then
      place_error="guest-pull-verity index --in-place failed"
    elif ! cmp -s "$work/in_place.tar" "$cur.idx"; then
      place_error="index --in-place wrote other bytes than index"
    elif [[ -z "$place_s" ]] || awk -v a="$elapsed" -v b="$place_s" 'BEGIN { exit !(a < b) }'; then
      place_s="$elapsed"; place_cpu="$cpu_s"
    fi
    rm -f "$work/in_place.tar"
  done
  eval "rss_index_$mb=$rss"
}

# throughput MiB: the three comparisons on l<MiB>; sets rss_<name>_<MiB>.
throughput() {
  local mb="$1" ours_hash peer_hash
  cur="$work/l$mb"
  export cur work
  warm "$cur.tar" "$cur.tar.gz"
  # index (builds $cur.idx for the peers) vs veritysetup format on it,
  # interleaved.
  if index_vs_format; then
    ours_hash="$(field verity_hash "$work/ours_index.out")"
    peer_hash="$(tail -n 1 "$work/peer_format.out")"
    if [[ -n "$ours_hash" && "$ours_hash" == "$peer_hash" ]]; then
      row "index ${mb}MiB tar vs veritysetup format" "$ours_s" "$peer_s" "$mb"
      [[ -z "$ours_cpu" || -z "$peer_cpu" ]] || cpu_rows+=("$(printf '%-50s %8ss %8ss %6s' \
        "index ${mb}MiB tar vs veritysetup format" "$ours_cpu" "$peer_cpu" "$(ratio "$ours_cpu" "$peer_cpu")")")
      if [[ -n "$place_error" ]]; then
        fail_row "index --in-place ${mb}MiB tar" "$place_error"
      elif [[ "$(field verity_hash "$work/ours_in_place.out")" == "$peer_hash" ]]; then
        row "index --in-place ${mb}MiB tar vs veritysetup format" "$place_s" "$peer_s" "$mb"
        [[ -z "$place_cpu" || -z "$peer_cpu" ]] || cpu_rows+=("$(printf '%-50s %8ss %8ss %6s' \
          "index --in-place ${mb}MiB tar vs veritysetup" "$place_cpu" "$peer_cpu" "$(ratio "$place_cpu" "$peer_cpu")")")
      else
        fail_row "index --in-place ${mb}MiB tar" "root hash $(field verity_hash "$work/ours_in_place.out") != veritysetup $peer_hash"
      fi
    else
      fail_row "index ${mb}MiB tar" "root hash $ours_hash != veritysetup $peer_hash"
    fi
  else
    fail_row "index ${mb}MiB tar" "$index_error"
    return 0
  fi
  # layer .tar vs sha256sum + veritysetup.
  if best_of ours_layer_tar && { local ours_s="$best"; eval "rss_tar_$mb=$best_rss"; best_of peer_tar; }; then
    ours_hash="$(field verity_hash "$work/ours_tar.out")"
    peer_hash="$(tail -n 1 "$work/peer_tar.out")"
    local diff_id; diff_id="sha256:$(head -n 1 "$work/peer_tar.out")"
    if [[ "$ours_hash" == "$peer_hash" && "$(field diff_id "$work/ours_tar.out")" == "$diff_id" ]]; then
      row "layer ${mb}MiB .tar vs sha256sum+veritysetup" "$ours_s" "$best" "$mb"
    else
      fail_row "layer ${mb}MiB .tar" "hash mismatch (verity $ours_hash vs $peer_hash)"
    fi
  else
    fail_row "layer ${mb}MiB .tar" "a command failed"
  fi
  # layer .tar.gz vs sha256sum + gzip -dc | sha256sum + veritysetup.
  if best_of ours_layer_gz && { local ours_s="$best"; eval "rss_gz_$mb=$best_rss"; best_of peer_gz; }; then
    ours_hash="$(field verity_hash "$work/ours_gz.out")"
    peer_hash="$(tail -n 1 "$work/peer_gz.out")"
    local digest diff_id
    digest="sha256:$(sed -n 1p "$work/peer_gz.out")"
    diff_id="sha256:$(sed -n 2p "$work/peer_gz.out")"
    if [[ "$ours_hash" == "$peer_hash" && "$(field digest "$work/ours_gz.out")" == "$digest" \
          && "$(field diff_id "$work/ours_gz.out")" == "$diff_id" ]]; then
      row "layer ${mb}MiB .tar.gz vs sha256sum+gzip+veritysetup" "$ours_s" "$best" "$mb"
    else
      fail_row "layer ${mb}MiB .tar.gz" "hash mismatch (verity $ours_hash vs $peer_hash)"
    fi
  else
    fail_row "layer ${mb}MiB .tar.gz" "a command failed"
  fi
  rm -f "$cur.idx" "$work/hash"
}

rss_row() { # LABEL VAR_PREFIX
  local s l
  s="$(eval "echo \${$2_$small_mb:-}")"
  l="$(eval "echo \${$2_$large_mb:-}")"
  if [[ -n "$s" && -n "$l" && "$s" -gt 0 && "$l" -gt 0 ]]; then
    rss_rows+=("$(printf '%-50s %10.1f %10.1f %8s' "$1" "$(awk -v k="$s" 'BEGIN{print k/1024}')" \
      "$(awk -v k="$l" 'BEGIN{print k/1024}')" "$(ratio "$l" "$s")")")
    h_pass "$1: peak RSS measured on ${small_mb} and ${large_mb} MiB"
    h_figure "peak RSS of $1" "$(awk -v s="$s" -v l="$l" 'BEGIN { printf "%.1f MiB (%s MiB layer), %.1f MiB (%s MiB layer)", s / 1024, "'"$small_mb"'", l / 1024, "'"$large_mb"'" }')"
  else
    rss_rows+=("$(printf '%-50s FAILED (no peak RSS figure)' "$1")")
    h_fail "$1: no peak RSS figure"
  fi
}

teardown() {
  local status=$?
  trap - EXIT INT TERM
  [[ -n "$work" ]] && rm -rf "$work"
  if ((status != 0 && H_FAILED == 0)); then h_fail "suite aborted (status $status)"; fi
  h_finish
}

main() {
  h_on_exit teardown
  trap 'exit 130' INT TERM
  parse_args "$@"
  work="$(mktemp -d /tmp/gpv.XXXXXX)"
  echo "SETUP: guest-pull-verity and veritysetup"
  build
  local rss_method="/usr/bin/time"
  [[ -x /usr/bin/time ]] || rss_method="VmHWM polled from /proc"
  local mb
  for mb in "$small_mb" "$large_mb"; do
    log "generating a ${mb} MiB layer (.tar and gzip -1 .tar.gz)"
    make_layer "$mb"
    log "measuring ${mb} MiB (best of $runs)"
    throughput "$mb"
    rm -f "$work/l$mb.tar" "$work/l$mb.tar.gz"
  done
  rss_row "guest-pull-verity index" rss_index
  rss_row "guest-pull-verity layer .tar" rss_tar
  rss_row "guest-pull-verity layer .tar.gz" rss_gz

  printf 'Throughput (best of %d; ratio = time ours / time peer, < 1 is faster)\n' "$runs"
  printf '%-50s %21s %21s %6s\n' "operation" "guest-pull-verity" "peer" "ratio"
  printf '%s\n' "${rows[@]}"
  printf 'index rows: same bytes on both sides; ours reads LAYER.tar, writes OUT (tar + index) and\n'
  printf 'hashes it twice (diff_id, dm-verity tree); veritysetup format reads that OUT, hashes it once\n'
  printf 'and writes the tree only; the runs alternate (ours, veritysetup, ours --in-place, ...).\n'
  printf -- '--in-place appends the index to a copy of LAYER.tar (made untimed), which becomes that OUT\n'
  printf 'byte for byte: no copy of the layer written. Ours uses three threads (one core:\n'
  printf 'veritysetup), so its wall time wins only with a second core free\n'
  if ((${#cpu_rows[@]})); then
    echo
    printf 'CPU seconds (user + system) of the fastest runs above: the work, whatever the load\n'
    printf '%-50s %9s %9s %6s\n' "operation" "ours" "peer" "ratio"
    printf '%s\n' "${cpu_rows[@]}"
  fi
  echo
  printf 'Peak RSS of guest-pull-verity [MiB] (%s)\n' "$rss_method"
  printf '%-50s %10s %10s %8s\n' "command" "${small_mb}MiB" "${large_mb}MiB" "ratio"
  printf '%s\n' "${rss_rows[@]}"
}

main "$@"
