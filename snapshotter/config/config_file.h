// Reading and validating the TOML config file (schema version 1).
//
// Every problem is reported with its source and line: unknown keys, wrong
// types and invalid values name the dotted key (e.g. "guest_pull.include[1]")
// and "line N"; TOML syntax errors name file:line:col. All problems found in a
// file are reported together, separated by "; ".
#ifndef SNAPSHOTTER_CONFIG_CONFIG_FILE_H_
#define SNAPSHOTTER_CONFIG_CONFIG_FILE_H_

#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/config/config.h"

namespace guest_pull {
namespace config {

// Largest config file accepted; anything bigger is certainly not a config.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// A parsed config file: the defaults overlaid with what the file sets.
struct ConfigFile {
  Config config;
  // Dotted keys of every value the file sets, e.g. "root",
  // "guest_pull.include" (tables themselves are not listed).
  std::set<std::string> keys_present;
};

// Parses and validates TOML text. source_name (a path, or e.g. "<default>")
// prefixes every error message.
absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view toml_text,
                                           absl::string_view source_name);

// ParseConfigFile without the list of keys.
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text,
                                   absl::string_view source_name);

// Reads and parses the file at path. Returns std::nullopt if it does not
// exist (ENOENT); any other problem (unreadable, a directory, too big,
// invalid) is an error.
absl::StatusOr<std::optional<ConfigFile>> LoadOptionalConfigFile(
    const std::string& path);

// Reads and parses the file at path. A missing file yields the defaults if
// must_exist is false and NotFound otherwise.
absl::StatusOr<Config> LoadConfigFile(const std::string& path, bool must_exist);

}  // namespace config
}  // namespace guest_pull

#endif  // SNAPSHOTTER_CONFIG_CONFIG_FILE_H_
