// KataVirtualVolume model: type list and equality.
#include "kata_volume/volume.h"

#include <algorithm>
#include <tuple>

namespace kata_volume {

const std::vector<std::string>& KnownVolumeTypes() {
  static const std::vector<std::string>* const kTypes =
      new std::vector<std::string>{
          kVolumeTypeDirectBlock,     kVolumeTypeImageRawBlock,
          kVolumeTypeLayerRawBlock,   kVolumeTypeImageNydusBlock,
          kVolumeTypeLayerNydusBlock, kVolumeTypeImageNydusFs,
          kVolumeTypeLayerNydusFs,    kVolumeTypeImageGuestPull,
      };
  return *kTypes;
}

bool IsKnownVolumeType(const std::string& volume_type) {
  const auto& types = KnownVolumeTypes();
  return std::find(types.begin(), types.end(), volume_type) != types.end();
}

bool DmVerityInfo::operator==(const DmVerityInfo& other) const {
  return std::tie(hashtype, hash, blocknum, blocksize, hashsize, offset, salt,
                  hash_type, no_superblock) ==
         std::tie(other.hashtype, other.hash, other.blocknum, other.blocksize,
                  other.hashsize, other.offset, other.salt, other.hash_type,
                  other.no_superblock);
}

bool DirectAssignedVolume::operator==(const DirectAssignedVolume& other) const {
  return metadata == other.metadata;
}

bool ImagePullVolume::operator==(const ImagePullVolume& other) const {
  return metadata == other.metadata;
}

bool NydusImageVolume::operator==(const NydusImageVolume& other) const {
  return config == other.config && snapshot_dir == other.snapshot_dir;
}

bool KataVirtualVolume::operator==(const KataVirtualVolume& other) const {
  return std::tie(volume_type, source, fs_type, options, direct_volume,
                  image_pull, nydus_image, dm_verity) ==
         std::tie(other.volume_type, other.source, other.fs_type,
                  other.options, other.direct_volume, other.image_pull,
                  other.nydus_image, other.dm_verity);
}

}  // namespace kata_volume
