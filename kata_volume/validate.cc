// Kata Go and Rust validation rules for KataVirtualVolume (see validate.h for
// the source files these rules come from).
#include "kata_volume/validate.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace kata_volume {
namespace {

// Go virtual_volume.go: minBlockSize = 1 << 9, maxBlockSize = 1 << 19.
constexpr uint64_t kMinVerityBlockSize = uint64_t{1} << 9;
constexpr uint64_t kMaxVerityBlockSize = uint64_t{1} << 19;
constexpr uint64_t kMaxVerityBlockNum = UINT32_MAX;

bool IsHexString(const std::string& text) {
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsValidVerityBlockSize(uint64_t size) {
  return kMinVerityBlockSize <= size && size <= kMaxVerityBlockSize;
}

absl::Status GoError(absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("kata Go IsValid: ", message));
}

absl::Status RustError(absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("kata Rust validate: ", message));
}

// Shared by the nydus block and nydus fs branches of the Rust rules.
absl::Status ValidateNydusImageRust(const KataVirtualVolume& volume) {
  if (!volume.nydus_image.has_value()) {
    return RustError("missing nydus configuration info for nydus block volume");
  }
  if (volume.nydus_image->config.empty()) {
    return RustError("missing configuration info for nydus block volume");
  }
  if (volume.nydus_image->snapshot_dir.empty()) {
    return RustError("missing snapshot directory for nydus block volume");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDmVerityGo(const DmVerityInfo& info) {
  const std::string hashtype = absl::AsciiStrToLower(info.hashtype);
  size_t expected_hash_length = 0;
  if (hashtype == "sha256") {
    expected_hash_length = 64;
  } else if (hashtype == "sha1") {
    expected_hash_length = 40;
  } else {
    return GoError(absl::StrCat("dm_verity: unsupported hash algorithm \"",
                                info.hashtype, "\" (sha256 or sha1 expected)"));
  }
  if (info.hash.size() != expected_hash_length || !IsHexString(info.hash)) {
    return GoError(absl::StrCat("dm_verity: invalid ", hashtype,
                                " hash value \"", info.hash, "\" (",
                                expected_hash_length, " hex digits expected)"));
  }
  if (info.blocknum == 0 || info.blocknum > kMaxVerityBlockNum) {
    return GoError(absl::StrCat("dm_verity: block count ", info.blocknum,
                                " outside 1..", kMaxVerityBlockNum));
  }
  if (!IsValidVerityBlockSize(info.blocksize) ||
      !IsValidVerityBlockSize(info.hashsize)) {
    return GoError(absl::StrCat(
        "dm_verity: unsupported verity block size: data_block_size = ",
        info.blocksize, ", hash_block_size = ", info.hashsize, " (must be in [",
        kMinVerityBlockSize, ", ", kMaxVerityBlockSize, "])"));
  }
  // blocksize <= 2^19 and blocknum <= 2^32-1, so the product cannot overflow.
  const uint64_t data_bytes = info.blocksize * info.blocknum;
  if (info.offset % info.hashsize != 0) {
    return GoError(absl::StrCat("dm_verity: hash offset ", info.offset,
                                " is not a multiple of hashsize ",
                                info.hashsize));
  }
  if (info.offset < data_bytes) {
    return GoError(absl::StrCat("dm_verity: hash offset ", info.offset,
                                " lies inside the data area (blocksize * "
                                "blocknum = ",
                                data_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateGo(const KataVirtualVolume& volume) {
  if (volume.volume_type.empty()) return GoError("volume_type is empty");
  if (volume.direct_volume.has_value() &&
      !volume.direct_volume->metadata.has_value()) {
    return GoError("direct_volume.metadata is null");
  }
  if (volume.image_pull.has_value() &&
      !volume.image_pull->metadata.has_value()) {
    return GoError("image_pull.metadata is null");
  }
  if (volume.nydus_image.has_value() && volume.nydus_image->config.empty() &&
      volume.nydus_image->snapshot_dir.empty()) {
    return GoError("nydus_image has neither config nor snapshot_dir");
  }
  if (volume.dm_verity.has_value()) return ValidateDmVerityGo(*volume.dm_verity);
  return absl::OkStatus();
}

absl::Status ValidateRust(const KataVirtualVolume& volume) {
  const std::string& type = volume.volume_type;
  if (type == kVolumeTypeDirectBlock) {
    if (volume.source.empty()) {
      return RustError("missing source device for directly assigned block volume");
    }
    if (volume.fs_type.empty()) {
      return RustError("missing filesystem for directly assigned block volume");
    }
  } else if (type == kVolumeTypeImageRawBlock ||
             type == kVolumeTypeLayerRawBlock) {
    if (volume.source.empty()) {
      return RustError("missing source device for raw block volume");
    }
    if (volume.fs_type.empty()) {
      return RustError("missing filesystem for raw block volume");
    }
  } else if (type == kVolumeTypeImageNydusBlock ||
             type == kVolumeTypeLayerNydusBlock) {
    if (volume.source.empty()) {
      return RustError("missing meta blob for nydus block volume");
    }
    if (volume.fs_type != "rafsv6") {
      return RustError("invalid filesystem for nydus block volume");
    }
    return ValidateNydusImageRust(volume);
  } else if (type == kVolumeTypeImageNydusFs ||
             type == kVolumeTypeLayerNydusFs) {
    if (volume.source.empty()) {
      return RustError("missing meta blob for nydus fs volume");
    }
    if (volume.fs_type != "rafsv6" && volume.fs_type != "rafsv5") {
      return RustError("invalid filesystem for nydus fs volume");
    }
    return ValidateNydusImageRust(volume);
  } else if (type == kVolumeTypeImageGuestPull) {
    if (volume.source.empty()) {
      return RustError("missing image reference for guest pulling volume");
    }
  }
  return absl::OkStatus();
}

}  // namespace kata_volume
