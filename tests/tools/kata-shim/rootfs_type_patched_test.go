//go:build kata_patched

package main

import "testing"

// Patched kata takes the default type (the patch's IsGuestPullRootFSType)
// and still nydus's (IsNydusRootFSType).
func TestPatchedRootfsDecision(t *testing.T) {
	for typ, want := range map[string]string{
		"fuse.guest-pull-overlayfs":       "virtcontainers.IsGuestPullRootFSType",
		"fuse.nydus-overlayfs-guest-pull": "virtcontainers.IsNydusRootFSType",
	} {
		if got, by := rootfsDecision(typ); !got || by != want {
			t.Errorf("rootfsDecision(%q) = %v by %s, want true by %s", typ, got, by, want)
		}
	}
	if got, _ := rootfsDecision("overlay"); got {
		t.Errorf("rootfsDecision(overlay) = true")
	}
}
