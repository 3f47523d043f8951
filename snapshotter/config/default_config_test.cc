// Tests that the embedded default config documents every key and parses to
// exactly the built-in defaults.
#include "snapshotter/config/default_config.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/config/config.h"
#include "snapshotter/config/config_file.h"

namespace guest_pull {
namespace config {
namespace {

using ::testing::HasSubstr;

TEST(DefaultConfigTest, ParsesToExactlyTheDefaults) {
  absl::StatusOr<Config> config = ParseConfig(kDefaultConfigToml, "<default>");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config());
}

TEST(DefaultConfigTest, SetsEveryKeyOfTheSchema) {
  absl::StatusOr<ConfigFile> file =
      ParseConfigFile(kDefaultConfigToml, "<default>");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->keys_present,
            (std::set<std::string>{
                "version", "root", "address", "log_level", "guest_pull.enable",
                "guest_pull.include", "guest_pull.exclude",
                "guest_pull.mount_type", "verity.mode", "verity.layer_cache",
                "verity.write_passwd", "metrics.address"}));
}

TEST(DefaultConfigTest, NamesTheFlagsAndEnvironmentVariables) {
  const std::string text = kDefaultConfigToml;
  for (const char* name :
       {"--root", "GUEST_PULL_ROOT", "--address", "GUEST_PULL_ADDRESS",
        "--log-level", "GUEST_PULL_LOG_LEVEL", "--config", "GUEST_PULL_CONFIG",
        kDefaultConfigPath}) {
    EXPECT_THAT(text, HasSubstr(name));
  }
}

TEST(DefaultConfigTest, EndsWithANewlineAndHasNoTabs) {
  const std::string text = kDefaultConfigToml;
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\t'), std::string::npos);
}

}  // namespace
}  // namespace config
}  // namespace guest_pull
