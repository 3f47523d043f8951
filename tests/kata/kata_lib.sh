# shellcheck shell=bash
# kata_lib.sh: kata's Go runtime (src/runtime) taken from the Go module
# proxy at a release's pseudo-version, patched and built in a temp dir.
# Nothing of kata's code lives in this repository.
#
#   kata_releases                  prints the supported releases, newest first
#   kata_release_field REL N       field N of REL in deploy/kata/releases.tsv
#                                  (2 commit, 3 pseudo-version, 4 h1 sum)
#   kata_module_dir REL            prints the module's Dir in Go's module cache
#                                  (downloads it); on failure prints why on
#                                  stdout and returns 1
#   kata_patched_tree REL DIR      copies the module to DIR/runtime (writable),
#                                  applies the release's patch (no offset, no
#                                  fuzz) and generates config-settings.go
#   kata_generate_settings TREE REL  pkg/katautils/config-settings.go from its .in
#   kata_as_nobody DIR CMD...      runs CMD as nobody in DIR (kata's tests that
#                                  need root skip themselves then)

readonly KATA_MODULE=github.com/kata-containers/kata-containers/src/runtime
KATA_REPO="${KATA_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
readonly KATA_RELEASES_FILE="$KATA_REPO/deploy/kata/releases.tsv"

# The sum database does not know these pseudo-versions; the h1 sums pinned
# in releases.tsv are checked instead (kata_module_dir).
export GONOSUMDB="github.com/kata-containers/kata-containers${GONOSUMDB:+,$GONOSUMDB}"
export GOFLAGS="${GOFLAGS:--mod=mod}"

kata_releases() { grep -v '^#' "$KATA_RELEASES_FILE" | cut -f1; }

kata_release_field() {
  awk -F'\t' -v r="$1" -v n="$2" '$1 == r { print $n }' "$KATA_RELEASES_FILE"
}

kata_patch_file() { echo "$KATA_REPO/deploy/kata/$1/0001-guest-pull-rootfs.patch"; }

kata_module_dir() {
  local rel="$1" pv pin json err dir sum
  pv=$(kata_release_field "$rel" 3)
  pin=$(kata_release_field "$rel" 4)
  [[ -n "$pv" ]] || { echo "release $rel is not in $KATA_RELEASES_FILE"; return 1; }
  json=$(cd /tmp && timeout 900 go mod download -json "$KATA_MODULE@$pv" 2>&1)
  err=$(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -n 1)
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$json")
  if [[ -n "$err" || ! -d "$dir" ]]; then
    echo "go mod download $KATA_MODULE@$pv failed: ${err:-$json}" | sed 's/\\n/ /g; s/\\t/ /g'
    return 1
  fi
  if [[ "$pin" != "-" && "$sum" != "$pin" ]]; then
    echo "module sum $sum differs from the pin $pin in releases.tsv"
    return 1
  fi
  echo "$dir"
}

# kata_is_not_served MESSAGE: true when the proxy refused the version
# or cannot be reached (a skip with the reason), false for any other
# failure (a failure).
kata_is_not_served() { grep -qE '403 Forbidden|404 Not Found|410 Gone|not available|unknown revision' <<<"$1" || kata_proxy_unreachable "$1"; }

# kata_proxy_unreachable MESSAGE: true when the proxy cannot be reached.
kata_proxy_unreachable() { grep -qE 'dial tcp|no such host|connection refused|i/o timeout' <<<"$1"; }

kata_generate_settings() {
  local tree="$1" rel="$2" commit in out
  commit=$(kata_release_field "$rel" 2)
  in="$tree/pkg/katautils/config-settings.go.in"
  out="$tree/pkg/katautils/config-settings.go"
  # The values kata's Makefile substitutes with its defaults (PREFIX /usr,
  # PROJECT_TAG kata-containers, BIN_PREFIX kata, SYSCONFDIR /etc).
  sed -e "s|@RUNTIME_NAME@|kata-runtime|g" \
      -e "s|@PROJECT_NAME@|Kata Containers|g" \
      -e "s|@PROJECT_TYPE@|kata|g" \
      -e "s|@PROJECT_URL@|https://github.com/kata-containers|g" \
      -e "s|@PROJECT_ORG@|kata-containers|g" \
      -e "s|@PKGRUNDIR@|/var/run/kata-containers|g" \
      -e "s|@COMMIT@|$commit|g" \
      -e "s|@VERSION@|$rel|g" \
      -e "s|@CONFIG_PATH@|/usr/share/defaults/kata-containers/configuration.toml|g" \
      -e "s|@SYSCONFIG@|/etc/kata-containers/configuration.toml|g" \
      "$in" >"$out" || return 1
  if grep -n '@[A-Z_]*@' "$out"; then
    echo "config-settings.go: placeholders the Makefile fills are not known here (above)"
    return 1
  fi
}

kata_patched_tree() {
  local rel="$1" dir="$2" module out
  module=$(kata_module_dir "$rel") || { echo "$module"; return 1; }
  rm -rf "$dir/runtime" && cp -r "$module" "$dir/runtime" && chmod -R u+w,a+rX "$dir/runtime" || return 1
  out=$(cd "$dir/runtime" && patch -p1 --fuzz=0 --no-backup-if-mismatch <"$(kata_patch_file "$rel")" 2>&1)
  local rc=$?
  echo "$out"
  ((rc == 0)) || return 1
  if grep -qiE 'offset|fuzz' <<<"$out"; then
    echo "the patch applies only with an offset or fuzz: refresh it for $rel"
    return 1
  fi
  kata_generate_settings "$dir/runtime" "$rel"
}

kata_as_nobody() {
  local dir="$1"
  shift
  (cd "$dir" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="${KATA_NOBODY_HOME:-/tmp}" TMPDIR=/tmp "$@")
}
