package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/api/types"
	katatypes "github.com/kata-containers/kata-containers/src/runtime/virtcontainers/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	volumeOptionPrefix   = "io.katacontainers.volume="
	annotContainerType   = "io.kubernetes.cri.container-type"
	annotImageName       = "io.kubernetes.cri.image-name"
	annotCRIOImageName   = "io.kubernetes.cri-o.ImageName"
	containerTypeSandbox = "sandbox"
	kataRunDir           = "/run/kata-containers"
)

// Storage is what kata's shim sends its agent for an image_guest_pull
// volume (agent protocol Storage).
type Storage struct {
	Driver        string
	DriverOptions []string
	Source        string // image reference, or "pause" for the sandbox
	Fstype        string
	MountPoint    string
}

// Process is the container the rootfs is for.
type Process struct {
	ContainerID string
	Bundle      string
	Rootfs      string // directory the Guest fills
	Spec        *specs.Spec
}

// buildGuestPullStorage does what kata's handleVirtualVolume and
// handleImageGuestPullBlockVolume do: exactly one volume option, decoded and
// validated by kata's ParseKataVirtualVolume; the image reference from the
// CRI annotation (or "pause" for the sandbox); image_pull.metadata merged
// with the container annotations, the annotations winning.
func buildGuestPullStorage(id string, m *types.Mount, annotations map[string]string) (Storage, error) {
	var encoded []string
	for _, o := range m.Options {
		if strings.HasPrefix(o, volumeOptionPrefix) {
			encoded = append(encoded, strings.TrimPrefix(o, volumeOptionPrefix))
		}
	}
	if len(encoded) != 1 {
		return Storage{}, fmt.Errorf("rootfs mount %s carries %d %s options, want exactly 1", m.Type, len(encoded), volumeOptionPrefix)
	}
	volume, err := katatypes.ParseKataVirtualVolume(encoded[0])
	if err != nil {
		return Storage{}, fmt.Errorf("cannot decode the %s option of the rootfs mount (kata's ParseKataVirtualVolume): %v", volumeOptionPrefix, err)
	}
	if volume.VolumeType != katatypes.KataVirtualVolumeImageGuestPullType {
		return Storage{}, fmt.Errorf("volume_type %q is not %s", volume.VolumeType, katatypes.KataVirtualVolumeImageGuestPullType)
	}
	if volume.ImagePull == nil || volume.ImagePull.Metadata == nil {
		// kata's shim would write into a nil map here.
		return Storage{}, fmt.Errorf("volume has no image_pull.metadata")
	}
	imageRef := "pause"
	if annotations[annotContainerType] != containerTypeSandbox {
		imageRef = annotations[annotImageName]
		if imageRef == "" {
			imageRef = annotations[annotCRIOImageName]
		}
		if imageRef == "" {
			return Storage{}, fmt.Errorf("failed to get image name from annotations (%s)", annotImageName)
		}
	}
	for k, v := range annotations {
		volume.ImagePull.Metadata[k] = v
	}
	pull, err := json.Marshal(volume.ImagePull)
	if err != nil {
		return Storage{}, err
	}
	return Storage{
		Driver:        katatypes.KataVirtualVolumeImageGuestPullType,
		DriverOptions: []string{katatypes.KataVirtualVolumeImageGuestPullType + "=" + string(pull)},
		Source:        imageRef,
		Fstype:        "overlay",
		MountPoint:    filepath.Join(kataRunDir, id, "rootfs"),
	}, nil
}

// imagePullMetadata decodes the driver option back (the agent's side).
func imagePullMetadata(s Storage) (map[string]string, error) {
	prefix := katatypes.KataVirtualVolumeImageGuestPullType + "="
	for _, o := range s.DriverOptions {
		if strings.HasPrefix(o, prefix) {
			var v katatypes.ImagePullVolume
			if err := json.Unmarshal([]byte(strings.TrimPrefix(o, prefix)), &v); err != nil {
				return nil, fmt.Errorf("driver option %s: %v", prefix, err)
			}
			if v.Metadata == nil {
				return nil, fmt.Errorf("driver option %s has no metadata", prefix)
			}
			return v.Metadata, nil
		}
	}
	return nil, fmt.Errorf("storage has no %s driver option", prefix)
}
