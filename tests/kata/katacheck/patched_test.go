//go:build kata_patched

package katacheck

import (
	"os"
	"strings"
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
	path := os.Getenv("GUEST_PULL_VOLUMES")
	if path == "" {
		t.Skip("GUEST_PULL_VOLUMES is not set (tests/kata/kata_patch.sh sets it)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		n++
		options := []string{"lowerdir=/l", "upperdir=/u", "workdir=/w", line}
		if err := vc.CheckGuestPullRootFS(options); err != nil {
			t.Errorf("volume %d: patched CheckGuestPullRootFS: %v", n, err)
		}
	}
	if n == 0 {
		t.Fatal("no volumes")
	}
	t.Logf("katacheck: patched CheckGuestPullRootFS accepts all %d volumes", n)
}
