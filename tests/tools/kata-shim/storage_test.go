package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types"
)

func volumeOption(json string) string {
	return volumeOptionPrefix + base64.StdEncoding.EncodeToString([]byte(json))
}

func guestPullMount(opts ...string) *types.Mount {
	return &types.Mount{Type: "fuse.guest-pull-overlayfs", Source: "overlay",
		Options: append([]string{"lowerdir=/a:/b"}, opts...)}
}

func TestStorageMergesAnnotationsAnnotationsWin(t *testing.T) {
	m := guestPullMount(volumeOption(`{"volume_type":"image_guest_pull","source":"r@sha256:x",` +
		`"image_pull":{"metadata":{"guest-pull.layer-count":"1","k":"volume"}}}`))
	s, err := buildGuestPullStorage("c1", m, map[string]string{
		annotImageName: "127.0.0.1:5000/img:1", "k": "annotation"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "127.0.0.1:5000/img:1" || s.Driver != "image_guest_pull" || s.Fstype != "overlay" ||
		s.MountPoint != "/run/kata-containers/c1/rootfs" {
		t.Fatalf("storage %+v", s)
	}
	meta, err := imagePullMetadata(s)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "annotation" || meta["guest-pull.layer-count"] != "1" || meta[annotImageName] == "" {
		t.Fatalf("metadata %v", meta)
	}
}

func TestSandboxIsPause(t *testing.T) {
	m := guestPullMount(volumeOption(`{"volume_type":"image_guest_pull","image_pull":{"metadata":{}}}`))
	s, err := buildGuestPullStorage("p", m, map[string]string{annotContainerType: containerTypeSandbox})
	if err != nil || s.Source != "pause" {
		t.Fatalf("storage %+v err %v", s, err)
	}
}

func TestRefusals(t *testing.T) {
	cases := map[string]struct {
		m    *types.Mount
		ann  map[string]string
		want string
	}{
		"undecodable base64": {guestPullMount(volumeOptionPrefix + "%%%not-base64"), nil, "cannot decode"},
		"not JSON":           {guestPullMount(volumeOptionPrefix + base64.StdEncoding.EncodeToString([]byte("{"))), nil, "cannot decode"},
		"invalid (null metadata)": {guestPullMount(volumeOption(
			`{"volume_type":"image_guest_pull","image_pull":{"metadata":null}}`)), nil, "cannot decode"},
		"no volume option":   {guestPullMount(), nil, "want exactly 1"},
		"two volume options": {guestPullMount(volumeOption(`{"volume_type":"x"}`), volumeOption(`{"volume_type":"x"}`)), nil, "want exactly 1"},
		"other volume type":  {guestPullMount(volumeOption(`{"volume_type":"direct_block"}`)), nil, "is not image_guest_pull"},
		"no image_pull":      {guestPullMount(volumeOption(`{"volume_type":"image_guest_pull"}`)), nil, "no image_pull.metadata"},
		"no image name": {guestPullMount(volumeOption(`{"volume_type":"image_guest_pull","image_pull":{"metadata":{}}}`)),
			map[string]string{}, "failed to get image name"},
	}
	for name, c := range cases {
		if _, err := buildGuestPullStorage("c", c.m, c.ann); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestExpectedImage(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	meta := map[string]string{metaManifestDigest: d, metaVerityParams: expectedVerity,
		metaLayerCount: "2", "guest-pull.layer.0.digest": d, "guest-pull.layer.0.verity-root-hash": "h",
		"guest-pull.layer.1.digest": d}
	_, err := parseExpectedImage("r", meta, false)
	if err == nil || !strings.Contains(err.Error(), "layer 1 (sha256:aaa") {
		t.Fatalf("missing hash: err %v", err)
	}
	if want, err := parseExpectedImage("r", meta, true); err != nil || len(want.Layers) != 2 {
		t.Fatalf("allowed missing hash: %+v %v", want, err)
	}
	meta["guest-pull.layer.2.digest"] = d
	if _, err := parseExpectedImage("r", meta, true); err == nil {
		t.Fatal("extra layer accepted")
	}
}

func TestImageRepo(t *testing.T) {
	for ref, want := range map[string]string{
		"127.0.0.1:5000/a/b:tag":     "127.0.0.1:5000 a/b",
		"127.0.0.1:5000/a@sha256:00": "127.0.0.1:5000 a",
		"reg/x":                      "reg x",
	} {
		h, r, err := imageRepo(ref)
		if err != nil || h+" "+r != want {
			t.Errorf("imageRepo(%q) = %q %q %v", ref, h, r, err)
		}
	}
	if _, _, err := imageRepo("pause"); err == nil {
		t.Error("imageRepo(pause) accepted")
	}
}
