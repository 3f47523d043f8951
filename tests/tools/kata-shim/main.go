// Command containerd-shim-kata-qemu-coco-dev-v2 is a kata-shaped containerd
// shim v2 for the end-to-end tests: it takes a container's rootfs mounts the
// way kata's Go shim does, decodes the io.katacontainers.volume= option with
// kata's own Go code, builds the storage kata would send its agent and hands
// it to a Guest (here: a process on the host that pulls and verifies the
// image, then assembles the rootfs). runc then runs the process in that
// rootfs, in-process mode (the default). In VM mode the Guest is a real
// Linux VM per container (vm.go): runc runs the VM runner instead.
//
// It is built on containerd 1.7's shim library (runtime/v2/shim), as kata's
// shim is, so one binary serves containerd 1.6, 1.7 and 2.x.
//
// Environment (inherited from containerd):
//
//	GUEST_PULL_SHIM_LOG          decision log file (default /tmp/kata-shim.log)
//	GUEST_PULL_SHIM_VERITY_TOOL  guest-pull-verity binary (default: PATH)
//	GUEST_PULL_SHIM_BUSYBOX      static busybox for the built-in pause bundle
//	                             (default /bin/busybox)
//	GUEST_PULL_SHIM_ALLOW_MISSING_HASH=1  accept layers without an expected
//	                             verity root hash (default: refuse)
//	GUEST_PULL_SHIM_GUEST        local (default: in-process) or vm
//	GUEST_PULL_SHIM_TEST_HOOKS=1 tests only: honour the pod annotation
//	                             io.katacontainers.guest-pull.test.tamper-volume
//	                             (test_hooks.go)
//	VM mode: GUEST_PULL_SHIM_VM_RUNNER (static guestvm binary),
//	  GUEST_PULL_SHIM_VM_KERNEL, GUEST_PULL_SHIM_VM_INITRD (build_initramfs.sh),
//	  GUEST_PULL_SHIM_VM_TIMEOUT (default 600s), GUEST_PULL_SHIM_VM_MEMORY
//	  (MiB, default 512), GUEST_PULL_SHIM_VM_DIR (per-container request,
//	  console, result and agent log; default the bundle's guest-vm/),
//	  GUEST_PULL_SHIM_VM_TEST_HOOKS=1 (tests only: honour the pod annotation
//	  io.katacontainers.guest-pull.test.skip-blob-checks=true)
package main

import (
	"context"

	"github.com/containerd/containerd/runtime/v2/runc/manager"
	_ "github.com/containerd/containerd/runtime/v2/runc/pause"
	"github.com/containerd/containerd/runtime/v2/shim"
)

// RuntimeName is what runtime_type = "io.containerd.kata-qemu-coco-dev.v2"
// resolves to (containerd-shim-kata-qemu-coco-dev-v2).
const RuntimeName = "io.containerd.kata-qemu-coco-dev.v2"

func main() {
	registerTaskPlugin()
	shim.RunManager(context.Background(), manager.NewShimManager(RuntimeName))
}
