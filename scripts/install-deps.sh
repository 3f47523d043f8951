#!/usr/bin/env bash
# Installs every Debian 12 package the build and the test suites need
# (offline Bazel toolchain, system C++ libraries, and the real peers the
# tests run against). Idempotent: installs only what is missing.
set -euo pipefail

readonly BUILD_PACKAGES=(
  bazel-bootstrap build-essential pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libre2-dev libtomlplusplus-dev libgoogle-glog-dev
  googletest libgtest-dev libgmock-dev
  libsqlite3-dev libssl-dev libc-ares-dev nlohmann-json3-dev libsystemd-dev zlib1g-dev libzstd-dev
  prometheus-cpp-dev
)
readonly TEST_PACKAGES=(
  containerd runc docker-registry skopeo umoci busybox-static
  cryptsetup-bin fuse3 golang-go golang-github-containerd-containerd-dev
  clang libclang-rt-14-dev
  jq curl sqlite3 util-linux python3 git ca-certificates shellcheck zstd
  qemu-system-x86 cpio
)

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
      grep -q "install ok installed" || echo "$pkg"
  done
}

main() {
  local want=("${BUILD_PACKAGES[@]}")
  if [[ "${1:-}" != "--build-only" ]]; then want+=("${TEST_PACKAGES[@]}"); fi
  # The deployment suite validates manifests with Node; the image may ship
  # its own node, else Debian's.
  if [[ "${1:-}" != "--build-only" ]] && ! command -v npm >/dev/null; then
    want+=(nodejs npm)
  fi
  mapfile -t missing < <(missing_packages "${want[@]}")
  if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#want[@]} packages present"
    return 0
  fi
  if ((EUID != 0)); then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    return 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packaged services must not run with their default configs: the tests
  # start private instances.
  local svc
  for svc in containerd docker-registry; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
}

main "$@"
