// The on-disk layout under the snapshotter root and the filesystem work on
// it, kept apart from metadata:
//   <root>/metadata.db           the SQLite metadata
//   <root>/snapshots/<id>/fs     a snapshot's layer (overlay upperdir)
//   <root>/snapshots/<id>/work   overlay workdir (active snapshots)
//   <root>/snapshots/new-XXXXXX  a snapshot being created (renamed to <id>
//                                inside the creating transaction)
//   <root>/snapshots/spare-XXXXXX  an empty fs/ and work/ made ahead of a
//                                Prepare (spare_dirs.h), renamed to <id> as
//                                a new-* one is; removed at Open
//   <root>/snapshots/trash-XXXXXX  a directory the database proved released
//                                (removal journal), being deleted
//   <root>/quarantine/<time>-<name>  an entry nothing proved deletable: kept
//                                for the operator, never deleted here
//   <root>/empty-lower           an empty directory (EmptyLowerPath)
//   <root>/store-id              the store's identity, also in metadata.db
//   <root>/lock                  held (flock) by the daemon using the root
// Nothing that may hold data is deleted unless the database proves it
// released it (see store_recovery.h); anything unproven goes to quarantine.
// Directories that hold no data (empty spares, creations that never
// committed) are removed or trashed.
#ifndef SNAPSHOTTER_SNAPSHOT_DIRS_H_
#define SNAPSHOTTER_SNAPSHOT_DIRS_H_

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/snapshot_types.h"
#include "snapshotter/tree_walk.h"

namespace snapshotter {

// Paths and directory operations of one snapshotter root.
class SnapshotDirs {
 public:
  explicit SnapshotDirs(std::string root);

  // Whether the root can be this daemon's, read only: missing, or a
  // directory of this user that holds a store or nothing of others. An
  // existing root that belongs to another user, or holds other files and
  // no store, is refused (FailedPrecondition).
  absl::Status CheckRoot() const;
  // CheckRoot, and a missing root is created (mode 0700; missing parents
  // as the umask gives), flushed into its parent (a parent it may not
  // read is only logged): all LockRoot needs. Nothing
  // else is made, so a start refused after it (store_recovery.h) leaves an
  // existing root as it was but for <root>/lock.
  absl::Status MakeRoot() const;
  // For a root whose store is accepted: sets its mode to 0700, creates
  // snapshots/ (0700) if missing, then flushes the root, so what it holds
  // (snapshots/, quarantine/) is durable whichever start made it.
  absl::Status MakeLayout() const;
  // MakeRoot, then MakeLayout.
  absl::Status Init() const;

  // Takes an exclusive lock on <root>/lock so that no second daemon works
  // on the same root; returns the descriptor holding it (close to release).
  // FailedPrecondition if another process holds it. The file is made if
  // missing and never removed (a removal would let two processes lock two
  // files of that name): the one entry a refused start may leave.
  absl::StatusOr<int> LockRoot() const;

  const std::string& root() const { return root_; }
  std::string MetadataPath() const;
  std::string SnapshotsDir() const;
  std::string SnapshotPath(int64_t id) const;
  std::string FsPath(int64_t id) const;
  std::string WorkPath(int64_t id) const;
  // <root>/empty-lower: an empty directory, the lower layer of a layer
  // being unpacked without its parent (parallel_unpack.h).
  std::string EmptyLowerPath() const;
  // Makes EmptyLowerPath() if it is missing (mode 0755, not flushed: any
  // call that needs it makes it again).
  absl::Status MakeEmptyLower() const;

  // Creates snapshots/new-XXXXXX with fs/ (and work/ when `with_work`),
  // synced unless `sync` is false (the caller then syncs it, e.g. with
  // SyncTree after filling it). fs/ takes the owner and mode of `parent_fs`
  // when given, else 0755. containerd's overlayfs copies the owner only, so
  // there the container's / is always 0755; here it keeps the parent
  // layer's mode (e.g. a build step's `chmod 700 /`).
  absl::StatusOr<std::string> CreateTemp(bool with_work,
                                         const std::string& parent_fs,
                                         bool sync = true) const;

  // Creates snapshots/spare-XXXXXX with an empty fs/ (0755) and work/, not
  // synced: a directory made ahead of a Prepare (spare_dirs.h). Install
  // takes it as it takes a CreateTemp one; Open removes one left over.
  absl::StatusOr<std::string> CreateSpare() const;
  // Whether `path` is a directory (not a symlink, not a mount point) that
  // holds nothing but an empty fs/ and an empty work/ (either may be
  // missing): what CreateSpare makes, or a part of it.
  static bool IsEmptySpare(const std::string& path);
  // Whether `temp`'s fs/ (made by CreateSpare) has the owner and mode
  // CreateTemp would give it for `parent_fs`, so it can stand for one made
  // now: always without a parent, else if they equal the parent's.
  static bool OwnerMatches(const std::string& temp,
                           const std::string& parent_fs);

  std::string QuarantineDir() const;
  std::string StoreIdPath() const;
  // Present while a daemon has the store open (store_recovery.h).
  std::string OpenMarkerPath() const;
  // The store's generation as of its last clean stop (store_recovery.h).
  std::string GenerationPath() const;

  // Renames a temp dir to snapshots/<id> and, with `sync`, syncs
  // snapshots/ (without it the caller must sync snapshots/ before it
  // records the snapshot: a group commit does it once per batch). A
  // directory already there (a rolled-back creation whose removal failed)
  // is removed first if it holds no data (HoldsNoData), else moved to
  // quarantine (QuarantineIfHoldsData).
  absl::Status Install(const std::string& temp, int64_t id,
                       bool sync = true) const;

  // Moves snapshots/<id> to quarantine (Quarantine) if it is there and
  // holds data (not HoldsNoData): a snapshot being made or given its
  // directories at that id holds nothing yet, so it is a leftover nothing
  // proves deletable (a rolled-back creation whose removal failed, under an
  // id SQLite hands out again). Logs a WARNING "snapshot directory <path>
  // <why>; moved to <where>". True if an entry holding no data is left
  // there, for the caller to remove or use.
  absl::StatusOr<bool> QuarantineIfHoldsData(int64_t id,
                                             absl::string_view why) const;

  // The entries of snapshots/, by kind (full paths except `ids`).
  struct Listing {
    std::set<int64_t> ids;            // <id> directories
    std::vector<std::string> temps;   // new-*
    std::vector<std::string> spares;  // spare-XXXXXX (six characters)
    std::vector<std::string> trash;   // trash-*
    std::vector<std::string> others;  // anything else
  };
  absl::StatusOr<Listing> List() const;

  // Of `ids`, those whose snapshots/<id>/fs is not a directory (gone, a
  // file, a link to nothing): one stat each, relative to snapshots/, in
  // parts run side by side (a start checks every listed directory).
  absl::StatusOr<std::set<int64_t>> WithoutFs(
      const std::set<int64_t>& ids) const;

  // Renames `path` (an entry of snapshots/) to a fresh trash-XXXXXX name,
  // so it can be deleted later without holding any lock; returns the name.
  // Only for entries proven deletable.
  absl::StatusOr<std::string> MoveToTrash(const std::string& path) const;

  // Makes whatever is missing of snapshots/<id>, its fs/ (with the owner
  // and mode of `parent_fs` if that exists) and, with `with_work`, work/:
  // the empty directory of a record whose creation was not flushed and was
  // lost in a power cut, or of a guest-pulled layer that never had one.
  // Anything else in the place of one of them (a file, a link to none)
  // goes to quarantine first (QuarantineIfNotDir); a link to a directory
  // is used as it is.
  // With `sync`, syncs what it made; true if it made anything.
  absl::StatusOr<bool> Recreate(int64_t id, bool with_work,
                                const std::string& parent_fs,
                                bool sync = true) const;

  // True if `path` holds nothing but an empty fs/ and (optionally) an empty
  // work/: what a creation leaves when it was cut before its transaction
  // committed. Deleting such a directory cannot lose data.
  static bool HoldsNoData(const std::string& path);

  // Moves `path` (below the root) to quarantine/<UTC time>-<its name, or
  // `name` if given> (suffixed -1, -2, ... if taken) and syncs both
  // directories; returns the new path.
  absl::StatusOr<std::string> Quarantine(const std::string& path,
                                         absl::string_view name = "") const;

  // Quarantines `path` (as `name`) if something is there that is not a
  // directory or a symbolic link to one, and logs it at WARNING.
  absl::Status QuarantineIfNotDir(const std::string& path,
                                  absl::string_view name) const;

  // A free path quarantine/<UTC time>-<name>[-N] (not created); creates
  // quarantine/ itself if missing, flushed into the root.
  absl::StatusOr<std::string> NewQuarantinePath(absl::string_view name) const;

  // Entries in quarantine/ (0 if it does not exist).
  absl::StatusOr<int64_t> QuarantineCount() const;

 private:
  absl::StatusOr<std::string> MakeTemp(absl::string_view prefix, bool with_work,
                                       const std::string& parent_fs,
                                       bool sync) const;

  std::string root_;
};

// Removes a path recursively without following symlinks and without
// crossing into a filesystem mounted on it or below it (FailedPrecondition
// naming the mount point; nothing of the mounted filesystem is touched); a
// missing path is fine. Walked by descriptors, so a directory below `path`
// swapped for a symlink meanwhile (a container's upper directory) never
// leads it elsewhere. A tree of any depth: deep directories are first
// moved up under `path` (as `.deep-N`), so the walk holds few descriptors.
// With `stop`: looked at before each entry; once it is true, Cancelled,
// and what was not deleted yet stays.
absl::Status RemoveAll(const std::string& path,
                       const std::atomic<bool>* stop = nullptr);

// fsync()s a directory so renames and creations in it are durable.
absl::Status SyncDir(const std::string& dir);

// Size (allocated bytes) and distinct inodes below `dir`, not following
// symlinks or crossing into other filesystems, in a tree of any depth (a
// TreeWalk). NotFound if `dir` is gone (e.g. removed meanwhile); entries
// removed meanwhile are skipped. Once `*stop` is true (the daemon's stop)
// it gives up at the next entry: Unavailable.
absl::StatusOr<Usage> DiskUsage(const std::string& dir,
                                const std::atomic<bool>* stop = nullptr);

// Usage as DiskUsage measures it, counted entry by entry of a TreeWalk
// (SyncTree measures in the walk that flushes): the allocated bytes of
// every inode on the root's filesystem, each once however many names it
// has (hard links).
class UsageCounter {
 public:
  // Counts `entry`; false if it was not (on another filesystem, or an
  // inode already counted).
  bool Count(const WalkEntry& entry);
  const Usage& usage() const { return usage_; }

 private:
  std::set<std::pair<dev_t, ino_t>> seen_;
  Usage usage_;
};

// For walks a stop cuts short (DiskUsage, SyncTree): whether `*stop` is set,
// and the Unavailable they then return.
bool Stopping(const std::atomic<bool>* stop);
absl::Status StoppedError(const std::string& path);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SNAPSHOT_DIRS_H_
