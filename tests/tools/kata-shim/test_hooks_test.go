package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types"
)

func decodeVolume(t *testing.T, option string) map[string]any {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(option, volumeOptionPrefix))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The hook replaces only the annotation's fields of a container's volume,
// on a copy; the sandbox and a container without the annotation keep the
// mounts as containerd sent them.
func TestTamperVolumeOptions(t *testing.T) {
	orig := volumeOption(`{"volume_type":"image_guest_pull","source":"r@sha256:1","image_pull":{"metadata":{"k":"v"}}}`)
	in := []*types.Mount{guestPullMount(orig)}
	ann := map[string]string{annotTamperVolume: `{"source":"r:latest","dm_verity":null}`}
	out, fields, err := tamperVolumeOptions(in, ann)
	if err != nil || strings.Join(fields, ",") != "dm_verity,source" {
		t.Fatalf("fields %v, err %v", fields, err)
	}
	if in[0].Options[1] != orig || out[0].Options[0] != "lowerdir=/a:/b" || out[0].Type != in[0].Type {
		t.Fatalf("in %v, out %v", in[0].Options, out[0].Options)
	}
	v := decodeVolume(t, out[0].Options[1])
	if v["source"] != "r:latest" || v["volume_type"] != "image_guest_pull" || v["image_pull"] == nil {
		t.Fatalf("tampered volume %v", v)
	}
	ann[annotContainerType] = containerTypeSandbox
	if out, fields, err := tamperVolumeOptions(in, ann); err != nil || fields != nil || out[0] != in[0] {
		t.Fatalf("sandbox: %v %v %v", out, fields, err)
	}
	if out, fields, err := tamperVolumeOptions(in, nil); err != nil || fields != nil || out[0] != in[0] {
		t.Fatalf("no annotation: %v %v %v", out, fields, err)
	}
	if _, _, err := tamperVolumeOptions(in, map[string]string{annotTamperVolume: "source"}); err == nil {
		t.Fatal("a value that is no JSON object was taken")
	}
}
