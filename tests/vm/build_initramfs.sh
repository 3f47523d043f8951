#!/usr/bin/env bash
# build_initramfs.sh: the guest VM's kernel and initramfs, from Debian's
# linux-image-cloud-amd64 (downloaded with `apt-get download` and unpacked
# with `dpkg-deb -x` into a cache; never installed as the host's kernel) and
# the static guest agent (//guest_agent:guest-agent) as /init.
#
# The initramfs holds /init, /dev/console, the kernel modules the agent loads
# (in dependency order, listed in /lib/modules/guest-agent.list) and nothing
# else. Both are cached per machine, keyed by the kernel package version and
# the agent's sha256; concurrent callers serialise on a lock.
#
# Usage: build_initramfs.sh [--agent PATH] [--cache DIR] [--kernel-only]
#   --agent PATH   the static agent (default bazel-bin/guest_agent/guest-agent)
#   --cache DIR    cache dir (default $GUEST_VM_CACHE or /var/cache/guest-pull-vm)
#   --kernel-only  only the kernel (for other initramfs builders, e.g.
#                  tests/powercut): prints kernel= and one module=<.ko path>
#                  per module above, in load order
# Prints:  kernel=<vmlinuz path>
#          initrd=<cpio.gz path>      (module=... lines instead with --kernel-only)
# Exit: 0 ok, 1 failure (message on stderr), 2 usage.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AGENT="$REPO/bazel-bin/guest_agent/guest-agent"
CACHE="${GUEST_VM_CACHE:-/var/cache/guest-pull-vm}"
KERNEL_ONLY=0
readonly KERNEL_META=linux-image-cloud-amd64
# Dependency order: verity needs reed_solomon (FEC), dm-mod and dm-bufio; the
# virtio transport before the console (the agent's port) and block drivers.
readonly MODULES=(
  lib/reed_solomon/reed_solomon.ko
  drivers/md/dm-mod.ko
  drivers/md/dm-bufio.ko
  drivers/md/dm-verity.ko
  drivers/block/loop.ko
  drivers/virtio/virtio_ring.ko
  drivers/virtio/virtio.ko
  drivers/virtio/virtio_pci_modern_dev.ko
  drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci.ko
  drivers/block/virtio_blk.ko
  drivers/char/virtio_console.ko
  fs/overlayfs/overlay.ko
)

die() { echo "build_initramfs: ERROR: $*" >&2; exit 1; }
usage() { sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while (($#)); do
  case "$1" in
    --agent) AGENT="${2:?}"; shift 2 ;;
    --cache) CACHE="${2:?}"; shift 2 ;;
    --kernel-only) KERNEL_ONLY=1; shift ;;
    -h | --help) usage ;;
    *) echo "build_initramfs: unknown argument $1" >&2; usage ;;
  esac
done
for t in apt-get apt-cache dpkg-deb cpio gzip sha256sum flock readelf; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
((KERNEL_ONLY)) || [[ -x "$AGENT" ]] || die "agent not found at $AGENT (bazel build //guest_agent:guest-agent)"
((KERNEL_ONLY)) || ! readelf -l "$AGENT" 2>/dev/null | grep -q 'Requesting program interpreter' || die "$AGENT is not statically linked"

# The concrete kernel package and version behind the metapackage.
kernel_package() {
  local pkg version
  pkg="$(apt-cache depends "$KERNEL_META" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)"
  [[ -n "$pkg" ]] || die "cannot resolve $KERNEL_META (apt-get update?)"
  version="$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')"
  [[ -n "$version" && "$version" != "(none)" ]] || die "no candidate version for $pkg"
  echo "$pkg $version"
}

# fetch_kernel PKG VERSION DIR: unpacks the package into DIR (once).
fetch_kernel() {
  local pkg="$1" version="$2" dir="$3" tmp
  [[ -f "$dir/.done" ]] && return 0
  tmp="$(mktemp -d "$CACHE/.kernel.XXXXXX")"
  (cd "$tmp" && timeout 600 apt-get download "$pkg=$version" >/dev/null 2>"$tmp/apt.err") ||
    { cat "$tmp/apt.err" >&2; rm -rf "$tmp"; die "apt-get download $pkg=$version failed"; }
  dpkg-deb -x "$tmp"/*.deb "$tmp/root" || { rm -rf "$tmp"; die "dpkg-deb -x failed"; }
  rm -f "$tmp"/*.deb "$tmp/apt.err"
  touch "$tmp/.done"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# build_cpio KDIR KVER OUT: stages /init, the modules and /dev/console.
build_cpio() {
  local kdir="$1" kver="$2" out="$3" stage m
  stage="$(mktemp -d "$CACHE/.stage.XXXXXX")"
  mkdir -p "$stage"/{dev,proc,sys,run,tmp,lib/modules}
  install -m 0755 "$AGENT" "$stage/init"
  mknod -m 0600 "$stage/dev/console" c 5 1
  mknod -m 0666 "$stage/dev/null" c 1 3
  : >"$stage/lib/modules/guest-agent.list"
  for m in "${MODULES[@]}"; do
    [[ -f "$kdir/root/lib/modules/$kver/kernel/$m" ]] || { rm -rf "$stage"; die "module $m missing from the kernel package"; }
    install -D -m 0644 "$kdir/root/lib/modules/$kver/kernel/$m" "$stage/lib/modules/$kver/kernel/$m"
    echo "/lib/modules/$kver/kernel/$m" >>"$stage/lib/modules/guest-agent.list"
  done
  (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible | gzip -1 >"$out.tmp") ||
    { rm -rf "$stage"; die "cpio failed"; }
  mv "$out.tmp" "$out"
  rm -rf "$stage"
}

main() {
  local pkg version kdir kver agent_sum initrd kernel m
  mkdir -p "$CACHE"
  read -r pkg version < <(kernel_package)
  kdir="$CACHE/$pkg-$version"
  exec 9>"$CACHE/.lock"
  flock -w 900 9 || die "cache lock $CACHE/.lock busy for 900 s"
  fetch_kernel "$pkg" "$version" "$kdir"
  kver="$(ls "$kdir/root/lib/modules")"
  kernel="$kdir/root/boot/vmlinuz-$kver"
  [[ -f "$kernel" ]] || die "no kernel image in $kdir"
  if ((KERNEL_ONLY)); then
    echo "kernel=$kernel"
    for m in "${MODULES[@]}"; do echo "module=$kdir/root/lib/modules/$kver/kernel/$m"; done
    return 0
  fi
  agent_sum="$(sha256sum "$AGENT" | cut -c1-16)"
  initrd="$CACHE/initramfs-$version-$agent_sum.cpio.gz"
  [[ -f "$initrd" ]] || build_cpio "$kdir" "$kver" "$initrd"
  echo "kernel=$kernel"
  echo "initrd=$initrd"
}

main
