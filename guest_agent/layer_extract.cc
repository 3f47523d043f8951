// Layer tar extraction with overlayfs whiteouts.
#include "guest_agent/layer_extract.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "guest_agent/open_in_root.h"
#include "kata_volume/verity/tar_reader.h"
#include "base/status_macros.h"

namespace guest_pull::guest_agent {

namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

// Path components with "" and "." dropped; false if ".." or a NUL byte
// (system calls would cut the name there: "..\0x" is "..") appears (such
// entries are skipped, never resolved).
bool CleanPath(const std::string& path, std::vector<std::string>* parts) {
  parts->clear();
  if (path.find('\0') != std::string::npos) return false;
  for (absl::string_view p : absl::StrSplit(path, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") return false;
    parts->emplace_back(p);
  }
  return true;
}

// Opens (creating as needed, mode 0755) the directory made of parts[0..n).
absl::StatusOr<int> OpenDir(int root_fd, const std::vector<std::string>& parts, size_t n) {
  std::string prefix;
  int fd = OpenInRoot(root_fd, "", O_DIRECTORY | O_RDONLY);
  if (fd < 0) return Errno("open layer dir");
  for (size_t i = 0; i < n; ++i) {
    prefix = prefix.empty() ? parts[i] : absl::StrCat(prefix, "/", parts[i]);
    int next = OpenInRoot(root_fd, prefix, O_DIRECTORY | O_RDONLY);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(fd, parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        ::close(fd);
        return Errno(absl::StrCat("mkdir ", prefix));
      }
      next = OpenInRoot(root_fd, prefix, O_DIRECTORY | O_RDONLY);
    }
    ::close(fd);
    if (next < 0) return Errno(absl::StrCat("open dir ", prefix));
    fd = next;
  }
  return fd;
}

// Removes `name` in `dir_fd` whatever it is (directories recursively).
absl::Status RemoveAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? absl::OkStatus() : Errno(absl::StrCat("stat ", name));
  }
  if (!S_ISDIR(st.st_mode)) {
    return ::unlinkat(dir_fd, name.c_str(), 0) == 0 ? absl::OkStatus() : Errno(absl::StrCat("unlink ", name));
  }
  int fd = ::openat(dir_fd, name.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", name));
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return Errno(absl::StrCat("opendir ", name));
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string child = e->d_name;
    if (child != "." && child != "..") children.push_back(child);
  }
  absl::Status status;
  for (const std::string& child : children) {
    status = RemoveAt(::dirfd(d), child);
    if (!status.ok()) break;
  }
  ::closedir(d);
  if (!status.ok()) return status;
  return ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) == 0 ? absl::OkStatus()
                                                             : Errno(absl::StrCat("rmdir ", name));
}

// Sets the member's xattrs on `name` in `dir_fd` (any type: through an
// O_PATH descriptor and /proc/self/fd, which reaches a symlink itself).
// trusted.overlay.* is overlayfs's own (our whiteouts and opaque markers):
// never taken from a layer.
absl::Status SetXattrs(int dir_fd, const std::string& name, const std::string& path,
                       const verity::TarEntry& e, ExtractStats* stats) {
  if (e.xattrs.empty()) return absl::OkStatus();
  int fd = ::openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  const std::string proc_path = absl::StrCat("/proc/self/fd/", fd);
  for (const auto& [key, value] : e.xattrs) {
    if (absl::StartsWith(key, "trusted.overlay.")) {
      ++stats->xattrs_ignored;
      continue;
    }
    if (::setxattr(proc_path.c_str(), key.c_str(), value.data(), value.size(), 0) != 0) {
      if (errno == ENOTSUP) {
        ++stats->xattrs_ignored;
        continue;
      }
      return Errno(absl::StrCat("set xattr ", key, " on ", path));
    }
    ++stats->xattrs;
  }
  return absl::OkStatus();
}

absl::Status WriteFileData(verity::TarReader* reader, int fd, const std::string& path) {
  char buffer[64 * 1024];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadData(buffer, sizeof(buffer)));
    if (n == 0) return absl::OkStatus();
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(fd, buffer + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Errno(absl::StrCat("write ", path));
      done += static_cast<size_t>(w);
    }
  }
}

// A directory member's path and mtime, set once the layer is written.
using DirTimes = std::vector<std::pair<std::string, time_t>>;

// Gives `name` in `dir_fd` (the link itself for a symlink) the member's
// owner; `path` names it in the error.
absl::Status ChownAt(int dir_fd, const std::string& name, const std::string& path, uid_t uid,
                     gid_t gid) {
  if (::fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return Errno(absl::StrCat("chown ", path));
  }
  return absl::OkStatus();
}

// Sets a member's mtime (and atime to it) on a non-directory (`name` in
// `dir_fd`), the link itself for a symlink. Best effort: a time is not
// worth failing the layer.
void SetTimes(int dir_fd, const std::string& name, const verity::TarEntry& e) {
  const time_t mtime = static_cast<time_t>(e.mtime.value_or(0));
  const timespec times[2] = {{mtime, 0}, {mtime, 0}};
  ::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

// The layer's own directory ("./" in a tar made with `tar -C dir .`): its
// owner and mode apply to the layer root, its mtime once the layer is
// written, as image-rs does for it; the root is never replaced. Any other
// type there names nothing to write.
absl::Status ApplyRootEntry(const verity::TarEntry& e, int root_fd, ExtractStats* stats,
                            DirTimes* dir_times) {
  if (e.type_flag != '5') {
    ++stats->skipped;
    return absl::OkStatus();
  }
  if (::fchown(root_fd, static_cast<uid_t>(e.uid.value_or(0)), static_cast<gid_t>(e.gid.value_or(0))) != 0) {
    return Errno("chown the layer root");
  }
  if (e.mode.has_value() && ::fchmod(root_fd, static_cast<mode_t>(*e.mode & 07777)) != 0) {
    return Errno("chmod the layer root");
  }
  if (e.mtime.has_value()) dir_times->emplace_back("", static_cast<time_t>(*e.mtime));
  ++stats->entries;
  return absl::OkStatus();
}

// Applies one member below `root_fd`.
absl::Status ApplyEntry(verity::TarReader* reader, const verity::TarEntry& e, int root_fd,
                        ExtractStats* stats, DirTimes* dir_times) {
  std::vector<std::string> parts;
  if (!CleanPath(e.path, &parts)) {
    ++stats->skipped;
    return absl::OkStatus();
  }
  if (parts.empty()) return ApplyRootEntry(e, root_fd, stats, dir_times);
  const std::string& name = parts.back();
  const std::string path = absl::StrJoin(parts, "/");
  ASSIGN_OR_RETURN(int parent, OpenDir(root_fd, parts, parts.size() - 1));
  const int dir_fd = parent;
  absl::Cleanup close_parent = [dir_fd] { ::close(dir_fd); };
  const mode_t perm = static_cast<mode_t>(e.mode.value_or(0644) & 07777);
  const uid_t uid = static_cast<uid_t>(e.uid.value_or(0));
  const gid_t gid = static_cast<gid_t>(e.gid.value_or(0));

  if (name == kOpaqueMarker) {
    ++stats->whiteouts;
    if (::fsetxattr(dir_fd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return Errno(absl::StrCat("set opaque on ", path));
    }
    return absl::OkStatus();
  }
  if (absl::StartsWith(name, kWhiteoutPrefix)) {
    const std::string target = name.substr(strlen(kWhiteoutPrefix));
    // ".wh..." would remove the directory holding this one: outside the
    // layer at its top.
    if (target.empty() || target == "." || target == "..") {
      ++stats->skipped;
      return absl::OkStatus();
    }
    ++stats->whiteouts;
    RETURN_IF_ERROR(RemoveAt(dir_fd, target));
    if (::mknodat(dir_fd, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return Errno(absl::StrCat("whiteout ", path));
    }
    return absl::OkStatus();
  }

  struct stat existing;
  const bool is_dir = ::fstatat(dir_fd, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
                      S_ISDIR(existing.st_mode);
  // A directory member keeps a directory there; anything else is replaced.
  const bool keep = e.type_flag == '5' && is_dir;
  if (!keep) RETURN_IF_ERROR(RemoveAt(dir_fd, name));
  switch (e.type_flag) {
    case '\0':
    case '0':
    case '7': {
      int fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) return Errno(absl::StrCat("create ", path));
      absl::Cleanup close_fd = [fd] { ::close(fd); };
      RETURN_IF_ERROR(WriteFileData(reader, fd, path));
      if (::fchown(fd, uid, gid) != 0) return Errno(absl::StrCat("chown ", path));
      RETURN_IF_ERROR(SetXattrs(dir_fd, name, path, e, stats));
      if (::fchmod(fd, perm) != 0) return Errno(absl::StrCat("chmod ", path));
      SetTimes(dir_fd, name, e);
      break;
    }
    case '5':
      if (!keep && ::mkdirat(dir_fd, name.c_str(), 0700) != 0) return Errno(absl::StrCat("mkdir ", path));
      RETURN_IF_ERROR(ChownAt(dir_fd, name, path, uid, gid));
      RETURN_IF_ERROR(SetXattrs(dir_fd, name, path, e, stats));
      if (::fchmodat(dir_fd, name.c_str(), perm, 0) != 0) return Errno(absl::StrCat("chmod ", path));
      if (e.mtime.has_value()) dir_times->emplace_back(path, static_cast<time_t>(*e.mtime));
      break;
    case '2':
      if (::symlinkat(e.link_name.value_or("").c_str(), dir_fd, name.c_str()) != 0) {
        return Errno(absl::StrCat("symlink ", path));
      }
      RETURN_IF_ERROR(ChownAt(dir_fd, name, path, uid, gid));
      RETURN_IF_ERROR(SetXattrs(dir_fd, name, path, e, stats));
      SetTimes(dir_fd, name, e);
      break;
    case '1': {
      std::vector<std::string> target;
      if (!CleanPath(e.link_name.value_or(""), &target) || target.empty()) {
        ++stats->skipped;
        return absl::OkStatus();
      }
      int source = OpenInRoot(root_fd, absl::StrJoin(target, "/"), O_PATH | O_NOFOLLOW);
      if (source < 0) return Errno(absl::StrCat("hardlink target of ", path));
      absl::Cleanup close_source = [source] { ::close(source); };
      if (::linkat(source, "", dir_fd, name.c_str(), AT_EMPTY_PATH) != 0) {
        return Errno(absl::StrCat("link ", path));
      }
      RETURN_IF_ERROR(SetXattrs(dir_fd, name, path, e, stats));
      SetTimes(dir_fd, name, e);  // the shared inode's, as containerd and image-rs set them
      break;
    }
    case '3':
    case '4':
    case '6': {
      mode_t type = e.type_flag == '3' ? S_IFCHR : e.type_flag == '4' ? S_IFBLK : S_IFIFO;
      dev_t dev = makedev(e.dev_major.value_or(0), e.dev_minor.value_or(0));
      if (::mknodat(dir_fd, name.c_str(), type | perm, dev) != 0) return Errno(absl::StrCat("mknod ", path));
      RETURN_IF_ERROR(ChownAt(dir_fd, name, path, uid, gid));
      RETURN_IF_ERROR(SetXattrs(dir_fd, name, path, e, stats));
      // mknod applied the umask (init's is 022).
      if (::fchmodat(dir_fd, name.c_str(), perm, 0) != 0) return Errno(absl::StrCat("chmod ", path));
      SetTimes(dir_fd, name, e);
      break;
    }
    default:
      ++stats->skipped;
      return absl::OkStatus();
  }
  ++stats->entries;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExtractStats> ExtractLayerTar(verity::ByteSource* source, const std::string& dir) {
  int root_fd = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (root_fd < 0) return Errno(absl::StrCat("open ", dir));
  absl::Cleanup close_root = [root_fd] { ::close(root_fd); };
  verity::TarReader reader(source);
  ExtractStats stats;
  DirTimes dir_times;
  while (true) {
    ASSIGN_OR_RETURN(const verity::TarEntry* entry, reader.Next());
    if (entry == nullptr) break;
    RETURN_IF_ERROR(ApplyEntry(&reader, *entry, root_fd, &stats, &dir_times));
  }
  // Directory times last, as containerd's applier sets them: every member
  // written into a directory moved its mtime. One a later member replaced
  // (or turned into a symlink) is left alone.
  for (const auto& [path, mtime] : dir_times) {
    int fd = OpenInRoot(root_fd, path, O_DIRECTORY | O_RDONLY | O_NOFOLLOW);
    if (fd < 0) continue;
    timespec times[2] = {{mtime, 0}, {mtime, 0}};
    ::futimens(fd, times);
    ::close(fd);
  }
  stats.tar_bytes = reader.Position();
  return stats;
}

}  // namespace guest_pull::guest_agent
