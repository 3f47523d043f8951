// fsync of a layer's own files and directories.
#include "snapshotter/layer_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"
#include "base/status_macros.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {
namespace {

// Files opened at once: their writeback starts together, then each is
// fsynced.
constexpr size_t kBatch = 256;

// Starts writeback of `paths`, then fsyncs each; closes everything.
absl::Status SyncBatch(const std::vector<std::string>& paths, bool dirs) {
  std::vector<std::pair<int, const std::string*>> open_fds;
  absl::Status status;
  for (const std::string& path : paths) {
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    if (dirs) flags |= O_DIRECTORY;
    int fd = open(path.c_str(), flags);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // removed meanwhile
      status = base::ErrnoError("open", path, errno);
      break;
    }
    if (!dirs) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    open_fds.emplace_back(fd, &path);
  }
  for (const auto& [fd, path] : open_fds) {
    if (status.ok() && fsync(fd) != 0) {
      status = base::ErrnoError("fsync", *path, errno);
    }
    close(fd);
  }
  return status;
}

}  // namespace

absl::StatusOr<Usage> SyncTree(const std::string& root,
                               const std::atomic<bool>* stop) {
  struct stat root_st;
  if (lstat(root.c_str(), &root_st) != 0) {
    return base::ErrnoError("lstat", root, errno);
  }
  std::vector<std::string> files;
  std::vector<std::string> dirs = {root};
  // Every inode counted once (hard links), the root included.
  std::set<ino_t> seen = {root_st.st_ino};
  Usage usage{static_cast<int64_t>(root_st.st_blocks) * 512, 1};
  std::error_code ec;
  // Symlinks are not followed by default.
  std::filesystem::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (Stopping(stop)) return StoppedError(root);
    std::string path = it->path().string();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return base::ErrnoError("lstat", path, errno);
    }
    if (st.st_dev != root_st.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    if (!seen.insert(st.st_ino).second) continue;
    usage.inodes++;
    usage.size += static_cast<int64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) {
      dirs.push_back(std::move(path));
    } else if (S_ISREG(st.st_mode)) {
      files.push_back(std::move(path));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("walk ", root, ": ", ec.message()));
  }
  for (size_t i = 0; i < files.size(); i += kBatch) {
    if (Stopping(stop)) return StoppedError(root);
    std::vector<std::string> batch(
        files.begin() + i, files.begin() + std::min(files.size(), i + kBatch));
    RETURN_IF_ERROR(SyncBatch(batch, /*dirs=*/false));
  }
  // Directories last: their entries then name inodes already durable.
  for (size_t i = 0; i < dirs.size(); i += kBatch) {
    if (Stopping(stop)) return StoppedError(root);
    std::vector<std::string> batch(
        dirs.begin() + i, dirs.begin() + std::min(dirs.size(), i + kBatch));
    RETURN_IF_ERROR(SyncBatch(batch, /*dirs=*/true));
  }
  return usage;
}

}  // namespace snapshotter
