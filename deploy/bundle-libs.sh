#!/usr/bin/env bash
# Bundle the shipped binaries with the shared libraries they need.
#
#   deploy/bundle-libs.sh OUT_DIR BINARY...
#
# Copies every BINARY to OUT_DIR/bin/ and every shared library it needs into
# OUT_DIR/lib/containerd-guest-pull-grpc/, the directory the binaries' RPATH
# ($ORIGIN/../lib/containerd-guest-pull-grpc, shipped_binary.bzl) points at.
# Libraries are resolved with ldd (which lists the whole dependency closure)
# and ldd is run again on every library found, until nothing new appears.
# Symlinks are followed: each library is stored as a regular file under the
# name the binaries ask for (its SONAME, e.g. libglog.so.1).
#
# Not bundled: the glibc family (ld-linux, libc, libm, libpthread, libdl,
# librt, ...), which must come from the node, and the kernel's vdso.
# libstdc++ and libgcc_s ARE bundled (a node's may be older than Debian 12's).
#
# OUT_DIR/lib/containerd-guest-pull-grpc/MANIFEST lists each library as
# "<sha256>  <file name>" (sha256sum format, sorted by name): check a copy
# with `cd <dir> && sha256sum -c MANIFEST`.
#
# Fails (exit 1, nothing replaced in OUT_DIR) when ldd reports a library as
# "not found", when two binaries resolve one SONAME to different files, when
# a dynamic binary lacks the bundle RPATH (readelf needed for that check), or
# when a library carries a DT_RUNPATH (it would not search the bundle).
# Re-running replaces the previous bundle in OUT_DIR (idempotent).
set -euo pipefail

readonly LIB_NAME="containerd-guest-pull-grpc"
readonly BUNDLE_RPATH="\$ORIGIN/../lib/$LIB_NAME"
# ld.so / glibc libraries (any version suffix) and the vdso: never bundled.
readonly GLIBC_RE='^(ld-linux[-a-z0-9_.]*\.so(\.[0-9]+)*|ld64\.so\.[0-9]+|lib(c|m|mvec|pthread|dl|rt|util|resolv|anl|nsl|BrokenLocale|thread_db|c_malloc_debug|memusage|pcprofile)\.so(\.[0-9]+)*|libnss_[a-z0-9_]+\.so(\.[0-9]+)*|linux-(vdso|gate)[0-9]*\.so(\.[0-9]+)*)$'
# Upper bound of ldd passes (the closure is tiny; this only stops a runaway).
readonly MAX_FILES=2000

declare -A LIB_PATH=()   # SONAME -> resolved library path

log() { printf 'bundle-libs: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    echo "usage: $0 OUT_DIR BINARY..." >&2
    exit 2
}

is_glibc() { [[ "$1" =~ $GLIBC_RE ]]; }

# ldd_deps FILE: "SONAME<TAB>PATH" for every library ldd resolves for FILE
# (nothing for a static binary); dies when ldd reports "not found".
ldd_deps() {
    local file="$1" out rc=0 missing
    out="$(env -u LD_PRELOAD LC_ALL=C ldd "$file" 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]]; then
        if grep -qE 'not a dynamic executable|statically linked' <<< "$out"; then
            log "note: $file is not dynamically linked; it needs no libraries"
            return 0
        fi
        die "ldd $file failed: $out"
    fi
    missing="$(grep -E '=> not found' <<< "$out" | awk '{print $1}' | tr '\n' ' ' || true)"
    [[ -z "$missing" ]] || die "$file: ldd cannot find: $missing(install them, or fix LD_LIBRARY_PATH)"
    awk '$2 == "=>" && $3 ~ /^\// { print $1 "\t" $3 }' <<< "$out"
}

# check_rpath BINARY: a dynamic binary must carry the bundle RPATH/RUNPATH.
check_rpath() {
    local bin="$1" dyn
    command -v readelf > /dev/null || { log "note: readelf not found, RPATH of $bin not checked"; return 0; }
    dyn="$(LC_ALL=C readelf -d "$bin" 2>/dev/null || true)"
    grep -q '(NEEDED)' <<< "$dyn" || return 0
    grep -E '\((RPATH|RUNPATH)\)' <<< "$dyn" | grep -qF "[$BUNDLE_RPATH]" \
        || die "$bin has no RPATH $BUNDLE_RPATH (link it with SHIPPED_BINARY_LINKOPTS, shipped_binary.bzl)"
}

# check_no_runpath LIB: a DT_RUNPATH would make ld.so skip the binary's RPATH
# for LIB's own dependencies, i.e. load them from the node instead.
check_no_runpath() {
    command -v readelf > /dev/null || return 0
    if LC_ALL=C readelf -d "$1" 2>/dev/null | grep -q '(RUNPATH)'; then
        die "$1 has a DT_RUNPATH; its dependencies would not be loaded from the bundle"
    fi
}

# resolve_closure BINARY...: fill LIB_PATH with every non-glibc library.
resolve_closure() {
    local -a queue=("$@")
    local i=0 name path deps
    while (( i < ${#queue[@]} )); do
        (( i < MAX_FILES )) || die "more than $MAX_FILES files in the closure; giving up"
        # (a die inside the command substitution only ends that subshell)
        deps="$(ldd_deps "${queue[$i]}")" || exit 1
        while IFS=$'\t' read -r name path; do
            [[ -n "$name" ]] || continue
            is_glibc "$name" && continue
            if [[ -n "${LIB_PATH[$name]:-}" ]]; then
                [[ "$(readlink -f "${LIB_PATH[$name]}")" == "$(readlink -f "$path")" ]] \
                    || die "$name resolves to both ${LIB_PATH[$name]} and $path"
                continue
            fi
            LIB_PATH[$name]="$path"
            queue+=("$path")
        done <<< "$deps"
        i=$(( i + 1 ))
    done
}

# stage_libraries DIR: copy the libraries (symlinks followed) and write MANIFEST.
stage_libraries() {
    local dir="$1" name
    for name in "${!LIB_PATH[@]}"; do
        check_no_runpath "${LIB_PATH[$name]}"
        cp -L "${LIB_PATH[$name]}" "$dir/$name"
        chmod 0644 "$dir/$name"
    done
    (cd "$dir" && find . -maxdepth 1 -type f ! -name 'MANIFEST*' -printf '%f\n' | LC_ALL=C sort \
        | while read -r name; do sha256sum -- "$name"; done) > "$dir/MANIFEST.tmp"
    mv -f "$dir/MANIFEST.tmp" "$dir/MANIFEST"
    chmod 0644 "$dir/MANIFEST"
}

# install_binaries OUT_DIR BINARY...: copy each binary to OUT_DIR/bin (rename).
install_binaries() {
    local out="$1" bin name; shift
    mkdir -p "$out/bin"
    for bin in "$@"; do
        name="$(basename "$bin")"
        cp -L "$bin" "$out/bin/.$name.new"
        chmod 0755 "$out/bin/.$name.new"
        mv -f "$out/bin/.$name.new" "$out/bin/$name"
    done
}

# replace_dir NEW DST: put the staged directory NEW in place of DST.
replace_dir() {
    local new="$1" dst="$2" old=""
    if [[ -e "$dst" || -L "$dst" ]]; then
        old="$(mktemp -d "$(dirname "$dst")/.$LIB_NAME.old.XXXXXX")"
        mv -T "$dst" "$old/dir"
    fi
    mv -T "$new" "$dst"
    [[ -z "$old" ]] || rm -rf "$old"
}

main() {
    [[ $# -ge 2 ]] || usage
    local out="$1" bin stage
    shift
    for bin in "$@"; do
        [[ -f "$bin" && -r "$bin" ]] || die "no such binary: $bin"
        check_rpath "$bin"
    done
    resolve_closure "$@"
    mkdir -p "$out/lib"
    stage="$(mktemp -d "$out/lib/.$LIB_NAME.new.XXXXXX")"
    trap 'rm -rf "$stage"' EXIT
    chmod 0755 "$stage"
    stage_libraries "$stage"
    install_binaries "$out" "$@"
    replace_dir "$stage" "$out/lib/$LIB_NAME"
    trap - EXIT
    log "$# binaries in $out/bin, ${#LIB_PATH[@]} libraries in $out/lib/$LIB_NAME"
}

main "$@"
