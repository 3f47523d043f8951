// Tests for TOML config file parsing, validation and error messages.
#include "snapshotter/config/config_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace config {
namespace {

using ::testing::HasSubstr;

// The error message of parsing text as "test.toml"; fails if it parses.
std::string ParseError(const std::string& text) {
  absl::StatusOr<Config> config = ParseConfig(text, "test.toml");
  EXPECT_FALSE(config.ok()) << "parsed unexpectedly:\n" << text;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

TEST(ConfigFileTest, EmptyFileYieldsDefaults) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile("", "test.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->config, Config());
  EXPECT_TRUE(file->keys_present.empty());
}

TEST(ConfigFileTest, ParsesEveryKey) {
  const std::string text = R"(
version = 1
root = "/srv/gp"
address = "/run/gp/gp.sock"
log_level = "debug"

[guest_pull]
enable = false
include = ["docker\\.io/.*", "127\\.0\\.0\\.1:5000/.*"]
exclude = ["registry\\.k8s\\.io/pause:.*"]
mount_type = "fuse3.my-helper"

[verity]
mode = "required"
layer_cache = "/etc/gp/layers-cache.json"
write_passwd = false

[metrics]
address = "127.0.0.1:9110"
)";
  absl::StatusOr<ConfigFile> file = ParseConfigFile(text, "test.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  const Config& config = file->config;
  EXPECT_EQ(config.version, 1);
  EXPECT_EQ(config.root, "/srv/gp");
  EXPECT_EQ(config.address, "/run/gp/gp.sock");
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
  EXPECT_FALSE(config.guest_pull.enable);
  EXPECT_EQ(config.guest_pull.include,
            (std::vector<std::string>{"docker\\.io/.*",
                                      "127\\.0\\.0\\.1:5000/.*"}));
  EXPECT_EQ(config.guest_pull.exclude,
            std::vector<std::string>{"registry\\.k8s\\.io/pause:.*"});
  EXPECT_EQ(config.guest_pull.mount_type, "fuse3.my-helper");
  EXPECT_EQ(config.verity.mode, VerityMode::kRequired);
  EXPECT_EQ(config.verity.layer_cache, "/etc/gp/layers-cache.json");
  EXPECT_FALSE(config.verity.write_passwd);
  EXPECT_EQ(config.metrics.address, "127.0.0.1:9110");
  EXPECT_EQ(file->keys_present,
            (std::set<std::string>{
                "version", "root", "address", "log_level", "guest_pull.enable",
                "guest_pull.include", "guest_pull.exclude",
                "guest_pull.mount_type", "verity.mode", "verity.layer_cache",
                "verity.write_passwd", "metrics.address"}));
}

TEST(ConfigFileTest, UnsetKeysKeepTheirDefaults) {
  absl::StatusOr<ConfigFile> file =
      ParseConfigFile("[verity]\nmode = \"off\"\n", "test.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  Config expected;
  expected.verity.mode = VerityMode::kOff;
  EXPECT_EQ(file->config, expected);
  EXPECT_EQ(file->keys_present, std::set<std::string>{"verity.mode"});
}

TEST(ConfigFileTest, DottedKeysAndInlineTablesWork) {
  absl::StatusOr<Config> config = ParseConfig(
      "guest_pull.enable = false\nmetrics = { address = \"[::1]:9110\" }\n",
      "test.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->guest_pull.enable);
  EXPECT_EQ(config->metrics.address, "[::1]:9110");
}

TEST(ConfigFileTest, EmptyIncludeListIsAnError) {
  const std::string message = ParseError("[guest_pull]\n\ninclude = []\n");
  EXPECT_THAT(message, HasSubstr("line 3"));
  EXPECT_THAT(message, HasSubstr("key \"guest_pull.include\""));
  EXPECT_THAT(message, HasSubstr("guest_pull.enable = false"));
}

TEST(ConfigFileTest, EmptyExcludeListIsAllowed) {
  absl::StatusOr<Config> config =
      ParseConfig("[guest_pull]\nexclude = []\n", "test.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->guest_pull.exclude.empty());
}

TEST(ConfigFileTest, UnknownTopLevelKeyNamesKeyAndLine) {
  const std::string message =
      ParseError("version = 1\n\nsocket = \"/run/x.sock\"\n");
  EXPECT_THAT(message, HasSubstr("test.toml: line 3"));
  EXPECT_THAT(message, HasSubstr("unknown key \"socket\""));
  EXPECT_THAT(message, HasSubstr("version, root, address, log_level"));
}

TEST(ConfigFileTest, UnknownNestedKeyNamesDottedKeyAndLine) {
  const std::string message = ParseError(
      "[guest_pull]\nenable = true\ninclud = [\".*\"]\n");
  EXPECT_THAT(message, HasSubstr("line 3"));
  EXPECT_THAT(message, HasSubstr("unknown key \"guest_pull.includ\""));
  EXPECT_THAT(message, HasSubstr("in [guest_pull]"));
}

TEST(ConfigFileTest, UnknownSectionNamesItsLine) {
  const std::string message =
      ParseError("log_level = \"info\"\n[verty]\nmode = \"off\"\n");
  EXPECT_THAT(message, HasSubstr("line 2"));
  EXPECT_THAT(message, HasSubstr("unknown key \"verty\""));
}

TEST(ConfigFileTest, UnknownKeyInSubTableIsQuotedWhenNeeded) {
  const std::string message =
      ParseError("[metrics]\n\"bind.addr\" = \"x\"\n");
  EXPECT_THAT(message, HasSubstr("unknown key \"metrics.'bind.addr'\""));
  EXPECT_THAT(message, HasSubstr("line 2"));
}

TEST(ConfigFileTest, WrongTypeNamesKeyAndLine) {
  std::string message = ParseError("\n\nroot = 42\n");
  EXPECT_THAT(message, HasSubstr("line 3"));
  EXPECT_THAT(message, HasSubstr("key \"root\" must be a string, not an integer"));

  message = ParseError("[guest_pull]\n\nenable = \"yes\"\n");
  EXPECT_THAT(message, HasSubstr("line 3"));
  EXPECT_THAT(message, HasSubstr("key \"guest_pull.enable\" must be a boolean"));

  message = ParseError("[guest_pull]\ninclude = \".*\"\n");
  EXPECT_THAT(message, HasSubstr("line 2"));
  EXPECT_THAT(message,
              HasSubstr("key \"guest_pull.include\" must be an array of strings"));

  message = ParseError("[verity]\nwrite_passwd = 1\n");
  EXPECT_THAT(message, HasSubstr("key \"verity.write_passwd\" must be a boolean"));

  message = ParseError("version = \"1\"\n");
  EXPECT_THAT(message, HasSubstr("key \"version\" must be an integer"));
}

TEST(ConfigFileTest, WrongTypeInArrayElementNamesIndexAndLine) {
  const std::string message =
      ParseError("[guest_pull]\nexclude = [\n  \"a\",\n  7,\n]\n");
  EXPECT_THAT(message, HasSubstr("line 4"));
  EXPECT_THAT(message, HasSubstr("key \"guest_pull.exclude[1]\" must be a string"));
}

TEST(ConfigFileTest, SectionThatIsNotATableIsAnError) {
  const std::string message = ParseError("verity = \"required\"\n");
  EXPECT_THAT(message, HasSubstr("line 1"));
  EXPECT_THAT(message, HasSubstr("key \"verity\" must be a table"));
}

TEST(ConfigFileTest, SyntaxErrorNamesFileLineAndColumn) {
  absl::StatusOr<Config> config =
      ParseConfig("version = 1\nroot = \"/x\n", "/etc/gp/config.toml");
  ASSERT_FALSE(config.ok());
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("/etc/gp/config.toml:2:"));
  EXPECT_THAT(message, HasSubstr("TOML syntax error"));
}

TEST(ConfigFileTest, DuplicateKeyIsASyntaxError) {
  const std::string message = ParseError("root = \"/a\"\nroot = \"/b\"\n");
  EXPECT_THAT(message, HasSubstr("test.toml:2:"));
}

TEST(ConfigFileTest, BadEnumValuesNameKeyAndLine) {
  std::string message = ParseError("log_level = \"verbose\"\n");
  EXPECT_THAT(message, HasSubstr("line 1"));
  EXPECT_THAT(message, HasSubstr("key \"log_level\""));
  EXPECT_THAT(message, HasSubstr("debug, info, warn, error"));

  message = ParseError("[verity]\nmode = \"strict\"\n");
  EXPECT_THAT(message, HasSubstr("line 2"));
  EXPECT_THAT(message, HasSubstr("key \"verity.mode\""));
  EXPECT_THAT(message, HasSubstr("off, best_effort, required"));
}

TEST(ConfigFileTest, BadRegexNamesElementAndLine) {
  const std::string message = ParseError(
      "[guest_pull]\ninclude = [\n  \".*\",\n  \"docker.io/(nginx\",\n]\n");
  EXPECT_THAT(message, HasSubstr("line 4"));
  EXPECT_THAT(message, HasSubstr("key \"guest_pull.include[1]\""));
  EXPECT_THAT(message, HasSubstr("invalid RE2 pattern"));
}

TEST(ConfigFileTest, UnsupportedVersionIsAnError) {
  EXPECT_THAT(ParseError("version = 2\n"),
              HasSubstr("unsupported config version 2"));
  EXPECT_THAT(ParseError("version = -1\n"),
              HasSubstr("unsupported config version -1"));
}

TEST(ConfigFileTest, RelativePathsAreRejected) {
  std::string message = ParseError("root = \"var/lib/gp\"\n");
  EXPECT_THAT(message, HasSubstr("key \"root\""));
  EXPECT_THAT(message, HasSubstr("not an absolute path"));

  message = ParseError("\n[verity]\nlayer_cache = \"layers-cache.json\"\n");
  EXPECT_THAT(message, HasSubstr("line 3"));
  EXPECT_THAT(message, HasSubstr("key \"verity.layer_cache\""));

  message = ParseError("address = \"gp.sock\"\n");
  EXPECT_THAT(message, HasSubstr("key \"address\""));
}

TEST(ConfigFileTest, AddressTooLongIsRejected) {
  const std::string address = "/run/" + std::string(110, 'x') + ".sock";
  const std::string message =
      ParseError("address = \"" + address + "\"\n");
  EXPECT_THAT(message, HasSubstr("line 1"));
  EXPECT_THAT(message, HasSubstr("key \"address\""));
  EXPECT_THAT(message, HasSubstr("shorter than 108 bytes"));
}

TEST(ConfigFileTest, BadMountTypeAndMetricsAddressAreRejected) {
  EXPECT_THAT(ParseError("[guest_pull]\nmount_type = \"overlay\"\n"),
              HasSubstr("key \"guest_pull.mount_type\""));
  EXPECT_THAT(ParseError("[metrics]\naddress = \"9110\"\n"),
              HasSubstr("key \"metrics.address\""));
}

TEST(ConfigFileTest, ReportsAllProblemsAtOnce) {
  const std::string message = ParseError(
      "root = \"relative\"\nbogus = 1\n[verity]\nmode = \"nope\"\n");
  EXPECT_THAT(message, HasSubstr("line 1"));
  EXPECT_THAT(message, HasSubstr("unknown key \"bogus\""));
  EXPECT_THAT(message, HasSubstr("key \"verity.mode\""));
  // In file order, though toml++ iterates keys alphabetically.
  EXPECT_LT(message.find("line 1"), message.find("line 2"));
  EXPECT_LT(message.find("line 2"), message.find("line 4"));
}

// A scratch directory under TEST_TMPDIR.
std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good());
}

TEST(LoadConfigFileTest, MissingFileIsFineWhenOptional) {
  const std::string path = TempDir() + "/does-not-exist.toml";
  absl::StatusOr<Config> config = LoadConfigFile(path, /*must_exist=*/false);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config());

  absl::StatusOr<std::optional<ConfigFile>> optional =
      LoadOptionalConfigFile(path);
  ASSERT_TRUE(optional.ok());
  EXPECT_FALSE(optional->has_value());
}

TEST(LoadConfigFileTest, MissingFileIsAnErrorWhenRequired) {
  const std::string path = TempDir() + "/does-not-exist.toml";
  absl::StatusOr<Config> config = LoadConfigFile(path, /*must_exist=*/true);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
}

TEST(LoadConfigFileTest, LoadsAFileAndNamesItInErrors) {
  const std::string path = TempDir() + "/good.toml";
  WriteFile(path, "log_level = \"warn\"\n");
  absl::StatusOr<Config> config = LoadConfigFile(path, true);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, LogLevel::kWarn);

  const std::string bad = TempDir() + "/bad.toml";
  WriteFile(bad, "\nlog_levl = \"warn\"\n");
  config = LoadConfigFile(bad, false);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr(bad + ": line 2: unknown key \"log_levl\""));
}

TEST(LoadConfigFileTest, DirectoryIsAnError) {
  const std::string dir = TempDir() + "/a-directory.toml";
  ASSERT_EQ(mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST, true);
  absl::StatusOr<Config> config = LoadConfigFile(dir, false);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("directory"));
}

TEST(LoadConfigFileTest, OversizedFileIsAnError) {
  const std::string path = TempDir() + "/huge.toml";
  WriteFile(path, "# " + std::string(kMaxConfigFileBytes, 'x') + "\n");
  absl::StatusOr<Config> config = LoadConfigFile(path, true);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("limit"));
}

TEST(LoadConfigFileTest, UnreadableFileIsAnErrorEvenWhenOptional) {
  if (geteuid() == 0) GTEST_SKIP() << "root can read any file";
  const std::string path = TempDir() + "/unreadable.toml";
  WriteFile(path, "");
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  absl::StatusOr<Config> config = LoadConfigFile(path, false);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace config
}  // namespace guest_pull
