// GoJsonView against what Go's json.Unmarshal does with kata's structs
// (each case was run through Go 1.26 with the same struct tags).
#include "kata_volume/go_json_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

// The view as compact JSON text, or "error: <message>".
std::string View(const std::string& json) {
  absl::StatusOr<nlohmann::ordered_json> view = GoJsonView(json);
  if (!view.ok()) return "error: " + std::string(view.status().message());
  return view->dump();
}

TEST(GoJsonViewTest, KeysMatchFieldsWhateverTheirCase) {
  EXPECT_EQ(View(R"({"Volume_Type":"a","SOURCE":"s"})"),
            R"({"volume_type":"a","source":"s"})");
  // Unicode simple folding: U+017F is an s, U+212A a k.
  EXPECT_EQ(View("{\"\xC5\xBFource\":\"long s\"}"), R"({"source":"long s"})");
  EXPECT_EQ(View("{\"dm_verity\":{\"bloc\xE2\x84\xAAsize\":512}}"),
            R"({"dm_verity":{"blocksize":512}})");
  // Metadata keys are map keys: kept as they are.
  EXPECT_EQ(View(R"({"IMAGE_PULL":{"METADATA":{"K":"v"}}})"),
            R"({"image_pull":{"metadata":{"K":"v"}}})");
  // Keys Go's structs do not have are dropped, salt among them.
  EXPECT_EQ(View(R"({"volume_type":"a","volume-type":"b","dm_verity":{"salt":1}})"),
            R"({"volume_type":"a","dm_verity":{}})");
}

TEST(GoJsonViewTest, RepeatedKeysDecodeIntoWhatIsThere) {
  EXPECT_EQ(View(R"({"volume_type":"a","VOLUME_TYPE":"b"})"), R"({"volume_type":"b"})");
  EXPECT_EQ(View(R"({"VOLUME_TYPE":"b","volume_type":"a"})"), R"({"volume_type":"a"})");
  EXPECT_EQ(View(R"({"image_pull":{"metadata":{"k":"v"}},"image_pull":{"metadata":{"j":"w"}}})"),
            R"({"image_pull":{"metadata":{"k":"v","j":"w"}}})");
  EXPECT_EQ(View(R"({"options":["a","b"],"options":["c"]})"), R"({"options":["c"]})");
}

TEST(GoJsonViewTest, NullKeepsAValueAndEmptiesAPointerMapOrSlice) {
  EXPECT_EQ(View(R"({"volume_type":"a","source":"x","source":null})"),
            R"({"volume_type":"a","source":"x"})");
  EXPECT_EQ(View(R"({"image_pull":{"metadata":{"k":null}}})"),
            R"({"image_pull":{"metadata":{"k":""}}})");
  EXPECT_EQ(View(R"({"image_pull":{"metadata":{"k":"v"}},"image_pull":null})"), "{}");
  EXPECT_EQ(View(R"({"image_pull":{"metadata":{"k":"v"},"metadata":null}})"),
            R"({"image_pull":{}})");
  EXPECT_EQ(View(R"({"options":["a"],"options":null})"), "{}");
  EXPECT_EQ(View("null"), "{}");
}

TEST(GoJsonViewTest, NullInAnArrayLeavesTheElementAsItWas) {
  // Go decodes an array into the slice's existing elements (its length set
  // to zero, its backing array kept): a null element is no error and keeps
  // what that element held, "" for a new one.
  EXPECT_EQ(View(R"({"options":["a",null]})"), R"({"options":["a",""]})");
  EXPECT_EQ(View(R"({"options":["x","y"],"options":[null]})"), R"({"options":["x"]})");
  EXPECT_EQ(View(R"({"options":["x","y"],"options":["a"],"options":["b",null]})"),
            R"({"options":["b","y"]})");
  // An empty array, and null, leave no backing array.
  EXPECT_EQ(View(R"({"options":["x"],"options":[],"options":[null]})"), R"({"options":[""]})");
  EXPECT_EQ(View(R"({"options":["x"],"options":null,"options":[null]})"), R"({"options":[""]})");
}

TEST(GoJsonViewTest, AWrongTypeIsAnErrorEvenIfALaterKeyIsRight) {
  EXPECT_THAT(View(R"({"source":1,"source":"s"})"),
              HasSubstr("error: KataVirtualVolume field source: expected a string, got number"));
  EXPECT_THAT(View(R"({"dm_verity":{"blocknum":-1}})"),
              HasSubstr("dm_verity.blocknum: expected an unsigned 64-bit integer"));
  EXPECT_THAT(View(R"({"dm_verity":{"blocknum":1.0}})"), HasSubstr("dm_verity.blocknum"));
  EXPECT_THAT(View(R"({"image_pull":{"metadata":{"k":1}}})"),
              HasSubstr(R"(image_pull.metadata["k"]: expected a string)"));
  EXPECT_THAT(View(R"({"options":["a",2]})"), HasSubstr("options[1]"));
  EXPECT_THAT(View(R"({"image_pull":[]})"), HasSubstr("image_pull: expected an object, got array"));
  EXPECT_THAT(View("[]"), HasSubstr("must be a JSON object, got array"));
  EXPECT_THAT(View("{not json"), HasSubstr("malformed"));
  // Go reads no byte order mark: "invalid character 'ï' looking for
  // beginning of value".
  EXPECT_THAT(View("\xEF\xBB\xBF{}"), HasSubstr("malformed"));
  // An unknown key may hold anything.
  EXPECT_EQ(View(R"({"unknown":{"source":1},"x":[{"a":null}]})"), "{}");
}

// Go's decoder makes U+FFFD of each byte of invalid UTF-8 in a string and
// of a \u escape of a surrogate without its pair; nlohmann refuses both.
TEST(GoJsonViewTest, WhatGoReadsAsReplacementCharacters) {
  const std::string r = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {R"({"source":"\ud800x"})", r + "x"},
      {R"({"source":"\udc00x"})", r + "x"},
      {R"({"source":"\ud83d\ude00"})", "\xF0\x9F\x98\x80"},
      {R"({"source":"\ud800\u0041"})", r + "A"},
      {R"({"source":"\ud800\ud800"})", r + r},
      {"{\"source\":\"a\xFF" "b\"}", "a" + r + "b"},
      {"{\"source\":\"a\xED\xA0\x80" "b\"}", "a" + r + r + r + "b"},
      {"{\"source\":\"a\xC0\x80" "b\"}", "a" + r + r + "b"},
      {"{\"source\":\"a\xE2\x82\"}", "a" + r + r},
      {"{\"source\":\"\\\"\xFF\"}", "\"" + r},
  };
  for (const auto& [json, source] : cases) {
    absl::StatusOr<nlohmann::ordered_json> view = GoJsonView(json);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ((*view)["source"], source) << json;
  }
  // A key so read names no field; outside a string it is a syntax error.
  EXPECT_EQ(View("{\"\xFFsource\":\"x\"}"), "{}");
  EXPECT_THAT(View("{\"source\":\"x\"}\xFF"), HasSubstr("malformed"));
}

}  // namespace
}  // namespace kata_volume
