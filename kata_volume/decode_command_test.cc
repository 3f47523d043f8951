// Tests for the `decode` subcommand: output format and exit codes.
#include "kata_volume/decode_command.h"

#include <cstring>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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
  // Guest pull without a source and without image_pull.metadata (Go: nil;
  // Rust: its default, an empty map).
  const std::string json = R"({"volume_type":"image_guest_pull","image_pull":{}})";
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

// What serde_json refuses and Go's json accepts: null where the Rust field is
// no Option (a Go nil map marshals as null), a field without a serde default
// left out, and base64 whose unused bits are not zero (Go's StdEncoding
// ignores them, the base64 crate's STANDARD engine does not).
TEST(DecodeCommandTest, RustVerdictFollowsSerde) {
  struct Case {
    std::string json;
    bool go_valid;
    std::string rust;
  };
  const std::string hash(64, 'a');
  const Case cases[] = {
      {R"({"volume_type":"image_guest_pull","source":"x","image_pull":{"metadata":null}})", false,
       "rust_valid: no (field `image_pull.metadata` is null"},
      {R"({"volume_type":"x","fs_type":null})", true, "rust_valid: no (field `fs_type` is null"},
      {R"({"volume_type":"x","options":null})", true, "rust_valid: no (field `options` is null"},
      {R"({"source":"x"})", false, "rust_valid: no (missing field `volume_type`"},
      {R"({"volume_type":null})", false, "rust_valid: no (field `volume_type` is null"},
      {R"({"volume_type":"x","dm_verity":{"hashtype":"sha256","hash":")" + hash +
           R"(","blocknum":1,"blocksize":4096,"hashsize":4096,"offset":4096,"hash_type":null}})",
       true, "rust_valid: no (field `dm_verity.hash_type` is null"},
      {R"({"volume_type":"x","dm_verity":{"hashtype":"sha256","hash":")" + hash +
           R"(","blocksize":512,"hashsize":512,"offset":0}})",
       false, "rust_valid: no (missing field `dm_verity.blocknum`"},
      // Options: null is None.
      {R"({"volume_type":"x","image_pull":null,"dm_verity":null})", true, "rust_valid: yes\n"},
      {R"({"volume_type":"x","dm_verity":{"hashtype":"sha256","hash":")" + hash +
           R"(","blocknum":1,"blocksize":4096,"hashsize":4096,"offset":4096,"salt":null}})",
       true, "rust_valid: yes\n"},
      // DirectAssignedVolume has no `device` field: repeating it is no error.
      {R"({"volume_type":"x","direct_volume":{"device":"a","device":"b","metadata":{}}})", true,
       "rust_valid: yes\n"},
  };
  for (const Case& c : cases) {
    Result result = RunDecode({absl::Base64Escape(c.json)});
    EXPECT_THAT(result.out, HasSubstr(c.go_valid ? "go_valid: yes\n" : "go_valid: no")) << c.json;
    EXPECT_THAT(result.out, HasSubstr(c.rust)) << c.json;
  }

  // {"volume_type":"x"} is 19 bytes: its base64 ends in "==" after a
  // character with four unused bits.
  std::string encoded = absl::Base64Escape(R"({"volume_type":"x"})");
  ASSERT_EQ(encoded.back(), '=');
  ASSERT_EQ(RunDecode({encoded}).code, 0);
  char& last = encoded[encoded.find('=') - 1];
  last = static_cast<char>(last + 1);  // sets an unused bit; same bytes
  Result result = RunDecode({encoded});
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, HasSubstr("go_valid: yes\n"));
  EXPECT_THAT(result.out, HasSubstr("rust_valid: no (base64 is not canonical"));
}

// What Go's base64 and encoding/json take and a strict reading does not
// (tests/kata/katacheck compares go_valid with kata's own code).
TEST(DecodeCommandTest, GoVerdictReadsAsGoDoes) {
  const std::string ok =
      R"({"volume_type":"image_guest_pull","source":"busybox","image_pull":{"metadata":{"a":"b"}}})";
  std::string wrapped = absl::Base64Escape(ok);
  wrapped.insert(16, "\r\n").insert(8, "\n");
  Result result = RunDecode({wrapped});
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_THAT(result.out, HasSubstr("go_valid: yes\n"));
  EXPECT_THAT(result.out, HasSubstr("rust_valid: no (KataVirtualVolume base64 length"));

  result = RunDecode({absl::Base64Escape(
      R"({"Volume_Type":"image_guest_pull","SOURCE":"busybox","image_pull":{"metadata":{"a":null}}})")});
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_THAT(result.out, HasSubstr(R"("volume_type": "image_guest_pull")"));
  EXPECT_THAT(result.out, HasSubstr(R"("a": "")"));
  EXPECT_THAT(result.out, HasSubstr("go_valid: yes\n"));
  EXPECT_THAT(result.out, HasSubstr("rust_valid: no ("));

  // A wrong type Go fails on, though a later key is right.
  result = RunDecode({absl::Base64Escape(
      R"({"volume_type":"image_guest_pull","source":1,"source":"busybox"})")});
  EXPECT_THAT(result.out, HasSubstr("go_valid: no (KataVirtualVolume field source: expected a string"));
}

// A UTF-8 byte order mark before the JSON: Go's json.Unmarshal fails
// ("invalid character 'ï' looking for beginning of value"), so does
// serde_json ("expected value at line 1 column 1"); nlohmann skips it.
TEST(DecodeCommandTest, AByteOrderMarkIsMalformedForGoAndRust) {
  const std::string json = R"({"volume_type":"image_guest_pull","source":"busybox",)"
                           R"("image_pull":{"metadata":{"a":"b"}}})";
  ASSERT_EQ(RunDecode({absl::Base64Escape(json)}).code, 0);
  Result result = RunDecode({absl::Base64Escape("\xEF\xBB\xBF" + json)});
  EXPECT_EQ(result.code, 2) << result.out;
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, HasSubstr("malformed"));
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

// Kata's parsers take an option of any size: an option over our builder's
// limit (kMaxVolumeBase64Bytes) still gets kata's verdict, not a decode error.
TEST(DecodeCommandTest, AnOptionOverOurLimitGetsKatasVerdict) {
  KataVirtualVolume volume;
  volume.volume_type = kVolumeTypeImageGuestPull;
  volume.source = "r/x@sha256:" + std::string(64, 'a');
  volume.image_pull = ImagePullVolume{Metadata{{"k", std::string(kMaxVolumeBase64Bytes, 'v')}}};
  const std::string option = kVolumeOptionPrefix + absl::Base64Escape(VolumeToJson(volume));
  ASSERT_GT(option.size(), kMaxVolumeBase64Bytes + sizeof(kVolumeOptionPrefix));
  Result result = RunDecode({option});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, EndsWith("go_valid: yes\nrust_valid: yes\n"));
  EXPECT_EQ(result.err, "");
}

// Kata takes what follows the option's prefix as the base64: a second
// prefix there does not decode.
TEST(DecodeCommandTest, ATwicePrefixedOptionDoesNotDecode) {
  const std::string option =
      absl::StrCat(kVolumeOptionPrefix, kVolumeOptionPrefix,
                   absl::Base64Escape(R"({"volume_type":"image_guest_pull"})"));
  Result result = RunDecode({option});
  EXPECT_EQ(result.code, 2) << result.out;
  EXPECT_THAT(result.err, HasSubstr("base64"));
}

TEST(DecodeCommandTest, UnknownTypeIsNotedOnStderr) {
  Result result = RunDecode({absl::Base64Escape(R"({"volume_type":"new_kind"})")});
  EXPECT_EQ(result.code, 0);
  EXPECT_THAT(result.err, HasSubstr("not a known kata volume type"));
}

}  // namespace
}  // namespace kata_volume
