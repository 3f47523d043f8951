# shellcheck shell=bash
# bundle.sh: deploy/bundle-libs.sh on the bazel-built binaries: what the
# library bundle holds, its error cases, and that the bundled binaries run
# with an empty library path and in a chroot holding only glibc + the
# bundle. Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

# real_binaries_built: the bazel-built binaries exist (prints the missing one).
real_binaries_built() {
    local b
    for b in "${REAL_BINARIES[@]}"; do
        if [[ ! -x "$b" ]]; then
            echo "$b is not built (bazel build //snapshotter:containerd-guest-pull-grpc //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity)"
            return 1
        fi
    done
}

# bundle_glibc_needed DIR: highest GLIBC_x.y that readelf -V finds in DIR's
# bin/* and lib/$LIB_NAME/* (the reference for install.sh's byte scan).
bundle_glibc_needed() {
    local f
    for f in "$1"/bin/* "$1/lib/$LIB_NAME"/*.so*; do
        readelf -V --wide "$f"
    done | grep -oE 'Name: GLIBC_[0-9.]+' | sed 's/.*GLIBC_//' | sort -uV | tail -n 1
}

test_bundle_contents() {
    local bundle="$WORK/bundle" lib="$WORK/bundle/lib/$LIB_NAME" out name f bad=""
    if ! out="$("$BUNDLE_SCRIPT" "$bundle" "${REAL_BINARIES[@]}" 2>&1)"; then
        h_fail "bundle: bundle-libs.sh on the bazel-built binaries" "$out"
        return 1
    fi
    h_pass "bundle: bundle-libs.sh on the bazel-built binaries"
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        [[ -x "$bundle/bin/$name" && "$(stat -c %a "$bundle/bin/$name")" == 755 ]] || bad+=" bin/$name"
    done
    [[ -z "$bad" ]] && h_pass "bundle: the three binaries in bin/, mode 755" || h_fail "bundle: binaries" "$bad"
    bad="$(find "$lib" -mindepth 1 -printf '%f\n' | grep -E "$GLIBC_RE" || true)"
    [[ -z "$bad" ]] && h_pass "bundle: no glibc library (libc, libm, ld-linux, libpthread, libdl, librt...)" \
        || h_fail "bundle: glibc bundled" "$bad"
    bad=""
    for name in 'libstdc++.so.6' 'libgcc_s.so.1' 'libsystemd.so.0' 'libtomlplusplus.so.*' 'libglog.so.*' \
            'libgflags.so.*' 'libprometheus-cpp-core.so.*' 'libcivetweb.so.*' 'libz.so.1'; do
        compgen -G "$lib/$name" > /dev/null || bad+=" $name"
    done
    [[ -z "$bad" ]] && h_pass "bundle: has libstdc++, libgcc_s, libsystemd, libtomlplusplus, libglog, libprometheus-cpp, ..." \
        || h_fail "bundle: missing" "$bad"
    # Linked from their static archives (shipped_binary.bzl): not loaded, not bundled.
    bad="$(find "$lib" -mindepth 1 -printf '%f\n' | grep -E '^lib(grpc|gpr|upb|absl_|protobuf|re2|sqlite3|ssl|crypto)' || true)"
    [[ -z "$bad" ]] && h_pass "bundle: gRPC, protobuf, abseil, RE2, SQLite and OpenSSL are linked in, not bundled" \
        || h_fail "bundle: statically linked libraries bundled" "$bad"
    # Complete: every non-glibc library ldd resolves for a binary is there.
    bad="$(for f in "${REAL_BINARIES[@]}"; do ldd "$f"; done | awk '$2 == "=>" {print $1}' | sort -u \
        | grep -vE "$GLIBC_RE" | while read -r name; do [[ -f "$lib/$name" ]] || echo "$name"; done)"
    [[ -z "$bad" ]] && h_pass "bundle: every library ldd lists (but glibc) is bundled" || h_fail "bundle: incomplete" "$bad"
    # Regular files named by their SONAME (symlinks followed, names kept).
    bad=""
    for f in "$lib"/*.so*; do
        [[ -f "$f" && ! -L "$f" && "$(stat -c %a "$f")" == 644 ]] || { bad+=" $(basename "$f"):type/mode"; continue; }
        readelf -d "$f" | grep -q "(SONAME).*\[$(basename "$f")\]" || bad+=" $(basename "$f"):soname"
    done
    [[ -z "$bad" ]] && h_pass "bundle: libraries are regular 0644 files named by their SONAME" || h_fail "bundle: files" "$bad"
    if (cd "$lib" && sha256sum --quiet --strict -c MANIFEST) \
        && [[ "$(wc -l < "$lib/MANIFEST")" -eq "$(find "$lib" -type f ! -name MANIFEST | wc -l)" ]] \
        && LC_ALL=C sort -c -k2 "$lib/MANIFEST"; then
        h_pass "bundle: MANIFEST has the sha256 of every library, sorted by name"
    else
        h_fail "bundle: MANIFEST"
    fi
    tree "$bundle" > "$WORK/bundle.tree"
    "$BUNDLE_SCRIPT" "$bundle" "${REAL_BINARIES[@]}" > /dev/null 2>&1 && cmp -s "$WORK/bundle.tree" <(tree "$bundle") \
        && h_pass "bundle: running bundle-libs.sh again gives the same tree" || h_fail "bundle: rerun differs"
}

# test_bundle_errors: ldd "not found" and a binary without the bundle RPATH.
test_bundle_errors() {
    local dir="$WORK/bundle-errors" out
    if ! command -v cc > /dev/null; then h_skip "bundle errors: bundle-libs.sh error cases" "cc not installed"; return 0; fi
    mkdir -p "$dir/libs"
    echo 'int gone(void) { return 0; }' > "$dir/gone.c"
    echo 'int gone(void); int main(void) { return gone(); }' > "$dir/main.c"
    cc -shared -fPIC -Wl,-soname,libgone.so.1 -o "$dir/libs/libgone.so.1.0.0" "$dir/gone.c"
    ln -sf libgone.so.1.0.0 "$dir/libs/libgone.so.1"
    ln -sf libgone.so.1 "$dir/libs/libgone.so"
    cc -o "$dir/with-rpath" "$dir/main.c" -L"$dir/libs" -lgone -Wl,-rpath,'$ORIGIN/../lib/containerd-guest-pull-grpc' -Wl,--disable-new-dtags
    cc -o "$dir/no-rpath" "$dir/main.c" -L"$dir/libs" -lgone
    out="$(LD_LIBRARY_PATH="$dir/libs" "$BUNDLE_SCRIPT" "$dir/ok" "$dir/with-rpath" 2>&1)" \
        && [[ -f "$dir/ok/lib/$LIB_NAME/libgone.so.1" && ! -L "$dir/ok/lib/$LIB_NAME/libgone.so.1" ]] \
        && cmp -s "$dir/libs/libgone.so.1.0.0" "$dir/ok/lib/$LIB_NAME/libgone.so.1" \
        && [[ "$(find "$dir/ok/lib/$LIB_NAME" -mindepth 1 -printf '%f ')" == "libgone.so.1 MANIFEST " || \
              "$(find "$dir/ok/lib/$LIB_NAME" -mindepth 1 -printf '%f ')" == "MANIFEST libgone.so.1 " ]] \
        && h_pass "bundle errors: control case, symlink libgone.so.1 -> libgone.so.1.0.0 bundled as the regular file libgone.so.1" \
        || h_fail "bundle errors: control case" "$out"
    if out="$("$BUNDLE_SCRIPT" "$dir/out" "$dir/with-rpath" 2>&1)"; then
        h_fail "bundle errors: missing library refused" "$out"
    else
        grep -q 'cannot find: libgone.so.1' <<< "$out" && [[ ! -e "$dir/out/lib/$LIB_NAME" ]] \
            && h_pass "bundle errors: ldd 'not found' fails clearly, nothing written" || h_fail "bundle errors: message" "$out"
    fi
    if out="$(LD_LIBRARY_PATH="$dir/libs" "$BUNDLE_SCRIPT" "$dir/out" "$dir/no-rpath" 2>&1)"; then
        h_fail "bundle errors: binary without RPATH refused" "$out"
    else
        grep -q 'has no RPATH' <<< "$out" && h_pass "bundle errors: binary without the bundle RPATH refused" \
            || h_fail "bundle errors: RPATH message" "$out"
    fi
}

# loaded_outside_bundle FILE PREFIX: library paths in FILE (LD_DEBUG "calling
# init:" lines or /proc/PID/maps) that are neither glibc nor under PREFIX.
loaded_outside_bundle() {
    grep -oE '/[^ ]*\.so[.0-9]*$' "$1" | sort -u | while read -r path; do
        [[ "$(basename "$path")" =~ $GLIBC_RE || "$path" == "$2"/* ]] || echo "$path"
    done
}

test_bundle_runs() {
    local prefix="$WORK/prefix" root="$WORK/chroot" name out bad pid sock
    mkdir -p "$prefix"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$prefix/"
    bad=""
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        out="$(env -i "$prefix/bin/$name" --version 2>&1)" && [[ "$out" == "$name "* ]] || bad+=" $name: $out"
    done
    [[ -z "$bad" ]] && h_pass "bundle runs: --version of all three under env -i (no LD_LIBRARY_PATH)" || h_fail "bundle runs: env -i" "$bad"
    # ld.so's own account: every non-glibc library comes from the bundle.
    env -i LD_DEBUG=libs "$prefix/bin/containerd-guest-pull-grpc" --version > /dev/null 2> "$WORK/ld-debug.log" || true
    bad="$(loaded_outside_bundle <(grep 'calling init:' "$WORK/ld-debug.log") "$prefix/bin/../lib/$LIB_NAME")"
    [[ -z "$bad" && "$(grep -c "calling init: $prefix/bin/../lib/$LIB_NAME/" "$WORK/ld-debug.log")" -ge 10 ]] \
        && grep -q "calling init: $prefix/bin/../lib/$LIB_NAME/libglog.so" "$WORK/ld-debug.log" \
        && h_pass "bundle runs: LD_DEBUG=libs shows libglog and the rest loaded from the bundle, only glibc from the system" \
        || h_fail "bundle runs: LD_DEBUG" "${bad:-too few bundle libraries}"
    # The RPATH (DT_RPATH) is searched before LD_LIBRARY_PATH.
    env -i LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu LD_DEBUG=libs \
        "$prefix/bin/guest-pull-verity" --version > /dev/null 2> "$WORK/ld-debug-llp.log" || true
    [[ -z "$(loaded_outside_bundle <(grep 'calling init:' "$WORK/ld-debug-llp.log") "$prefix/bin/../lib/$LIB_NAME")" ]] \
        && grep -q "calling init: $prefix/bin/../lib/$LIB_NAME/libstdc++.so.6" "$WORK/ld-debug-llp.log" \
        && h_pass "bundle runs: LD_LIBRARY_PATH pointing at the system libraries does not override the bundle" \
        || h_fail "bundle runs: LD_LIBRARY_PATH overrides the bundle"
    # A started daemon: its memory maps name only bundle and glibc libraries.
    sock="$WORK/bundle-daemon/gp.sock"
    mkdir -p "$WORK/bundle-daemon"
    env -i "$prefix/bin/containerd-guest-pull-grpc" --config "$REPO/deploy/config/config.toml" \
        --root "$WORK/bundle-daemon/root" --address "$sock" > "$WORK/bundle-daemon/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
    if [[ -S "$sock" ]] && cp "/proc/$pid/maps" "$WORK/bundle-daemon/maps" 2> /dev/null; then
        bad="$(loaded_outside_bundle <(awk '{print $6}' "$WORK/bundle-daemon/maps") "$prefix/lib/$LIB_NAME")"
        [[ -z "$bad" ]] && grep -q "$prefix/lib/$LIB_NAME/libglog.so" "$WORK/bundle-daemon/maps" \
            && h_pass "bundle runs: the started daemon listens; /proc/PID/maps has bundle + glibc libraries only" \
            || h_fail "bundle runs: daemon maps" "$bad"
    else
        h_fail "bundle runs: daemon from the bundle" "$(tail -3 "$WORK/bundle-daemon/log")"
    fi
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    # Strongest: a root with nothing but the host's glibc and the bundle.
    mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu" "$root/usr/local" "$root/proc" "$root/tmp"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$root/usr/local/"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    for f in $(for b in "${REAL_BINARIES[@]}"; do ldd "$b"; done | awk '$2 == "=>" {print $3}' | sort -u); do
        [[ "$(basename "$f")" =~ $GLIBC_RE ]] && cp -L "$f" "$root/lib/x86_64-linux-gnu/"
    done
    bad="$(find "$root" -name '*.so*' ! -path "$root/usr/local/lib/$LIB_NAME/*" -printf '%f\n' | grep -vE "$GLIBC_RE" || true)"
    [[ -z "$bad" ]] || { h_fail "bundle chroot: only glibc outside the bundle" "$bad"; return; }
    bad=""
    for name in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        out="$(in_chroot "$root" "/usr/local/bin/$name" --version 2>&1)" && [[ "$out" == "$name "* ]] || bad+=" $name: $out"
    done
    out="$(in_chroot "$root" /usr/local/bin/containerd-guest-pull-grpc --print-default-config 2>&1)" \
        && python3 -c 'import sys, tomllib; tomllib.loads(sys.stdin.read())' <<< "$out" || bad+=" print-default-config: $out"
    [[ -z "$bad" ]] && h_pass "bundle chroot: in a root with only glibc ($(find "$root/lib64" "$root/lib/x86_64-linux-gnu" -type f -printf '%f ' | sed 's/ $//')) + the bundle, all three run (--version, --print-default-config)" \
        || h_fail "bundle chroot" "$bad"
    # Control: the same root without the bundle cannot start the daemon.
    mv "$root/usr/local/lib/$LIB_NAME" "$root/usr/local/lib/moved"
    out="$(in_chroot "$root" /usr/local/bin/containerd-guest-pull-grpc --version 2>&1)" && bad=yes || bad=""
    mv "$root/usr/local/lib/moved" "$root/usr/local/lib/$LIB_NAME"
    [[ -z "$bad" ]] && grep -q 'cannot open shared object file' <<< "$out" \
        && h_pass "bundle chroot: control, without the bundle directory the daemon cannot start" \
        || h_fail "bundle chroot: control" "$out"
}

# in_chroot ROOT CMD...: CMD chrooted into ROOT with a private /proc (ld.so
# reads /proc/self/exe to expand $ORIGIN).
in_chroot() {
    local root="$1"; shift
    env -i "$(command -v unshare)" --mount --pid --fork --mount-proc="$root/proc" \
        "$(command -v chroot)" "$root" "$@"
}

# test_dockerfile_packages: deploy/Dockerfile's build stage installs every
# build package of scripts/install-deps.sh (a header the build needs and the
# image lacks fails only there, where no suite builds).
test_dockerfile_packages() {
    local pkgs pkg words missing=""
    pkgs="$(sed -n '/^readonly BUILD_PACKAGES=(/,/^)/p' "$REPO/scripts/install-deps.sh" |
        sed '1d;$d' | tr -s ' \n' '\n' | grep -v '^$' || true)"
    [[ -n "$pkgs" ]] || { h_fail "Dockerfile: build packages of install-deps.sh found" ""; return; }
    words="$(sed -n '/^FROM debian:12 AS build/,/^FROM /p' "$REPO/deploy/Dockerfile" | tr -s ' \\\t' '\n' || true)"
    for pkg in $pkgs; do
        grep -qxF -- "$pkg" <<<"$words" || missing+=" $pkg"
    done
    [[ -z "$missing" ]] && h_pass "Dockerfile: the build stage installs every build package of install-deps.sh" ||
        h_fail "Dockerfile: the build stage lacks build packages of install-deps.sh" "$missing"
}

test_bundle() {
    local missing
    test_dockerfile_packages
    if ! missing="$(real_binaries_built)"; then
        h_fail "bundle: bazel-built binaries present" "$missing"
        return
    fi
    test_bundle_contents || return 0
    test_bundle_errors
    test_bundle_runs
    test_install_bundle
    test_glibc_check
    test_kept_config_check
}
