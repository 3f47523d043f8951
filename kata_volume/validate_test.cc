// Tests for kata's Go (IsValid) and Rust (validate) rules: the valid case and
// each invalid branch.
#include "kata_volume/validate.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

DmVerityInfo ValidVerity() {
  DmVerityInfo info;
  info.hashtype = "sha256";
  info.hash = std::string(64, 'f');
  info.blocknum = 16;
  info.blocksize = 4096;
  info.hashsize = 4096;
  info.offset = 16 * 4096;
  return info;
}

void ExpectInvalid(const absl::Status& status, const std::string& message) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(message));
}

TEST(ValidateGoTest, AcceptsMinimalAndFullVolumes) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageRawBlock;
  EXPECT_TRUE(ValidateGo(volume).ok());
  volume.direct_volume = DirectAssignedVolume{Metadata{}};
  volume.image_pull = ImagePullVolume{Metadata{{"a", "b"}}};
  volume.nydus_image = NydusImageVolume{"", "/snap"};
  volume.dm_verity = ValidVerity();
  EXPECT_TRUE(ValidateGo(volume).ok()) << ValidateGo(volume);
}

TEST(ValidateGoTest, AcceptsUnknownTypeLikeGo) {
  KataVirtualVolume volume;
  volume.volume_type = "something_new";
  EXPECT_TRUE(ValidateGo(volume).ok());
  EXPECT_FALSE(IsKnownVolumeType(volume.volume_type));
}

TEST(ValidateGoTest, RejectsEachBrokenRule) {
  KataVirtualVolume volume;
  ExpectInvalid(ValidateGo(volume), "volume_type is empty");

  volume.volume_type = kVolumeTypeDirectBlock;
  volume.direct_volume = DirectAssignedVolume{};
  ExpectInvalid(ValidateGo(volume), "direct_volume.metadata is null");

  volume.direct_volume.reset();
  volume.image_pull = ImagePullVolume{};
  ExpectInvalid(ValidateGo(volume), "image_pull.metadata is null");

  volume.image_pull.reset();
  volume.nydus_image = NydusImageVolume{};
  ExpectInvalid(ValidateGo(volume), "neither config nor snapshot_dir");

  volume.nydus_image.reset();
  volume.dm_verity = ValidVerity();
  volume.dm_verity->hashtype = "md5";
  ExpectInvalid(ValidateGo(volume), "unsupported hash algorithm \"md5\"");
}

TEST(ValidateDmVerityGoTest, HashTypesAndLengths) {
  DmVerityInfo info = ValidVerity();
  EXPECT_TRUE(ValidateDmVerityGo(info).ok());
  info.hashtype = "SHA256";  // Go lower-cases the name
  EXPECT_TRUE(ValidateDmVerityGo(info).ok());
  info.hash = std::string(64, 'F');  // hex.DecodeString accepts upper case
  EXPECT_TRUE(ValidateDmVerityGo(info).ok());
  info.hash = std::string(63, 'f');
  ExpectInvalid(ValidateDmVerityGo(info), "64 hex digits expected");
  info.hash = std::string(63, 'f') + "g";
  ExpectInvalid(ValidateDmVerityGo(info), "invalid sha256 hash value");

  info.hashtype = "sha1";
  info.hash = std::string(40, '0');
  EXPECT_TRUE(ValidateDmVerityGo(info).ok());
  info.hash = std::string(64, '0');
  ExpectInvalid(ValidateDmVerityGo(info), "40 hex digits expected");
}

TEST(ValidateDmVerityGoTest, BlockCountBounds) {
  DmVerityInfo info = ValidVerity();
  info.blocknum = 0;
  ExpectInvalid(ValidateDmVerityGo(info), "block count 0 outside");
  info.blocknum = uint64_t{1} << 32;
  info.offset = info.blocknum * 4096;
  ExpectInvalid(ValidateDmVerityGo(info), "block count 4294967296 outside");
  info.blocknum = UINT32_MAX;
  info.offset = info.blocknum * 4096;
  EXPECT_TRUE(ValidateDmVerityGo(info).ok()) << ValidateDmVerityGo(info);
}

TEST(ValidateDmVerityGoTest, BlockSizeBounds) {
  DmVerityInfo info = ValidVerity();
  info.blocksize = 511;
  ExpectInvalid(ValidateDmVerityGo(info), "data_block_size = 511");
  info = ValidVerity();
  info.hashsize = 524289;
  ExpectInvalid(ValidateDmVerityGo(info), "hash_block_size = 524289");
  info = ValidVerity();
  info.blocksize = 512;
  info.hashsize = 524288;
  info.offset = 524288;
  EXPECT_TRUE(ValidateDmVerityGo(info).ok()) << ValidateDmVerityGo(info);
}

TEST(ValidateDmVerityGoTest, OffsetRules) {
  DmVerityInfo info = ValidVerity();
  info.offset = 16 * 4096 + 512;
  ExpectInvalid(ValidateDmVerityGo(info), "not a multiple of hashsize");
  info.offset = 15 * 4096;
  ExpectInvalid(ValidateDmVerityGo(info), "inside the data area");
  info.offset = uint64_t{1} << 40;
  EXPECT_TRUE(ValidateDmVerityGo(info).ok());
}

TEST(ValidateRustTest, GuestPullNeedsSource) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  ExpectInvalid(ValidateRust(volume),
                "missing image reference for guest pulling volume");
  volume.source = "registry/image@sha256:" + std::string(64, 'a');
  EXPECT_TRUE(ValidateRust(volume).ok());
}

TEST(ValidateRustTest, DirectAndRawBlock) {
  for (const char* type : {kVolumeTypeDirectBlock}) {
    KataVirtualVolume volume;
    volume.volume_type = type;
    ExpectInvalid(ValidateRust(volume),
                  "missing source device for directly assigned block volume");
    volume.source = "/dev/vdb";
    ExpectInvalid(ValidateRust(volume),
                  "missing filesystem for directly assigned block volume");
    volume.fs_type = "ext4";
    EXPECT_TRUE(ValidateRust(volume).ok());
  }
  for (const char* type : {kVolumeTypeImageRawBlock, kVolumeTypeLayerRawBlock}) {
    KataVirtualVolume volume;
    volume.volume_type = type;
    ExpectInvalid(ValidateRust(volume),
                  "missing source device for raw block volume");
    volume.source = "/dev/vdb";
    ExpectInvalid(ValidateRust(volume), "missing filesystem for raw block volume");
    volume.fs_type = "ext4";
    EXPECT_TRUE(ValidateRust(volume).ok());
  }
}

TEST(ValidateRustTest, NydusBlock) {
  for (const char* type :
       {kVolumeTypeImageNydusBlock, kVolumeTypeLayerNydusBlock}) {
    KataVirtualVolume volume;
    volume.volume_type = type;
    ExpectInvalid(ValidateRust(volume), "missing meta blob for nydus block volume");
    volume.source = "/meta";
    volume.fs_type = "rafsv5";
    ExpectInvalid(ValidateRust(volume), "invalid filesystem for nydus block volume");
    volume.fs_type = "rafsv6";
    ExpectInvalid(ValidateRust(volume),
                  "missing nydus configuration info for nydus block volume");
    volume.nydus_image = NydusImageVolume{"", "/snap"};
    ExpectInvalid(ValidateRust(volume),
                  "missing configuration info for nydus block volume");
    volume.nydus_image = NydusImageVolume{"{}", ""};
    ExpectInvalid(ValidateRust(volume),
                  "missing snapshot directory for nydus block volume");
    volume.nydus_image = NydusImageVolume{"{}", "/snap"};
    EXPECT_TRUE(ValidateRust(volume).ok());
  }
}

TEST(ValidateRustTest, NydusFs) {
  for (const char* type : {kVolumeTypeImageNydusFs, kVolumeTypeLayerNydusFs}) {
    KataVirtualVolume volume;
    volume.volume_type = type;
    ExpectInvalid(ValidateRust(volume), "missing meta blob for nydus fs volume");
    volume.source = "/meta";
    volume.fs_type = "ext4";
    ExpectInvalid(ValidateRust(volume), "invalid filesystem for nydus fs volume");
    volume.fs_type = "rafsv5";
    ExpectInvalid(ValidateRust(volume),
                  "missing nydus configuration info for nydus block volume");
    volume.nydus_image = NydusImageVolume{"{}", "/snap"};
    EXPECT_TRUE(ValidateRust(volume).ok());
    volume.fs_type = "rafsv6";
    EXPECT_TRUE(ValidateRust(volume).ok());
  }
}

TEST(ValidateRustTest, OtherTypesHaveNoRule) {
  KataVirtualVolume volume;
  volume.volume_type = "something_new";
  EXPECT_TRUE(ValidateRust(volume).ok());
  volume.volume_type = "";
  EXPECT_TRUE(ValidateRust(volume).ok());
}

}  // namespace
}  // namespace kata_volume
