// Tests for the KataVirtualVolume JSON encoding (Go-compatible keys, order,
// omitempty, numbers) and for the decoder's type errors.
#include "kata_volume/volume_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

KataVirtualVolume FullVolume() {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeLayerRawBlock;
  volume.source = "/dev/vdb";
  volume.fs_type = "ext4";
  volume.options = {"ro", "noatime"};
  volume.direct_volume = DirectAssignedVolume{Metadata{{"mode", "rw"}}};
  volume.image_pull = ImagePullVolume{Metadata{{"b", "2"}, {"a", "1"}}};
  volume.nydus_image = NydusImageVolume{"{}", "/var/lib/nydus"};
  DmVerityInfo verity;
  verity.hashtype = "sha256";
  verity.hash = std::string(64, 'a');
  verity.blocknum = 1024;
  verity.blocksize = 4096;
  verity.hashsize = 4096;
  verity.offset = uint64_t{1} << 40;
  verity.salt = std::string(64, '0');
  verity.hash_type = 1;
  verity.no_superblock = true;
  volume.dm_verity = verity;
  return volume;
}

TEST(VolumeJsonTest, MinimalVolumeOmitsEmptyFields) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeDirectBlock;
  EXPECT_EQ(VolumeToJson(volume), R"({"volume_type":"direct_block"})");
}

TEST(VolumeJsonTest, ImagePullMetadataIsAlwaysAnObject) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  volume.source = "registry/x@sha256:1";
  volume.image_pull = ImagePullVolume{};  // metadata nullopt (Go nil)
  EXPECT_EQ(VolumeToJson(volume),
            R"({"volume_type":"image_guest_pull","source":"registry/x@sha256:1",)"
            R"("image_pull":{"metadata":{}}})");
}

TEST(VolumeJsonTest, FullVolumeGoldenInGoFieldOrder) {
  EXPECT_EQ(
      VolumeToJson(FullVolume()),
      R"({"volume_type":"layer_raw_block","source":"/dev/vdb","fs_type":"ext4",)"
      R"("options":["ro","noatime"],"direct_volume":{"metadata":{"mode":"rw"}},)"
      R"("image_pull":{"metadata":{"a":"1","b":"2"}},)"
      R"("nydus_image":{"config":"{}","snapshot_dir":"/var/lib/nydus"},)"
      R"("dm_verity":{"hashtype":"sha256","hash":")" +
          std::string(64, 'a') +
          R"(","blocknum":1024,"blocksize":4096,"hashsize":4096,)"
          R"("offset":1099511627776,"salt":")" +
          std::string(64, '0') + R"(","hash_type":1,"no_superblock":true}})");
}

TEST(VolumeJsonTest, RoundTripKeepsEveryField) {
  const KataVirtualVolume volume = FullVolume();
  absl::StatusOr<KataVirtualVolume> decoded =
      VolumeFromJson(VolumeToJson(volume));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, volume);
  EXPECT_EQ(decoded->dm_verity->offset, uint64_t{1} << 40);
}

TEST(VolumeJsonTest, Uint64StaysANumberAtTheTop) {
  KataVirtualVolume volume = FullVolume();
  volume.dm_verity->offset = UINT64_MAX;
  const std::string json = VolumeToJson(volume);
  EXPECT_THAT(json, HasSubstr(R"("offset":18446744073709551615)"));
  absl::StatusOr<KataVirtualVolume> decoded = VolumeFromJson(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->dm_verity->offset, UINT64_MAX);
}

TEST(VolumeJsonTest, NullAndMissingMetadataDecodeAsNil) {
  absl::StatusOr<KataVirtualVolume> missing =
      VolumeFromJson(R"({"volume_type":"image_guest_pull","image_pull":{}})");
  ASSERT_TRUE(missing.ok()) << missing.status();
  ASSERT_TRUE(missing->image_pull.has_value());
  EXPECT_FALSE(missing->image_pull->metadata.has_value());

  absl::StatusOr<KataVirtualVolume> null_metadata = VolumeFromJson(
      R"({"volume_type":"image_guest_pull","image_pull":{"metadata":null}})");
  ASSERT_TRUE(null_metadata.ok()) << null_metadata.status();
  EXPECT_FALSE(null_metadata->image_pull->metadata.has_value());

  absl::StatusOr<KataVirtualVolume> null_struct =
      VolumeFromJson(R"({"volume_type":"x","image_pull":null})");
  ASSERT_TRUE(null_struct.ok()) << null_struct.status();
  EXPECT_FALSE(null_struct->image_pull.has_value());
}

TEST(VolumeJsonTest, UnknownKeysAreIgnored) {
  absl::StatusOr<KataVirtualVolume> decoded =
      VolumeFromJson(R"({"volume_type":"x","future":[1,2]})");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->volume_type, "x");
}

struct TypeErrorCase {
  const char* json;
  const char* expected_message;
};

class VolumeJsonTypeErrorTest : public ::testing::TestWithParam<TypeErrorCase> {};

TEST_P(VolumeJsonTypeErrorTest, NamesTheField) {
  absl::StatusOr<KataVirtualVolume> decoded = VolumeFromJson(GetParam().json);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr(GetParam().expected_message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VolumeJsonTypeErrorTest,
    ::testing::Values(
        TypeErrorCase{R"([1])", "must be a JSON object, got array"},
        TypeErrorCase{R"({"volume_type":1})",
                      "field volume_type: expected a string, got number"},
        TypeErrorCase{R"({"volume_type":"x","source":true})",
                      "field source: expected a string"},
        TypeErrorCase{R"({"volume_type":"x","options":"ro"})",
                      "field options: expected an array of strings"},
        TypeErrorCase{R"({"volume_type":"x","options":["ro",3]})",
                      "field options[1]: expected a string"},
        TypeErrorCase{R"({"volume_type":"x","image_pull":[]})",
                      "field image_pull: expected an object"},
        TypeErrorCase{R"({"volume_type":"x","image_pull":{"metadata":[]}})",
                      "field image_pull.metadata: expected an object"},
        TypeErrorCase{
            R"({"volume_type":"x","direct_volume":{"metadata":{"k":1}}})",
            R"(field direct_volume.metadata["k"]: expected a string)"},
        TypeErrorCase{R"({"volume_type":"x","nydus_image":{"config":{}}})",
                      "field nydus_image.config: expected a string"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"blocknum":"8"}})",
                      "field dm_verity.blocknum: expected an unsigned 64-bit "
                      "integer, got string"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"offset":-4096}})",
                      "field dm_verity.offset: expected an unsigned 64-bit"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"blocksize":1.5}})",
                      "field dm_verity.blocksize: expected an unsigned"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"hashsize":1e40}})",
                      "field dm_verity.hashsize: expected an unsigned"},
        TypeErrorCase{
            R"({"volume_type":"x","dm_verity":{"hash_type":4294967296}})",
            "field dm_verity.hash_type: expected an unsigned 32-bit"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"no_superblock":1}})",
                      "field dm_verity.no_superblock: expected a boolean"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"salt":0}})",
                      "field dm_verity.salt: expected a string"},
        TypeErrorCase{R"({"volume_type":)", "JSON is malformed"},
        // serde_json and Go refuse a byte order mark; nlohmann skips one.
        TypeErrorCase{"\xEF\xBB\xBF{\"volume_type\":\"x\"}", "JSON is malformed"},
        TypeErrorCase{R"({"volume_type":"x","dm_verity":{"hashsize":1e400}})",
                      "JSON is malformed: [json.exception.out_of_range.406]"}));

}  // namespace
}  // namespace kata_volume
