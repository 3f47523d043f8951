// Socket path preparation.
#include "snapshotter/socket_path.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace snapshotter {
namespace {

const char* FileTypeName(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symlink";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a socket";
}

// True if something accepts connections on the socket at `path`.
bool SocketIsLive(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  bool live =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return live;
}

}  // namespace

absl::Status PrepareSocketPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("socket address \"", path, "\" must be an absolute path"));
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket address \"", path, "\" is ", path.size(),
                     " bytes; unix sockets allow at most ",
                     sizeof(sockaddr_un{}.sun_path) - 1));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create socket directory ", dir, ": ", ec.message()));
    }
    if (chmod(dir.c_str(), 0700) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("chmod ", dir, ": ", strerror(errno)));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir, " is not a directory"));
  }
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot inspect ", path, ": ", strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " exists and is ", FileTypeName(st.st_mode),
        ", not a socket; refusing to replace it (remove it or choose another "
        "--address)"));
  }
  if (SocketIsLive(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another process is already serving on ", path,
        "; is a second containerd-guest-pull-grpc running?"));
  }
  if (unlink(path.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove stale socket ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace snapshotter
