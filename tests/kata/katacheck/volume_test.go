package katacheck

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/kata-containers/kata-containers/src/runtime/virtcontainers/types"
)

const volumePrefix = "io.katacontainers.volume="

// Every volume our builder emits parses and validates with kata's own code,
// is an image_guest_pull volume with a source, and carries
// image_pull.metadata: a volume without it passes kata's IsValid, but kata's
// shim then writes the container annotations into it and panics.
func TestKataAcceptsEveryVolumeWeEmit(t *testing.T) {
	lines := volumesWeEmit(t)
	hashes := 0
	for i, line := range lines {
		n := i + 1
		b64, ok := strings.CutPrefix(line, volumePrefix)
		if !ok {
			t.Errorf("volume %d: no %s prefix", n, volumePrefix)
			continue
		}
		v, err := types.ParseKataVirtualVolume(b64)
		if err != nil {
			t.Errorf("volume %d: kata's ParseKataVirtualVolume: %v", n, err)
			continue
		}
		if !v.IsValid() {
			t.Errorf("volume %d: kata's IsValid is false", n)
		}
		if v.VolumeType != types.KataVirtualVolumeImageGuestPullType {
			t.Errorf("volume %d: type %q", n, v.VolumeType)
		}
		if v.Source == "" {
			t.Errorf("volume %d: empty source (runtime-rs refuses it)", n)
		}
		if v.ImagePull == nil || v.ImagePull.Metadata == nil {
			t.Errorf("volume %d: no image_pull.metadata (kata's shim would panic)", n)
			continue
		}
		for k := range v.ImagePull.Metadata {
			if strings.HasSuffix(k, ".verity-root-hash") {
				hashes++
			}
		}
	}
	t.Logf("katacheck: kata accepted %d volumes (%d expected verity hashes in all)", len(lines), hashes)
}

// The volume options tests/kata/kata_patch.sh wrote (GUEST_PULL_VOLUMES),
// one a line as our builder emits them; at least one.
func volumesWeEmit(t *testing.T) []string {
	t.Helper()
	path := os.Getenv("GUEST_PULL_VOLUMES")
	if path == "" {
		t.Skip("GUEST_PULL_VOLUMES is not set (tests/kata/kata_patch.sh sets it)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 1<<20), 1<<20)
	var lines []string
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatalf("no volumes in %s", path)
	}
	return lines
}

// Why the check above matters: kata's IsValid accepts a guest-pull volume
// without image_pull, so only our builder can keep it out.
func TestKataIsValidDoesNotCatchAMissingImagePull(t *testing.T) {
	v := &types.KataVirtualVolume{VolumeType: types.KataVirtualVolumeImageGuestPullType, Source: "busybox"}
	if !v.IsValid() {
		t.Skip("this kata release rejects a volume without image_pull itself")
	}
	t.Logf("katacheck: kata's IsValid accepts a guest-pull volume without image_pull (our builder never emits one)")
}
