//go:build kata_patched

package main

import (
	"fmt"

	"github.com/containerd/containerd/api/types"
	vc "github.com/kata-containers/kata-containers/src/runtime/virtcontainers"
)

// kataMode names the kata this binary plays: kata with
// deploy/kata/<release>/0001-guest-pull-rootfs.patch. Built only against the
// patched tree (go build -tags kata_patched with a replace directive to it;
// tests/e2e/deploy_lib.sh does it at test time).
const kataMode = "patched"

// rootfsDecision is the patched checkAndMount test: kata's
// IsNydusRootFSType or the patch's IsGuestPullRootFSType.
func rootfsDecision(mountType string) (guestPull bool, decidedBy string) {
	if vc.IsGuestPullRootFSType(mountType) {
		return true, "virtcontainers.IsGuestPullRootFSType"
	}
	if vc.IsNydusRootFSType(mountType) {
		return true, "virtcontainers.IsNydusRootFSType"
	}
	return false, "virtcontainers.IsGuestPullRootFSType/IsNydusRootFSType"
}

// guestPullRootfsCheck is the patched checkAndMount's first step, run on
// the CreateTask's rootfs mounts before any decision: every mount of a type
// the patch's IsGuestPullRootFSType accepts must be the only rootfs mount
// (the patch's rule, its message) and pass the patch's own
// virtcontainers.CheckGuestPullRootFS on its options (kata's code from the
// patched tree; its error is returned as kata returns it). checked names
// what ran ("" when no mount is of a guest-pull type: nothing to check).
func guestPullRootfsCheck(mounts []*types.Mount) (checked string, err error) {
	for _, m := range mounts {
		if !vc.IsGuestPullRootFSType(m.Type) {
			continue
		}
		if len(mounts) != 1 {
			return "checkAndMount (the patch's single-mount rule)",
				fmt.Errorf("guest-pull rootfs %s must be the only rootfs mount, got %d mounts", m.Type, len(mounts))
		}
		return fmt.Sprintf("virtcontainers.CheckGuestPullRootFS(%d options of %s)", len(m.Options), m.Type),
			vc.CheckGuestPullRootFS(m.Options)
	}
	return "", nil
}
