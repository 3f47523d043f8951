// KataVirtualVolume: the C++ model of Kata Containers' virtual volume, the
// JSON document a snapshotter hands to the Kata runtime inside the mount
// option `io.katacontainers.volume=<base64 JSON>`.
//
// Mirrors kata-containers src/runtime/virtcontainers/types/virtual_volume.go
// (Go) and src/libs/kata-types/src/mount.rs (Rust). Absent sub-structures are
// std::nullopt, exactly like Go's nil pointers and Rust's Option::None.
#ifndef KATA_VOLUME_VOLUME_H_
#define KATA_VOLUME_VOLUME_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kata_volume {

// Volume type names shared by kata's Go runtime and Rust agent.
inline constexpr char kVolumeTypeDirectBlock[] = "direct_block";
inline constexpr char kVolumeTypeImageRawBlock[] = "image_raw_block";
inline constexpr char kVolumeTypeLayerRawBlock[] = "layer_raw_block";
inline constexpr char kVolumeTypeImageNydusBlock[] = "image_nydus_block";
inline constexpr char kVolumeTypeLayerNydusBlock[] = "layer_nydus_block";
inline constexpr char kVolumeTypeImageNydusFs[] = "image_nydus_fs";
inline constexpr char kVolumeTypeLayerNydusFs[] = "layer_nydus_fs";
inline constexpr char kVolumeTypeImageGuestPull[] = "image_guest_pull";

// All volume types above, in kata's declaration order.
const std::vector<std::string>& KnownVolumeTypes();

// True if `volume_type` is one of KnownVolumeTypes().
bool IsKnownVolumeType(const std::string& volume_type);

// String map used for the `metadata` objects (sorted, so JSON is stable).
using Metadata = std::map<std::string, std::string>;

// dm-verity parameters of a block device (Go DmVerityInfo; the Rust struct
// of newer kata-types adds salt, hash_type and no_superblock).
struct DmVerityInfo {
  std::string hashtype;  // "sha256" or "sha1"
  std::string hash;      // root hash, hex
  uint64_t blocknum = 0;
  uint64_t blocksize = 0;
  uint64_t hashsize = 0;
  uint64_t offset = 0;
  std::optional<std::string> salt;     // hex; written only when set
  std::optional<uint32_t> hash_type;   // verity format version (Rust default 1)
  std::optional<bool> no_superblock;   // written only when set

  bool operator==(const DmVerityInfo& other) const;
};

// Metadata for a directly assigned block volume. A missing/null `metadata`
// (Go nil map) is std::nullopt; Go's IsValid rejects it.
struct DirectAssignedVolume {
  std::optional<Metadata> metadata;
  bool operator==(const DirectAssignedVolume& other) const;
};

// Metadata for pulling an image inside the guest. As above, nullopt means
// Go's nil map; the encoder still writes `{}` for it because Go rejects null.
struct ImagePullVolume {
  std::optional<Metadata> metadata;
  bool operator==(const ImagePullVolume& other) const;
};

// Nydus image configuration.
struct NydusImageVolume {
  std::string config;
  std::string snapshot_dir;
  bool operator==(const NydusImageVolume& other) const;
};

// The whole virtual volume document.
struct KataVirtualVolume {
  std::string volume_type;
  std::string source;                // omitted from JSON when empty
  std::string fs_type;               // omitted from JSON when empty
  std::vector<std::string> options;  // omitted from JSON when empty
  std::optional<DirectAssignedVolume> direct_volume;
  std::optional<ImagePullVolume> image_pull;
  std::optional<NydusImageVolume> nydus_image;
  std::optional<DmVerityInfo> dm_verity;

  bool operator==(const KataVirtualVolume& other) const;
  bool operator!=(const KataVirtualVolume& other) const {
    return !(*this == other);
  }
};

}  // namespace kata_volume

#endif  // KATA_VOLUME_VOLUME_H_
