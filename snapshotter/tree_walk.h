// A walk of a directory tree of any depth by descriptors: each entry is
// looked at (fstatat) and each directory opened (openat) relative to its
// parent's descriptor, so no path passes PATH_MAX however deep the tree (a
// container can make one deeper than that in its upper directory, and calls
// on whole paths then fail ENAMETOOLONG), and the process never chdirs
// (the daemon is multithreaded). Descriptors stay bounded whatever the
// depth: a directory's names are read into memory before the walk goes
// down, and only the nearest ancestors stay open; one closed is opened
// again on the way back up, by "..", and checked to be the one it was.
#ifndef SNAPSHOTTER_TREE_WALK_H_
#define SNAPSHOTTER_TREE_WALK_H_

#include <sys/stat.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snapshotter {

// Appends the names in the directory open as `fd`, but "." and "..", read
// from its beginning through a descriptor of their own (closed before
// returning: `fd` stays as it was); 0, or the errno of a failed read.
int ReadDirNames(int fd, std::vector<std::string>* names);

// One entry as a walk shows it.
struct WalkEntry {
  int dir_fd;             // the directory holding it, open during the call
                          // (AT_FDCWD for the root)
  const char* name;       // its name there (the root's path for the root)
  const struct stat& st;  // its own (a symlink's, not its target's)
  int depth;              // 0 for the root, 1 for its entries, ...
  bool other_fs;          // not on the root's filesystem: not entered
};

// Walks the tree under one root, once (Run). Symlinks are not followed
// (the root's neither); a directory on another filesystem than the root's
// is shown but not entered, and so is one that is its own ancestor (a bind
// mount of the same filesystem). An entry removed, or replaced, between
// its listing and its fstatat or openat is skipped.
class TreeWalk {
 public:
  // Directories kept open at most, by default: the nearest ancestors.
  static constexpr int kMaxOpenDirs = 32;

  // Called for every entry, the root first, each directory before what it
  // holds. An error ends the walk and is what Run returns.
  using VisitFn = std::function<absl::Status(const WalkEntry& entry)>;
  // Called for each directory entered, open as `fd` (the walk's: dup it to
  // keep it), after everything below it; the root last. An error ends the
  // walk and is what Run returns.
  using LeaveFn = std::function<absl::Status(int fd, const struct stat& st)>;

  // At most `max_open_dirs` (at least 2) directories are open at a time,
  // and one descriptor more while a directory's names are read.
  explicit TreeWalk(std::string root, int max_open_dirs = kMaxOpenDirs);
  TreeWalk(const TreeWalk&) = delete;
  TreeWalk& operator=(const TreeWalk&) = delete;
  ~TreeWalk();

  // Walks the tree; whatever it returns, nothing is left open. Its own
  // errors name the entry ("lstat <root>/a/b: ..."); of them, NotFound is
  // only a missing root, and Aborted a directory moved (or removed)
  // meanwhile so that the walk cannot climb back to the directory it came
  // from: it never goes on somewhere else.
  absl::Status Run(const VisitFn& visit, const LeaveFn& leave = nullptr);

  // For messages only: the path of `name` in the directory being walked
  // (of that directory when empty; the root's own during its visit), cut
  // in the middle past 1 KiB.
  std::string MessagePath(absl::string_view name = "") const;

 private:
  struct Level {
    int fd = -1;  // -1 while closed (too far above the walk)
    struct stat st = {};
    std::string name;  // in its parent (the root's path for the root)
    std::vector<std::string> names;  // its entries, read on entering it
    size_t next = 0;                 // the next of them to visit
  };

  absl::Status Walk(const VisitFn& visit, const LeaveFn& leave);
  // Opens and reads the directory `name` of `parent_fd` and goes down into
  // it; false if it was removed or replaced since `st` was taken.
  absl::StatusOr<bool> Enter(int parent_fd, const std::string& name,
                             const struct stat& st);
  absl::Status LeaveTop(const LeaveFn& leave);
  bool IsAncestor(const struct stat& st) const;
  void CloseAll();

  const std::string root_;
  const size_t max_open_;
  dev_t root_dev_ = 0;
  std::vector<Level> stack_;  // the root, ..., the directory being walked
  size_t first_open_ = 0;     // stack_[first_open_..] are open
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_TREE_WALK_H_
