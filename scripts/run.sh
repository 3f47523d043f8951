#!/usr/bin/env bash
# Builds containerd-guest-pull-grpc and runs it in the foreground with the
# embedded default configuration (or the file at the default config path
# if one exists). Extra arguments are passed to the daemon, e.g.
#   scripts/run.sh --address=/tmp/gp.sock --root=/tmp/gp-root
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh --build-only
bazel build //snapshotter:containerd-guest-pull-grpc \
  //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity
exec bazel-bin/snapshotter/containerd-guest-pull-grpc "$@"
