//go:build kata_patched

package katacheck

import (
	"testing"

	vc "github.com/kata-containers/kata-containers/src/runtime/virtcontainers"
)

// Built against the patched tree (a replace directive): the patch's
// IsGuestPullRootFSType accepts the default type, and the stock type stays
// nydus's (the patch changes nothing for it).
func TestPatchedKataJudgesOurMountTypes(t *testing.T) {
	if !vc.IsGuestPullRootFSType(defaultType) {
		t.Errorf("patched IsGuestPullRootFSType(%q) = false", defaultType)
	}
	if vc.IsGuestPullRootFSType(stockType) {
		t.Errorf("patched IsGuestPullRootFSType(%q) = true", stockType)
	}
	if vc.IsNydusRootFSType(defaultType) {
		t.Errorf("IsNydusRootFSType(%q) = true in the patched tree", defaultType)
	}
	t.Logf("katacheck: patched IsGuestPullRootFSType(%q)=true", defaultType)
}

// The patched shim refuses a guest-pull rootfs whose volume it cannot hand
// to the agent (vc.CheckGuestPullRootFS, called by checkAndMount): every
// volume our builder emits must pass it.
func TestPatchedKataChecksEveryVolumeWeEmit(t *testing.T) {
	lines := volumesWeEmit(t)
	for i, line := range lines {
		options := []string{"lowerdir=/l", "upperdir=/u", "workdir=/w", line}
		if err := vc.CheckGuestPullRootFS(options); err != nil {
			t.Errorf("volume %d: patched CheckGuestPullRootFS: %v", i+1, err)
		}
	}
	t.Logf("katacheck: patched CheckGuestPullRootFS accepts all %d volumes", len(lines))
}
