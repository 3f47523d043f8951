// The on-disk layout under the snapshotter root and the filesystem work on
// it, kept apart from metadata:
//   <root>/metadata.db           the SQLite metadata
//   <root>/snapshots/<id>/fs     a snapshot's layer (overlay upperdir)
//   <root>/snapshots/<id>/work   overlay workdir (active snapshots)
//   <root>/snapshots/new-XXXXXX  a snapshot being created (renamed to <id>
//                                inside the creating transaction)
//   <root>/snapshots/trash-XXXXXX  an orphan Cleanup is deleting
//   <root>/lock                  held (flock) by the daemon using the root
// Anything else in snapshots/ that no record owns is an orphan for Cleanup;
// new-* and trash-* are swept when the snapshotter opens.
#ifndef SNAPSHOTTER_SNAPSHOT_DIRS_H_
#define SNAPSHOTTER_SNAPSHOT_DIRS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "snapshotter/snapshot_types.h"

namespace guest_pull {

// Paths and directory operations of one snapshotter root.
class SnapshotDirs {
 public:
  explicit SnapshotDirs(std::string root);

  // Creates root and snapshots/ (mode 0700) if missing.
  absl::Status Init() const;

  // Takes an exclusive lock on <root>/lock so that no second daemon works
  // on the same root; returns the descriptor holding it (close to release).
  // FailedPrecondition if another process holds it.
  absl::StatusOr<int> LockRoot() const;

  const std::string& root() const { return root_; }
  std::string MetadataPath() const;
  std::string SnapshotsDir() const;
  std::string SnapshotPath(int64_t id) const;
  std::string FsPath(int64_t id) const;
  std::string WorkPath(int64_t id) const;

  // Creates snapshots/new-XXXXXX with fs/ (and work/ when `with_work`).
  // fs/ takes the owner and mode of `parent_fs` when given (as containerd
  // does), else 0755.
  absl::StatusOr<std::string> CreateTemp(bool with_work,
                                         const std::string& parent_fs) const;

  // Renames a temp dir to snapshots/<id>, replacing a stale directory of
  // that id (left by a crash before its transaction committed), and syncs
  // snapshots/.
  absl::Status Install(const std::string& temp, int64_t id) const;

  // Entries of snapshots/ that are not a directory of an id in `ids`, nor
  // a creation in progress (new-*) or trash (trash-*).
  absl::StatusOr<std::vector<std::string>> Orphans(
      const std::set<int64_t>& ids) const;

  // Entries named new-* (creations in progress, or interrupted by a crash)
  // and trash-* (deletions interrupted by a crash).
  absl::StatusOr<std::vector<std::string>> LeftoverDirs() const;

  // Renames `path` (an entry of snapshots/) to a fresh trash-XXXXXX name,
  // so it can be deleted later without holding any lock; returns the name.
  absl::StatusOr<std::string> MoveToTrash(const std::string& path) const;

 private:
  std::string root_;
};

// Removes a path recursively without following symlinks; a missing path is
// fine.
absl::Status RemoveAll(const std::string& path);

// fsync()s a directory so renames and creations in it are durable.
absl::Status SyncDir(const std::string& dir);

// Flushes the filesystem holding `path` (syncfs), making a layer's
// content durable before its commit is recorded.
absl::Status SyncFilesystem(const std::string& path);

// Size (allocated bytes) and distinct inodes below `dir`, not following
// symlinks or crossing into other filesystems. NotFound if `dir` is gone
// (e.g. removed meanwhile).
absl::StatusOr<Usage> DiskUsage(const std::string& dir);

}  // namespace guest_pull

#endif  // SNAPSHOTTER_SNAPSHOT_DIRS_H_
