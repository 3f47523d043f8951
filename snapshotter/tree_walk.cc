// A walk of a directory tree by descriptors relative to each parent.
#include "snapshotter/tree_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"
#include "base/status_macros.h"

namespace snapshotter {
namespace {

constexpr int kOpenDir = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Paths in messages are cut in the middle past this.
constexpr size_t kMessagePathMax = 1024;

bool SameInode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

int ReadDirNames(int fd, std::vector<std::string>* names) {
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return errno;
  // A dup shares the offset: the listing starts at the beginning whatever
  // was read through `fd` before.
  DIR* dir = fdopendir(own);
  if (dir == nullptr) {
    int err = errno;
    close(own);
    return err;
  }
  rewinddir(dir);
  int err = 0;
  while (true) {
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) {
      err = errno;
      break;
    }
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      names->emplace_back(e->d_name);
    }
  }
  closedir(dir);
  return err;
}

TreeWalk::TreeWalk(std::string root, int max_open_dirs)
    : root_(std::move(root)),
      max_open_(static_cast<size_t>(std::max(max_open_dirs, 2))) {}

TreeWalk::~TreeWalk() { CloseAll(); }

absl::Status TreeWalk::Run(const VisitFn& visit, const LeaveFn& leave) {
  CloseAll();
  absl::Status status = Walk(visit, leave);
  CloseAll();
  return status;
}

absl::Status TreeWalk::Walk(const VisitFn& visit, const LeaveFn& leave) {
  struct stat st;
  if (fstatat(AT_FDCWD, root_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return base::ErrnoError("lstat", root_, errno);
  }
  root_dev_ = st.st_dev;
  RETURN_IF_ERROR(visit(WalkEntry{AT_FDCWD, root_.c_str(), st, 0, false}));
  if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool entered, Enter(AT_FDCWD, root_, st));
  if (!entered) {
    return absl::NotFoundError(
        absl::StrCat("open ", root_, ": removed or replaced meanwhile"));
  }
  // Each turn looks at one entry or leaves one directory, and a directory
  // is entered once per entry naming it (never its own ancestor): bounded
  // by the tree.
  while (!stack_.empty()) {
    Level& dir = stack_.back();
    if (dir.next == dir.names.size()) {
      RETURN_IF_ERROR(LeaveTop(leave));
      continue;
    }
    // A copy: entering it may move the stack's levels.
    const std::string name = dir.names[dir.next++];
    const int dir_fd = dir.fd;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      const int err = errno;  // before MessagePath allocates
      if (err == ENOENT) continue;  // removed meanwhile
      return base::ErrnoError("lstat", MessagePath(name), err);
    }
    const bool other_fs = st.st_dev != root_dev_;
    const int depth = static_cast<int>(stack_.size());
    RETURN_IF_ERROR(
        visit(WalkEntry{dir_fd, name.c_str(), st, depth, other_fs}));
    if (S_ISDIR(st.st_mode) && !other_fs && !IsAncestor(st)) {
      RETURN_IF_ERROR(Enter(dir_fd, name, st).status());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TreeWalk::Enter(int parent_fd, const std::string& name,
                                     const struct stat& st) {
  // The oldest open ancestor is closed first, so the new one stays within
  // the bound (never the parent: at least two are kept).
  if (stack_.size() - first_open_ >= max_open_) {
    close(stack_[first_open_].fd);
    stack_[first_open_].fd = -1;
    ++first_open_;
  }
  Level level;
  level.fd = openat(parent_fd, name.c_str(), kOpenDir);
  if (level.fd < 0) {
    // Removed, or replaced by something else than a directory.
    const int err = errno;  // before MessagePath allocates
    if (err == ENOENT || err == ENOTDIR || err == ELOOP) return false;
    return base::ErrnoError("open", MessagePath(name), err);
  }
  int err = fstat(level.fd, &level.st) != 0 ? errno : 0;
  // Replaced by another directory, or a filesystem mounted there since.
  if (err == 0 && !SameInode(level.st, st)) {
    close(level.fd);
    return false;
  }
  if (err == 0) err = ReadDirNames(level.fd, &level.names);
  if (err != 0) {
    close(level.fd);
    return base::ErrnoError("read", MessagePath(name), err);
  }
  level.name = name;
  stack_.push_back(std::move(level));
  return true;
}

absl::Status TreeWalk::LeaveTop(const LeaveFn& leave) {
  Level& dir = stack_.back();
  if (leave != nullptr) RETURN_IF_ERROR(leave(dir.fd, dir.st));
  const size_t size = stack_.size();
  if (size >= 2 && stack_[size - 2].fd < 0) {
    // The parent was closed on the way down: it is opened again from here
    // and must be the directory this one was entered from. A directory
    // moved elsewhere meanwhile has another parent now, and the walk must
    // not go on there.
    Level& parent = stack_[size - 2];
    int fd = openat(dir.fd, "..", kOpenDir);
    if (fd < 0) {
      const int err = errno;  // before MessagePath allocates
      return absl::AbortedError(absl::StrCat(
          "open ", MessagePath(".."), ": ", strerror(err),
          "; the tree was moved or removed while it was walked"));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !SameInode(st, parent.st)) {
      close(fd);
      return absl::AbortedError(absl::StrCat(
          "walk ", root_, ": ", MessagePath(),
          " was moved while it was walked (its parent is no longer the "
          "directory it was entered from); not walking elsewhere"));
    }
    parent.fd = fd;
    first_open_ = size - 2;
  }
  close(dir.fd);
  stack_.pop_back();
  return absl::OkStatus();
}

bool TreeWalk::IsAncestor(const struct stat& st) const {
  for (const Level& level : stack_) {
    if (SameInode(level.st, st)) return true;
  }
  return false;
}

void TreeWalk::CloseAll() {
  for (const Level& level : stack_) {
    if (level.fd >= 0) close(level.fd);
  }
  stack_.clear();
  first_open_ = 0;
}

std::string TreeWalk::MessagePath(absl::string_view name) const {
  std::string path;
  for (const Level& level : stack_) {
    if (!path.empty()) path += '/';
    path += level.name;
  }
  if (!name.empty()) {
    if (!path.empty()) path += '/';
    absl::StrAppend(&path, name);
  }
  if (path.size() <= kMessagePathMax) return path;
  const size_t half = kMessagePathMax / 2;
  return absl::StrCat(path.substr(0, half), "...",
                      path.substr(path.size() - half));
}

}  // namespace snapshotter
