// containerd-guest-pull-grpc: a containerd proxy snapshotter for Kata
// Containers guest pull. Parses flags, resolves the configuration (flag >
// environment > config file > default) and runs the daemon.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapshotter/config/default_config.h"
#include "snapshotter/config/resolver.h"
#include "snapshotter/daemon.h"
#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/store_recovery.h"
#include "snapshotter/version.h"

// An empty value means "not given": the environment, the config file or the
// default decides.
ABSL_FLAG(std::string, address, "",
          "unix socket to serve on (env GUEST_PULL_ADDRESS; default "
          "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock)");
ABSL_FLAG(std::string, root, "",
          "state directory (env GUEST_PULL_ROOT; default "
          "/var/lib/containerd-guest-pull-grpc)");
ABSL_FLAG(std::string, config, "",
          "config file (env GUEST_PULL_CONFIG; default "
          "/etc/containerd-guest-pull-grpc/config.toml, optional only there)");
ABSL_FLAG(std::string, log_level, "",
          "debug|info|warn|error (env GUEST_PULL_LOG_LEVEL; default info)");
ABSL_FLAG(bool, version, false, "print the version and exit");
ABSL_FLAG(bool, print_default_config, false,
          "print the embedded default config file and exit");
ABSL_FLAG(bool, reset_store, false,
          "recovery after a refused start: move metadata.db and every "
          "snapshot directory of the root to <root>/quarantine/ (nothing is "
          "deleted) so the next start begins with an empty store, and exit "
          "(docs/operations.md)");

namespace {

std::optional<std::string> Given(const absl::Flag<std::string>& flag) {
  std::string v = absl::GetFlag(flag);
  if (v.empty()) return std::nullopt;
  return v;
}

// absl flag names are identifiers; accept the documented dashed spelling
// (--log-level, --print-default-config) by rewriting it before parsing.
std::vector<char*> NormalizeFlagNames(int argc, char** argv,
                                      std::vector<std::string>* storage) {
  storage->reserve(argc);
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      size_t end = arg.find('=');
      if (end == std::string::npos) end = arg.size();
      for (size_t j = 2; j < end; ++j) {
        if (arg[j] == '-') arg[j] = '_';
      }
    }
    storage->push_back(std::move(arg));
    out.push_back(storage->back().data());
  }
  return out;
}

void ConfigureLogging(const char* argv0,
                      guest_pull::config::LogLevel level) {
  FLAGS_logtostderr = true;
  switch (level) {
    case guest_pull::config::LogLevel::kDebug:
      FLAGS_minloglevel = 0;
      FLAGS_v = 1;
      break;
    case guest_pull::config::LogLevel::kInfo:
      FLAGS_minloglevel = 0;
      break;
    case guest_pull::config::LogLevel::kWarn:
      FLAGS_minloglevel = 1;
      break;
    case guest_pull::config::LogLevel::kError:
      FLAGS_minloglevel = 2;
      break;
  }
  google::InitGoogleLogging(argv0);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "containerd proxy snapshotter that lets Kata Containers pull images "
      "inside the guest.\nUsage: containerd-guest-pull-grpc [--address=PATH] "
      "[--root=DIR] [--config=FILE] [--log-level=LEVEL] [--reset-store]");
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (absl::GetFlag(FLAGS_version)) {
    std::cout << "containerd-guest-pull-grpc " << guest_pull::kVersion << "\n";
    return 0;
  }
  if (absl::GetFlag(FLAGS_print_default_config)) {
    std::cout << guest_pull::config::kDefaultConfigToml;
    return 0;
  }
  guest_pull::config::FlagValues flags;
  flags.address = Given(FLAGS_address);
  flags.root = Given(FLAGS_root);
  flags.config = Given(FLAGS_config);
  flags.log_level = Given(FLAGS_log_level);
  auto resolved = guest_pull::config::ResolveConfig(flags);
  if (!resolved.ok()) {
    std::cerr << "containerd-guest-pull-grpc: configuration error: "
              << resolved.status().message() << "\n";
    return 2;
  }
  ConfigureLogging(argv[0], resolved->config.log_level);
  if (absl::GetFlag(FLAGS_reset_store)) {
    guest_pull::SnapshotDirs dirs(resolved->config.root);
    auto moved = guest_pull::ResetStore(dirs);
    if (!moved.ok()) {
      LOG(ERROR) << "reset-store failed: " << moved.status().message();
      return 1;
    }
    LOG(INFO) << "reset-store: moved the metadata database and every snapshot "
                 "directory of "
              << dirs.root() << " to " << *moved
              << "; the next start begins with an empty store. Remove the "
                 "images pulled through this snapshotter in containerd "
                 "so they are pulled again; delete "
              << *moved << " once nothing in it is needed";
    return 0;
  }
  LOG(INFO) << "containerd-guest-pull-grpc " << guest_pull::kVersion
            << " starting: "
            << guest_pull::config::DescribeConfig(resolved->config) << " ("
            << guest_pull::config::DescribeSources(*resolved) << ")";
  absl::Status s = guest_pull::RunDaemon(*resolved);
  if (guest_pull::IsRefusal(s)) {
    LOG(ERROR) << s.message();
    return guest_pull::kExitRefused;
  }
  if (!s.ok()) {
    LOG(ERROR) << "fatal: " << s.message();
    return 1;
  }
  return 0;
}
