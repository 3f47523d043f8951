package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Guest does the confidential guest's share of a container start: given the
// storage kata's shim sends its agent and the container, it returns what runc
// is to run, or an error that names what did not verify. localGuest does it
// on the host (the rootfs is assembled here, runc runs the container's own
// process in it); vmGuest (vm.go) hands it to a real VM whose runner is the
// process runc starts.
type Guest interface {
	PullRootfs(ctx context.Context, storage Storage, proc Process) (Launch, error)
}

// Launch is the bundle change the shim makes before runc creates the
// container: config.json's root.path, and, when Process is set, its process,
// mounts and linux.namespaces (when non-nil).
type Launch struct {
	Rootfs     string
	Process    *specs.Process
	Mounts     []specs.Mount
	Namespaces []specs.LinuxNamespace
}

// Metadata keys the snapshotter writes into image_pull.metadata
// (kata_volume/guest_pull_volume.h).
const (
	metaImageRef       = "guest-pull.image-ref"
	metaManifestDigest = "guest-pull.manifest-digest"
	metaLayerCount     = "guest-pull.layer-count"
	metaVerityParams   = "guest-pull.verity-params"
	expectedVerity     = "format=tarfs-index,hash=sha256,data-block=4096,hash-block=4096," +
		"salt=0000000000000000000000000000000000000000000000000000000000000000,superblock=none"
)

// expectedLayer is one layer as the volume metadata describes it.
type expectedLayer struct {
	Digest, DiffID, VerityRootHash string
}

// expectedImage is what the guest must find in the registry.
type expectedImage struct {
	Ref            string // storage source (the CRI image name)
	ManifestDigest string
	Layers         []expectedLayer
}

// localGuest pulls the image from the registry itself (plain HTTP), checks
// every digest, diff_id and verity root hash, and assembles the rootfs.
type localGuest struct {
	log              *decisionLog
	verityTool       string
	busybox          string
	allowMissingHash bool
}

func newLocalGuest(log *decisionLog) *localGuest {
	g := &localGuest{
		log:              log,
		verityTool:       os.Getenv("GUEST_PULL_SHIM_VERITY_TOOL"),
		busybox:          os.Getenv("GUEST_PULL_SHIM_BUSYBOX"),
		allowMissingHash: os.Getenv("GUEST_PULL_SHIM_ALLOW_MISSING_HASH") == "1",
	}
	if g.verityTool == "" {
		g.verityTool = "guest-pull-verity"
	}
	if g.busybox == "" {
		g.busybox = "/bin/busybox"
	}
	return g
}

func (g *localGuest) PullRootfs(ctx context.Context, storage Storage, proc Process) (Launch, error) {
	rootfs, err := g.pullRootfs(ctx, storage, proc)
	return Launch{Rootfs: rootfs}, err
}

func (g *localGuest) pullRootfs(ctx context.Context, storage Storage, proc Process) (string, error) {
	if storage.Driver != "image_guest_pull" || storage.Fstype != "overlay" {
		return "", fmt.Errorf("guest: storage driver %q fstype %q is not image_guest_pull/overlay", storage.Driver, storage.Fstype)
	}
	meta, err := imagePullMetadata(storage)
	if err != nil {
		return "", fmt.Errorf("guest: %v", err)
	}
	if err := os.MkdirAll(proc.Rootfs, 0o755); err != nil {
		return "", err
	}
	// As kata's agent: the sandbox gets the built-in pause bundle.
	if meta[annotContainerType] == containerTypeSandbox {
		g.log.Printf("container %s: guest: sandbox container: built-in pause bundle (image %s not pulled)", proc.ContainerID, storage.Source)
		return proc.Rootfs, writePauseRootfs(proc.Rootfs, g.busybox)
	}
	want, err := parseExpectedImage(storage.Source, meta, g.allowMissingHash)
	if err != nil {
		return "", fmt.Errorf("guest: %v", err)
	}
	g.log.Printf("container %s: guest: pulling %s by %s (%d layers)", proc.ContainerID, want.Ref, want.ManifestDigest, len(want.Layers))
	work, err := os.MkdirTemp(proc.Bundle, "guest-pull.")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := g.pullVerifyAssemble(ctx, want, work, proc); err != nil {
		return "", fmt.Errorf("guest: REFUSED %s: %v", want.Ref, err)
	}
	return proc.Rootfs, nil
}

// parseExpectedImage reads the snapshotter's keys from the metadata.
func parseExpectedImage(source string, meta map[string]string, allowMissingHash bool) (expectedImage, error) {
	want := expectedImage{Ref: source, ManifestDigest: meta[metaManifestDigest]}
	if !isSHA256Digest(want.ManifestDigest) {
		return want, fmt.Errorf("metadata %s %q is not sha256:<64 hex>", metaManifestDigest, want.ManifestDigest)
	}
	if p := meta[metaVerityParams]; p != expectedVerity {
		return want, fmt.Errorf("metadata %s %q is not %q", metaVerityParams, p, expectedVerity)
	}
	n, err := strconv.Atoi(meta[metaLayerCount])
	if err != nil || n <= 0 {
		return want, fmt.Errorf("metadata %s %q is not a positive number", metaLayerCount, meta[metaLayerCount])
	}
	var missing []string
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("guest-pull.layer.%d.", i)
		l := expectedLayer{Digest: meta[p+"digest"], DiffID: meta[p+"diff-id"], VerityRootHash: meta[p+"verity-root-hash"]}
		if !isSHA256Digest(l.Digest) {
			return want, fmt.Errorf("metadata %sdigest %q is not sha256:<64 hex>", p, l.Digest)
		}
		if l.VerityRootHash == "" {
			missing = append(missing, fmt.Sprintf("layer %d (%s)", i, l.Digest))
		}
		want.Layers = append(want.Layers, l)
	}
	if meta[fmt.Sprintf("guest-pull.layer.%d.digest", n)] != "" {
		return want, fmt.Errorf("metadata lists more layers than %s=%d", metaLayerCount, n)
	}
	if len(missing) > 0 && !allowMissingHash {
		return want, fmt.Errorf("no expected verity root hash for %s: cannot verify", strings.Join(missing, ", "))
	}
	return want, nil
}

func isSHA256Digest(d string) bool {
	if !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
		return false
	}
	for _, c := range d[7:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// writePauseRootfs: /pause (a shell script sleeping forever) on a static
// busybox, the stand-in for the agent's built-in pause bundle.
func writePauseRootfs(rootfs, busybox string) error {
	bin := filepath.Join(rootfs, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("built-in pause bundle: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(rootfs, "pause"), []byte("#!/bin/sh\nexec /bin/sleep 2147483647\n"), 0o755)
}
