// Tests for the `decode` subcommand: output format and exit codes.
#include "kata_volume/decode_command.h"

#include <cstring>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kata_volume/volume_json.h"
#include "kata_volume/volume_option.h"

namespace kata_volume {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunDecode(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunDecodeCommand(args, out, err);
  return {code, out.str(), err.str()};
}

std::string ValidOption() {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  volume.source = "r/x@sha256:" + std::string(64, 'a');
  volume.image_pull = ImagePullVolume{Metadata{{"k", "v"}}};
  return *EncodeVolumeOption(volume);
}

TEST(DecodeCommandTest, ValidWholeOption) {
  Result result = RunDecode({ValidOption()});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "{\n"
            "  \"volume_type\": \"image_guest_pull\",\n"
            "  \"source\": \"r/x@sha256:" +
                std::string(64, 'a') +
                "\",\n"
                "  \"image_pull\": {\n"
                "    \"metadata\": {\n"
                "      \"k\": \"v\"\n"
                "    }\n"
                "  }\n"
                "}\n"
                "go_valid: yes\n"
                "rust_valid: yes\n");
  EXPECT_EQ(result.err, "");
}

TEST(DecodeCommandTest, BareBase64AndMountOptionString) {
  const std::string option = ValidOption();
  const std::string bare = option.substr(strlen(kVolumeOptionPrefix));
  EXPECT_EQ(RunDecode({bare}).code, 0);
  EXPECT_EQ(RunDecode({"lowerdir=/a:/b," + option + ",upperdir=/u\n"}).code, 0);
}

TEST(DecodeCommandTest, InvalidVolumeExitsOneWithReasons) {
  // Guest pull without a source and with a null image_pull.metadata.
  const std::string json =
      R"({"volume_type":"image_guest_pull","image_pull":{"metadata":null}})";
  Result result = RunDecode({absl::Base64Escape(json)});
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out,
              HasSubstr("go_valid: no (kata Go IsValid: image_pull.metadata "
                        "is null)\n"));
  EXPECT_THAT(result.out,
              EndsWith("rust_valid: no (kata Rust validate: missing image "
                       "reference for guest pulling volume)\n"));
}

TEST(DecodeCommandTest, ARepeatedFieldIsValidForGoOnly) {
  std::string json;
  ASSERT_TRUE(absl::Base64Unescape(ValidOption().substr(strlen(kVolumeOptionPrefix)), &json));
  ASSERT_EQ(json.substr(0, 1), "{");
  json.insert(1, R"("volume_type":"direct_block",)");  // Go keeps the last one
  Result result = RunDecode({absl::Base64Escape(json)});
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, HasSubstr("go_valid: yes\n"));
  EXPECT_THAT(result.out, HasSubstr("rust_valid: no (duplicate field `volume_type`"));
  // Equal fields of different objects are no repetition; nor are repeated
  // unknown keys or keys of a metadata map (serde ignores or overwrites them).
  EXPECT_EQ(FirstRepeatedKey(R"({"source":"a","image_pull":{"source":1},"x":[{"hash":1},{"hash":2}]})"), "");
  EXPECT_EQ(FirstRepeatedKey(R"({"dm_verity":{"hash":"a","hash":"b"}})"), "hash");
  EXPECT_EQ(FirstRepeatedKey(R"({"unknown":1,"unknown":2})"), "");
  EXPECT_EQ(FirstRepeatedKey(R"({"image_pull":{"metadata":{"k":"1","k":"2","source":"x","source":"y"}}})"), "");
  EXPECT_EQ(FirstRepeatedKey(R"({"image_pull":{"source":1,"source":2}})"), "");  // unknown there
  EXPECT_EQ(FirstRepeatedKey(R"({"image_pull":{"metadata":{},"metadata":{}}})"), "metadata");
  EXPECT_EQ(FirstRepeatedKey("{not json"), "");
}

TEST(DecodeCommandTest, UsageAndDecodeErrorsExitTwo) {
  EXPECT_EQ(RunDecode({}).code, 2);
  EXPECT_EQ(RunDecode({"a", "b"}).code, 2);
  Result garbage = RunDecode({"io.katacontainers.volume=!!!!"});
  EXPECT_EQ(garbage.code, 2);
  EXPECT_EQ(garbage.out, "");
  EXPECT_THAT(garbage.err, HasSubstr("invalid character"));
  EXPECT_EQ(RunDecode({"lowerdir=/a,upperdir=/b"}).code, 2);
  EXPECT_EQ(RunDecode({"--help"}).code, 0);
}

TEST(DecodeCommandTest, UnknownTypeIsNotedOnStderr) {
  Result result = RunDecode({absl::Base64Escape(R"({"volume_type":"new_kind"})")});
  EXPECT_EQ(result.code, 0);
  EXPECT_THAT(result.err, HasSubstr("not a known kata volume type"));
}

}  // namespace
}  // namespace kata_volume
