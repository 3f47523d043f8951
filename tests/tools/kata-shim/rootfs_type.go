//go:build !kata_patched

package main

import (
	"github.com/containerd/containerd/api/types"
	vc "github.com/kata-containers/kata-containers/src/runtime/virtcontainers"
)

// kataMode names the kata this binary plays: stock kata (no patch).
const kataMode = "stock"

// rootfsDecision is kata's own checkAndMount test of a single rootfs mount,
// from kata's module: stock kata skips the host mount only for what
// virtcontainers.IsNydusRootFSType accepts. It returns the verdict and the
// function that decided, for the decision log.
func rootfsDecision(mountType string) (guestPull bool, decidedBy string) {
	return vc.IsNydusRootFSType(mountType), "virtcontainers.IsNydusRootFSType"
}

// guestPullRootfsCheck: stock kata's checkAndMount checks no volume before
// its decision (the patched build runs the patch's CheckGuestPullRootFS).
func guestPullRootfsCheck([]*types.Mount) (checked string, err error) { return "", nil }
