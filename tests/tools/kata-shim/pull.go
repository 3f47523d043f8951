package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/sys/reaper"
	"github.com/klauspost/compress/zstd"
)

// imageRepo splits "host[:port]/repo[:tag|@digest]" into host and repo.
func imageRepo(ref string) (string, string, error) {
	slash := strings.IndexByte(ref, '/')
	if slash <= 0 {
		return "", "", fmt.Errorf("image reference %q has no registry host", ref)
	}
	host, repo := ref[:slash], ref[slash+1:]
	if at := strings.IndexByte(repo, '@'); at >= 0 {
		repo = repo[:at]
	}
	if colon := strings.LastIndexByte(repo, ':'); colon >= 0 {
		repo = repo[:colon]
	}
	if repo == "" {
		return "", "", fmt.Errorf("image reference %q has no repository", ref)
	}
	return host, repo, nil
}

type registry struct {
	base   string // http://host/v2/repo
	client *http.Client
}

func (r *registry) get(ctx context.Context, kind, digest string, w io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/"+kind+"/"+digest, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "guest-pull-kata-shim (guest)")
	if kind == "manifests" {
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/%s: %s", kind, digest, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), resp.Body); err != nil {
		return "", fmt.Errorf("GET %s/%s: %v", kind, digest, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

type manifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"layers"`
}

type imageConfig struct {
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// pullVerifyAssemble: manifest by digest, config, then each layer: blob
// digest, diff_id (config and metadata), verity root hash, then applied
// (whiteouts honoured) onto proc.Rootfs, bottom layer first.
func (g *localGuest) pullVerifyAssemble(ctx context.Context, want expectedImage, work string, proc Process) error {
	host, repo, err := imageRepo(want.Ref)
	if err != nil {
		return err
	}
	reg := &registry{base: "http://" + host + "/v2/" + repo, client: &http.Client{Timeout: 5 * time.Minute}}
	var raw bytes.Buffer
	got, err := reg.get(ctx, "manifests", want.ManifestDigest, &raw)
	if err != nil {
		return err
	}
	if got != want.ManifestDigest {
		return fmt.Errorf("registry served manifest %s, expected %s", got, want.ManifestDigest)
	}
	var m manifest
	if err := json.Unmarshal(raw.Bytes(), &m); err != nil || m.Layers == nil {
		return fmt.Errorf("manifest %s is not an image manifest with layers (%v)", got, err)
	}
	var cfgRaw bytes.Buffer
	if got, err = reg.get(ctx, "blobs", m.Config.Digest, &cfgRaw); err != nil {
		return err
	}
	if got != m.Config.Digest {
		return fmt.Errorf("image config hashes to %s, manifest says %s", got, m.Config.Digest)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgRaw.Bytes(), &cfg); err != nil {
		return fmt.Errorf("image config: %v", err)
	}
	n := len(want.Layers)
	if len(m.Layers) != n || len(cfg.RootFS.DiffIDs) != n {
		return fmt.Errorf("volume says %d layers, manifest has %d, config %d diff_ids", n, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	g.log.Printf("container %s: guest: manifest %s verified (%d layers)", proc.ContainerID, want.ManifestDigest, n)
	for i, l := range want.Layers {
		if m.Layers[i].Digest != l.Digest {
			return fmt.Errorf("layer %d: manifest has %s, volume expects %s", i, m.Layers[i].Digest, l.Digest)
		}
		if err := g.verifyAndApply(ctx, reg, i, l, cfg.RootFS.DiffIDs[i], work, proc); err != nil {
			return err
		}
	}
	return nil
}

func (g *localGuest) verifyAndApply(ctx context.Context, reg *registry, i int, l expectedLayer, configDiffID, work string, proc Process) error {
	name := fmt.Sprintf("layer %d (%s)", i, l.Digest)
	blob := filepath.Join(work, fmt.Sprintf("layer-%d", i))
	f, err := os.Create(blob)
	if err != nil {
		return err
	}
	got, err := reg.get(ctx, "blobs", l.Digest, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if got != l.Digest {
		return fmt.Errorf("%s: blob content hashes to %s (tampered or wrong blob)", name, got)
	}
	verityHash, toolDiffID, err := g.verityOf(blob)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if toolDiffID != configDiffID {
		return fmt.Errorf("%s: uncompressed content hashes to %s, image config says %s", name, toolDiffID, configDiffID)
	}
	if l.DiffID != "" && l.DiffID != toolDiffID {
		return fmt.Errorf("%s: diff_id %s, volume expects %s", name, toolDiffID, l.DiffID)
	}
	switch {
	case l.VerityRootHash == "":
		g.log.Printf("container %s: guest: %s: no expected verity root hash (allowed); computed %s", proc.ContainerID, name, verityHash)
	case l.VerityRootHash != verityHash:
		return fmt.Errorf("%s: dm-verity root hash %s, volume expects %s", name, verityHash, l.VerityRootHash)
	}
	diffID, err := applyLayer(ctx, blob, proc.Rootfs)
	if err != nil {
		return fmt.Errorf("%s: applying: %v", name, err)
	}
	if diffID != configDiffID {
		return fmt.Errorf("%s: applied content hashes to %s, image config says %s", name, diffID, configDiffID)
	}
	g.log.Printf("container %s: guest: %s verified (digest, diff_id %s, verity %s) and applied", proc.ContainerID, name, diffID, verityHash)
	return os.Remove(blob)
}

// verityOf runs `guest-pull-verity layer BLOB`: the layer's dm-verity root
// hash and diff_id, computed independently of the volume.
func (g *localGuest) verityOf(blob string) (string, string, error) {
	// The shim is a child subreaper whose reaper collects every child's exit
	// status: commands must be started and waited for through it.
	var buf bytes.Buffer
	cmd := exec.Command(g.verityTool, "layer", blob)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return "", "", fmt.Errorf("%s layer: %v", g.verityTool, err)
	}
	status, err := reaper.Default.WaitTimeout(cmd, ec, 5*time.Minute)
	reaper.Default.Unsubscribe(ec)
	out := buf.Bytes()
	if err != nil || status != 0 {
		return "", "", fmt.Errorf("%s layer: status %d %v: %s", g.verityTool, status, err, strings.TrimSpace(string(out)))
	}
	var hash, diffID string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "verity_hash: "); ok {
			hash = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "diff_id: "); ok {
			diffID = v
		}
	}
	if hash == "" || diffID == "" {
		return "", "", fmt.Errorf("%s layer printed no verity_hash/diff_id: %s", g.verityTool, out)
	}
	return hash, diffID, nil
}

// applyLayer unpacks a (gzip, zstd or plain) layer tar onto root with OCI
// whiteouts honoured; returns the sha256 of the uncompressed tar. The
// decoders run in process: containerd's DecompressStream may start unpigz,
// whose exit the shim's reaper (a subreaper reaping every child) can take.
func applyLayer(ctx context.Context, blob, root string) (string, error) {
	f, err := os.Open(blob)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) ||
		len(magic) == 4 && magic[0]&0xf0 == 0x50 && bytes.Equal(magic[1:], []byte{0x2a, 0x4d, 0x18}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	}
	h := sha256.New()
	tee := io.TeeReader(r, h)
	if _, err := archive.Apply(ctx, root, tee); err != nil {
		return "", err
	}
	if _, err := io.Copy(h, r); err != nil { // trailing padding after the tar end
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
