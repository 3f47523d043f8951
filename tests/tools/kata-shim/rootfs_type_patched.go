//go:build kata_patched

package main

import (
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
