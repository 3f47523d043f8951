// One test per user-visible behaviour of the configuration: precedence,
// each kind of error with its key and line, each value check, the default
// config file, the command line and --help.
#include "snapshotter/config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/status_macros.h"

namespace snapshotter {
namespace config {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(
        tmp != nullptr ? tmp : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(
        system(("rm -rf '" + dir_ + "' && mkdir -p '" + dir_ + "'").c_str()),
        0);
    default_path_ = dir_ + "/default.toml";  // absent unless written
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }

  // Loads with `args` as the command line and `env` as the environment.
  absl::StatusOr<Config> Load(std::vector<std::string> args,
                              std::map<std::string, std::string> env = {}) {
    ASSIGN_OR_RETURN(CommandLine command_line, ParseCommandLine(args));
    return LoadConfig(
        command_line,
        [env](const char* name) -> const char* {
          auto it = env.find(name);
          return it == env.end() ? nullptr : it->second.c_str();
        },
        default_path_);
  }

  // Loads `text` as the config file; returns the error message ("" if ok).
  std::string FileError(const std::string& text) {
    absl::StatusOr<Config> config = Load({"--config", Write("c.toml", text)});
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(config.status().message());
  }

  std::string dir_;
  std::string default_path_;
};

TEST_F(ConfigTest, NothingGivenAndNoFileYieldsTheDocumentedDefaults) {
  absl::StatusOr<Config> config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->config_file_found);
  EXPECT_EQ(config->config_path, default_path_);
  EXPECT_EQ(config->root, "/var/lib/containerd-guest-pull-grpc");
  EXPECT_EQ(config->address,
            "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock");
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->spare_dirs, 8);
  EXPECT_TRUE(config->guest_pull.enable);
  EXPECT_EQ(config->guest_pull.include, std::vector<std::string>{".*"});
  EXPECT_TRUE(config->guest_pull.exclude.empty());
  EXPECT_EQ(config->guest_pull.mount_type, "fuse.guest-pull-overlayfs");
  EXPECT_EQ(config->guest_pull.verity_mode, guest_pull::VerityMode::kBestEffort);
  EXPECT_EQ(config->guest_pull.layer_cache, "");
  EXPECT_TRUE(config->guest_pull.write_passwd);
  EXPECT_EQ(config->metrics.address, "");
  EXPECT_EQ(std::string(kDefaultConfigPath),
            "/etc/containerd-guest-pull-grpc/config.toml");
}

TEST_F(ConfigTest, DefaultConfigFileSetsEveryKeyToItsDefault) {
  const std::string text = kDefaultConfigToml;
  absl::StatusOr<Config> config = Load({"--config", Write("d.toml", text)});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->config_file_found);
  Config expected;
  expected.config_path = config->config_path;
  expected.config_file_found = true;
  EXPECT_EQ(DescribeConfig(*config), DescribeConfig(expected));
  // Every key is set (uncommented) in its section, and every flag and
  // variable is named.
  std::string section;
  std::vector<std::string> set;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "[")) {
      section = std::string(line.substr(0, line.find(']'))) + ".";
    }
    if (!line.empty() && line[0] != '#' && absl::StrContains(line, " = ")) {
      set.push_back(section + std::string(line.substr(0, line.find(' '))));
    }
  }
  for (const Key& key : Keys()) {
    if (*key.name != '\0') {
      EXPECT_THAT(set, ::testing::Contains(key.name));
    }
    if (*key.flag != '\0') {
      EXPECT_THAT(text, HasSubstr(absl::StrCat("--", key.flag)));
    }
    if (*key.env != '\0') {
      EXPECT_THAT(text, HasSubstr(key.env));
    }
  }
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\t'), std::string::npos);
}

TEST_F(ConfigTest, ReadsEveryKeyIncludingDottedKeysAndInlineTables) {
  absl::StatusOr<Config> config = Load({"--config", Write("c.toml", R"(
version = 1
root = "/srv/gp"
address = "/run/gp/gp.sock"
log_level = "debug"
spare_dirs = 0
guest_pull.enable = false
guest_pull.include = ['docker\.io/.*', "127\\.0\\.0\\.1:5000/.*"]
guest_pull.exclude = []
guest_pull.mount_type = "fuse.nydus-overlayfs-guest-pull"
metrics = { address = "localhost:9110" }

[verity]
mode = "required"
layer_cache = "/etc/gp/layers-cache.json"
write_passwd = false
)")});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->root, "/srv/gp");
  EXPECT_EQ(config->address, "/run/gp/gp.sock");
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->spare_dirs, 0);
  EXPECT_FALSE(config->guest_pull.enable);
  EXPECT_EQ(
      config->guest_pull.include,
      (std::vector<std::string>{"docker\\.io/.*", "127\\.0\\.0\\.1:5000/.*"}));
  EXPECT_TRUE(config->guest_pull.exclude.empty());
  EXPECT_EQ(config->guest_pull.mount_type, "fuse.nydus-overlayfs-guest-pull");
  EXPECT_EQ(config->guest_pull.verity_mode, guest_pull::VerityMode::kRequired);
  EXPECT_EQ(config->guest_pull.layer_cache, "/etc/gp/layers-cache.json");
  EXPECT_FALSE(config->guest_pull.write_passwd);
  EXPECT_EQ(config->metrics.address, "localhost:9110");
}

TEST_F(ConfigTest, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  Write("default.toml",
        "root = \"/file/root\"\naddress = \"/file/a.sock\"\n"
        "log_level = \"warn\"\n[verity]\nmode = \"off\"\n");
  const std::map<std::string, std::string> env = {
      {"GUEST_PULL_ROOT", "/env/root"}, {"GUEST_PULL_ADDRESS", "/env/a.sock"}};
  absl::StatusOr<Config> config = Load({"--root=/flag/root"}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->root, "/flag/root");                        // flag
  EXPECT_EQ(config->address, "/env/a.sock");                    // environment
  EXPECT_EQ(config->log_level, LogLevel::kWarn);                // file
  EXPECT_EQ(config->guest_pull.verity_mode, guest_pull::VerityMode::kOff);  // file
  EXPECT_EQ(config->guest_pull.mount_type, "fuse.guest-pull-overlayfs");

  // The config file itself: flag > environment > default path.
  const std::string by_env = Write("env.toml", "log_level = \"error\"\n");
  const std::string by_flag = Write("flag.toml", "log_level = \"debug\"\n");
  config = Load({}, {{"GUEST_PULL_CONFIG", by_env}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, LogLevel::kError);
  config = Load({"--config", by_flag}, {{"GUEST_PULL_CONFIG", by_env}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->config_path, by_flag);
  EXPECT_EQ(config->root, "/var/lib/containerd-guest-pull-grpc");
}

TEST_F(ConfigTest, EmptyVariableIsUnsetButEmptyFlagIsAnError) {
  absl::StatusOr<Config> config = Load({}, {{"GUEST_PULL_ROOT", ""}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->root, "/var/lib/containerd-guest-pull-grpc");
  config = Load({"--root="});
  EXPECT_THAT(config.status().message(),
              HasSubstr("--root: must not be empty"));
}

TEST_F(ConfigTest, BadFlagOrVariableValueNamesIt) {
  absl::StatusOr<Config> config = Load({"--root", "var/lib/gp"});
  EXPECT_THAT(
      config.status().message(),
      HasSubstr(
          "--root=\"var/lib/gp\": \"var/lib/gp\" is not an absolute path"));
  config = Load({}, {{"GUEST_PULL_LOG_LEVEL", "verbose"}});
  EXPECT_THAT(
      config.status().message(),
      HasSubstr("GUEST_PULL_LOG_LEVEL=\"verbose\": invalid log level "
                "\"verbose\" (expected one of: debug, info, warn, error)"));
  config = Load({"--log-level=loud"}, {{"GUEST_PULL_LOG_LEVEL", "debug"}});
  EXPECT_THAT(config.status().message(), HasSubstr("--log-level=\"loud\""));
}

TEST_F(ConfigTest, AnAddressInsideTheRootIsRefused) {
  absl::StatusOr<Config> config =
      Load({"--root=/var/lib/gp", "--address=/var/lib/gp/snapshots/gp.sock"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              HasSubstr("address \"/var/lib/gp/snapshots/gp.sock\" is inside root "
                        "\"/var/lib/gp\""));
  config = Load({"--root=/var/lib/gp"},
                {{"GUEST_PULL_ADDRESS", "/var/lib/gp/gp.sock"}});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  // A sibling whose name starts like the root is outside it.
  EXPECT_TRUE(Load({"--root=/var/lib/gp", "--address=/var/lib/gp2.sock"}).ok());
}

// The same through symlinks: a socket path whose directory is a link into
// the root, or a root reached through a link, is still inside it.
TEST_F(ConfigTest, AnAddressInsideTheRootThroughASymlinkIsRefused) {
  // Short: a socket path must fit sockaddr_un (TEST_TMPDIR may not).
  char made[] = "/tmp/gp-config-XXXXXX";
  ASSERT_NE(mkdtemp(made), nullptr);
  const std::string base = made;
  ASSERT_EQ(mkdir((base + "/data").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((base + "/data/gp").c_str(), 0755), 0);
  ASSERT_EQ(symlink("data", (base + "/lib").c_str()), 0);
  ASSERT_EQ(symlink((base + "/data/gp").c_str(), (base + "/run").c_str()), 0);
  for (const auto& [root, address] :
       std::vector<std::pair<std::string, std::string>>{
           {base + "/lib/gp", base + "/data/gp/gp.sock"},
           {base + "/data/gp", base + "/run/gp.sock"},
           {base + "/lib/gp", base + "/run/sub/gp.sock"}}) {
    absl::StatusOr<Config> config =
        Load({"--root=" + root, "--address=" + address});
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << root << " " << address;
    EXPECT_THAT(config.status().message(),
                HasSubstr(absl::StrCat("address \"", address,
                                       "\" is inside root \"", root,
                                       "\" (through symlinks: \"")));
  }
  absl::StatusOr<Config> config =
      Load({"--root=" + base + "/lib/gp", "--address=" + base + "/run"});
  EXPECT_THAT(config.status().message(), HasSubstr("is the root (through symlinks"));
  EXPECT_TRUE(
      Load({"--root=" + base + "/lib/gp", "--address=" + base + "/data/gp.sock"})
          .ok());
  std::filesystem::remove_all(base);
}

TEST_F(ConfigTest, AnAddressThatIsTheRootOrHoldsItIsRefused) {
  absl::StatusOr<Config> config = Load({"--root=/var/lib/gp", "--address=/var/lib/gp"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("is the root"));
  config = Load({"--root=/var/lib/gp/sub", "--address=/var/lib/gp"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("is a directory holding root \"/var/lib/gp/sub\""));
  EXPECT_TRUE(Load({"--root=/var/lib/gp", "--address=/var/lib/gp.sock"}).ok());
}

// The address and the root may come from different places: the error
// names where each was set.
TEST_F(ConfigTest, AddressAndRootErrorsNameWhereEachWasSet) {
  const std::string file =
      Write("c.toml", "version = 1\naddress = \"/var/lib/gp/gp.sock\"\n");
  absl::StatusOr<Config> config = Load({"--config", file, "--root=/var/lib/gp"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              HasSubstr("(address from " + file + ": line 2, root from --root)"));
  config = Load({"--address=/var/lib/gp"}, {{"GUEST_PULL_ROOT", "/var/lib/gp"}});
  EXPECT_THAT(config.status().message(),
              HasSubstr("(address from --address, root from GUEST_PULL_ROOT)"));
  config = Load({"--address=/var/lib"});
  EXPECT_THAT(config.status().message(),
              HasSubstr("(address from --address, root from the default)"));
}

// A root or address that is not UTF-8 can only come from a flag or a
// variable (TOML is UTF-8): refused, as the Mount messages naming paths
// under the root must be UTF-8, and containerd's config cannot name such an
// address. A UTF-8 one (U+FFFD too) is fine.
TEST_F(ConfigTest, RootAndAddressMustBeUtf8) {
  absl::StatusOr<Config> config = Load({"--root=/var/lib/gp\xe9"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--root=\"/var/lib/gp\\351\""),
                    HasSubstr("is not valid UTF-8 (at byte 11): snapshot "
                              "paths under the root go into containerd's "
                              "Mount messages")));
  config = Load({}, {{"GUEST_PULL_ADDRESS", "/run/\xed\xa0\x80.sock"}});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("GUEST_PULL_ADDRESS="),
                    HasSubstr("is not valid UTF-8 (at byte 5)")));
  EXPECT_TRUE(Load({"--root=/var/lib/gp-\xc3\xa9\xef\xbf\xbd"}).ok());
}

// A trailing newline from a template (a DaemonSet's env value, a unit's
// variable) made the root another directory: the daemon created a fresh
// empty store at "/var/lib/gp\n" and served from it. Found by running the
// daemon with GUEST_PULL_ROOT=$'/tmp/r\n' (helper F's walk of
// docs/configuration.md).
TEST_F(ConfigTest, RootAndLayerCacheWithAControlCharacterAreRefused) {
  absl::StatusOr<Config> config =
      Load({}, {{"GUEST_PULL_ROOT", "/var/lib/gp\n"}});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("GUEST_PULL_ROOT=\"/var/lib/gp\\n\""),
                    HasSubstr("contains the control character \"\\n\" at "
                              "byte 11")));
  EXPECT_FALSE(Load({"--root=/var/lib/g\tp"}).ok());
  EXPECT_THAT(FileError("root = \"/srv/gp\\r\"\n"),
              AllOf(HasSubstr("line 1: key \"root\": \"/srv/gp\\r\" contains "
                              "the control character")));
  EXPECT_THAT(
      FileError("[verity]\nlayer_cache = \"/etc/gp/layers-cache.json\\n\"\n"),
      HasSubstr("line 2: key \"verity.layer_cache\": "
                "\"/etc/gp/layers-cache.json\\n\" contains the control "
                "character"));
  // Spaces and UTF-8 stay allowed.
  EXPECT_EQ(FileError("root = \"/srv/g p\\u00e9\"\n"), "");
}

// `root = ""` was refused with only "must not be empty".
TEST_F(ConfigTest, AnEmptyPathSaysWhatItMustBe) {
  EXPECT_THAT(FileError("root = \"\"\n"),
              HasSubstr("line 1: key \"root\": must be an absolute path "
                        "(starting with \"/\"), not empty"));
  EXPECT_THAT(FileError("address = \"\"\n"),
              HasSubstr("line 1: key \"address\": must be an absolute path"));
}

// "http://127.0.0.1:9110" was refused as an IPv6 address.
TEST_F(ConfigTest, AMetricsAddressWithASchemeIsCalledThat) {
  const std::string error =
      FileError("[metrics]\naddress = \"http://127.0.0.1:9110\"\n");
  EXPECT_THAT(error, AllOf(HasSubstr("line 2: key \"metrics.address\""),
                           HasSubstr("takes no scheme (drop \"http://\")"),
                           Not(HasSubstr("IPv6"))));
}

// A key holding a carriage return was printed raw: the terminal or journal
// showed "verity.'mode'", a key that looks allowed.
TEST_F(ConfigTest, AnUnknownKeyWithAControlCharacterIsShownEscaped) {
  const std::string error = FileError("[verity]\n\"mo\\rde\" = \"off\"\n");
  EXPECT_THAT(error, AllOf(HasSubstr("line 2: unknown key \"verity.\"mo\\rde\"\""),
                           Not(HasSubstr("\r"))));
}

TEST_F(ConfigTest, EmptyIncludeIsAcceptedWhenGuestPullIsOff) {
  EXPECT_EQ(FileError("[guest_pull]\nenable = false\ninclude = []\n"), "");
  EXPECT_THAT(FileError("[guest_pull]\nenable = true\ninclude = []\n"),
              HasSubstr("an empty include list"));
}

TEST_F(ConfigTest, ARootOverlayOptionsCannotCarryIsRefused) {
  for (const char* root : {"/var/lib/g,p", "/var/lib/g:p", "/var/lib/g\\p"}) {
    absl::StatusOr<Config> config = Load({std::string("--root=") + root});
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << root;
    EXPECT_THAT(config.status().message(),
                HasSubstr("which overlay mount options cannot carry in a path"));
  }
  absl::StatusOr<Config> config = Load({"--root=/var/lib/g:p"});
  EXPECT_THAT(config.status().message(), HasSubstr("contains \":\""));
}

TEST_F(ConfigTest, ConfigFileNamedByFlagOrVariableMustExist) {
  absl::StatusOr<Config> config = Load({"--config", dir_ + "/typo.toml"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      config.status().message(),
      AllOf(HasSubstr(dir_ + "/typo.toml\" does not exist (named by --config)"),
            HasSubstr("only the default " + default_path_ + " may be absent")));
  config = Load({}, {{"GUEST_PULL_CONFIG", dir_ + "/typo.toml"}});
  EXPECT_THAT(config.status().message(),
              HasSubstr("(named by GUEST_PULL_CONFIG)"));
  // Even when it names the default path (as the unit does); the message
  // then does not claim that this path may be absent.
  config = Load({"--config", default_path_});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr(default_path_ + "\" does not exist (named by --config)"),
                    HasSubstr("the default path may be absent only when no "
                              "--config names it"),
                    Not(HasSubstr("only the default"))));
  config = Load({}, {{"GUEST_PULL_CONFIG", default_path_}});
  EXPECT_THAT(config.status().message(),
              HasSubstr("may be absent only when no GUEST_PULL_CONFIG names it"));
}

TEST_F(ConfigTest, FileThatIsADirectoryOrTooBigIsAnErrorEvenAtTheDefaultPath) {
  ASSERT_EQ(mkdir(default_path_.c_str(), 0755), 0);
  EXPECT_THAT(Load({}).status().message(), HasSubstr("is a directory"));
  const std::string big =
      Write("big.toml", "# " + std::string(kMaxConfigFileBytes, 'x') + "\n");
  absl::StatusOr<Config> config = Load({"--config", big});
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("larger than the limit"),
                    HasSubstr("(named by --config)")));
}

// A symbolic link whose target is missing is not an absent file: the
// operator put a config there, and the daemon must not run on defaults.
TEST_F(ConfigTest, DanglingSymlinkIsAnErrorEvenAtTheDefaultPath) {
  const std::string target = dir_ + "/moved.toml";
  ASSERT_EQ(symlink(target.c_str(), default_path_.c_str()), 0);
  absl::StatusOr<Config> config = Load({});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(config.status().message(),
              HasSubstr("config file \"" + default_path_ +
                        "\" is a symbolic link to \"" + target +
                        "\", which does not exist"));
  config = Load({"--config", default_path_});
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("is a symbolic link"),
                    HasSubstr("(named by --config)")));
}

TEST_F(ConfigTest, DanglingSymlinkAboveTheFileIsAnError) {
  // /etc/<daemon> linked to a mount (a ConfigMap) that is not there yet.
  const std::string link = dir_ + "/etc-link", target = dir_ + "/not-mounted";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  absl::StatusOr<Config> config = Load({"--config", link + "/sub/config.toml"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(config.status().message(),
              HasSubstr("its directory \"" + link + "\" is a symbolic link to \"" + target +
                        "\", which does not exist"));
  // A link that resolves, above a missing file, is an absent file.
  ASSERT_EQ(mkdir(target.c_str(), 0755), 0);
  config = Load({"--config", link + "/sub/config.toml"});
  EXPECT_THAT(config.status().message(), Not(HasSubstr("symbolic link")));
}

TEST_F(ConfigTest, InvalidFileAtTheDefaultPathIsAnError) {
  Write("default.toml", "log_level = 3\n");
  EXPECT_THAT(Load({}).status().message(),
              HasSubstr(default_path_ +
                        ": line 1: key \"log_level\" must be a string"));
}

TEST_F(ConfigTest, SyntaxErrorsNameFileLineAndColumn) {
  EXPECT_THAT(FileError("version = 1\nroot = \"/x\n"),
              AllOf(HasSubstr("c.toml:2:"), HasSubstr("TOML syntax error")));
  EXPECT_THAT(FileError("root = \"/a\"\nroot = \"/b\"\n"),
              HasSubstr("c.toml:2:"));
}

TEST_F(ConfigTest, UnknownKeysNameTheKeyTheLineAndWhatIsAllowed) {
  EXPECT_THAT(
      FileError("version = 1\n\nsocket = \"/x.sock\"\n"),
      HasSubstr("c.toml: line 3: unknown key \"socket\" (allowed at the top "
                "level: version, root, address, log_level, spare_dirs, "
                "guest_pull, verity, metrics)"));
  EXPECT_THAT(FileError("[guest_pull]\nenable = true\ninclud = [\".*\"]\n"),
              HasSubstr("line 3: unknown key \"guest_pull.includ\" (allowed in "
                        "[guest_pull]: enable, include, exclude, mount_type)"));
  EXPECT_THAT(FileError("log_level = \"info\"\n[verty]\nmode = \"off\"\n"),
              HasSubstr("line 2: unknown key \"verty\""));
  EXPECT_THAT(FileError("[metrics]\n\"bind.addr\" = \"x\"\n"),
              HasSubstr("line 2: unknown key \"metrics.'bind.addr'\""));
}

TEST_F(ConfigTest, WrongTypesNameTheKeyAndTheLine) {
  EXPECT_THAT(
      FileError("\n\nroot = 42\n"),
      HasSubstr("line 3: key \"root\" must be a string, not an integer"));
  EXPECT_THAT(FileError("[guest_pull]\n\nenable = \"yes\"\n"),
              HasSubstr("line 3: key \"guest_pull.enable\" must be a boolean "
                        "(true or false), not a string"));
  EXPECT_THAT(
      FileError("[guest_pull]\ninclude = \".*\"\n"),
      HasSubstr(
          "line 2: key \"guest_pull.include\" must be an array of strings"));
  EXPECT_THAT(FileError("version = \"1\"\n"),
              HasSubstr("key \"version\" must be an integer, not a string"));
  EXPECT_THAT(FileError("[guest_pull]\nexclude = [\n  \"a\",\n  7,\n]\n"),
              HasSubstr("line 4: key \"guest_pull.exclude[1]\" must be a "
                        "string, not an integer"));
  EXPECT_THAT(
      FileError("verity = \"required\"\n"),
      HasSubstr(
          "line 1: key \"verity\" must be a table ([verity]), not a string"));
}

TEST_F(ConfigTest, EveryValueCheckNamesTheKeyAndTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"version = 2",
       "key \"version\": unsupported config version 2 (this build understands "
       "version 1)"},
      {"root = \"var/lib/gp\"",
       "key \"root\": \"var/lib/gp\" is not an absolute path"},
      {"root = \"/var//gp/\"",
       "key \"root\": \"/var//gp/\" is not a normalized path"},
      {"root = \"/\"", "key \"root\": \"/\" cannot be the state directory"},
      {"address = \"unix:///run/x.sock\"", "without the \"unix://\" prefix"},
      {"address = \"gp.sock\"",
       "key \"address\": \"gp.sock\" is not an absolute path"},
      {"address = \"/run/" + std::string(110, 'x') + "\"",
       "must be shorter than 108 bytes"},
      {"address = \"/run/gp%41.sock\"",
       "key \"address\": socket path \"/run/gp%41.sock\" must not contain "
       "\"%\""},
      // gRPC-Go (containerd's proxy plugins) parses "unix://" + address
      // as a URL: it would dial "/run/gp".
      {"address = \"/run/gp?x.sock\"",
       "key \"address\": socket path \"/run/gp?x.sock\" must not contain "
       "\"?\""},
      {"address = \"/run/gp#x.sock\"",
       "key \"address\": socket path \"/run/gp#x.sock\" must not contain "
       "\"#\""},
      {"address = \"/run/gp\\u0001.sock\"",
       "key \"address\": socket path \"/run/gp\\001.sock\" must not contain "
       "a control character"},
      {"spare_dirs = 65", "key \"spare_dirs\": 65 is out of range (0 to 64)"},
      {"spare_dirs = -1", "key \"spare_dirs\": -1 is out of range"},
      // A wrong type says what the key takes, not only the type.
      {"spare_dirs = \"8\"",
       "key \"spare_dirs\" must be an integer, not a string (empty snapshot "
       "directories made ahead of Prepares (0 to 64; 0 = none))"},
      {"[verity]\nmode = 3",
       "key \"verity.mode\" must be a string, not an integer (off, "
       "best_effort or required)"},
      {"log_level = \"verbose\"",
       "key \"log_level\": invalid log level \"verbose\" (expected one of: "
       "debug, info, warn, error)"},
      {"[guest_pull]\nmount_type = \"overlay\"",
       "key \"guest_pull.mount_type\": mount type \"overlay\" must start with "
       "\"fuse.\""},
      {"[guest_pull]\nmount_type = \"fuse.\"", "names no helper"},
      {"[guest_pull]\nmount_type = \"fuse.a;b\"", "may only contain letters"},
      // Types kata's shim would mount on the host.
      {"[guest_pull]\nmount_type = \"fuse3.guest-pull-overlayfs\"",
       "key \"guest_pull.mount_type\": mount type "
       "\"fuse3.guest-pull-overlayfs\" must start with \"fuse.\" (accepted: "
       "\"fuse.\" + a helper name starting with \"guest-pull-overlayfs\""},
      {"[guest_pull]\nmount_type = \"fuse.my-helper\"",
       "key \"guest_pull.mount_type\": mount type \"fuse.my-helper\" is not "
       "one kata's shim takes for a guest-pulled rootfs"},
      {"[guest_pull]\nmount_type = \"fuse.overlayfs-guest-pull\"",
       "\"nydus-overlayfs\" for stock kata"},
      {"[guest_pull]\ninclude = []",
       "key \"guest_pull.include\": an empty include list"},
      // An empty pattern matches nothing (a pattern fully matches the
      // reference, which is never empty); exclude = [""] was accepted.
      {"[guest_pull]\ninclude = [\"\", \"\"]",
       "key \"guest_pull.include[0]\": an empty pattern matches no image "
       "reference (a pattern must match the whole reference, which is never "
       "empty): remove it"},
      {"[guest_pull]\ninclude = [\".*\", \"\"]",
       "key \"guest_pull.include[1]\": an empty pattern matches no image "
       "reference"},
      {"[guest_pull]\nexclude = [\"\"]",
       "key \"guest_pull.exclude[0]\": an empty pattern matches no image "
       "reference"},
      {"[guest_pull]\nexclude = [\"docker\\\\.io/.*\", \"\"]\nenable = false",
       "key \"guest_pull.exclude[1]\": an empty pattern"},
      {"[guest_pull]\ninclude = [\".*\", \"docker.io/(nginx\"]",
       "key \"guest_pull.include[1]\": invalid RE2 pattern "
       "\"docker.io/(nginx\""},
      {"[guest_pull]\nexclude = [\"(\"]",
       "key \"guest_pull.exclude[0]\": invalid RE2 pattern"},
      {"[verity]\nmode = \"strict\"",
       "key \"verity.mode\": invalid verity mode \"strict\" (expected one of: "
       "off, best_effort, required)"},
      {"[verity]\nlayer_cache = \"/\"",
       "key \"verity.layer_cache\": \"/\" is a directory: name the layer cache file"},
      {"[verity]\nlayer_cache = \"layers-cache.json\"",
       "key \"verity.layer_cache\": \"layers-cache.json\" is not an absolute "
       "path"},
      {"[metrics]\naddress = \"9110\"",
       "key \"metrics.address\": metrics address \"9110\": missing port"},
      {"[metrics]\naddress = \"::1:9110\"", "IPv6 addresses are not supported"},
      {"[metrics]\naddress = \"[::1]:9110\"",
       "IPv6 addresses are not supported"},
      {"[metrics]\naddress = \"metrics.example:9110\"",
       "host must be an IPv4 address or \"localhost\""},
      {"[metrics]\naddress = \"999.1.1.1:9110\"",
       "host must be an IPv4 address"},
      {"[metrics]\naddress = \"127.0.0.1:70000\"",
       "port must be a number from 0 to 65535"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string line =
        absl::StrContains(text, '\n') ? "line 3: " : "line 2: ";
    EXPECT_THAT(FileError("\n" + text + "\n"),
                AllOf(HasSubstr(line), HasSubstr(expected)))
        << text;
  }
  // Exactly what the exporter listens on (ListenSpec).
  for (const char* good :
       {"0.0.0.0:9110", "127.0.0.1:9110", "localhost:9110", ":9110"}) {
    EXPECT_EQ(FileError(absl::StrCat("[metrics]\naddress = \"", good, "\"\n")),
              "")
        << good;
  }
  EXPECT_EQ(FileError("root = \"/srv/gp\"\n[verity]\nlayer_cache = \"\"\n"),
            "");
}

// The mount types kata's Go shim keeps off the host (the patch's rule and
// Nydus's for stock kata) are accepted; the others are refused above.
TEST_F(ConfigTest, MountTypesKataTakesForAGuestPulledRootfsAreAccepted) {
  for (const char* type :
       {"fuse.guest-pull-overlayfs", "fuse.guest-pull-overlayfs-v2",
        "fuse.nydus-overlayfs-guest-pull", "fuse.nydus-overlayfs"}) {
    EXPECT_EQ(
        FileError(absl::StrCat("[guest_pull]\nmount_type = \"", type, "\"\n")),
        "")
        << type;
  }
}

TEST_F(ConfigTest, ReportsEveryProblemInFileOrder) {
  const std::string message =
      FileError("root = \"relative\"\nbogus = 1\n[verity]\nmode = \"nope\"\n");
  EXPECT_THAT(message, AllOf(HasSubstr("line 1: key \"root\""),
                             HasSubstr("line 2: unknown key \"bogus\""),
                             HasSubstr("line 4: key \"verity.mode\"")));
  EXPECT_LT(message.find("line 1"), message.find("line 2"));
  EXPECT_LT(message.find("line 2"), message.find("line 4"));
}

TEST_F(ConfigTest, CommandLineTakesBothSpellingsAndRejectsTheUnknown) {
  absl::StatusOr<CommandLine> line =
      ParseCommandLine({"--log_level=debug", "-root", "/r", "--address",
                        "/a.sock", "--version"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(
      line->flags,
      (std::map<std::string, std::string>{
          {"log-level", "debug"}, {"root", "/r"}, {"address", "/a.sock"}}));
  EXPECT_TRUE(line->version);
  EXPECT_FALSE(line->help);
  EXPECT_TRUE(ParseCommandLine({"-h"})->help);
  EXPECT_TRUE(
      ParseCommandLine({"--print_default_config"})->print_default_config);
  EXPECT_TRUE(ParseCommandLine({"--check-config"})->check_config);
  EXPECT_THAT(ParseCommandLine({"--bogus"}).status().message(),
              HasSubstr("unknown flag --bogus"));
  // Also in the --name=value form the documentation uses.
  EXPECT_THAT(ParseCommandLine({"--adress=/x"}).status().message(),
              HasSubstr("unknown flag --adress (--help lists the flags)"));
  EXPECT_THAT(ParseCommandLine({"extra"}).status().message(),
              HasSubstr("unexpected argument \"extra\""));
  EXPECT_THAT(ParseCommandLine({"--root"}).status().message(),
              HasSubstr("--root needs a value"));
  // A value left out before another flag (`--root $ROOT --address /a` with
  // ROOT empty) is named so, not as "unexpected argument \"/a\"".
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--root", "--address", "/a.sock"},
           {"--root", "-address=/a.sock"},
           {"--root", "--log_level", "info"},
           {"--root", "--reset-store"},
           {"--root", "-h"}}) {
    EXPECT_THAT(ParseCommandLine(args).status().message(),
                HasSubstr("--root needs a value (the next argument, \"" +
                          args[1] + "\", is a flag)"));
  }
  EXPECT_THAT(ParseCommandLine({"--version=yes"}).status().message(),
              HasSubstr("must be true or false"));
}

TEST(HelpTextTest, ListsEveryFlagWithItsVariableAndDefault) {
  const std::string help = HelpText();
  EXPECT_THAT(
      help,
      AllOf(HasSubstr("  --address=PATH\n"),
            HasSubstr("env GUEST_PULL_ADDRESS; default "
                      "/run/containerd-guest-pull-grpc/"
                      "containerd-guest-pull-grpc.sock\n"),
            HasSubstr("  --root=DIR\n"),
            HasSubstr("env GUEST_PULL_ROOT; default "
                      "/var/lib/containerd-guest-pull-grpc\n"),
            HasSubstr("  --config=FILE\n"),
            HasSubstr("env GUEST_PULL_CONFIG; default "
                      "/etc/containerd-guest-pull-grpc/config.toml\n"),
            HasSubstr("  --log-level=LEVEL\n"),
            HasSubstr("env GUEST_PULL_LOG_LEVEL; default info\n"),
            HasSubstr("  --version\n"), HasSubstr("  --print-default-config\n"),
            HasSubstr("  --help\n")));
  for (const Key& key : Keys()) {
    if (*key.flag != '\0') {
      EXPECT_THAT(help, HasSubstr(absl::StrCat("--", key.flag)));
    }
    if (*key.env != '\0') {
      EXPECT_THAT(help, HasSubstr(key.env));
    }
    if (*key.name != '\0') {
      EXPECT_THAT(help, HasSubstr(absl::StrCat("  ", key.name, " = ")));
    }
  }
}

// The config section of --help says "TOML": its "key = value" lines, copied
// into a file, are a config that loads (string values were printed bare,
// `root = /var/lib/...`, a TOML syntax error).
TEST_F(ConfigTest, HelpTextKeyLinesAreAConfigFileThatLoads) {
  const std::string help = HelpText();
  const size_t section = help.find("\nConfig file keys");
  ASSERT_NE(section, std::string::npos);
  std::string file;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(help).substr(section), '\n')) {
    // Key lines are indented by two spaces, their descriptions by six.
    if (!absl::StartsWith(line, "  ") || absl::StartsWith(line, "   ")) continue;
    absl::StrAppend(&file, absl::StripPrefix(line, "  "), "\n");
  }
  EXPECT_THAT(file, AllOf(HasSubstr("root = \"/var/lib/containerd-guest-pull-grpc\"\n"),
                          HasSubstr("verity.mode = \"best_effort\"\n"),
                          HasSubstr("metrics.address = \"\"\n"),
                          HasSubstr("spare_dirs = 8\n")));
  absl::StatusOr<Config> config = Load({"--config", Write("help.toml", file)});
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << file;
  Config expected;
  expected.config_path = config->config_path;
  expected.config_file_found = true;
  EXPECT_EQ(DescribeConfig(*config), DescribeConfig(expected));
}

TEST(DescribeConfigTest, IsOneLineWithTheFileAndEveryKey) {
  const std::string line = DescribeConfig(Config());
  EXPECT_THAT(
      line,
      AllOf(HasSubstr("config=/etc/containerd-guest-pull-grpc/config.toml "
                      "(not found: using defaults)"),
            HasSubstr(" root=/var/lib/containerd-guest-pull-grpc "),
            HasSubstr(" guest_pull.include=[\".*\"] "),
            HasSubstr(" verity.mode=best_effort "),
            HasSubstr(" metrics.address=\"\"")));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(DescribeConfigTest, QuotesValuesThatWouldSplitTheLine) {
  Config config;
  config.config_path = "/etc/my config.toml";
  config.root = "/var/lib/a b\nroot=/x";  // a path may hold both
  const std::string line = DescribeConfig(config);
  EXPECT_THAT(line, AllOf(HasSubstr("config=\"/etc/my config.toml\" "),
                          HasSubstr(" root=\"/var/lib/a b\\nroot=/x\" ")));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  config.root = "/var/lib/gp-\xc3\xa9t\xc3\xa9";  // UTF-8 stays readable
  EXPECT_THAT(DescribeConfig(config),
              HasSubstr(" root=\"/var/lib/gp-\xc3\xa9t\xc3\xa9\" "));
}

}  // namespace
}  // namespace config
}  // namespace snapshotter
