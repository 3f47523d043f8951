// An interposed fsync that records paths and can hold one.
#include "snapshotter/fsync_recorder.h"

#include <limits.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace snapshotter::fsync_recorder {
namespace {

struct Recorder {
  absl::Mutex mu;
  std::vector<std::string> fsynced ABSL_GUARDED_BY(mu);
  std::string hold_path ABSL_GUARDED_BY(mu);
  bool holding ABSL_GUARDED_BY(mu) = false;
  bool released ABSL_GUARDED_BY(mu) = false;
};

Recorder& TheRecorder() {
  static Recorder* recorder = new Recorder;
  return *recorder;
}

void Record(const char* path) {
  Recorder& r = TheRecorder();
  absl::MutexLock lock(&r.mu);
  r.fsynced.push_back(path);
  if (r.hold_path.empty() || r.hold_path != path) return;
  r.hold_path.clear();
  r.holding = true;
  r.mu.Await(absl::Condition(&r.released));
}

}  // namespace

std::vector<std::string> TakeFsynced() {
  Recorder& r = TheRecorder();
  absl::MutexLock lock(&r.mu);
  return std::exchange(r.fsynced, {});
}

bool TakeFsynced(const std::string& path) {
  std::vector<std::string> paths = TakeFsynced();
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

void HoldNextFsyncOf(const std::string& path) {
  Recorder& r = TheRecorder();
  absl::MutexLock lock(&r.mu);
  r.hold_path = path;
  r.holding = r.released = false;
}

bool WaitForHeldFsync(absl::Duration timeout) {
  Recorder& r = TheRecorder();
  absl::MutexLock lock(&r.mu);
  return r.mu.AwaitWithTimeout(absl::Condition(&r.holding), timeout);
}

void ReleaseHeldFsync() {
  Recorder& r = TheRecorder();
  absl::MutexLock lock(&r.mu);
  r.released = true;
}

}  // namespace snapshotter::fsync_recorder

extern "C" int fsync(int fd) {
  char link[64];
  char target[PATH_MAX + 1];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, PATH_MAX);
  if (n > 0) {
    target[n] = '\0';
    snapshotter::fsync_recorder::Record(target);
  }
  return static_cast<int>(syscall(SYS_fsync, fd));
}
