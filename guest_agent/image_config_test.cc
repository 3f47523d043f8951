#include "guest_agent/image_config.h"

#include <string>

#include "gtest/gtest.h"

namespace guest_pull::guest_agent {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

TEST(ImageConfigTest, ParsesAManifest) {
  absl::StatusOr<ImageManifest> m = ParseImageManifest(
      R"({"schemaVersion":2,"config":{"digest":")" + kA + R"("},"layers":[{"digest":")" + kB + R"("}]})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config_digest, kA);
  EXPECT_EQ(m->layer_digests, std::vector<std::string>{kB});
}

TEST(ImageConfigTest, RefusesIndexesAndBadDigests) {
  EXPECT_FALSE(ParseImageManifest(R"({"manifests":[]})").ok());
  EXPECT_FALSE(ParseImageManifest(R"({"config":{"digest":"md5:x"},"layers":[{"digest":")" + kB + R"("}]})").ok());
  EXPECT_FALSE(ParseImageManifest(R"({"config":{"digest":")" + kA + R"("},"layers":[]})").ok());
  EXPECT_FALSE(ParseImageManifest("not json").ok());
}

TEST(ImageConfigTest, ParsesAConfig) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(
      R"({"rootfs":{"type":"layers","diff_ids":[")" + kA + R"("]},"config":{"Entrypoint":["/bin/sh"],)"
      R"("Cmd":["-c","id"],"Env":["PATH=/bin"],"WorkingDir":"/w","User":"guest"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->diff_ids, std::vector<std::string>{kA});
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(c->cmd, (std::vector<std::string>{"-c", "id"}));
  EXPECT_EQ(c->env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(c->working_dir, "/w");
  EXPECT_EQ(c->user, "guest");
  EXPECT_FALSE(ParseImageConfig(R"({"config":{}})").ok());
  EXPECT_FALSE(ParseImageConfig(R"({"rootfs":{"diff_ids":["nope"]}})").ok());
}

// A field of the wrong type is refused, not read as absent: a numeric User
// would otherwise run the process as root.
TEST(ImageConfigTest, RefusesFieldsOfTheWrongType) {
  const std::string rootfs = R"("rootfs":{"diff_ids":[")" + kA + R"("]})";
  EXPECT_FALSE(ParseImageConfig("{" + rootfs + R"(,"config":{"User":1000}})").ok());
  EXPECT_FALSE(ParseImageConfig("{" + rootfs + R"(,"config":{"WorkingDir":["/w"]}})").ok());
  EXPECT_FALSE(ParseImageConfig("{" + rootfs + R"(,"config":"Entrypoint"})").ok());
  absl::StatusOr<ImageConfig> c = ParseImageConfig("{" + rootfs + R"(,"config":null})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->user, "");
}

// The process chroots and then chdirs to the working dir: a relative one
// would be resolved from the agent's cwd, outside the container's rootfs.
TEST(ImageConfigTest, RefusesARelativeWorkingDir) {
  const std::string rootfs = R"("rootfs":{"diff_ids":[")" + kA + R"("]})";
  absl::StatusOr<ImageConfig> c = ParseImageConfig("{" + rootfs + R"(,"config":{"WorkingDir":"run/agent"}})");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not absolute"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace guest_pull::guest_agent
