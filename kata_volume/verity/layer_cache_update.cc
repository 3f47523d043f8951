// One writer's read-merge-write of a layer cache file, under its lock.
#include "kata_volume/verity/layer_cache_update.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errno_error.h"
#include "base/status_macros.h"
#include "kata_volume/verity/output_file.h"

namespace guest_pull::verity {

namespace {

// Files renamed over the path while this writer waited, before it gives up.
constexpr int kMaxReplacedWhileWaiting = 100;

}  // namespace

absl::StatusOr<LayerCacheUpdate> LayerCacheUpdate::Begin(const std::string& path,
                                                         absl::Duration wait) {
  ASSIGN_OR_RETURN(const std::string resolved, ResolveOutputPath(path));
  const absl::Time deadline = absl::Now() + wait;
  for (int attempt = 0; attempt < kMaxReplacedWhileWaiting; ++attempt) {
    int fd = ::open(resolved.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) return base::ErrnoError("cannot open", resolved, errno);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EINTR && errno != EWOULDBLOCK) {
        int err = errno;
        ::close(fd);
        return base::ErrnoError("cannot lock", resolved, err);
      }
      if (absl::Now() >= deadline) {
        ::close(fd);
        return absl::UnavailableError(absl::StrCat(
            "layer cache ", resolved, " is locked by another writer (genpolicy, or another run "
            "of this tool) for more than ", absl::FormatDuration(wait)));
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    struct stat locked, now;
    if (::fstat(fd, &locked) == 0 && ::stat(resolved.c_str(), &now) == 0 &&
        locked.st_dev == now.st_dev && locked.st_ino == now.st_ino) {
      return LayerCacheUpdate(fd, resolved);
    }
    ::close(fd);  // replaced by the writer before us: lock the new file
  }
  return absl::AbortedError(absl::StrCat("layer cache ", resolved, " was replaced ",
                                         kMaxReplacedWhileWaiting,
                                         " times while this update waited for it"));
}

LayerCacheUpdate::LayerCacheUpdate(LayerCacheUpdate&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

LayerCacheUpdate::~LayerCacheUpdate() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

absl::StatusOr<LayerCache> LayerCacheUpdate::Read() const {
  if (::lseek(fd_, 0, SEEK_SET) != 0) return base::ErrnoError("cannot seek", path_, errno);
  return ReadLayerCacheFd(fd_, path_);
}

}  // namespace guest_pull::verity
