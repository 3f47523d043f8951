// The daemon's configuration: one table of keys (Keys() in keys.cc) drives
// the config file reader, the flags, the environment variables, --help and
// the startup log. Precedence: flag > environment > config file > default.
//
// Every problem is an error that names where it is: the file key and line
// (e.g. `config.toml: line 3: key "guest_pull.include[1]": ...`), the flag
// (`--root="x": ...`) or the variable (`GUEST_PULL_ROOT="x": ...`). The daemon
// does not start on any of them. Reference: docs/configuration.md.
#ifndef SNAPSHOTTER_CONFIG_CONFIG_H_
#define SNAPSHOTTER_CONFIG_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/guest_pull/options.h"
#include "snapshotter/spare_dirs.h"

namespace snapshotter {
namespace config {

inline constexpr char kDefaultConfigPath[] =
    "/etc/containerd-guest-pull-grpc/config.toml";
// Largest config file accepted; anything bigger is certainly not a config.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// spare_dirs: its default and the most it may be.
inline constexpr int64_t kDefaultSpareDirs = SpareDirs::kDefaultCapacity;
inline constexpr int64_t kMaxSpareDirs = 64;

// Minimum severity the daemon logs.
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Everything the daemon is configured with. Default-constructed = defaults.
struct Config {
  std::string root = "/var/lib/containerd-guest-pull-grpc";
  std::string address =
      "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock";
  LogLevel log_level = LogLevel::kInfo;
  // Empty active-snapshot directories kept made ahead of Prepares
  // (snapshotter/spare_dirs.h); 0 = none, each Prepare makes its own.
  int64_t spare_dirs = kDefaultSpareDirs;
  // [guest_pull] and [verity].
  guest_pull::GuestPullOptions guest_pull;
  struct Metrics {
    // host:port of the Prometheus endpoint; empty = off.
    std::string address;
  } metrics;
  // The config file read (--config, GUEST_PULL_CONFIG or the default) and
  // whether it existed (only the default path may be missing).
  std::string config_path = kDefaultConfigPath;
  bool config_file_found = false;
};

// A key's value, as the file, a flag or the environment gives it.
enum class KeyType { kInteger, kBool, kString, kStringList };
using Value =
    std::variant<int64_t, bool, std::string, std::vector<std::string>>;

// One row of the key table.
struct Key {
  // Dotted config file key ("guest_pull.include"); "" = not in the file.
  const char* name;
  KeyType type;
  // Command-line flag without "--" (dashed: "log-level"); "" = none.
  const char* flag;
  // Environment variable; "" = none.
  const char* env;
  // Placeholder of the flag's value in --help ("PATH"); "" for bool flags.
  const char* arg;
  // One line for --help.
  const char* doc;
  // Checks a value of `type` and stores it in the config; InvalidArgument
  // says what is wrong (the caller adds where).
  absl::Status (*set)(const Value& value, Config& config);
  // The key's value in `config` (the default: get(Config())).
  Value (*get)(const Config& config);
  // For kStringList keys: checks each element (reported at its own line).
  absl::Status (*check_element)(absl::string_view element) = nullptr;
};

// Every key, in documentation order.
const std::vector<Key>& Keys();

// What the command line says: flag values by flag name, and the actions.
struct CommandLine {
  std::map<std::string, std::string> flags;
  bool help = false;
  bool version = false;
  bool print_default_config = false;
  bool reset_store = false;
  bool check_config = false;
};

// Parses argv[1..]: --name=value, --name value, bool flags as --name; one
// or two dashes; dashes or underscores in names. Unknown flags and stray
// arguments are errors.
absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args);

// The --help text: every flag with its variable and default.
std::string HelpText();

// Looks up an environment variable; nullptr if unset.
using Getenv = std::function<const char*(const char*)>;

// The effective configuration. A config file named by --config or
// GUEST_PULL_CONFIG must exist; at default_config_path (a parameter so tests
// can move it) it may be absent. Set-but-empty variables count as unset; an
// empty flag is an error.
absl::StatusOr<Config> LoadConfig(
    const CommandLine& command_line, const Getenv& getenv,
    const std::string& default_config_path = kDefaultConfigPath);

// One line for the startup log: the config file, then key=value for every
// key.
std::string DescribeConfig(const Config& config);

// The commented default config file (--print-default-config); it sets every
// key to its default.
extern const char kDefaultConfigToml[];

}  // namespace config
}  // namespace snapshotter

#endif  // SNAPSHOTTER_CONFIG_CONFIG_H_
