// Combines command-line flags, environment variables, the config file and the
// defaults into the effective Config, with precedence
// flag > environment > config file > default, and records where each of
// root, address, log_level and the config path came from.
#ifndef SNAPSHOTTER_CONFIG_RESOLVER_H_
#define SNAPSHOTTER_CONFIG_RESOLVER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/config/config.h"

namespace guest_pull {
namespace config {

inline constexpr char kEnvAddress[] = "GUEST_PULL_ADDRESS";
inline constexpr char kEnvRoot[] = "GUEST_PULL_ROOT";
inline constexpr char kEnvConfig[] = "GUEST_PULL_CONFIG";
inline constexpr char kEnvLogLevel[] = "GUEST_PULL_LOG_LEVEL";

// Flag values; each is set only if the flag was given on the command line.
// An explicitly empty flag (--root=) is an error.
struct FlagValues {
  std::optional<std::string> address;    // --address
  std::optional<std::string> root;       // --root
  std::optional<std::string> config;     // --config
  std::optional<std::string> log_level;  // --log-level
};

// Looks up an environment variable; nullopt if unset. An empty value is
// treated as unset by the resolver.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// getenv(3) of the running process.
EnvLookup ProcessEnvironment();

// Where a setting's value came from.
enum class ValueSource { kDefault, kConfigFile, kEnvironment, kFlag };

// "default", "config file", "environment", "flag".
absl::string_view ValueSourceName(ValueSource source);

// The effective configuration and the origin of the settings that can come
// from more than one place.
struct ResolvedConfig {
  Config config;
  std::string config_path;
  // False if the config file (at its default path) does not exist.
  bool config_file_found = false;
  ValueSource config_path_source = ValueSource::kDefault;
  ValueSource root_source = ValueSource::kDefault;
  ValueSource address_source = ValueSource::kDefault;
  ValueSource log_level_source = ValueSource::kDefault;
};

// Resolves the configuration. Errors (InvalidArgument, NotFound, ...) name
// the flag, environment variable or file key and line that is wrong; the
// daemon must not start on error. A config file named by --config or
// GUEST_PULL_CONFIG must exist; at default_config_path (a parameter only so
// tests can point it elsewhere) it may be absent.
absl::StatusOr<ResolvedConfig> ResolveConfig(
    const FlagValues& flags, const EnvLookup& env = ProcessEnvironment(),
    const std::string& default_config_path = kDefaultConfigPath);

// One line for the startup log, e.g.
// config=/etc/.../config.toml (default, not found) root=/var/lib/x (flag
// --root) address=/run/x.sock (environment GUEST_PULL_ADDRESS)
// log_level=debug (config file)
std::string DescribeSources(const ResolvedConfig& resolved);

}  // namespace config
}  // namespace guest_pull

#endif  // SNAPSHOTTER_CONFIG_RESOLVER_H_
