// The key table and the value checks behind it.
#include <cstdint>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/go_utf8.h"
#include "base/status_macros.h"
#include "re2/re2.h"
#include "snapshotter/config/config.h"
#include "snapshotter/config/value_text.h"
#include "snapshotter/metrics/listen_address.h"
#include "snapshotter/socket_path.h"

namespace snapshotter {
namespace config {
namespace {

// The only config file schema version this build understands.
constexpr int64_t kConfigVersion = 1;
// sizeof(sockaddr_un::sun_path): a socket path must be shorter than this.
constexpr size_t kMaxUnixSocketPathBytes = 108;

absl::Status CheckAbsolutePath(const std::string& path) {
  if (path.empty()) {
    // `root = ""` said only "must not be empty": not what it must be.
    return absl::InvalidArgumentError(
        "must be an absolute path (starting with \"/\"), not empty");
  }
  if (absl::StrContains(path, '\0')) {
    return absl::InvalidArgumentError("must not contain a NUL byte");
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        Quoted(path), " is not an absolute path (it must start with \"/\")"));
  }
  if (path == "/") return absl::OkStatus();
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          Quoted(path),
          " is not a normalized path (no trailing \"/\", \"//\", \".\" or "
          "\"..\" components)"));
    }
  }
  return absl::OkStatus();
}

// A flag or a variable may carry bytes that are not UTF-8 (a config file
// cannot: TOML is UTF-8). `where_used` says why the path must be UTF-8.
absl::Status CheckUtf8(const std::string& path, absl::string_view where_used) {
  absl::string_view rest = path;
  uint32_t rune = 0;
  while (!rest.empty()) {
    const size_t n = base::DecodeGoRune(rest, &rune);
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quoted(path), " is not valid UTF-8 (at byte ",
                       path.size() - rest.size(), "): ", where_used));
    }
    rest.remove_prefix(n);
  }
  return absl::OkStatus();
}

// A path holding a control character (a newline, a tab, ...) is almost
// always a templating slip, such as a variable with a trailing newline:
// accepted, it named another directory or file than the one meant (a root
// at "/var/lib/gp\n" got a fresh empty store beside the real one) and split
// every log line that names it. `address` refuses them too (CheckUriSafe).
absl::Status CheckNoControlCharacter(const std::string& path) {
  for (size_t at = 0; at < path.size(); ++at) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(path[at]))) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quoted(path), " contains the control character ",
          Quoted(path.substr(at, 1)), " at byte ", at,
          " (a path here may not hold one: a trailing newline from a "
          "template, for example, would name another path)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRoot(const std::string& root) {
  RETURN_IF_ERROR(CheckAbsolutePath(root));
  RETURN_IF_ERROR(CheckNoControlCharacter(root));
  // Else the daemon started, and every reply naming a snapshot path was a
  // Mount whose string fields protobuf wants UTF-8: libprotobuf logged an
  // error at each, and clients that check (protobuf-go) refuse the reply.
  RETURN_IF_ERROR(CheckUtf8(
      root, "snapshot paths under the root go into containerd's Mount "
            "messages, whose strings must be UTF-8"));
  if (root == "/") {
    return absl::InvalidArgumentError(
        "\"/\" cannot be the state directory; use a dedicated directory such "
        "as /var/lib/containerd-guest-pull-grpc");
  }
  // Snapshot paths go unescaped into overlay's "lowerdir=a:b,upperdir=..."
  // data (as containerd's overlay snapshotter writes them), where these
  // characters separate or escape.
  if (size_t at = root.find_first_of(",:\\"); at != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quoted(root), " contains ", Quoted(root.substr(at, 1)),
        ", which overlay mount options cannot carry in a path (commas, colons "
        "and backslashes separate or escape there); choose a directory without it"));
  }
  return absl::OkStatus();
}

absl::Status CheckAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quoted(address),
        " must be a plain socket path, without the \"unix://\" prefix"));
  }
  RETURN_IF_ERROR(CheckAbsolutePath(address));
  RETURN_IF_ERROR(CheckUtf8(
      address, "containerd's config (TOML, UTF-8) cannot name the socket"));
  if (address == "/") {
    return absl::InvalidArgumentError("\"/\" is not a socket path");
  }
  RETURN_IF_ERROR(CheckUriSafe(address));
  if (address.size() >= kMaxUnixSocketPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path ", Quoted(address), " is ", address.size(),
                     " bytes; a unix socket path must be shorter than ",
                     kMaxUnixSocketPathBytes, " bytes"));
  }
  return absl::OkStatus();
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '-' || c == '_';
}

// The helper names kata's Go shim takes for a rootfs it must not mount on
// the host: the patch's IsGuestPullRootFSType and, for stock kata, Nydus's
// IsNydusRootFSType (docs/kata-runtime-patch.md).
constexpr absl::string_view kKataHelperPrefixes[] = {"guest-pull-overlayfs",
                                                     "nydus-overlayfs"};

absl::Status CheckMountType(const std::string& mount_type) {
  const std::string bad = absl::StrCat("mount type ", Quoted(mount_type));
  const char* const accepted =
      " (accepted: \"fuse.\" + a helper name starting with "
      "\"guest-pull-overlayfs\" for the patched kata shim, or with "
      "\"nydus-overlayfs\" for stock kata; see docs/kata-runtime-patch.md)";
  absl::string_view subtype = mount_type;
  // kata's shim knows only "fuse."; containerd runs mount.fuse for it.
  if (!absl::ConsumePrefix(&subtype, "fuse.")) {
    return absl::InvalidArgumentError(
        absl::StrCat(bad, " must start with \"fuse.\"", accepted));
  }
  if (subtype.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        bad, " names no helper after the \"fuse.\" prefix", accepted));
  }
  // mount.fuse3 hands the subtype to /bin/sh: keep it a plain file name.
  if (!absl::c_all_of(subtype,
                      [](char c) { return IsHostChar(c) || c == '+'; })) {
    return absl::InvalidArgumentError(absl::StrCat(
        bad, ": the helper name may only contain letters, digits and . _ - +"));
  }
  if (!absl::c_any_of(kKataHelperPrefixes, [&](absl::string_view prefix) {
        return absl::StartsWith(subtype, prefix);
      })) {
    return absl::InvalidArgumentError(absl::StrCat(
        bad,
        " is not one kata's shim takes for a guest-pulled rootfs: it "
        "would mount it on the host and never hand the volume to the guest",
        accepted));
  }
  return absl::OkStatus();
}

absl::Status CheckLayerCache(const std::string& path) {
  if (path == "/") {
    return absl::InvalidArgumentError(
        "\"/\" is a directory: name the layer cache file (e.g. "
        "/etc/containerd-guest-pull-grpc/layers-cache.json)");
  }
  if (path.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckAbsolutePath(path));
  return CheckNoControlCharacter(path);
}

// The exporter's own rules (ListenSpec), so that an address the config
// accepts is one the daemon can listen on.
absl::Status CheckMetricsAddress(const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  return ListenSpec(address).status();
}

// A pattern must fully match the image reference, which is never empty
// (ImagePolicy), so an empty one matches nothing: in include it guest-pulls
// nothing, in exclude it keeps nothing on the host. Almost surely a slip
// (a template's variable left empty, say), refused like an invalid pattern.
absl::Status CheckPattern(absl::string_view pattern) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError(
        "an empty pattern matches no image reference (a pattern must match "
        "the whole reference, which is never empty): remove it");
  }
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (re.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid RE2 pattern ", Quoted(pattern), ": ", re.error()));
}

// Stores the T in `value` in `field` if `check` (may be null) accepts it.
template <typename T>
absl::Status Store(absl::Status (*check)(const T&), const Value& value,
                   T& field) {
  const T& given = std::get<T>(value);
  if (check != nullptr) {
    RETURN_IF_ERROR(check(given));
  }
  field = given;
  return absl::OkStatus();
}

// An enum spelled as one of a fixed set of names.
template <typename E>
using Names = std::vector<std::pair<const char*, E>>;

const Names<LogLevel>& LogLevels() {
  static const auto* names = new Names<LogLevel>{{"debug", LogLevel::kDebug},
                                                 {"info", LogLevel::kInfo},
                                                 {"warn", LogLevel::kWarn},
                                                 {"error", LogLevel::kError}};
  return *names;
}

const Names<guest_pull::VerityMode>& VerityModes() {
  static const auto* names =
      new Names<guest_pull::VerityMode>{{"off", guest_pull::VerityMode::kOff},
                            {"best_effort", guest_pull::VerityMode::kBestEffort},
                            {"required", guest_pull::VerityMode::kRequired}};
  return *names;
}

template <typename E>
absl::Status StoreName(const Names<E>& names, absl::string_view what,
                       const Value& value, E& field) {
  const std::string& given = std::get<std::string>(value);
  std::vector<std::string> all;
  for (const auto& [name, e] : names) {
    if (given == name) {
      field = e;
      return absl::OkStatus();
    }
    all.push_back(name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", what, " ", Quoted(given),
                   " (expected one of: ", absl::StrJoin(all, ", "), ")"));
}

template <typename E>
std::string NameOf(const Names<E>& names, E e) {
  for (const auto& [name, candidate] : names) {
    if (candidate == e) return name;
  }
  return "unknown";
}

}  // namespace

// To add a key: a field in Config (or guest_pull::GuestPullOptions), one row here, its
// line in default_config.cc, and its row in docs/configuration.md.
const std::vector<Key>& Keys() {
  static const auto* keys = new std::vector<Key>{
      {"version", KeyType::kInteger, "", "", "",
       "config schema version; only 1",
       [](const Value& v, Config&) {
         const int64_t version = std::get<int64_t>(v);
         if (version == kConfigVersion) return absl::OkStatus();
         return absl::InvalidArgumentError(absl::StrCat(
             "unsupported config version ", version,
             " (this build understands version ", kConfigVersion, ")"));
       },
       [](const Config&) -> Value { return kConfigVersion; }},
      {"root", KeyType::kString, "root", "GUEST_PULL_ROOT", "DIR",
       "state directory (snapshot metadata and layer directories)",
       [](const Value& v, Config& c) { return Store(CheckRoot, v, c.root); },
       [](const Config& c) -> Value { return c.root; }},
      {"address", KeyType::kString, "address", "GUEST_PULL_ADDRESS", "PATH",
       "unix socket serving containerd's Snapshots API",
       [](const Value& v, Config& c) {
         return Store(CheckAddress, v, c.address);
       },
       [](const Config& c) -> Value { return c.address; }},
      {"log_level", KeyType::kString, "log-level", "GUEST_PULL_LOG_LEVEL",
       "LEVEL", "debug, info, warn or error",
       [](const Value& v, Config& c) {
         return StoreName(LogLevels(), "log level", v, c.log_level);
       },
       [](const Config& c) -> Value {
         return NameOf(LogLevels(), c.log_level);
       }},
      {"spare_dirs", KeyType::kInteger, "", "", "",
       "empty snapshot directories made ahead of Prepares (0 to 64; 0 = "
       "none)",
       [](const Value& v, Config& c) {
         const int64_t n = std::get<int64_t>(v);
         if (n < 0 || n > kMaxSpareDirs) {
           return absl::InvalidArgumentError(
               absl::StrCat(n, " is out of range (0 to ", kMaxSpareDirs, ")"));
         }
         c.spare_dirs = n;
         return absl::OkStatus();
       },
       [](const Config& c) -> Value { return c.spare_dirs; }},
      {"", KeyType::kString, "config", "GUEST_PULL_CONFIG", "FILE",
       "config file (TOML); may be missing only at the default path when no "
       "flag or variable names it",
       [](const Value& v, Config& c) {
         return Store<std::string>(nullptr, v, c.config_path);
       },
       [](const Config& c) -> Value { return c.config_path; }},
      {"guest_pull.enable", KeyType::kBool, "", "", "",
       "false: every layer is unpacked on the host",
       [](const Value& v, Config& c) {
         return Store<bool>(nullptr, v, c.guest_pull.enable);
       },
       [](const Config& c) -> Value { return c.guest_pull.enable; }},
      {"guest_pull.include", KeyType::kStringList, "", "", "",
       "RE2 patterns (full match) on the CRI image reference; one must match",
       [](const Value& v, Config& c) {
         // An empty list is refused once the whole config is read
         // (LoadConfig): only while guest pull is enabled.
         return Store<std::vector<std::string>>(nullptr, v, c.guest_pull.include);
       },
       [](const Config& c) -> Value { return c.guest_pull.include; },
       CheckPattern},
      {"guest_pull.exclude", KeyType::kStringList, "", "", "",
       "RE2 patterns; a match keeps the image on the host",
       [](const Value& v, Config& c) {
         return Store<std::vector<std::string>>(nullptr, v,
                                                c.guest_pull.exclude);
       },
       [](const Config& c) -> Value { return c.guest_pull.exclude; },
       CheckPattern},
      {"guest_pull.mount_type", KeyType::kString, "", "", "",
       "mount type of guest-pulled rootfs mounts (fuse.guest-pull-overlayfs* "
       "or fuse.nydus-overlayfs*)",
       [](const Value& v, Config& c) {
         return Store(CheckMountType, v, c.guest_pull.mount_type);
       },
       [](const Config& c) -> Value { return c.guest_pull.mount_type; }},
      {"verity.mode", KeyType::kString, "", "", "",
       "off, best_effort or required",
       [](const Value& v, Config& c) {
         return StoreName(VerityModes(), "verity mode", v,
                          c.guest_pull.verity_mode);
       },
       [](const Config& c) -> Value {
         return NameOf(VerityModes(), c.guest_pull.verity_mode);
       }},
      {"verity.layer_cache", KeyType::kString, "", "", "",
       "absolute path of a genpolicy layers-cache.json, or \"\"",
       [](const Value& v, Config& c) {
         return Store(CheckLayerCache, v, c.guest_pull.layer_cache);
       },
       [](const Config& c) -> Value { return c.guest_pull.layer_cache; }},
      {"verity.write_passwd", KeyType::kBool, "", "", "",
       "write /etc/passwd and /etc/group from the cache into guest-pulled "
       "layers",
       [](const Value& v, Config& c) {
         return Store<bool>(nullptr, v, c.guest_pull.write_passwd);
       },
       [](const Config& c) -> Value { return c.guest_pull.write_passwd; }},
      {"metrics.address", KeyType::kString, "", "", "",
       "IPv4:port, localhost:port or :port of the Prometheus /metrics "
       "endpoint; \"\" = off",
       [](const Value& v, Config& c) {
         return Store(CheckMetricsAddress, v, c.metrics.address);
       },
       [](const Config& c) -> Value { return c.metrics.address; }},
  };
  return *keys;
}

}  // namespace config
}  // namespace snapshotter
