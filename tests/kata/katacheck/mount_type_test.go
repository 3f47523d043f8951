//go:build !kata_patched

package katacheck

import (
	"testing"

	vc "github.com/kata-containers/kata-containers/src/runtime/virtcontainers"
)

// Stock kata's shim skips the host mount and guest-pulls a rootfs only when
// IsNydusRootFSType says so: the stock mode's type must pass, the default
// (patched) mode's type must not (without the patch kata mounts it on the
// host and ignores the volume).
func TestStockKataJudgesOurMountTypes(t *testing.T) {
	if !vc.IsNydusRootFSType(stockType) {
		t.Errorf("kata's IsNydusRootFSType(%q) = false: stock kata would mount the rootfs on the host", stockType)
	}
	if vc.IsNydusRootFSType(defaultType) {
		t.Errorf("kata's IsNydusRootFSType(%q) = true: the default type would be taken for nydus", defaultType)
	}
	t.Logf("katacheck: IsNydusRootFSType(%q)=true, IsNydusRootFSType(%q)=false", stockType, defaultType)
}
