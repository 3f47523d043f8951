// Tests for flag > environment > config file > default precedence.
#include "snapshotter/config/resolver.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace config {
namespace {

using ::testing::HasSubstr;

// A fake environment backed by a map.
EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](
             const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Writes files under a fresh directory in TEST_TMPDIR.
class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/resolver_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(system(("rm -rf '" + dir_ + "' && mkdir -p '" + dir_ + "'")
                         .c_str()),
              0);
    default_path_ = dir_ + "/default-config.toml";  // absent unless written
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::trunc);
    out << text;
    EXPECT_TRUE(out.good());
    return path;
  }

  absl::StatusOr<ResolvedConfig> Resolve(
      const FlagValues& flags, std::map<std::string, std::string> env = {}) {
    return ResolveConfig(flags, FakeEnv(std::move(env)), default_path_);
  }

  std::string dir_;
  std::string default_path_;
};

TEST_F(ResolverTest, NothingGivenAndNoFileYieldsDefaults) {
  absl::StatusOr<ResolvedConfig> resolved = Resolve({});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->config, Config());
  EXPECT_EQ(resolved->config_path, default_path_);
  EXPECT_FALSE(resolved->config_file_found);
  EXPECT_EQ(resolved->config_path_source, ValueSource::kDefault);
  EXPECT_EQ(resolved->root_source, ValueSource::kDefault);
  EXPECT_EQ(resolved->address_source, ValueSource::kDefault);
  EXPECT_EQ(resolved->log_level_source, ValueSource::kDefault);
}

TEST_F(ResolverTest, RealDefaultPathIsTheDocumentedOne) {
  EXPECT_STREQ(kDefaultConfigPath,
               "/etc/containerd-guest-pull-grpc/config.toml");
}

TEST_F(ResolverTest, FileAtDefaultPathIsLoaded) {
  Write("default-config.toml",
        "root = \"/srv/file\"\n[verity]\nmode = \"required\"\n");
  absl::StatusOr<ResolvedConfig> resolved = Resolve({});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(resolved->config_file_found);
  EXPECT_EQ(resolved->config.root, "/srv/file");
  EXPECT_EQ(resolved->root_source, ValueSource::kConfigFile);
  EXPECT_EQ(resolved->address_source, ValueSource::kDefault);
  EXPECT_EQ(resolved->config.verity.mode, VerityMode::kRequired);
}

TEST_F(ResolverTest, InvalidFileAtDefaultPathIsAnError) {
  Write("default-config.toml", "\nroot = 1\n");
  absl::StatusOr<ResolvedConfig> resolved = Resolve({});
  ASSERT_FALSE(resolved.ok());
  EXPECT_THAT(std::string(resolved.status().message()),
              HasSubstr(default_path_ + ": line 2: key \"root\""));
}

// One setting that flag, environment and file can all give.
struct Setting {
  std::optional<std::string> FlagValues::*flag;
  const char* env_name;
  const char* file_key;
  const char* file_value;
  const char* env_value;
  const char* flag_value;
  std::string (*effective)(const ResolvedConfig&);
  ValueSource ResolvedConfig::*source;
};

const Setting kSettings[] = {
    {&FlagValues::address, kEnvAddress, "address", "/run/file.sock",
     "/run/env.sock", "/run/flag.sock",
     [](const ResolvedConfig& r) { return r.config.address; },
     &ResolvedConfig::address_source},
    {&FlagValues::root, kEnvRoot, "root", "/srv/file", "/srv/env", "/srv/flag",
     [](const ResolvedConfig& r) { return r.config.root; },
     &ResolvedConfig::root_source},
    {&FlagValues::log_level, kEnvLogLevel, "log_level", "warn", "error",
     "debug",
     [](const ResolvedConfig& r) {
       return std::string(LogLevelName(r.config.log_level));
     },
     &ResolvedConfig::log_level_source},
};

TEST_F(ResolverTest, FlagBeatsEnvBeatsFileBeatsDefault) {
  for (const Setting& s : kSettings) {
    SCOPED_TRACE(s.file_key);
    const std::string file_text =
        std::string(s.file_key) + " = \"" + s.file_value + "\"\n";
    FlagValues flags;
    (flags.*s.flag) = s.flag_value;
    const std::map<std::string, std::string> env = {{s.env_name, s.env_value}};

    // Default: no file at the default path.
    absl::StatusOr<ResolvedConfig> r = Resolve({});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r).*s.source, ValueSource::kDefault);

    // File only.
    Write("default-config.toml", file_text);
    r = Resolve({});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(s.effective(*r), s.file_value);
    EXPECT_EQ((*r).*s.source, ValueSource::kConfigFile);

    // Env over file.
    r = Resolve({}, env);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(s.effective(*r), s.env_value);
    EXPECT_EQ((*r).*s.source, ValueSource::kEnvironment);

    // Flag over env and file.
    r = Resolve(flags, env);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(s.effective(*r), s.flag_value);
    EXPECT_EQ((*r).*s.source, ValueSource::kFlag);

    // Flag over file, no env.
    r = Resolve(flags);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(s.effective(*r), s.flag_value);

    // Env over default, no file.
    ASSERT_EQ(unlink(default_path_.c_str()), 0);
    r = Resolve({}, env);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(s.effective(*r), s.env_value);
    EXPECT_EQ((*r).*s.source, ValueSource::kEnvironment);
  }
}

TEST_F(ResolverTest, ConfigPathFlagBeatsEnvBeatsDefault) {
  Write("default-config.toml", "log_level = \"warn\"\n");
  const std::string env_file = Write("env.toml", "log_level = \"error\"\n");
  const std::string flag_file = Write("flag.toml", "log_level = \"debug\"\n");

  absl::StatusOr<ResolvedConfig> r = Resolve({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.log_level, LogLevel::kWarn);
  EXPECT_EQ(r->config_path_source, ValueSource::kDefault);

  r = Resolve({}, {{kEnvConfig, env_file}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.log_level, LogLevel::kError);
  EXPECT_EQ(r->config_path, env_file);
  EXPECT_EQ(r->config_path_source, ValueSource::kEnvironment);

  FlagValues flags;
  flags.config = flag_file;
  r = Resolve(flags, {{kEnvConfig, env_file}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.log_level, LogLevel::kDebug);
  EXPECT_EQ(r->config_path, flag_file);
  EXPECT_EQ(r->config_path_source, ValueSource::kFlag);
  EXPECT_TRUE(r->config_file_found);
}

TEST_F(ResolverTest, MissingConfigNamedByFlagIsAnError) {
  FlagValues flags;
  flags.config = dir_ + "/missing.toml";
  absl::StatusOr<ResolvedConfig> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("missing.toml"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("--config"));
}

TEST_F(ResolverTest, MissingConfigNamedByEnvIsAnError) {
  absl::StatusOr<ResolvedConfig> r =
      Resolve({}, {{kEnvConfig, dir_ + "/missing.toml"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(kEnvConfig));
}

TEST_F(ResolverTest, ExplicitDefaultPathMustExistToo) {
  FlagValues flags;
  flags.config = default_path_;
  EXPECT_EQ(Resolve(flags).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ResolverTest, EmptyEnvironmentValueIsUnset) {
  absl::StatusOr<ResolvedConfig> r =
      Resolve({}, {{kEnvRoot, ""}, {kEnvConfig, ""}, {kEnvLogLevel, ""}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config, Config());
  EXPECT_EQ(r->root_source, ValueSource::kDefault);
  EXPECT_EQ(r->config_path_source, ValueSource::kDefault);
}

TEST_F(ResolverTest, EmptyFlagIsAnError) {
  FlagValues flags;
  flags.address = "";
  absl::StatusOr<ResolvedConfig> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("--address: must not be empty"));
}

TEST_F(ResolverTest, InvalidFlagValueNamesTheFlag) {
  FlagValues flags;
  flags.root = "relative/dir";
  absl::StatusOr<ResolvedConfig> r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("--root=\"relative/dir\": "));
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("not an absolute path"));

  flags = FlagValues();
  flags.log_level = "loud";
  r = Resolve(flags);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("--log-level"));
}

TEST_F(ResolverTest, InvalidEnvValueNamesTheVariable) {
  absl::StatusOr<ResolvedConfig> r =
      Resolve({}, {{kEnvAddress, "/" + std::string(120, 'a')}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("GUEST_PULL_ADDRESS="));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("108 bytes"));
}

TEST_F(ResolverTest, OverridesKeepTheRestOfTheFile) {
  const std::string file =
      Write("c.toml",
            "root = \"/srv/file\"\n[guest_pull]\nexclude = [\"x\"]\n");
  FlagValues flags;
  flags.config = file;
  flags.root = "/srv/flag";
  absl::StatusOr<ResolvedConfig> r = Resolve(flags);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.root, "/srv/flag");
  EXPECT_EQ(r->config.guest_pull.exclude, std::vector<std::string>{"x"});
}

TEST_F(ResolverTest, DescribeSourcesSaysWhereEachValueCameFrom) {
  Write("default-config.toml", "log_level = \"warn\"\n");
  FlagValues flags;
  flags.root = "/srv/flag";
  absl::StatusOr<ResolvedConfig> r =
      Resolve(flags, {{kEnvAddress, "/run/env.sock"}});
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string line = DescribeSources(*r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("config=" + default_path_ + " (default)"));
  EXPECT_THAT(line, HasSubstr("root=/srv/flag (flag --root)"));
  EXPECT_THAT(line,
              HasSubstr("address=/run/env.sock (environment GUEST_PULL_ADDRESS)"));
  EXPECT_THAT(line, HasSubstr("log_level=warn (config file)"));

  ASSERT_EQ(unlink(default_path_.c_str()), 0);
  r = Resolve({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(DescribeSources(*r),
              HasSubstr("(default, not found: using defaults)"));
}

TEST(ProcessEnvironmentTest, ReadsTheRealEnvironment) {
  ASSERT_EQ(setenv("GUEST_PULL_TEST_VARIABLE", "value", 1), 0);
  EnvLookup env = ProcessEnvironment();
  EXPECT_EQ(env("GUEST_PULL_TEST_VARIABLE"), std::optional<std::string>("value"));
  ASSERT_EQ(unsetenv("GUEST_PULL_TEST_VARIABLE"), 0);
  EXPECT_EQ(env("GUEST_PULL_TEST_VARIABLE"), std::nullopt);
}

}  // namespace
}  // namespace config
}  // namespace guest_pull
