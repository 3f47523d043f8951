// The daemon's effective configuration: plain structs holding the defaults,
// the value checks shared by the config file, flags and environment, and a
// one-line description for the startup log.
#ifndef SNAPSHOTTER_CONFIG_CONFIG_H_
#define SNAPSHOTTER_CONFIG_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace guest_pull {
namespace config {

// The only config file schema version this build understands.
inline constexpr int kConfigVersion = 1;

inline constexpr char kDefaultRoot[] = "/var/lib/containerd-guest-pull-grpc";
inline constexpr char kDefaultAddress[] =
    "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock";
inline constexpr char kDefaultConfigPath[] =
    "/etc/containerd-guest-pull-grpc/config.toml";
inline constexpr char kDefaultMountType[] = "fuse.guest-pull-overlayfs";

// sizeof(sockaddr_un::sun_path): a socket path must be shorter than this.
inline constexpr size_t kMaxUnixSocketPathBytes = 108;

// Minimum severity the daemon logs.
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// How strictly guest-pulled layers are tied to dm-verity root hashes.
enum class VerityMode { kOff, kBestEffort, kRequired };

// [guest_pull]: which images are pulled inside the guest.
struct GuestPullConfig {
  // false: every layer is unpacked on the host (plain overlayfs snapshotter).
  bool enable = true;
  // RE2 patterns, full match against the CRI image reference; a reference
  // must match one of them to be pulled in the guest.
  std::vector<std::string> include = {".*"};
  // RE2 patterns; a matching reference stays on the host.
  std::vector<std::string> exclude;
  // Mount type of a guest-pulled container rootfs ("fuse." or "fuse3." +
  // helper name).
  std::string mount_type = kDefaultMountType;

  bool operator==(const GuestPullConfig& other) const;
  bool operator!=(const GuestPullConfig& other) const { return !(*this == other); }
};

// [verity]: dm-verity handling of guest-pulled layers.
struct VerityConfig {
  VerityMode mode = VerityMode::kBestEffort;
  // Absolute path of a genpolicy layers-cache.json; empty = none.
  std::string layer_cache;
  // Write /etc/passwd and /etc/group from the cache into guest-pulled layers.
  bool write_passwd = true;

  bool operator==(const VerityConfig& other) const;
  bool operator!=(const VerityConfig& other) const { return !(*this == other); }
};

// [metrics]: the Prometheus endpoint.
struct MetricsConfig {
  // host:port to listen on; empty = no metrics endpoint.
  std::string address;

  bool operator==(const MetricsConfig& other) const;
  bool operator!=(const MetricsConfig& other) const { return !(*this == other); }
};

// Everything the daemon is configured with. Default-constructed = defaults.
struct Config {
  int version = kConfigVersion;
  std::string root = kDefaultRoot;
  std::string address = kDefaultAddress;
  LogLevel log_level = LogLevel::kInfo;
  GuestPullConfig guest_pull;
  VerityConfig verity;
  MetricsConfig metrics;

  bool operator==(const Config& other) const;
  bool operator!=(const Config& other) const { return !(*this == other); }
};

// "debug" | "info" | "warn" | "error".
absl::string_view LogLevelName(LogLevel level);
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);

// "off" | "best_effort" | "required".
absl::string_view VerityModeName(VerityMode mode);
absl::StatusOr<VerityMode> ParseVerityMode(absl::string_view text);

// Value checks. Each returns InvalidArgument with a message that describes
// the problem but not where the value came from; callers add that context.
absl::Status ValidateRoot(absl::string_view root);
absl::Status ValidateAddress(absl::string_view address);
absl::Status ValidateMountType(absl::string_view mount_type);
// Empty (= no cache) or an absolute path.
absl::Status ValidateLayerCachePath(absl::string_view path);
// Empty (= off) or host:port, [ipv6]:port.
absl::Status ValidateMetricsAddress(absl::string_view address);
// An RE2 pattern that compiles.
absl::Status ValidatePattern(absl::string_view pattern);
// guest_pull.include must not be empty: an empty list would silently keep
// every image on the host (guest_pull.enable = false says that explicitly).
absl::Status ValidateIncludeList(const std::vector<std::string>& include);

// Checks every field of a config built in code (ParseConfig already does).
absl::Status ValidateConfig(const Config& config);

// One line for the startup log, e.g.
// root=/var/lib/... address=/run/... log_level=info guest_pull={...} ...
std::string DescribeConfig(const Config& config);

}  // namespace config
}  // namespace guest_pull

#endif  // SNAPSHOTTER_CONFIG_CONFIG_H_
