//go:build !kata_patched

package main

import (
	"testing"

	"github.com/containerd/containerd/api/types"
)

// Stock kata (its own IsNydusRootFSType) takes only the stock mode's type.
func TestStockRootfsDecision(t *testing.T) {
	for typ, want := range map[string]bool{
		"fuse.nydus-overlayfs-guest-pull":                true,
		"fuse./usr/local/bin/nydus-overlayfs-guest-pull": true,
		"fuse.nydus-overlayfs":                           true,
		"fuse.guest-pull-overlayfs":                      false,
		"fuse3.nydus-overlayfs-guest-pull":               false,
		"overlay":                                        false,
	} {
		if got, by := rootfsDecision(typ); got != want || by != "virtcontainers.IsNydusRootFSType" {
			t.Errorf("rootfsDecision(%q) = %v by %s, want %v by kata's IsNydusRootFSType", typ, got, by, want)
		}
	}
}

// Stock kata checks no volume before its decision.
func TestStockChecksNoVolume(t *testing.T) {
	for _, typ := range []string{"fuse.guest-pull-overlayfs", "fuse.nydus-overlayfs-guest-pull"} {
		if checked, err := guestPullRootfsCheck([]*types.Mount{{Type: typ}}); checked != "" || err != nil {
			t.Errorf("%s: %q, %v", typ, checked, err)
		}
	}
}
