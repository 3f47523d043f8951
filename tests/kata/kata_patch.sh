#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317 # bash -c programs take $1..; functions run via h_check
# kata_patch.sh: the kata runtime patch proven on real kata releases, and
# kata's own Go code judging what the snapshotter emits.
#
# For a release (deploy/kata/releases.tsv) it takes kata's src/runtime
# module from the Go module proxy at the release's pseudo-version, copies it
# into a temp dir, applies deploy/kata/<release>/0001-guest-pull-rootfs.patch
# (no offset, no fuzz), generates pkg/katautils/config-settings.go as kata's
# Makefile does, builds containerd-shim-kata-v2, runs kata's own unit tests
# of the three packages the patch touches (as nobody, without a VM; the
# selection is below and in docs/kata-runtime-patch.md) and the patch's own
# tests, then runs tests/kata/katacheck against the stock module and against
# the patched tree (kata's IsNydusRootFSType, the patched IsGuestPullRootFSType
# and CheckGuestPullRootFS, types.ParseKataVirtualVolume + IsValid on every
# volume our builder emits).
#
# Default mode: the newest release (4.1.0); if the proxy does not serve it,
# that release is a skip with the reason and the newest served release runs
# instead. Long mode: every supported release. Caches: Go's module and build
# caches (per machine). Needs root only to drop to nobody for kata's tests.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../harness/harness.sh
source "$REPO/tests/harness/harness.sh"
# shellcheck source-path=SCRIPTDIR source=kata_lib.sh
source "$HERE/kata_lib.sh"

# kata's tests per touched package, run as nobody (those that need root
# skip themselves). Left out, because this machine lacks what they need:
# syslog (/dev/log) for TestCreateLoadRuntimeConfig, TestHandleSystemLog,
# TestNewSystemLogHook (which then dereferences nil and aborts the run), and
# /dev/vhost-vsock for the katautils tests that load a full configuration.
readonly SHIM_SKIP='^TestCreateLoadRuntimeConfig$'
readonly KATAUTILS_SKIP='^(TestHandleSystemLog|TestNewSystemLogHook|TestConfigLoadConfiguration|TestConfigLoadConfigurationFail.*|TestMinimalRuntimeConfig|TestUpdateRuntimeConfigurationVMConfig|TestUpdateRuntimeConfigHypervisor)$'
# virtcontainers is mostly hypervisor and VM tests: only the container,
# rootfs-sharing and rootfs-type tests run (the ones around the patched code).
readonly VC_RUN='^(TestIsGuestPullRootFSType|TestIsNydusRootFSType|TestContainer.*|TestCheckSandboxRunning.*|TestMountSharedDirMounts|TestGetContainerId|TestConfigValid|TestUnmountHostMountsRemoveBindHostPath|TestShareRootFilesystem|TestSandboxSharedFilesystem|TestHandleBlockVolume|TestHandleDeviceBlockVolume|TestBindUnmountContainerRootfs.*)$'

# The patch's own tests (in the patch, one file per package).
readonly PATCH_VC_RUN='^(TestIsGuestPullRootFSType|TestContainerCreateGuestPullRootFSNoHotplug)$'
readonly PATCH_SHIM_RUN='^TestCheckAndMountGuestPullRootFS$'
readonly PATCH_KATAUTILS_RUN='^TestCreateContainerGuestPullRootFS$'

WORK=$(mktemp -d /tmp/gp-kata.XXXXXX)
chmod 755 "$WORK"
mkdir -m 1777 "$WORK/home"
export KATA_NOBODY_HOME="$WORK/home"
h_on_exit 'rm -rf "$WORK"'

# kata_go_tests NAME DIR TESTBIN ARGS...: one check; kata's own counts as a figure.
kata_go_tests() {
  local name="$1" dir="$2" bin="$3" log rc p s f
  shift 3
  log="$WORK/$(tr -c 'A-Za-z0-9' _ <<<"$name").log"
  kata_as_nobody "$dir" timeout 900 "$bin" -test.count=1 -test.v "$@" >"$log" 2>&1
  rc=$?
  p=$(grep -c '^--- PASS' "$log")
  s=$(grep -c '^--- SKIP' "$log")
  f=$(grep -c '^--- FAIL' "$log")
  h_figure "$name" "$p passed, $s skipped by kata (need root or a VM), $f failed" "tests"
  if ((rc == 0 && p > 0 && f == 0)); then h_pass "$name"; else
    h_fail "$name" "$(grep -E '^(--- FAIL|panic|FAIL)|Error:' -A3 "$log" | head -n 40)"
  fi
}

# katacheck RELEASE NAME TAGS [REPLACE_DIR]: go test of tests/kata/katacheck
# with kata's module at the release (or replaced by the patched tree).
katacheck() {
  local rel="$1" name="$2" tags="$3" replace="${4:-}" mod pv out
  mod="$WORK/katacheck-$rel-$tags"
  cp "$HERE/katacheck/go.mod" "$mod.mod" && cp "$HERE/katacheck/go.sum" "$mod.sum"
  pv=$(kata_release_field "$rel" 3)
  (cd "$HERE/katacheck" && go mod edit -modfile="$mod.mod" -require="$KATA_MODULE@$pv" &&
    if [[ -n "$replace" ]]; then go mod edit -modfile="$mod.mod" -replace="$KATA_MODULE=$replace"; fi)
  if out=$(cd "$HERE/katacheck" && GUEST_PULL_VOLUMES="$VOLUMES" GUEST_PULL_VERITY_TOOL="$VERITY_TOOL" timeout 900 \
    go test -trimpath -count=1 -modfile="$mod.mod" -tags "$tags" -v ./... 2>&1); then
    h_pass "$name"
    # go test -v prefixes each t.Logf line with its file:line.
    sed -nE 's/^\s*([A-Za-z0-9_]+\.go:[0-9]+: )?(katacheck:.*)/  \2/p' <<<"$out"
  else
    h_fail "$name" "$out"
  fi
}

# The volumes our builder emits (kata_volume:volume_samples), one per line,
# and the decode command katacheck compares with kata's own verdict.
VOLUMES="$WORK/volumes.txt"
VERITY_TOOL="$WORK/guest-pull-verity"
make_volumes() {
  (cd "$REPO" && bazel build //kata_volume:volume_samples //kata_volume/tools:guest-pull-verity >/dev/null 2>&1 &&
    "$REPO/bazel-bin/kata_volume/volume_samples" >"$VOLUMES" &&
    cp "$REPO/bazel-bin/kata_volume/tools/guest-pull-verity" "$VERITY_TOOL") || return 1
  [[ $(wc -l <"$VOLUMES") -ge 10 ]]
}

run_release() {
  local rel="$1"
  local dir="$WORK/$rel"
  mkdir -p "$dir"
  h_setup "kata $rel: src/runtime from the Go module proxy, patched" \
    kata_patched_tree "$rel" "$dir" || return 0
  local tree="$dir/runtime"
  h_check "kata $rel: containerd-shim-kata-v2 builds with the patch" \
    bash -c 'cd "$1" && timeout 1800 go build -trimpath -o "$2/containerd-shim-kata-v2" ./cmd/containerd-shim-kata-v2 &&
             "$2/containerd-shim-kata-v2" --version | grep -F "version: $3"' sh "$tree" "$dir" "$rel"
  # Our in-tree test of the stock mode's stop path (tests/kata/intree).
  cp "$HERE/intree/zz_guest_pull_stock_test.go" "$tree/virtcontainers/"
  h_setup "kata $rel: test binaries of the patched packages" bash -c '
    cd "$1" && for p in pkg/containerd-shim-v2 pkg/katautils virtcontainers; do
      timeout 1800 go test -trimpath -tags kata_intree -c -o "$2/$(basename $p).test" ./$p || exit 1; done' sh "$tree" "$dir" || return 0
  chmod -R a+rX "$dir"
  # The patch's own tests: the type check, and each patched call site
  # (checkAndMount, CreateContainer, Container.create).
  kata_go_tests "kata $rel: patch's own tests in virtcontainers (type, no hotplug)" "$tree/virtcontainers" \
    "$dir/virtcontainers.test" -test.run "$PATCH_VC_RUN"
  kata_go_tests "kata $rel: patch's own tests in pkg/containerd-shim-v2 (checkAndMount)" \
    "$tree/pkg/containerd-shim-v2" "$dir/containerd-shim-v2.test" -test.run "$PATCH_SHIM_RUN"
  kata_go_tests "kata $rel: patch's own tests in pkg/katautils (CreateContainer)" "$tree/pkg/katautils" \
    "$dir/katautils.test" -test.run "$PATCH_KATAUTILS_RUN"
  kata_go_tests "kata $rel: kata's pkg/containerd-shim-v2 tests" "$tree/pkg/containerd-shim-v2" \
    "$dir/containerd-shim-v2.test" -test.skip "$SHIM_SKIP"
  kata_go_tests "kata $rel: kata's pkg/katautils tests" "$tree/pkg/katautils" \
    "$dir/katautils.test" -test.skip "$KATAUTILS_SKIP"
  kata_go_tests "kata $rel: kata's virtcontainers rootfs and container tests" "$tree/virtcontainers" \
    "$dir/virtcontainers.test" -test.run "$VC_RUN"
  kata_go_tests "kata $rel: stock mode: kata's nydus cleanup on stop answers 'umount rafs failed: unimplemented'" \
    "$tree/virtcontainers" "$dir/virtcontainers.test" -test.run '^TestGuestPullStockModeNydusCleanup$'
  if [[ -s "$VOLUMES" ]]; then
    katacheck "$rel" "kata $rel: stock kata's functions judge our mount types and volumes" kata_stock
    katacheck "$rel" "kata $rel: the patched IsGuestPullRootFSType accepts the default mount type, CheckGuestPullRootFS every volume we emit" \
      kata_patched "$tree"
  fi
}

# The mount types of both modes, as deploy/ installs them.
DEFAULT_TYPE=$(sed -n 's/^mount_type = "\(.*\)"$/\1/p' "$REPO/deploy/config/config.toml")
STOCK_HELPER=$(sed -n 's/^STOCK_HELPER_NAME="\(.*\)"$/\1/p' "$REPO/deploy/k8s/scripts/lib.sh")
export GUEST_PULL_DEFAULT_TYPE="$DEFAULT_TYPE" GUEST_PULL_STOCK_TYPE="fuse.$STOCK_HELPER"

# Stock mode as `make -C deploy install KATA_MODE=stock` lays it out (into a
# DESTDIR), then a real mount of the stock type through mount.fuse3, which
# runs the helper by its second name from /usr/local/bin.
stock_install() {
  local dest="$WORK/stock-dest" bin
  make -C "$REPO/deploy" install NO_BUILD=1 DESTDIR="$dest" KATA_MODE=stock >/dev/null || return 1
  bin="$dest/usr/local/bin"
  [[ "$(readlink "$bin/$STOCK_HELPER")" == guest-pull-overlayfs ]] || { echo "no $STOCK_HELPER link"; return 1; }
  grep -qx "mount_type = \"fuse.$STOCK_HELPER\"" "$dest/etc/containerd-guest-pull-grpc/config.toml" ||
    { echo "config lacks the stock mount type"; return 1; }
  make -C "$REPO/deploy" uninstall DESTDIR="$dest" >/dev/null || return 1
  [[ -z "$(find "$dest" -type f -o -type l)" ]] || { echo "uninstall left files:"; find "$dest" -type f -o -type l; return 1; }
}

stock_mount() {
  local t="$WORK/stock-mount" link="/usr/local/bin/$STOCK_HELPER" out
  mkdir -p "$t"/{l1,l2,u,w,m} && echo guest-pull >"$t/l1/f"
  ln -s "$REPO/bazel-bin/mount_helper/guest-pull-overlayfs" "$link" || return 1
  out=$(mount -t "fuse.$STOCK_HELPER" overlay "$t/m" \
    -o "lowerdir=$t/l1:$t/l2,upperdir=$t/u,workdir=$t/w,$(head -n 1 "$VOLUMES")" 2>&1)
  local rc=$?
  rm -f "$link"
  ((rc == 0)) || { echo "$out"; return 1; }
  local fstype content
  fstype=$(findmnt -n -o FSTYPE "$t/m")
  content=$(cat "$t/m/f")
  umount "$t/m"
  [[ "$fstype" == overlay && "$content" == guest-pull ]] || { echo "fstype=$fstype content=$content"; return 1; }
}

run_stock_mode() {
  local b
  for b in snapshotter/containerd-guest-pull-grpc mount_helper/guest-pull-overlayfs kata_volume/tools/guest-pull-verity; do
    if [[ ! -x "$REPO/bazel-bin/$b" ]]; then
      h_setup "build the shipped binaries" bash -c "cd '$REPO' && bazel build //snapshotter:containerd-guest-pull-grpc //mount_helper:guest-pull-overlayfs //kata_volume/tools:guest-pull-verity" || return 0
      break
    fi
  done
  h_check "stock mode: make -C deploy install KATA_MODE=stock installs $STOCK_HELPER and the stock mount type; uninstall removes them" stock_install
  if [[ -e "/usr/local/bin/$STOCK_HELPER" || -L "/usr/local/bin/$STOCK_HELPER" ]]; then
    h_skip "stock mode: mount through mount.fuse3" "/usr/local/bin/$STOCK_HELPER exists (not ours): not touching it"
  elif [[ ! -s "$VOLUMES" ]] || ! command -v mount.fuse3 >/dev/null; then
    h_skip "stock mode: mount through mount.fuse3" "no volume sample or no mount.fuse3"
  else
    h_check "stock mode: mount -t fuse.$STOCK_HELPER runs the helper by its second name (plain overlay, volume dropped)" stock_mount
  fi
}

main() {
  if ((EUID != 0)); then h_skip "kata patch" "needs root to run kata's tests as nobody"; h_finish; fi
  command -v go >/dev/null || { h_skip "kata patch" "no go on PATH"; h_finish; }
  echo "mode: $(h_mode); releases: $(kata_releases | tr '\n' ' ')"
  h_setup "volumes from our builder and guest-pull-verity (bazel build)" make_volumes || : >"$VOLUMES"
  run_stock_mode
  local rel ran=0 why
  for rel in $(kata_releases); do
    if ! h_long && ((ran > 0)); then
      h_skip "kata $rel" "long mode only (GUEST_PULL_TEST_MODE=long runs every supported release)"
      continue
    fi
    if ! why=$(kata_module_dir "$rel"); then
      if kata_is_not_served "$why"; then
        if kata_proxy_unreachable "$why"; then
          h_skip "kata $rel" "the Go module proxy cannot be reached (no network?): $why"
        else
          h_skip "kata $rel" "the Go module proxy does not serve $KATA_MODULE at $rel: $why"
        fi
      else
        h_fail "kata $rel: module download" "$why"
        ran=1
      fi
      continue
    fi
    local t0=$SECONDS
    run_release "$rel"
    h_figure "kata $rel: patch, build and tests" "$((SECONDS - t0))" s
    ran=1
  done
  h_finish
}

main "$@"
