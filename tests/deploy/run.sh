#!/usr/bin/env bash
# Deployment test suite: install.sh / uninstall.sh against a fake host root,
# the containerd config merge checked by the real containerd binary, the
# systemd unit checked by systemd-analyze, the Makefile, and the Kubernetes
# manifests checked against the Kubernetes JSON schemas.
#
# The library bundle (deploy/bundle-libs.sh) is tested with the real binaries:
# what it contains, that the bundled binaries run with an empty library path
# and in a chroot holding only glibc + the bundle, and its install/uninstall
# and glibc check on fake host roots. Build them first:
#   bazel build //snapshotter:containerd-guest-pull-grpc \
#     //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity
# (if they are missing, those tests count as one failure).
#
# One file per concern, all sourced here:
#   fake_host.sh            fixtures: fake host roots, install/uninstall runs
#   unit_and_config.sh      systemd unit, default daemon config, drop-ins
#   containerd_v2.sh        config merge on containerd config version 2
#   containerd_v3.sh        config merge on containerd config version 3
#   go_glob.sh              `imports` globs read as Go's filepath does
#   install_refusals.sh     hosts not ready, refused configs, later edits,
#                           arguments and settings an operator gets wrong
#   install_edges.sh        a run cut short, a linked config, a hand setup
#   host_links.sh           containerd's files behind absolute links
#   config_watch.sh         the sleeping pod re-applies when kata comes or goes
#   bundle.sh               the library bundle and its binaries
#   bundle_install.sh       install with the bundle, the host glibc check
#   makefile.sh             make install / uninstall
#   manifests_and_lint.sh   Kubernetes manifests, kata patch, shellcheck
#
# Needs: bash, python3 (3.11+), containerd (1.6+), systemd-analyze, unshare,
# chroot, readelf, go, cc (optional), node + npm (the manifest schemas: `npm ci
# --prefix tests/deploy` is run here as a setup step).
# Usage: tests/deploy/run.sh
# Counts with tests/harness/harness.sh: last line "N passed, M failed,
# K skipped". Tests use `cond && h_pass || h_fail` (h_pass never fails) and
# single-quoted snippets for other shells/languages on purpose.
# shellcheck disable=SC2015,SC2016 source-path=SCRIPTDIR
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/tests/deploy"
SCRIPTS="$REPO/deploy/k8s/scripts"
TOOL="$SCRIPTS/containerd-config.py"
FIXTURES="$HERE/fixtures"
BUNDLE_SCRIPT="$REPO/deploy/bundle-libs.sh"
LIB_NAME="containerd-guest-pull-grpc"
REAL_BINARIES=("$REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc"
               "$REPO/bazel-bin/mount_helper/guest-pull-overlayfs"
               "$REPO/bazel-bin/kata_volume/tools/guest-pull-verity")
# Names of the glibc family (never bundled, always the node's).
GLIBC_RE='^(ld-linux.*|lib(c|m|mvec|pthread|dl|rt|util|resolv|anl|nsl)\.so(\..*)?)$'
WORK="$(mktemp -d /tmp/gp-deploy-test.XXXXXX)"

# shellcheck source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
h_on_exit 'rm -rf "$WORK"'
# shellcheck source=fake_host.sh
source "$HERE/fake_host.sh"
# shellcheck source=unit_and_config.sh
source "$HERE/unit_and_config.sh"
# shellcheck source=containerd_v2.sh
source "$HERE/containerd_v2.sh"
# shellcheck source=containerd_v3.sh
source "$HERE/containerd_v3.sh"
# shellcheck source=install_refusals.sh
source "$HERE/install_refusals.sh"
# shellcheck source=install_edges.sh
source "$HERE/install_edges.sh"
# shellcheck source=host_links.sh
source "$HERE/host_links.sh"
# shellcheck source=config_watch.sh
source "$HERE/config_watch.sh"
# shellcheck source=bundle.sh
source "$HERE/bundle.sh"
# shellcheck source=bundle_install.sh
source "$HERE/bundle_install.sh"
# shellcheck source=makefile.sh
source "$HERE/makefile.sh"
# shellcheck source=manifests_and_lint.sh
source "$HERE/manifests_and_lint.sh"
# shellcheck source=host_lock.sh
source "$HERE/host_lock.sh"
# shellcheck source=go_glob.sh
source "$HERE/go_glob.sh"

main() {
    command -v containerd > /dev/null || { h_fail "setup: containerd not found"; h_finish; }
    h_setup "npm ci --prefix tests/deploy (Kubernetes JSON schemas)" \
        npm ci --prefix "$HERE" --no-audit --no-fund --loglevel=error || true
    test_unit
    test_default_config
    test_dropins_match_tool
    test_install_v2
    test_install_v2_sparse
    test_install_v2_self_glob
    test_install_v2_relative_glob
    test_install_v3
    test_go_glob
    test_global_snapshotter
    test_failures
    test_missing_config
    test_operator_messages
    test_edited_after_install
    test_install_edges
    test_host_links
    test_config_watch
    test_config_watch_prestop
    test_config_watch_v1
    test_config_watch_rollback
    test_config_watch_stale_marker
    test_config_watch_gone_installer
    test_config_watch_handback
    test_host_lock
    test_bundle
    test_makefile
    test_manifests
    test_install_stock
    test_shellcheck
    h_finish
}

main "$@"
