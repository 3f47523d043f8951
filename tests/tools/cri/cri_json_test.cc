// Unit tests for the JSON renderings of CRI messages, plus a wire check that
// our subset proto encodes field numbers exactly as upstream CRI does.
#include "cri_json.h"

#include <gtest/gtest.h>

#include <string>

namespace cri_client {
namespace {

TEST(CriJson, Image) {
  runtime::v1::Image img;
  img.set_id("sha256:abc");
  img.add_repo_tags("127.0.0.1:5000/x:1");
  img.add_repo_digests("127.0.0.1:5000/x@sha256:def");
  img.set_size(1234567890123ULL);
  img.mutable_uid()->set_value(1234);
  (*img.mutable_spec()->mutable_annotations())["k"] = "v";
  nlohmann::json j = ImageToJson(img);
  EXPECT_EQ(j["id"], "sha256:abc");
  EXPECT_EQ(j["repo_tags"][0], "127.0.0.1:5000/x:1");
  EXPECT_EQ(j["repo_digests"][0], "127.0.0.1:5000/x@sha256:def");
  EXPECT_EQ(j["size"].get<uint64_t>(), 1234567890123ULL);
  EXPECT_EQ(j["uid"], 1234);
  EXPECT_EQ(j["annotations"]["k"], "v");
  EXPECT_FALSE(ImageToJson(runtime::v1::Image())
                   .contains("uid"));  // unset wrapper stays absent
}

TEST(CriJson, StatusInfoIsParsedWhenJson) {
  runtime::v1::ImageStatusResponse s;
  s.mutable_image()->set_id("sha256:1");
  (*s.mutable_info())["info"] = R"({"chainID":"sha256:2"})";
  (*s.mutable_info())["plain"] = "not json {";
  nlohmann::json j = ImageStatusToJson(s);
  EXPECT_EQ(j["present"], true);
  EXPECT_EQ(j["info"]["info"]["chainID"], "sha256:2");
  EXPECT_EQ(j["info"]["plain"], "not json {");
}

TEST(CriJson, Version) {
  runtime::v1::VersionResponse v;
  v.set_runtime_name("containerd");
  v.set_runtime_api_version("v1");
  nlohmann::json j = VersionToJson(v);
  EXPECT_EQ(j["runtime_name"], "containerd");
  EXPECT_EQ(j["runtime_api_version"], "v1");
}

// Field numbers must match k8s.io/cri-api: ImageSpec.user_specified_image is
// 18 (tag 0x92 0x01), runtime_handler 19 (0x9a 0x01);
// PodSandboxConfig.annotations is 7 (tag 0x3a); PullImageRequest.sandbox_config
// is 3 (tag 0x1a).
TEST(Wire, FieldNumbersMatchUpstream) {
  runtime::v1::ImageSpec spec;
  spec.set_user_specified_image("a");
  spec.set_runtime_handler("b");
  const std::string bytes = spec.SerializeAsString();
  EXPECT_EQ(bytes, std::string("\x92\x01\x01"
                               "a"
                               "\x9a\x01\x01"
                               "b",
                               8));

  runtime::v1::PullImageRequest req;
  (*req.mutable_sandbox_config()->mutable_annotations())["k"] = "v";
  const std::string pull = req.SerializeAsString();
  // sandbox_config(3) { annotations(7) { key(1)="k" value(2)="v" } }
  EXPECT_EQ(pull, std::string("\x1a\x08\x3a\x06\x0a\x01k\x12\x01v", 10));
}

}  // namespace
}  // namespace cri_client
