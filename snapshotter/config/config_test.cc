// Tests for the config defaults, value checks and DescribeConfig.
#include "snapshotter/config/config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace config {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, DefaultsMatchTheDocumentedValues) {
  const Config config;
  EXPECT_EQ(config.version, 1);
  EXPECT_EQ(config.root, "/var/lib/containerd-guest-pull-grpc");
  EXPECT_EQ(config.address,
            "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock");
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_TRUE(config.guest_pull.enable);
  EXPECT_EQ(config.guest_pull.include, std::vector<std::string>{".*"});
  EXPECT_TRUE(config.guest_pull.exclude.empty());
  EXPECT_EQ(config.guest_pull.mount_type, "fuse.guest-pull-overlayfs");
  EXPECT_EQ(config.verity.mode, VerityMode::kBestEffort);
  EXPECT_EQ(config.verity.layer_cache, "");
  EXPECT_TRUE(config.verity.write_passwd);
  EXPECT_EQ(config.metrics.address, "");
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ConfigTest, EqualityComparesEveryField) {
  Config a;
  Config b;
  EXPECT_EQ(a, b);
  b.guest_pull.exclude.push_back("x");
  EXPECT_NE(a, b);
  b = a;
  b.verity.write_passwd = false;
  EXPECT_NE(a, b);
  b = a;
  b.metrics.address = "127.0.0.1:9110";
  EXPECT_NE(a, b);
}

TEST(ConfigTest, LogLevelRoundTrips) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                         LogLevel::kError}) {
    auto parsed = ParseLogLevel(LogLevelName(level));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, level);
  }
  auto bad = ParseLogLevel("verbose");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("debug, info, warn, error"));
  EXPECT_FALSE(ParseLogLevel("INFO").ok());
  EXPECT_FALSE(ParseLogLevel("").ok());
}

TEST(ConfigTest, VerityModeRoundTrips) {
  for (VerityMode mode :
       {VerityMode::kOff, VerityMode::kBestEffort, VerityMode::kRequired}) {
    auto parsed = ParseVerityMode(VerityModeName(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  auto bad = ParseVerityMode("strict");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("off, best_effort, required"));
}

TEST(ConfigTest, RootMustBeANormalizedAbsolutePath) {
  EXPECT_TRUE(ValidateRoot("/var/lib/x").ok());
  EXPECT_THAT(std::string(ValidateRoot("var/lib/x").message()),
              HasSubstr("not an absolute path"));
  EXPECT_FALSE(ValidateRoot("").ok());
  EXPECT_FALSE(ValidateRoot("/").ok());
  EXPECT_FALSE(ValidateRoot("/var/lib/x/").ok());
  EXPECT_FALSE(ValidateRoot("/var//lib").ok());
  EXPECT_FALSE(ValidateRoot("/var/../etc").ok());
  EXPECT_FALSE(ValidateRoot("/var/./lib").ok());
  EXPECT_FALSE(ValidateRoot(absl::string_view("/var\0x", 6)).ok());
}

TEST(ConfigTest, AddressMustBeAShortAbsoluteSocketPath) {
  EXPECT_TRUE(ValidateAddress("/run/x.sock").ok());
  EXPECT_FALSE(ValidateAddress("run/x.sock").ok());
  EXPECT_THAT(std::string(ValidateAddress("unix:///run/x.sock").message()),
              HasSubstr("unix://"));
  const std::string longest = "/" + std::string(106, 'a');  // 107 bytes
  EXPECT_TRUE(ValidateAddress(longest).ok());
  const std::string too_long = "/" + std::string(107, 'a');  // 108 bytes
  absl::Status status = ValidateAddress(too_long);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("108 bytes"));
}

TEST(ConfigTest, MountTypeMustBeFuse) {
  EXPECT_TRUE(ValidateMountType("fuse.guest-pull-overlayfs").ok());
  EXPECT_TRUE(ValidateMountType("fuse3.guest-pull-overlayfs").ok());
  EXPECT_THAT(std::string(ValidateMountType("overlay").message()),
              HasSubstr("\"fuse.\" or \"fuse3.\""));
  EXPECT_FALSE(ValidateMountType("fuse.").ok());
  EXPECT_FALSE(ValidateMountType("fuse").ok());
  EXPECT_FALSE(ValidateMountType("fuse.a;rm -rf /").ok());
  EXPECT_FALSE(ValidateMountType("fuse.a/b").ok());
}

TEST(ConfigTest, LayerCacheIsEmptyOrAbsolute) {
  EXPECT_TRUE(ValidateLayerCachePath("").ok());
  EXPECT_TRUE(ValidateLayerCachePath("/etc/x/layers-cache.json").ok());
  EXPECT_FALSE(ValidateLayerCachePath("layers-cache.json").ok());
}

TEST(ConfigTest, MetricsAddressIsEmptyOrHostPort) {
  EXPECT_TRUE(ValidateMetricsAddress("").ok());
  EXPECT_TRUE(ValidateMetricsAddress("127.0.0.1:9110").ok());
  EXPECT_TRUE(ValidateMetricsAddress("0.0.0.0:9110").ok());
  EXPECT_TRUE(ValidateMetricsAddress("localhost:9110").ok());
  EXPECT_TRUE(ValidateMetricsAddress("[::1]:9110").ok());
  EXPECT_FALSE(ValidateMetricsAddress("9110").ok());
  EXPECT_FALSE(ValidateMetricsAddress(":9110").ok());
  EXPECT_FALSE(ValidateMetricsAddress("127.0.0.1:").ok());
  EXPECT_FALSE(ValidateMetricsAddress("127.0.0.1:0").ok());
  EXPECT_FALSE(ValidateMetricsAddress("127.0.0.1:65536").ok());
  EXPECT_FALSE(ValidateMetricsAddress("127.0.0.1:-1").ok());
  EXPECT_FALSE(ValidateMetricsAddress("::1:9110").ok());
  EXPECT_FALSE(ValidateMetricsAddress("[::1]9110").ok());
  EXPECT_FALSE(ValidateMetricsAddress("http://127.0.0.1:9110").ok());
}

TEST(ConfigTest, PatternMustCompile) {
  EXPECT_TRUE(ValidatePattern(".*").ok());
  EXPECT_TRUE(ValidatePattern("registry\\.k8s\\.io/pause:.*").ok());
  absl::Status status = ValidatePattern("docker.io/(nginx");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("docker.io/(nginx"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("missing )"));
}

TEST(ConfigTest, IncludeListMustNotBeEmpty) {
  EXPECT_TRUE(ValidateIncludeList({".*"}).ok());
  EXPECT_FALSE(ValidateIncludeList({}).ok());
  Config config;
  config.guest_pull.include.clear();
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              HasSubstr("guest_pull.include:"));
}

TEST(ConfigTest, ValidateConfigReportsEveryBadField) {
  Config config;
  config.root = "relative";
  config.guest_pull.exclude = {"ok", "("};
  config.metrics.address = "nope";
  absl::Status status = ValidateConfig(config);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("root:"));
  EXPECT_THAT(message, HasSubstr("guest_pull.exclude[1]:"));
  EXPECT_THAT(message, HasSubstr("metrics.address:"));
}

TEST(ConfigTest, DescribeConfigIsOneLineWithEverySetting) {
  Config config;
  config.guest_pull.exclude = {"registry\\.k8s\\.io/pause:.*"};
  config.metrics.address = "127.0.0.1:9110";
  const std::string line = DescribeConfig(config);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("root=/var/lib/containerd-guest-pull-grpc"));
  EXPECT_THAT(line, HasSubstr("log_level=info"));
  EXPECT_THAT(line, HasSubstr("enable=true"));
  EXPECT_THAT(line, HasSubstr("include=[\".*\"]"));
  EXPECT_THAT(line, HasSubstr("pause"));
  EXPECT_THAT(line, HasSubstr("mount_type=fuse.guest-pull-overlayfs"));
  EXPECT_THAT(line, HasSubstr("mode=best_effort"));
  EXPECT_THAT(line, HasSubstr("layer_cache=none"));
  EXPECT_THAT(line, HasSubstr("metrics={address=127.0.0.1:9110}"));
  EXPECT_THAT(DescribeConfig(Config()), HasSubstr("metrics={address=off}"));
}

}  // namespace
}  // namespace config
}  // namespace guest_pull
