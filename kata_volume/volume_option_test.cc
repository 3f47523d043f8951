// Tests for the `io.katacontainers.volume=` base64 option encoding.
#include "kata_volume/volume_option.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

KataVirtualVolume GuestPullVolume() {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  volume.source = "127.0.0.1:5000/busybox@sha256:" + std::string(64, 'b');
  volume.image_pull = ImagePullVolume{Metadata{{"k", "v?>+/"}}};
  return volume;
}

TEST(VolumeOptionTest, EncodesPrefixAndStandardBase64OfJson) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeDirectBlock;
  absl::StatusOr<std::string> option = EncodeVolumeOption(volume);
  ASSERT_TRUE(option.ok()) << option.status();
  // base64 of {"volume_type":"direct_block"}
  EXPECT_EQ(*option,
            "io.katacontainers.volume=eyJ2b2x1bWVfdHlwZSI6ImRpcmVjdF9ibG9jayJ9");
}

TEST(VolumeOptionTest, RoundTripWholeOptionAndBareBase64) {
  const KataVirtualVolume volume = GuestPullVolume();
  absl::StatusOr<std::string> option = EncodeVolumeOption(volume);
  ASSERT_TRUE(option.ok()) << option.status();
  absl::StatusOr<KataVirtualVolume> whole = DecodeVolumeOption(*option);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, volume);

  absl::StatusOr<std::string> bare = EncodeVolumeBase64(volume);
  ASSERT_TRUE(bare.ok()) << bare.status();
  absl::StatusOr<KataVirtualVolume> from_bare = DecodeVolumeOption(*bare);
  ASSERT_TRUE(from_bare.ok()) << from_bare.status();
  EXPECT_EQ(*from_bare, volume);
}

TEST(VolumeOptionTest, RejectsGarbage) {
  struct Case {
    std::string input;
    std::string message;
  };
  const Case cases[] = {
      {"", "is empty"},
      {"io.katacontainers.volume=", "is empty"},
      {"abc", "not a multiple of 4"},
      {"ab$d", "invalid character at offset 2"},
      {"ab-_", "invalid character at offset 2"},  // URL alphabet is not std
      {"a=bc", "invalid character at offset 1"},
      {"a===", "invalid character at offset 1"},
      {absl::Base64Escape("not json"), "JSON is malformed"},
      {absl::Base64Escape("[1,2]"), "must be a JSON object"},
      // One prefix only: kata decodes what follows it.
      {"io.katacontainers.volume=io.katacontainers.volume=" +
           absl::Base64Escape(R"({"volume_type":"image_guest_pull"})"),
       "KataVirtualVolume base64"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<KataVirtualVolume> decoded = DecodeVolumeOption(c.input);
    ASSERT_FALSE(decoded.ok()) << c.input;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(c.message))
        << c.input;
  }
}

TEST(VolumeOptionTest, RejectsOversizeInput) {
  const std::string huge(kMaxVolumeBase64Bytes + 4, 'A');
  absl::StatusOr<KataVirtualVolume> decoded = DecodeVolumeOption(huge);
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr("more than the limit of 65536"));
}

TEST(VolumeOptionTest, DeeplyNestedJsonWithinTheLimitFailsCleanly) {
  const std::string nested = std::string(24000, '[') + std::string(24000, ']');
  const std::string encoded = absl::Base64Escape(nested);
  ASSERT_LE(encoded.size(), kMaxVolumeBase64Bytes);
  absl::StatusOr<KataVirtualVolume> decoded = DecodeVolumeOption(encoded);
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr("must be a JSON object"));
}

TEST(VolumeOptionTest, RefusesToEncodeOversizeVolume) {
  KataVirtualVolume volume = GuestPullVolume();
  volume.image_pull->metadata->emplace("big", std::string(60000, 'x'));
  absl::StatusOr<std::string> option = EncodeVolumeOption(volume);
  ASSERT_FALSE(option.ok());
  EXPECT_EQ(option.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(VolumeOptionTest, FindsTheOptionInAMountOptionString) {
  absl::StatusOr<std::string> found = FindVolumeOption(
      "lowerdir=/a:/b,io.katacontainers.volume=e30=,upperdir=/u");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, "io.katacontainers.volume=e30=");

  EXPECT_EQ(FindVolumeOption("lowerdir=/a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindVolumeOption("io.katacontainers.volume=e30=,"
                             "io.katacontainers.volume=e30=")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kata_volume
