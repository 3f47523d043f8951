package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/containerd/api/types"
)

// Test-only annotation (a pod annotation passed through pod_annotations =
// ["io.katacontainers.*"]), honoured only with GUEST_PULL_SHIM_TEST_HOOKS=1
// and only for a container (not the sandbox): its value, a JSON object,
// replaces those top-level fields of the volume in the rootfs mount's
// io.katacontainers.volume= option, before kata's checks see it. The rest
// of the option is what the snapshotter emitted: tests/e2e/deployments.sh
// unpins the source of a real volume and expects patched kata's
// CheckGuestPullRootFS to refuse it with its own message.
const annotTamperVolume = "io.katacontainers.guest-pull.test.tamper-volume"

// tamperVolumeOptions returns copies of the mounts with every volume option
// of a guest-pull mount rewritten by the annotation's fields, and the
// fields' names; the mounts as given when the annotation is absent.
func tamperVolumeOptions(mounts []*types.Mount, annotations map[string]string) ([]*types.Mount, []string, error) {
	patch, ok := annotations[annotTamperVolume]
	if !ok || annotations[annotContainerType] == containerTypeSandbox {
		return mounts, nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(patch), &fields); err != nil || len(fields) == 0 {
		return nil, nil, fmt.Errorf("annotation %s: want a JSON object of volume fields, got %q", annotTamperVolume, patch)
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]*types.Mount, len(mounts))
	for i, m := range mounts {
		c := &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target,
			Options: append([]string(nil), m.Options...)}
		for j, o := range c.Options {
			if !strings.HasPrefix(o, volumeOptionPrefix) {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(o, volumeOptionPrefix))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: the volume option does not decode: %v", annotTamperVolume, err)
			}
			var volume map[string]json.RawMessage
			if err := json.Unmarshal(raw, &volume); err != nil {
				return nil, nil, fmt.Errorf("%s: the volume option is not a JSON object: %v", annotTamperVolume, err)
			}
			for k, v := range fields {
				volume[k] = v
			}
			if raw, err = json.Marshal(volume); err != nil {
				return nil, nil, err
			}
			c.Options[j] = volumeOptionPrefix + base64.StdEncoding.EncodeToString(raw)
		}
		out[i] = c
	}
	return out, names, nil
}
