// Config defaults, value checks and the startup description.
#include "snapshotter/config/config.h"

#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace guest_pull {
namespace config {
namespace {

// Joins patterns as a TOML-ish list: [".*", "a"].
std::string QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const std::string& item : items) {
    quoted.push_back(absl::StrCat("\"", absl::CEscape(item), "\""));
  }
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

// True if every path component is a real name (no "", "." or "..").
bool IsNormalizedAbsolutePath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  std::vector<absl::string_view> parts =
      absl::StrSplit(path.substr(1), '/');
  for (absl::string_view part : parts) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

absl::Status ValidateAbsolutePath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("must not be empty");
  if (absl::StrContains(path, '\0')) {
    return absl::InvalidArgumentError("must not contain a NUL byte");
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CEscape(path),
                     "\" is not an absolute path (it must start with \"/\")"));
  }
  if (path != "/" && !IsNormalizedAbsolutePath(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", absl::CEscape(path),
        "\" is not a normalized path (no trailing \"/\", \"//\", \".\" or "
        "\"..\" components)"));
  }
  return absl::OkStatus();
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '-' || c == '_';
}

}  // namespace

bool GuestPullConfig::operator==(const GuestPullConfig& other) const {
  return enable == other.enable && include == other.include &&
         exclude == other.exclude && mount_type == other.mount_type;
}

bool VerityConfig::operator==(const VerityConfig& other) const {
  return mode == other.mode && layer_cache == other.layer_cache &&
         write_passwd == other.write_passwd;
}

bool MetricsConfig::operator==(const MetricsConfig& other) const {
  return address == other.address;
}

bool Config::operator==(const Config& other) const {
  return version == other.version && root == other.root &&
         address == other.address && log_level == other.log_level &&
         guest_pull == other.guest_pull && verity == other.verity &&
         metrics == other.metrics;
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                         LogLevel::kError}) {
    if (text == LogLevelName(level)) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid log level \"", absl::CEscape(text),
                   "\" (expected one of: debug, info, warn, error)"));
}

absl::string_view VerityModeName(VerityMode mode) {
  switch (mode) {
    case VerityMode::kOff:
      return "off";
    case VerityMode::kBestEffort:
      return "best_effort";
    case VerityMode::kRequired:
      return "required";
  }
  return "unknown";
}

absl::StatusOr<VerityMode> ParseVerityMode(absl::string_view text) {
  for (VerityMode mode :
       {VerityMode::kOff, VerityMode::kBestEffort, VerityMode::kRequired}) {
    if (text == VerityModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid verity mode \"", absl::CEscape(text),
                   "\" (expected one of: off, best_effort, required)"));
}

absl::Status ValidateRoot(absl::string_view root) {
  absl::Status status = ValidateAbsolutePath(root);
  if (!status.ok()) return status;
  if (root == "/") {
    return absl::InvalidArgumentError(
        "\"/\" cannot be the state directory; use a dedicated directory such "
        "as /var/lib/containerd-guest-pull-grpc");
  }
  return absl::OkStatus();
}

absl::Status ValidateAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", absl::CEscape(address),
        "\" must be a plain socket path, without the \"unix://\" prefix"));
  }
  absl::Status status = ValidateAbsolutePath(address);
  if (!status.ok()) return status;
  if (address == "/") {
    return absl::InvalidArgumentError("\"/\" is not a socket path");
  }
  if (address.size() >= kMaxUnixSocketPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path \"", absl::CEscape(address), "\" is ", address.size(),
        " bytes; a unix socket path must be shorter than ",
        kMaxUnixSocketPathBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMountType(absl::string_view mount_type) {
  absl::string_view subtype;
  if (absl::StartsWith(mount_type, "fuse.")) {
    subtype = mount_type.substr(5);
  } else if (absl::StartsWith(mount_type, "fuse3.")) {
    subtype = mount_type.substr(6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "mount type \"", absl::CEscape(mount_type),
        "\" must start with \"fuse.\" or \"fuse3.\" (containerd only runs "
        "mount helpers for FUSE mount types)"));
  }
  if (subtype.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mount type \"", absl::CEscape(mount_type),
                     "\" names no helper after the \"fuse.\" prefix"));
  }
  for (char c : subtype) {
    // mount.fuse3 hands the subtype to /bin/sh: keep it a plain file name.
    if (!IsHostChar(c) && c != '+') {
      return absl::InvalidArgumentError(absl::StrCat(
          "mount type \"", absl::CEscape(mount_type),
          "\": the helper name may only contain letters, digits and . _ - +"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLayerCachePath(absl::string_view path) {
  if (path.empty()) return absl::OkStatus();
  return ValidateAbsolutePath(path);
}

absl::Status ValidateMetricsAddress(absl::string_view address) {
  if (address.empty()) return absl::OkStatus();
  const std::string bad = absl::StrCat(
      "metrics address \"", absl::CEscape(address), "\" ");
  absl::string_view host;
  absl::string_view port;
  if (address[0] == '[') {
    size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat(bad, "must look like [ipv6]:port"));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    for (char c : host) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' &&
          c != '.') {
        return absl::InvalidArgumentError(
            absl::StrCat(bad, "has an invalid IPv6 address"));
      }
    }
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          bad, "must be host:port, e.g. \"127.0.0.1:9110\" (\"\" turns "
               "metrics off)"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    for (char c : host) {
      if (!IsHostChar(c)) {
        return absl::InvalidArgumentError(absl::StrCat(
            bad, "has an invalid host; IPv6 addresses go in brackets, "
                 "e.g. \"[::1]:9110\""));
      }
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        bad, "has no host; use \"0.0.0.0:<port>\" to listen on every "
             "interface"));
  }
  uint32_t port_number = 0;
  if (port.empty() || !absl::c_all_of(port, [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      }) ||
      !absl::SimpleAtoi(port, &port_number) || port_number == 0 ||
      port_number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(bad, "needs a port between 1 and 65535"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePattern(absl::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid RE2 pattern \"", absl::CEscape(pattern),
                     "\": ", re.error()));
  }
  return absl::OkStatus();
}

absl::Status ValidateIncludeList(const std::vector<std::string>& include) {
  if (!include.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "an empty include list would keep every image on the host; use "
      "[\".*\"] to guest-pull every image, or set guest_pull.enable = false "
      "to turn guest pull off");
}

absl::Status ValidateConfig(const Config& config) {
  std::vector<std::string> errors;
  auto check = [&errors](absl::string_view key, const absl::Status& status) {
    if (!status.ok()) errors.push_back(absl::StrCat(key, ": ", status.message()));
  };
  if (config.version != kConfigVersion) {
    errors.push_back(absl::StrCat("version: unsupported version ",
                                  config.version, " (expected ",
                                  kConfigVersion, ")"));
  }
  check("root", ValidateRoot(config.root));
  check("address", ValidateAddress(config.address));
  check("guest_pull.mount_type",
        ValidateMountType(config.guest_pull.mount_type));
  check("guest_pull.include", ValidateIncludeList(config.guest_pull.include));
  for (size_t i = 0; i < config.guest_pull.include.size(); ++i) {
    check(absl::StrCat("guest_pull.include[", i, "]"),
          ValidatePattern(config.guest_pull.include[i]));
  }
  for (size_t i = 0; i < config.guest_pull.exclude.size(); ++i) {
    check(absl::StrCat("guest_pull.exclude[", i, "]"),
          ValidatePattern(config.guest_pull.exclude[i]));
  }
  check("verity.layer_cache",
        ValidateLayerCachePath(config.verity.layer_cache));
  check("metrics.address", ValidateMetricsAddress(config.metrics.address));
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid configuration: ", absl::StrJoin(errors, "; ")));
}

std::string DescribeConfig(const Config& config) {
  const GuestPullConfig& gp = config.guest_pull;
  const VerityConfig& verity = config.verity;
  return absl::StrCat(
      "root=", config.root, " address=", config.address,
      " log_level=", LogLevelName(config.log_level),
      " guest_pull={enable=", gp.enable ? "true" : "false",
      " include=", QuotedList(gp.include), " exclude=", QuotedList(gp.exclude),
      " mount_type=", gp.mount_type, "}",
      " verity={mode=", VerityModeName(verity.mode), " layer_cache=",
      verity.layer_cache.empty() ? "none" : verity.layer_cache,
      " write_passwd=", verity.write_passwd ? "true" : "false", "}",
      " metrics={address=",
      config.metrics.address.empty() ? "off" : config.metrics.address, "}");
}

}  // namespace config
}  // namespace guest_pull
