# shellcheck shell=bash
# suite_lib.sh: helpers shared by tests/e2e/compatibility.sh and
# tests/e2e/stability.sh, on top of lib.sh (source lib.sh first, then this).
#
#   suite_install_tools          bazel-builds guest-pull-verity into $E2E_BIN
#                                (GP_VERITY); crictl from its module (CRICTL)
#   suite_image NAME [VARIANT]   builds (or reuses) a tests/e2e/images.sh image
#                                in $SUITE_IMAGES_CACHE; prints its OCI layout
#   suite_push LAYOUT REPO TAG [oci|v2s2]
#                                pushes it to our registry; prints the ref
#   suite_cache_add LAYOUT       adds its layers to the daemon's layer cache
#                                ($SUITE_LAYER_CACHE, genpolicy format)
#   suite_chain_ids LAYOUT       layer chain IDs, base first
#   cri_cmd ARGS...              crictl against our containerd
#   decision_count REF DECISION [REASON]
#                                guest_pull_decision lines for image REF
#   standin_run CHAIN_ID ARGS... tests/e2e/guest_standin.sh (bounded)
#   standin_drop_snapshots       removes rootfs snapshots kept by --keep
#   rootfs_listing ROOT          checksummed listing of a directory tree
#   mount_image NS SNAPSHOTTER REF TARGET / unmount_image NS SNAPSHOTTER TARGET
#   daemon_db_query SQL          read-only query of the daemon's metadata.db
#   backend_ping                 Prepare + Remove through containerd
#   check_consistent DESC        after a synchronous containerd GC:
#                                containerd's records == the daemon's, each
#                                Stat-able, one snapshots/ dir per record,
#                                no mount under the daemon root (assertions)
#
# Environment:
#   E2E_IMAGES_CACHE   image cache dir shared between runs and suites
#                      (default /tmp/gp-e2e-images; builds are locked and
#                      idempotent, see images.sh)

# shellcheck source-path=SCRIPTDIR source=images.sh
source "$E2E_LIB_DIR/images.sh"

SUITE_IMAGES_CACHE="${E2E_IMAGES_CACHE:-/tmp/gp-e2e-images}"
SUITE_LAYER_CACHE=""
GP_VERITY=""
CRICTL=""

# suite_install_tools: builds the verity tool once and copies it into
# $E2E_BIN (a concurrent rebuild cannot change it); crictl (the CRI client)
# comes from its Go module (tests/tools/go_peers.sh, cached per machine).
suite_install_tools() {
  e2e_log "bazel build guest-pull-verity"
  (cd "$E2E_REPO" && bazel build //kata_volume/tools:guest-pull-verity) >&2 \
    || e2e_die "bazel build of the test tools failed"
  cp "$E2E_REPO/bazel-bin/kata_volume/tools/guest-pull-verity" "$E2E_BIN/" \
    || e2e_die "cannot copy bazel-bin/kata_volume/tools/guest-pull-verity"
  GP_VERITY="$E2E_BIN/guest-pull-verity"
  # shellcheck source=../tools/go_peers.sh
  source "$E2E_REPO/tests/tools/go_peers.sh"
  CRICTL="$(go_peer_bin crictl)/crictl" || e2e_die "building crictl from its module failed"
  SUITE_LAYER_CACHE="$E2E_DIR/layers-cache.json"
  [[ -f "$E2E_LIB_DIR/guest_standin.sh" ]] || e2e_die "tests/e2e/guest_standin.sh is missing"
}

# suite_image NAME [VARIANT]: prints the OCI layout dir of the image.
suite_image() {
  local layout
  mkdir -p "$SUITE_IMAGES_CACHE"
  layout="$(images_build "$1" "$SUITE_IMAGES_CACHE" "${2:-}" 2>/dev/null)" \
    || e2e_die "building image $1 ${2:-} failed"
  echo "$layout"
}

# suite_push LAYOUT REPO TAG [oci|v2s2]: prints the pushed reference.
suite_push() {
  images_push "$1" "$REGISTRY_PORT" "$2" "$3" "${4:-oci}" \
    || e2e_die "pushing $1 as $2:$3 (${4:-oci}) failed"
}

# suite_cache_add LAYOUT: merges the image's layers (diff_id, verity hash,
# passwd, group) into the layer cache the daemon reads.
suite_cache_add() {
  timeout "$E2E_CMD_TIMEOUT" "$GP_VERITY" cache "$1" --output "$SUITE_LAYER_CACHE" >/dev/null \
    || e2e_die "guest-pull-verity cache $1 failed"
}

# suite_diff_ids LAYOUT: uncompressed layer digests of the "latest" image.
suite_diff_ids() {
  local layout="$1" manifest config
  manifest="$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' \
    "$layout/index.json")"
  config="$(jq -r '.config.digest' "$layout/blobs/sha256/${manifest#sha256:}")"
  jq -r '.rootfs.diff_ids[]' "$layout/blobs/sha256/${config#sha256:}"
}

# suite_chain_ids LAYOUT: chain IDs (containerd's committed snapshot names).
suite_chain_ids() {
  local chain="" id
  while read -r id; do
    if [[ -z "$chain" ]]; then chain="$id"; else
      chain="sha256:$(printf '%s %s' "$chain" "$id" | sha256sum | cut -d' ' -f1)"
    fi
    echo "$chain"
  done < <(suite_diff_ids "$1")
}

# suite_top_chain LAYOUT: chain ID of the top layer.
suite_top_chain() { suite_chain_ids "$1" | tail -n 1; }

# cri_cmd ARGS...: crictl against our containerd (bounded).
cri_cmd() { CRICTL_TIMEOUT="${E2E_CMD_TIMEOUT}s" e2e_crictl "$@"; }

# decision_count REF DECISION [REASON]: number of daemon log lines
# `guest_pull_decision=DECISION key="..." image="REF" reason=REASON`.
decision_count() {
  local ref="$1" decision="$2" reason="${3:-}"
  [[ -f "$GP_LOG" ]] || { echo 0; return 0; }
  grep -F "guest_pull_decision=$decision " "$GP_LOG" | grep -F "image=\"$ref\" reason=$reason" -c || true
}

# standin_run CHAIN_ID ARGS...: the guest stand-in on the k8s.io rootfs over
# CHAIN_ID; stdout is the entrypoint's output, progress on stderr.
standin_run() {
  local chain="$1"
  shift
  GUEST_PULL_VERITY="$GP_VERITY" timeout "$E2E_CMD_TIMEOUT" \
    "$E2E_LIB_DIR/guest_standin.sh" --address "$CONTAINERD_SOCK" --chain-id "$chain" \
    --namespace k8s.io --snapshotter "$GP_SNAPSHOTTER" --timeout "$((E2E_CMD_TIMEOUT - 10))" "$@"
}

# standin_stdout LOG CHAIN_ID ARGS...: standin_run with its progress (stderr)
# in LOG, so stdout is the entrypoint's output alone; LOG goes to stderr on
# failure.
standin_stdout() {
  local log="$1" status=0
  shift
  standin_run "$@" 2>"$log" || status=$?
  ((status == 0)) || { cat "$log" >&2; echo "guest_standin.sh exit status $status" >&2; }
  return "$status"
}

# standin_drop_snapshots: removes the rootfs snapshots a --keep run left.
standin_drop_snapshots() {
  local key
  for key in $(ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" ls 2>/dev/null |
               awk 'NR > 1 && $1 ~ /^guest-standin-/ { print $1 }'); do
    ctr_cmd -n k8s.io snapshots --snapshotter "$GP_SNAPSHOTTER" rm "$key" >/dev/null 2>&1 ||
      e2e_log "warning: could not remove stand-in snapshot $key"
  done
}

# rootfs_listing ROOT [EXCLUDED_TOP_LEVEL_NAME...]: one line per entry below
# ROOT (not ROOT itself), sorted: path, type, permission bits, uid:gid, and
# per type: regular file -> size, link count, sha256 of the content; symlink
# -> target; device -> major:minor; directory -> nothing (sizes and link
# counts of directories depend on the filesystem). Paths are printed with
# repr-like escaping, so any name is one line.
rootfs_listing() {
  timeout "$E2E_CMD_TIMEOUT" python3 - "$@" <<'EOF'
import hashlib, os, stat, sys

root = sys.argv[1]
excluded = set(sys.argv[2:])
lines = []

def describe(path, rel):
    st = os.lstat(path)
    mode = st.st_mode
    base = "%s\t%s\t%04o\t%d:%d" % (rel.encode("unicode_escape").decode(),
                                      stat.filemode(mode)[0], stat.S_IMODE(mode),
                                      st.st_uid, st.st_gid)
    if stat.S_ISREG(mode):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "%s\tsize=%d\tnlink=%d\tsha256=%s" % (base, st.st_size, st.st_nlink, h.hexdigest())
    if stat.S_ISLNK(mode):
        return "%s\t-> %s" % (base, os.readlink(path))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "%s\tdev=%d:%d" % (base, os.major(st.st_rdev), os.minor(st.st_rdev))
    return base

for dirpath, dirnames, filenames in os.walk(root):
    rel_dir = os.path.relpath(dirpath, root)
    if rel_dir == ".":
        dirnames[:] = [d for d in dirnames if d not in excluded]
        filenames = [f for f in filenames if f not in excluded]
    for name in dirnames + filenames:
        rel = name if rel_dir == "." else os.path.join(rel_dir, name)
        lines.append(describe(os.path.join(dirpath, name), rel))
for line in sorted(lines):
    print(line)
EOF
}

# listing_whiteout_leaks LISTING: prints entries that are overlay or OCI
# whiteouts (char device 0:0, .wh.* names); nothing if the rootfs is clean.
listing_whiteout_leaks() {
  awk -F'\t' '$2 == "c" && $5 == "dev=0:0" { print; next }
              { n = split($1, p, "/"); if (p[n] ~ /^\.wh\./) print }' <<<"$1"
}

# mount_image NS SNAPSHOTTER REF TARGET: read-only view of the image's rootfs
# mounted at TARGET (`ctr images mount`: a View snapshot keyed by TARGET,
# held by a lease of the same name).
mount_image() {
  mkdir -p "$4"
  ctr_cmd -n "$1" images mount --snapshotter "$2" "$3" "$4"
}

# unmount_image NS SNAPSHOTTER TARGET: unmounts and removes the view.
unmount_image() {
  ctr_cmd -n "$1" images unmount --snapshotter "$2" --rm "$3"
}

# daemon_db_query SQL: runs SQL read-only against the daemon's metadata
# (sqlite3 CLI, Debian package sqlite3); tab-separated rows.
daemon_db_query() {
  timeout 20 sqlite3 -readonly -separator $'\t' "file:$GP_ROOT/metadata.db?mode=ro" "$1"
}

# backend_ping: a Prepare + Remove through containerd reaches the daemon.
backend_ping() {
  timeout 10 ctr -a "$CONTAINERD_SOCK" -n e2e-ping snapshots --snapshotter "$GP_SNAPSHOTTER" \
    prepare e2e-ping >/dev/null 2>&1 || return 1
  timeout 10 ctr -a "$CONTAINERD_SOCK" -n e2e-ping snapshots --snapshotter "$GP_SNAPSHOTTER" \
    rm e2e-ping >/dev/null 2>&1
}

# force_gc: a synchronous containerd GC that includes our snapshotter (it
# only collects snapshotters with a removal since the last GC, hence the
# throwaway snapshot).
# shellcheck disable=SC2317  # invoked through check
force_gc() {
  local lease
  backend_ping || return 1
  lease="$(ctr_cmd leases create)" || return 1
  ctr_cmd leases delete --sync "$lease" >/dev/null
}

# containerd_records: "NAMESPACE NAME" of every guest-pull snapshot
# containerd knows, sorted.
containerd_records() {
  local ns
  for ns in $(ctr_cmd namespaces ls -q); do
    ctr_cmd -n "$ns" snapshots --snapshotter "$GP_SNAPSHOTTER" ls | awk -v ns="$ns" 'NR > 1 { print ns " " $1 }'
  done | sort
}

# daemon_records: the daemon's records (its metadata.db), sorted:
# "NAMESPACE NAME" for keys containerd created (NAMESPACE/SEQ/NAME), and
# "* NAME" for guest-pulled layers, which the daemon commits under the bare
# chain ID (containerd's remote-snapshot flow records that backend name as
# is, in whichever namespace pulled the image).
daemon_records() {
  daemon_db_query 'SELECT key FROM snapshots' | awk '{
    if (match($0, /^[^\/]+\/[0-9]+\//)) {
      i = index($0, "/"); rest = substr($0, i + 1); j = index(rest, "/")
      print substr($0, 1, i - 1) " " substr(rest, j + 1)
    } else print "* " $0 }' | sort
}

# records_mismatch CONTAINERD DAEMON: prints records only one side has:
# "containerd only: NS NAME" (no backend snapshot) or "daemon only: ..."
# (a leak containerd's GC should have removed). Nothing if they agree.
records_mismatch() {
  awk 'FNR == NR { if ($1 == "*") remote[$2] = 1; else local[$0] = 1; next }
       { theirs[$0] = 1; names[$2] = 1
         if (!($0 in local) && !($2 in remote)) print "containerd only: " $0 }
       END {
         for (k in local) if (!(k in theirs)) print "daemon only: " k
         for (n in remote) if (!(n in names)) print "daemon only: * " n
       }' <(printf '%s\n' "$2" | sed '/^$/d') <(printf '%s\n' "$1" | sed '/^$/d') | sort
}

# check_consistent DESC: records, Stat, directories and mounts agree (needs
# the sqlite3 CLI).
check_consistent() {
  local c="$1" ours theirs ns name bad="" ids all_ids dirs mounts
  check "$c: synchronous containerd GC (Remove + Cleanup on the daemon)" force_gc
  theirs="$(containerd_records)" || { fail "$c: ctr snapshots ls failed"; return 0; }
  ours="$(daemon_records)" || { fail "$c: cannot read the daemon's metadata.db"; return 0; }
  bad="$(records_mismatch "$theirs" "$ours")"
  if [[ -z "$bad" ]]; then
    pass "$c: containerd's $(grep -c . <<<"$theirs") snapshot records match the daemon's $(grep -c . <<<"$ours")"
  else
    fail "$c: containerd's snapshot records and the daemon's differ" "$(head -n 30 <<<"$bad")"
  fi
  bad=""
  while read -r ns name; do
    [[ -n "$ns" ]] || continue
    ctr_cmd -n "$ns" snapshots --snapshotter "$GP_SNAPSHOTTER" info "$name" >/dev/null 2>&1 ||
      bad+="$ns $name"$'\n'
  done <<<"$theirs"
  if [[ -z "$bad" ]]; then pass "$c: every containerd record is Stat-able in the daemon"; else
    fail "$c: records containerd has but the daemon cannot Stat" "$bad"
  fi
  # Every record has its directory, except a guest-pulled layer without
  # files (committed, 0 inodes: kind 3) that no active snapshot or view
  # (kinds 2, 1) stands on: it gets one only when a snapshot on it needs
  # it; every directory is a record's.
  ids="$(daemon_db_query 'WITH RECURSIVE below(id) AS (
      SELECT parent_id FROM snapshots WHERE kind IN (1, 2) AND parent_id IS NOT NULL
      UNION SELECT s.parent_id FROM snapshots s JOIN below b ON s.id = b.id
        WHERE s.parent_id IS NOT NULL)
    SELECT id FROM snapshots WHERE kind != 3 OR inodes > 0 OR id IN below' | sort)"
  all_ids="$(daemon_db_query 'SELECT id FROM snapshots' | sort)"
  # spare-*: an empty fs/ and work/ made ahead of Prepares (spare_dirs.h).
  dirs="$(find "$GP_ROOT/snapshots" -mindepth 1 -maxdepth 1 ! -name 'spare-*' -printf '%f\n' | sort)"
  bad="$(comm -23 <(grep . <<<"$ids") <(grep . <<<"$dirs") | sed 's/^/missing dir: /')"
  bad+="${bad:+$'\n'}$(find "$GP_ROOT/snapshots" -mindepth 1 -maxdepth 3 -path "$GP_ROOT/snapshots/spare-*" \
    -regextype posix-extended ! \( -type d -regex '.*/snapshots/spare-[A-Za-z0-9]{6}(/(fs|work))?' \) \
    -printf 'spare-* holding or not a spare: %P\n')"
  bad+="${bad:+$'\n'}$(comm -13 <(grep . <<<"$all_ids") <(grep . <<<"$dirs") | sed 's/^/dir without record: /')"
  if [[ -z "$bad" ]]; then
    pass "$c: snapshots/ holds one dir per record ($(grep -c . <<<"$dirs") dirs, $(grep -c . <<<"$all_ids") records, guest-pulled layers without files need none)"
  else
    fail "$c: snapshots/ entries differ from the record ids" "$(head -n 30 <<<"$bad")"
  fi
  mounts="$(awk -v d="$GP_ROOT/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts)"
  assert_eq "$c: nothing mounted under the daemon root" "" "$mounts"
}
