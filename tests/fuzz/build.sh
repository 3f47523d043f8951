#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzzer.cc) with Debian's clang
# outside Bazel (Bazel's toolchain here is gcc): each target links the
# project sources it fuzzes, compiled with -fsanitize=fuzzer,address,undefined,
# against the system libraries found with pkg-config.
#
# Usage: tests/fuzz/build.sh OUT_DIR [TARGET...]
# Writes OUT_DIR/<target> for every target (default: all of FUZZ_TARGETS).
# Objects are reused while the sources and flags are unchanged (OUT_DIR/obj,
# keyed by a hash of each source, every project header and the flags).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
readonly HERE REPO

# Project sources each target needs (besides tests/fuzz/<target>_fuzzer.cc).
declare -A SOURCES=(
  [volume_option]="kata_volume/volume.cc kata_volume/volume_json.cc kata_volume/volume_option.cc kata_volume/validate.cc"
  [mount_helper]="mount_helper/command_line.cc mount_helper/overlay_options.cc mount_helper/mount_flags.cc mount_helper/overlay_data.cc"
  [config]="snapshotter/config/config.cc snapshotter/config/keys.cc snapshotter/config/value_text.cc snapshotter/config/command_line.cc snapshotter/config/default_config.cc snapshotter/metrics/listen_address.cc snapshotter/socket_path.cc snapshotter/dangling_link.cc base/file_type.cc base/go_utf8.cc"
  [filters]="base/go_utf8.cc snapshotter/filters.cc snapshotter/snapshot_types.cc"
  [tar]="base/errno_error.cc kata_volume/verity/byte_source.cc kata_volume/verity/tar_reader.cc kata_volume/verity/tarfs_index.cc"
  [labels]="snapshotter/key_validation.cc snapshotter/id_mapping.cc snapshotter/snapshot_types.cc kata_volume/verity/sha256.cc"
)
readonly FUZZ_TARGETS=(volume_option mount_helper config filters tar labels)
readonly PKGS=(absl_status absl_statusor absl_strings absl_str_format libglog re2 tomlplusplus zlib libzstd libcrypto)

CXX="${CXX_FUZZ:-clang++}"
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CXXFLAGS="-std=c++17 -g -O1 -fno-omit-frame-pointer $SANITIZE -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -I$REPO"

main() {
  (($# >= 1)) || { echo "usage: $0 OUT_DIR [TARGET...]" >&2; exit 2; }
  local out="$1"
  shift
  local targets=("$@")
  ((${#targets[@]})) || targets=("${FUZZ_TARGETS[@]}")
  command -v "$CXX" >/dev/null || { echo "build.sh: $CXX not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }
  local pkg_cflags pkg_libs
  pkg_cflags=$(pkg-config --cflags "${PKGS[@]}")
  pkg_libs=$(pkg-config --libs "${PKGS[@]}")
  # Anything a header change could affect: every project header, the flags.
  local headers_hash
  headers_hash=$( { cd "$REPO" && find base kata_volume mount_helper snapshotter -name '*.h' -print0 |
                    sort -z | xargs -0 sha256sum; echo "$CXX $CXXFLAGS $pkg_cflags"; "$CXX" --version; } |
                  sha256sum | cut -c1-16)
  mkdir -p "$out/obj"
  # One build at a time per OUT_DIR (scripts/prebuild.sh may be building
  # it in the background when the fuzz suite starts).
  exec 9>"$out/.lock"
  flock 9
  local target src obj objs
  for target in "${targets[@]}"; do
    [[ -n "${SOURCES[$target]:-}" ]] || { echo "build.sh: unknown target $target" >&2; exit 2; }
    objs=()
    for src in ${SOURCES[$target]} "tests/fuzz/${target}_fuzzer.cc"; do
      obj="$out/obj/$(sha256sum <"$REPO/$src" | cut -c1-16)-$headers_hash-$(basename "$src" .cc).o"
      if [[ ! -f "$obj" ]]; then
        echo "build.sh: compiling $src"
        # Only the fuzzer entry file gets libFuzzer's own instrumentation
        # flags at link; every file gets the coverage instrumentation.
        # shellcheck disable=SC2086
        "$CXX" $CXXFLAGS -fsanitize=fuzzer-no-link $pkg_cflags -c "$REPO/$src" -o "$obj.tmp"
        mv "$obj.tmp" "$obj"
      fi
      objs+=("$obj")
    done
    echo "build.sh: linking $out/$target"
    # shellcheck disable=SC2086
    "$CXX" $CXXFLAGS -fsanitize=fuzzer "${objs[@]}" $pkg_libs -o "$out/$target.tmp"
    mv "$out/$target.tmp" "$out/$target"
  done
}

main "$@"
