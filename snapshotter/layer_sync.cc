// fsync of a layer's own files and directories.
#include "snapshotter/layer_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "base/errno_error.h"
#include "base/status_macros.h"
#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/tree_walk.h"

namespace snapshotter {
namespace {

// Descriptors waiting for their fsync at once: the writeback of a batch's
// files runs together, then each is fsynced.
constexpr size_t kBatch = 256;

// Flushes what a walk shows, in batches, no path kept: a regular file is
// opened relative to its directory when the walk meets it (once per
// inode), its writeback started, and it waits in the batch; a directory
// joins the batch when the walk leaves it (post-order), so every file
// below it was met before. A full batch, and the last, fsyncs its files
// first, then its directories: a directory is flushed only once every
// file below it is durable (its entries then name inodes already
// durable), as when all files went before all directories, and at most
// kBatch descriptors wait whatever the tree (a closed directory could not
// be opened again by a path deeper than PATH_MAX).
class Flusher {
 public:
  Flusher(const std::string& root, const TreeWalk& walk,
          const std::atomic<bool>* stop)
      : root_(root), walk_(walk), stop_(stop) {}
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;
  ~Flusher() {  // what a failed walk left waiting
    for (const Waiting& w : files_) close(w.fd);
    for (const Waiting& w : dirs_) close(w.fd);
  }

  absl::Status Visit(const WalkEntry& entry) {
    if (Stopping(stop_)) return StoppedError(root_);
    if (!counter_.Count(entry) || !S_ISREG(entry.st.st_mode)) {
      return absl::OkStatus();
    }
    int fd = openat(entry.dir_fd, entry.name,
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      const int err = errno;  // before MessagePath allocates
      if (err == ENOENT) return absl::OkStatus();  // removed meanwhile
      return base::ErrnoError("open", walk_.MessagePath(entry.name), err);
    }
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    files_.push_back({fd, walk_.MessagePath(entry.name)});
    return FlushIfFull();
  }

  absl::Status Leave(int dir_fd) {
    int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      const int err = errno;  // before MessagePath allocates
      return base::ErrnoError("dup", walk_.MessagePath(), err);
    }
    dirs_.push_back({fd, walk_.MessagePath()});
    return FlushIfFull();
  }

  // fsyncs the batch: its files, then its directories.
  absl::Status Flush() {
    if (files_.empty() && dirs_.empty()) return absl::OkStatus();
    if (Stopping(stop_)) return StoppedError(root_);
    absl::Status status;
    for (std::vector<Waiting>* waiting : {&files_, &dirs_}) {
      for (const Waiting& w : *waiting) {
        if (status.ok() && fsync(w.fd) != 0) {
          status = base::ErrnoError("fsync", w.path, errno);
        }
        close(w.fd);
      }
      waiting->clear();
    }
    return status;
  }

  const Usage& usage() const { return counter_.usage(); }

 private:
  struct Waiting {
    int fd;
    std::string path;  // for messages
  };

  absl::Status FlushIfFull() {
    return files_.size() + dirs_.size() < kBatch ? absl::OkStatus() : Flush();
  }

  const std::string& root_;
  const TreeWalk& walk_;
  const std::atomic<bool>* const stop_;
  UsageCounter counter_;
  std::vector<Waiting> files_;
  std::vector<Waiting> dirs_;
};

}  // namespace

absl::StatusOr<Usage> SyncTree(const std::string& root,
                               const std::atomic<bool>* stop) {
  TreeWalk walk(root);
  Flusher flusher(root, walk, stop);
  RETURN_IF_ERROR(walk.Run(
      [&](const WalkEntry& entry) { return flusher.Visit(entry); },
      [&](int fd, const struct stat&) { return flusher.Leave(fd); }));
  RETURN_IF_ERROR(flusher.Flush());
  return flusher.usage();
}

}  // namespace snapshotter
