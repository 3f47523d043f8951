//go:build kata_patched

package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types"
)

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

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// pinnedVolume is a volume shaped as the snapshotter emits it (the fields
// CheckGuestPullRootFS reads).
func pinnedVolume() string {
	return volumeOption(`{"volume_type":"image_guest_pull","source":"127.0.0.1:5000/img@` + testDigest + `",` +
		`"image_pull":{"metadata":{"guest-pull.manifest-digest":"` + testDigest + `","guest-pull.layer-count":"1"}}}`)
}

// The patched checkAndMount's first step, kata's CheckGuestPullRootFS from
// the patched tree: a pinned volume passes, an unpinned source is refused
// with kata's message, a guest-pull mount among others is refused, other
// types are not checked.
func TestPatchedGuestPullRootfsCheck(t *testing.T) {
	checked, err := guestPullRootfsCheck([]*types.Mount{guestPullMount(pinnedVolume())})
	if err != nil || checked != "virtcontainers.CheckGuestPullRootFS(2 options of fuse.guest-pull-overlayfs)" {
		t.Fatalf("pinned volume: %q, %v", checked, err)
	}
	unpinned := volumeOption(`{"volume_type":"image_guest_pull","source":"127.0.0.1:5000/img:latest",` +
		`"image_pull":{"metadata":{"guest-pull.manifest-digest":"` + testDigest + `"}}}`)
	_, err = guestPullRootfsCheck([]*types.Mount{guestPullMount(unpinned)})
	if want := `guest-pull rootfs: volume source "127.0.0.1:5000/img:latest" is not pinned by a sha256 digest`; err == nil || err.Error() != want {
		t.Errorf("unpinned source: %v, want %q", err, want)
	}
	_, err = guestPullRootfsCheck([]*types.Mount{guestPullMount()})
	if err == nil || !strings.Contains(err.Error(), "no io.katacontainers.volume= option") {
		t.Errorf("no volume: %v", err)
	}
	_, err = guestPullRootfsCheck([]*types.Mount{guestPullMount(pinnedVolume()), {Type: "bind", Source: "/x"}})
	if err == nil || !strings.Contains(err.Error(), "must be the only rootfs mount, got 2 mounts") {
		t.Errorf("two mounts: %v", err)
	}
	for _, typ := range []string{"overlay", "fuse.nydus-overlayfs-guest-pull"} {
		if checked, err := guestPullRootfsCheck([]*types.Mount{{Type: typ, Source: "overlay"}}); checked != "" || err != nil {
			t.Errorf("%s: %q, %v", typ, checked, err)
		}
	}
}

// guestReached fails any pull: Create must refuse before the guest.
type guestReached struct{}

func (guestReached) PullRootfs(context.Context, Storage, Process) (Launch, error) {
	return Launch{}, errors.New("the guest was reached")
}

// Create refuses, before any decision or guest work, the real volume with
// its source unpinned by the test hook, returning kata's message.
func TestPatchedCreateRefusesTamperedVolume(t *testing.T) {
	s, _, logPath := newTestService(t)
	s.testHooks = true
	s.guest = guestReached{}
	bundle := t.TempDir()
	spec, _ := json.Marshal(map[string]any{"ociVersion": "1.1.0", "annotations": map[string]string{
		annotTamperVolume: `{"source":"127.0.0.1:5000/img:tampered"}`, annotImageName: "127.0.0.1:5000/img:1"}})
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(context.Background(), &taskAPI.CreateTaskRequest{ID: "c9", Bundle: bundle,
		Rootfs: []*types.Mount{guestPullMount(pinnedVolume())}})
	want := `guest-pull rootfs: volume source "127.0.0.1:5000/img:tampered" is not pinned by a sha256 digest`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("Create: %v, want ...%q", err, want)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "container c9: kata patched: virtcontainers.CheckGuestPullRootFS(2 options of fuse.guest-pull-overlayfs) = refused: "+want) {
		t.Fatalf("log %q", log)
	}
}
