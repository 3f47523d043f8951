// Output files of the verity tool: replaced whole, never destroyed on error.
#include "kata_volume/verity/output_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"
#include "base/status_macros.h"

namespace guest_pull::verity {

namespace {

// Symbolic links followed before giving up (the kernel's own limit).
constexpr int kMaxLinkHops = 40;

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Every output is a new file made in the directory of the one it
// replaces: a directory it cannot write to (read-only file system, no
// permission) is refused before any work rather than after hashing.
absl::Status CheckDirWritable(const std::string& file) {
  const std::string dir = DirOf(file);
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) == 0) return absl::OkStatus();
  return base::ErrnoError(
      absl::StrCat("cannot write ", file, ": its directory"), dir, errno);
}

// Links the O_TMPFILE file `fd` into its directory under `*pattern`
// ("...XXXXXX", the X's replaced by a free name), for the rename.
absl::Status NameUnnamedFile(int fd, std::string* pattern) {
  const std::string proc = absl::StrCat("/proc/self/fd/", fd);
  const std::string stem = pattern->substr(0, pattern->size() - 6);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const long pick = (::random() ^ ::getpid()) & 0xffffff;
    std::string name = absl::StrCat(stem, absl::Hex(pick, absl::kZeroPad6));
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      *pattern = std::move(name);
      return absl::OkStatus();
    }
    if (errno != EEXIST) return base::ErrnoError("cannot name a file beside", stem, errno);
  }
  return absl::AlreadyExistsError(absl::StrCat("no free temporary name beside ", stem));
}

}  // namespace

absl::StatusOr<std::string> ResolveOutputPath(const std::string& path) {
  std::string current = path;
  for (int hop = 0; hop <= kMaxLinkHops; ++hop) {
    struct stat st;
    if (::lstat(current.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        // Created by the write, in a directory that must exist: it is
        // never created (refused here, before any work, not at the write).
        const std::string dir = DirOf(current);
        struct stat ds;
        if (::stat(dir.c_str(), &ds) == 0) {
          RETURN_IF_ERROR(CheckDirWritable(current));
          return current;
        }
        if (errno == ENOENT) {
          return absl::NotFoundError(absl::StrCat("cannot write ", current, ": its directory ",
                                                  dir, " does not exist (it is not created)"));
        }
        return base::ErrnoError(absl::StrCat("cannot write ", current, ": cannot stat its directory"),
                                dir, errno);
      }
      return base::ErrnoError("cannot stat", current, errno);
    }
    if (S_ISREG(st.st_mode)) {
      RETURN_IF_ERROR(CheckDirWritable(current));
      return current;
    }
    if (!S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          current, " is ", KindOf(st.st_mode),
          ": an output is written to a new file that replaces a regular one"));
    }
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
    if (n < 0) return base::ErrnoError("cannot read the link", current, errno);
    if (static_cast<size_t>(n) >= target.size()) {
      return absl::AbortedError(absl::StrCat("the link ", current, " changed while being read"));
    }
    target.resize(static_cast<size_t>(n));
    current = target[0] == '/' ? target : absl::StrCat(DirOf(current), "/", target);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": more than ", kMaxLinkHops, " symbolic links to follow"));
}

absl::Status ReplaceFile(const std::string& resolved, bool flush,
                         const std::function<absl::Status(int fd)>& write) {
  const std::string dir = DirOf(resolved);
  // Unnamed until written (O_TMPFILE): a kill meanwhile leaves nothing.
  // File systems without it get a named temporary file from the start.
  std::string tmp = absl::StrCat(resolved, ".tmp.XXXXXX");
  bool named = false;  // `tmp` names the new file
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    named = fd >= 0;
  }
  if (fd < 0) return base::ErrnoError("cannot create a file beside", resolved, errno);
  absl::Status s;
  struct stat old;
  // No setuid, setgid or sticky bit carried over to an output.
  const mode_t mode = ::stat(resolved.c_str(), &old) == 0 ? (old.st_mode & 0777) : 0644;
  if (::fchmod(fd, mode) != 0) s = base::ErrnoError("cannot chmod a file beside", resolved, errno);
  if (s.ok()) s = write(fd);
  if (s.ok() && flush && ::fsync(fd) != 0) s = base::ErrnoError("cannot fsync", resolved, errno);
  if (s.ok() && !named) {
    s = NameUnnamedFile(fd, &tmp);
    named = s.ok();
  }
  // A failed close may have lost writes.
  if (::close(fd) != 0 && s.ok()) s = base::ErrnoError("cannot close", resolved, errno);
  if (s.ok() && ::rename(tmp.c_str(), resolved.c_str()) != 0) {
    s = base::ErrnoError("cannot rename to", resolved, errno);
  }
  if (!s.ok()) {
    if (named) ::unlink(tmp.c_str());
    return s;
  }
  if (!flush) return absl::OkStatus();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return base::ErrnoError("cannot open directory", dir, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return base::ErrnoError("cannot fsync directory", dir, err);
  return absl::OkStatus();
}

absl::Status WriteAllTo(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoError("cannot write", path, errno);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace guest_pull::verity
