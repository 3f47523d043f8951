// Flag > environment > config file > default precedence.
#include "snapshotter/config/resolver.h"

#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/config/config_file.h"

namespace guest_pull {
namespace config {
namespace {

// A value given by a flag or an environment variable, and who gave it.
struct Override {
  std::string value;
  ValueSource source = ValueSource::kDefault;
  // "--root" or "GUEST_PULL_ROOT", for messages.
  std::string origin;
};

// The flag value if set, else the non-empty environment value, else nullopt.
absl::StatusOr<std::optional<Override>> FindOverride(
    const std::optional<std::string>& flag, absl::string_view flag_name,
    const EnvLookup& env, const std::string& env_name) {
  if (flag.has_value()) {
    if (flag->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag_name, ": must not be empty"));
    }
    return std::optional<Override>(
        Override{*flag, ValueSource::kFlag, absl::StrCat("--", flag_name)});
  }
  std::optional<std::string> value = env(env_name);
  if (value.has_value() && !value->empty()) {
    return std::optional<Override>(
        Override{*value, ValueSource::kEnvironment, env_name});
  }
  return std::optional<Override>();
}

absl::Status OverrideError(const Override& given, const absl::Status& status) {
  return absl::InvalidArgumentError(
      absl::StrCat(given.origin, "=\"", absl::CEscape(given.value),
                   "\": ", status.message()));
}

// Source of a key that was not overridden: the file if it set it.
ValueSource FileOrDefault(const ConfigFile* file, const std::string& key) {
  if (file != nullptr && file->keys_present.count(key) > 0) {
    return ValueSource::kConfigFile;
  }
  return ValueSource::kDefault;
}

std::string DescribeOne(absl::string_view name, absl::string_view value,
                        ValueSource source, absl::string_view env_name,
                        absl::string_view flag_name) {
  std::string origin(ValueSourceName(source));
  if (source == ValueSource::kFlag) {
    absl::StrAppend(&origin, " --", flag_name);
  } else if (source == ValueSource::kEnvironment) {
    absl::StrAppend(&origin, " ", env_name);
  }
  return absl::StrCat(name, "=", value, " (", origin, ")");
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::string_view ValueSourceName(ValueSource source) {
  switch (source) {
    case ValueSource::kDefault:
      return "default";
    case ValueSource::kConfigFile:
      return "config file";
    case ValueSource::kEnvironment:
      return "environment";
    case ValueSource::kFlag:
      return "flag";
  }
  return "unknown";
}

absl::StatusOr<ResolvedConfig> ResolveConfig(
    const FlagValues& flags, const EnvLookup& env,
    const std::string& default_config_path) {
  ResolvedConfig resolved;

  // 1. Which config file, and must it exist?
  absl::StatusOr<std::optional<Override>> config_path =
      FindOverride(flags.config, "config", env, kEnvConfig);
  if (!config_path.ok()) return config_path.status();
  if (config_path->has_value()) {
    resolved.config_path = (*config_path)->value;
    resolved.config_path_source = (*config_path)->source;
  } else {
    resolved.config_path = default_config_path;
    resolved.config_path_source = ValueSource::kDefault;
  }

  // 2. Load it (defaults if absent at the default path).
  absl::StatusOr<std::optional<ConfigFile>> file =
      LoadOptionalConfigFile(resolved.config_path);
  if (!file.ok()) {
    if (config_path->has_value()) {
      return absl::Status(
          file.status().code(),
          absl::StrCat(file.status().message(), " (named by ",
                       (*config_path)->origin, ")"));
    }
    return file.status();
  }
  if (!file->has_value() && config_path->has_value()) {
    return absl::NotFoundError(absl::StrCat(
        "config file \"", resolved.config_path, "\" does not exist (named by ",
        (*config_path)->origin, "); only the default ", default_config_path,
        " may be absent"));
  }
  resolved.config_file_found = file->has_value();
  const ConfigFile* loaded = file->has_value() ? &**file : nullptr;
  if (loaded != nullptr) resolved.config = loaded->config;

  // 3. Flag and environment overrides, each validated like the file value.
  absl::StatusOr<std::optional<Override>> root =
      FindOverride(flags.root, "root", env, kEnvRoot);
  if (!root.ok()) return root.status();
  if (root->has_value()) {
    absl::Status status = ValidateRoot((*root)->value);
    if (!status.ok()) return OverrideError(**root, status);
    resolved.config.root = (*root)->value;
    resolved.root_source = (*root)->source;
  } else {
    resolved.root_source = FileOrDefault(loaded, "root");
  }

  absl::StatusOr<std::optional<Override>> address =
      FindOverride(flags.address, "address", env, kEnvAddress);
  if (!address.ok()) return address.status();
  if (address->has_value()) {
    absl::Status status = ValidateAddress((*address)->value);
    if (!status.ok()) return OverrideError(**address, status);
    resolved.config.address = (*address)->value;
    resolved.address_source = (*address)->source;
  } else {
    resolved.address_source = FileOrDefault(loaded, "address");
  }

  absl::StatusOr<std::optional<Override>> log_level =
      FindOverride(flags.log_level, "log-level", env, kEnvLogLevel);
  if (!log_level.ok()) return log_level.status();
  if (log_level->has_value()) {
    absl::StatusOr<LogLevel> level = ParseLogLevel((*log_level)->value);
    if (!level.ok()) return OverrideError(**log_level, level.status());
    resolved.config.log_level = *level;
    resolved.log_level_source = (*log_level)->source;
  } else {
    resolved.log_level_source = FileOrDefault(loaded, "log_level");
  }
  return resolved;
}

std::string DescribeSources(const ResolvedConfig& resolved) {
  std::string config = DescribeOne("config", resolved.config_path,
                                   resolved.config_path_source, kEnvConfig,
                                   "config");
  if (!resolved.config_file_found) {
    config.insert(config.size() - 1, ", not found: using defaults");
  }
  return absl::StrCat(
      config, " ",
      DescribeOne("root", resolved.config.root, resolved.root_source, kEnvRoot,
                  "root"),
      " ",
      DescribeOne("address", resolved.config.address, resolved.address_source,
                  kEnvAddress, "address"),
      " ",
      DescribeOne("log_level", LogLevelName(resolved.config.log_level),
                  resolved.log_level_source, kEnvLogLevel, "log-level"));
}

}  // namespace config
}  // namespace guest_pull
