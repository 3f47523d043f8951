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
