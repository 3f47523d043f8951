//go:build !kata_patched

package main

import "testing"

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
