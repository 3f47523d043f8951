// Validation of a KataVirtualVolume with the rules of both Kata runtimes, so
// a volume we emit is accepted by whichever side reads it.
//
// ValidateGo: kata-containers src/runtime/virtcontainers/types/
//   virtual_volume.go, KataVirtualVolume.IsValid() and DmVerityInfo.IsValid().
// ValidateRust: kata-containers src/libs/kata-types/src/mount.rs,
//   KataVirtualVolume::validate().
// Both rule sets are reproduced faithfully. Note that neither runtime rejects
// an unknown volume_type (Go only requires it to be non-empty; Rust ignores
// unknown types), so use IsKnownVolumeType() from volume.h for that check.
#ifndef KATA_VOLUME_VALIDATE_H_
#define KATA_VOLUME_VALIDATE_H_

#include "absl/status/status.h"
#include "kata_volume/volume.h"

namespace kata_volume {

// Go rules: volume_type non-empty; direct_volume.metadata and
// image_pull.metadata non-nil when the sub-struct is present; nydus_image
// has config or snapshot_dir; dm_verity valid (ValidateDmVerityGo).
// InvalidArgument naming the broken rule.
absl::Status ValidateGo(const KataVirtualVolume& volume);

// Go DmVerityInfo.IsValid(): hashtype sha256 (64 hex digits) or sha1 (40,
// case-insensitive name); 0 < blocknum <= 2^32-1; blocksize and hashsize in
// [512, 524288]; offset a multiple of hashsize and >= blocksize*blocknum.
absl::Status ValidateDmVerityGo(const DmVerityInfo& info);

// Rust rules, per volume_type:
//  direct_block: source and fs_type non-empty.
//  image_raw_block, layer_raw_block: source and fs_type non-empty.
//  image_nydus_block, layer_nydus_block: source non-empty, fs_type "rafsv6",
//    nydus_image present with non-empty config and snapshot_dir.
//  image_nydus_fs, layer_nydus_fs: source non-empty, fs_type "rafsv5" or
//    "rafsv6", nydus_image as above.
//  image_guest_pull: source (the image reference) non-empty.
//  other types: no rule.
// InvalidArgument carrying kata's own error text.
absl::Status ValidateRust(const KataVirtualVolume& volume);

}  // namespace kata_volume

#endif  // KATA_VOLUME_VALIDATE_H_
