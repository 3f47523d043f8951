// containerd-guest-pull-grpc: a containerd proxy snapshotter for Kata
// Containers guest pull. Parses flags, resolves the configuration (flag >
// environment > config file > default) and runs the daemon.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "snapshotter/config/config.h"
#include "snapshotter/daemon.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/store_recovery.h"
#include "snapshotter/version.h"

namespace {

void ConfigureLogging(const char* argv0, snapshotter::config::LogLevel level) {
  FLAGS_logtostderr = true;
  switch (level) {
    case snapshotter::config::LogLevel::kDebug:
      FLAGS_minloglevel = 0;
      FLAGS_v = 1;
      break;
    case snapshotter::config::LogLevel::kInfo:
      FLAGS_minloglevel = 0;
      break;
    case snapshotter::config::LogLevel::kWarn:
      FLAGS_minloglevel = 1;
      break;
    case snapshotter::config::LogLevel::kError:
      FLAGS_minloglevel = 2;
      break;
  }
  google::InitGoogleLogging(argv0);
}

// Debian's abseil is built without NDEBUG, so every absl::Mutex operation
// (gRPC's locks included: gRPC 1.51 locks with absl::Mutex) keeps a lock
// graph for deadlock detection: a quarter of the server's CPU per read RPC
// in a profile. The tests keep it; the daemon turns it off.
void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace

int main(int argc, char** argv) {
  DisableMutexDeadlockDetection();
  namespace config = snapshotter::config;
  auto command_line =
      config::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!command_line.ok()) {
    std::cerr << "containerd-guest-pull-grpc: "
              << command_line.status().message() << "\n";
    return 2;
  }
  if (command_line->help) {
    std::cout << config::HelpText();
    return 0;
  }
  if (command_line->version) {
    std::cout << "containerd-guest-pull-grpc " << snapshotter::kVersion << "\n";
    return 0;
  }
  if (command_line->print_default_config) {
    std::cout << config::kDefaultConfigToml;
    return 0;
  }
  auto cfg = config::LoadConfig(
      *command_line, [](const char* name) { return std::getenv(name); });
  if (!cfg.ok()) {
    std::cerr << "containerd-guest-pull-grpc: configuration error: "
              << cfg.status().message() << "\n";
    return 2;
  }
  if (command_line->check_config) {
    std::cout << "containerd-guest-pull-grpc " << snapshotter::kVersion
              << ": configuration OK: " << config::DescribeConfig(*cfg)
              << "\n";
    return 0;
  }
  ConfigureLogging(argv[0], cfg->log_level);
  if (command_line->reset_store) {
    // Its outcome is the command's answer: printed whatever the log level.
    snapshotter::SnapshotDirs dirs(cfg->root);
    auto moved = snapshotter::ResetStore(dirs);
    if (!moved.ok()) {
      std::cerr << "containerd-guest-pull-grpc: reset-store failed: "
                << moved.status().message() << "\n";
      return 1;
    }
    if (moved->empty()) {
      std::cerr << "containerd-guest-pull-grpc: reset-store: " << dirs.root()
                << " holds no metadata and no snapshot directories: nothing "
                   "to move; the next start creates a store\n";
      return 0;
    }
    std::cerr << "containerd-guest-pull-grpc: reset-store: moved the metadata "
                 "database and every snapshot directory of "
              << dirs.root() << " to " << *moved
              << "; the next start begins with an empty store. Remove the "
                 "images pulled through this snapshotter in containerd "
                 "so they are pulled again; delete "
              << *moved << " once nothing in it is needed\n";
    return 0;
  }
  LOG(INFO) << "containerd-guest-pull-grpc " << snapshotter::kVersion
            << " starting: " << config::DescribeConfig(*cfg);
  absl::Status s = snapshotter::RunDaemon(*cfg);
  if (snapshotter::IsRefusal(s)) {
    LOG(ERROR) << s.message();
    return snapshotter::kExitRefused;
  }
  if (snapshotter::IsCommitInDoubt(s)) {  // while starting (else _Exit)
    LOG(ERROR) << s.message();
    return snapshotter::kExitCommitInDoubt;
  }
  if (!s.ok()) {
    LOG(ERROR) << "fatal: " << s.message();
    return 1;
  }
  return 0;
}
