//go:build kata_intree

// Copied by tests/kata/kata_patch.sh into kata's virtcontainers package (a
// temp copy of the module; never part of the patch): what unpatched kata
// does when a container whose rootfs has the stock-mode type stops, with
// shared_fs = "none" on QEMU (the virtiofs daemon object exists but never
// ran).

package virtcontainers

import (
	"context"
	"strings"
	"testing"
)

func TestGuestPullStockModeNydusCleanup(t *testing.T) {
	const stockType = "fuse.nydus-overlayfs-guest-pull"
	if !IsNydusRootFSType(stockType) {
		t.Fatalf("IsNydusRootFSType(%q) = false: stock kata would not take the guest-pull path", stockType)
	}
	sandbox := &Sandbox{
		id:         "guest-pull-stock",
		config:     &SandboxConfig{HypervisorType: QemuHypervisor},
		hypervisor: &qemu{virtiofsDaemon: &virtiofsd{}},
	}
	c := &Container{id: "c1", sandbox: sandbox, rootFs: RootFs{Type: stockType}}
	err := nydusContainerCleanup(context.Background(), t.TempDir(), c)
	if err == nil || !strings.Contains(err.Error(), "umount rafs failed: unimplemented") {
		t.Fatalf("nydusContainerCleanup: %v, want \"umount rafs failed: unimplemented\"", err)
	}
	t.Logf("katacheck: stopping a stock-mode container: %v", err)
}
