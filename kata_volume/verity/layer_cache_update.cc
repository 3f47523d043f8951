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
    // Non-blocking: something swapped in for the file must not hang this.
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    bool created = false;
    int fd = ::open(resolved.c_str(), kFlags);
    if (fd < 0 && errno == ENOENT) {
      fd = ::open(resolved.c_str(), kFlags | O_CREAT | O_EXCL, 0644);
      created = fd >= 0;
      if (fd < 0 && errno == EEXIST) continue;  // made meanwhile: open that
    }
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
      // Anything but a regular file swapped in since ResolveOutputPath is
      // refused by Read() (ReadBounded).
      return LayerCacheUpdate(fd, resolved, created);
    }
    ::close(fd);  // replaced by the writer before us: lock the new file
  }
  return absl::AbortedError(absl::StrCat("layer cache ", resolved, " was replaced ",
                                         kMaxReplacedWhileWaiting,
                                         " times while this update waited for it"));
}

LayerCacheUpdate::LayerCacheUpdate(LayerCacheUpdate&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      created_(other.created_),
      written_(other.written_) {}

LayerCacheUpdate::~LayerCacheUpdate() {
  if (fd_ < 0) return;
  // The empty file this update made, still at the path, goes with it.
  struct stat held, now;
  if (created_ && !written_ && ::fstat(fd_, &held) == 0 && held.st_size == 0 &&
      ::stat(path_.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
      held.st_ino == now.st_ino) {
    ::unlink(path_.c_str());
  }
  ::close(fd_);  // releases the lock
}

absl::StatusOr<LayerCache> LayerCacheUpdate::Read(size_t expected_entries) const {
  if (::lseek(fd_, 0, SEEK_SET) != 0) return base::ErrnoError("cannot seek", path_, errno);
  bool blank = false;
  ASSIGN_OR_RETURN(LayerCache cache, ReadLayerCacheFd(fd_, path_, kMaxLayerCacheFileBytes, &blank));
  if (blank && expected_entries > 0) {
    return absl::UnavailableError(absl::StrCat(
        "layer cache ", path_, " became blank while this run waited for it (it had ",
        expected_entries, " entries): a writer that truncates it first (genpolicy) is at "
        "work; run again once it is done"));
  }
  return cache;
}

}  // namespace guest_pull::verity
