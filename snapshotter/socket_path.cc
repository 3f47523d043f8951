// Socket path preparation.
#include "snapshotter/socket_path.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file_type.h"
#include "glog/logging.h"
#include "snapshotter/dangling_link.h"

namespace snapshotter {
namespace {

// How long a connect() that is still in progress may take to settle.
constexpr absl::Duration kProbeTimeout = absl::Seconds(1);

// "Connection refused (ECONNREFUSED)".
std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return absl::StrCat(strerror(err), " (",
                      name != nullptr ? name : absl::StrCat("errno ", err),
                      ")");
}

// What a connect() to the socket at `path` says about it.
enum class Probe { kStale, kGone };

// kStale if nothing listens there (ECONNREFUSED), kGone if the path vanished
// meanwhile; otherwise FailedPrecondition saying why it must stay: someone
// accepts (or has a full backlog), it is a socket of another type
// (EPROTOTYPE: a datagram or seqpacket socket), or the probe failed (EACCES,
// ...) and nothing proves it stale; InvalidArgument for a path too long to
// connect to. Never waits longer than kProbeTimeout.
absl::StatusOr<Probe> ProbeSocket(const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = UnixSocketAddress(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot probe the socket ", path, ": socket(): ", ErrnoText(errno)));
  }
  int err = 0;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) !=
      0) {
    err = errno;
  }
  if (err == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, absl::ToInt64Milliseconds(kProbeTimeout)) == 1) {
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
  }
  close(fd);
  switch (err) {
    case ECONNREFUSED:
      return Probe::kStale;
    case ENOENT:
      return Probe::kGone;
    case 0:
      return absl::FailedPreconditionError(
          absl::StrCat("another process is already serving on ", path,
                       "; is a second containerd-guest-pull-grpc running?"));
    case EAGAIN:
    case EINPROGRESS:
      return absl::FailedPreconditionError(
          absl::StrCat("another process is already serving on ", path,
                       " (its connection queue is full: ", ErrnoText(err),
                       "); is a second containerd-guest-pull-grpc running?"));
    case EPROTOTYPE:
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          " is a socket of another type (datagram or seqpacket, e.g. a "
          "systemd or journal socket; connect: ",
          ErrnoText(err),
          "); refusing to replace it (choose another --address)"));
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot tell whether the socket ", path,
          " is stale (connect: ", ErrnoText(err),
          "); refusing to replace it (remove it yourself if no process "
          "uses it, or choose another --address)"));
  }
}

// Removes the stale socket `probed` (lstat before the probe) from `path`.
// A daemon may have put its live socket there since the probe: the path is
// moved aside first and put back unless it was the socket probed (a stale
// socket never comes alive; a new one is a new file).
absl::Status RemoveStaleSocket(const std::string& path,
                               const struct stat& probed) {
  std::string aside = BindingPath(path);
  if (aside == path) {  // no other name fits: the old way
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot remove stale socket ", path, ": ", strerror(errno)));
    }
    return absl::OkStatus();
  }
  if (rename(path.c_str(), aside.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove stale socket ", path, ": ", strerror(errno)));
  }
  struct stat st;
  int rc = lstat(aside.c_str(), &st);
  if (rc != 0 && errno == ENOENT) {
    return absl::OkStatus();  // another start's sweep removed it meanwhile
  }
  bool same =
      rc == 0 && st.st_dev == probed.st_dev && st.st_ino == probed.st_ino;
  if (same) {
    unlink(aside.c_str());
    return absl::OkStatus();
  }
  std::string where = path;
  if (link(aside.c_str(), path.c_str()) == 0) {
    unlink(aside.c_str());
  } else {
    where = aside;  // yet another file took the path: theirs stays aside
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "another process bound ", path,
      " while its stale socket was being removed (its socket is at ", where,
      "); is a second containerd-guest-pull-grpc running?"));
}

// The pid in `name` if it is one BindingPath gives the address named
// `base`: <base>.<digits>-<8 hex digits> or .<digits>-<8 hex digits>.
std::optional<pid_t> BindingPid(absl::string_view name,
                                absl::string_view base) {
  if (!absl::ConsumePrefix(&name, absl::StrCat(base, ".")) &&
      !absl::ConsumePrefix(&name, ".")) {
    return std::nullopt;
  }
  size_t dash = name.find('-');
  if (dash == 0 || dash == absl::string_view::npos || name.size() != dash + 9) {
    return std::nullopt;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = i < dash    ? absl::ascii_isdigit(c)
              : i == dash ? true
                          : absl::ascii_isxdigit(c) && !absl::ascii_isupper(c);
    if (!ok) return std::nullopt;
  }
  int pid = 0;
  if (!absl::SimpleAtoi(name.substr(0, dash), &pid) || pid <= 0) {
    return std::nullopt;
  }
  return pid;
}

// A binding name whose daemon may still be starting: its pid runs and is not
// ours (we have not bound yet, so a name with our pid is from an earlier
// run in another pid namespace). Between its bind and its listen a live
// daemon's socket looks stale.
bool MayBeStarting(pid_t pid) {
  return pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM);
}

// Removes the names a daemon bound and had not yet linked to the address
// when it died (BindingPath): only stale sockets (nothing accepts) of
// daemons not running.
void RemoveStaleBindings(const std::string& dir, absl::string_view base) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::filesystem::directory_entry& entry = *it;
    std::optional<pid_t> pid =
        BindingPid(entry.path().filename().string(), base);
    if (!pid.has_value() || MayBeStarting(*pid)) continue;
    struct stat st;
    std::string path = entry.path().string();
    if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    absl::StatusOr<Probe> probe = ProbeSocket(path);
    if (probe.ok() && *probe == Probe::kStale) unlink(path.c_str());
  }
}

// InvalidArgument for a relative or too long path, or one with "%".
absl::Status CheckForm(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("socket address \"", path, "\" must be an absolute path"));
  }
  if (absl::Status s = CheckUriSafe(path); !s.ok()) return s;
  return UnixSocketAddress(path).status();
}

// What is at `path`: nothing (nullopt), or a stale socket (its lstat, to
// remove); FailedPrecondition for anything that must stay.
absl::StatusOr<std::optional<struct stat>> StaleSocketAt(
    const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return absl::FailedPreconditionError(
        absl::StrCat("cannot inspect ", path, ": ", strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " exists and is ", base::FileTypeName(st.st_mode),
        ", not a socket; refusing to replace it (remove it or choose another "
        "--address)"));
  }
  absl::StatusOr<Probe> probe = ProbeSocket(path);
  if (!probe.ok()) return probe.status();
  if (*probe == Probe::kGone) return std::nullopt;
  return st;
}

// Whether the socket's directory `dir` exists (false: missing, to be
// made); FailedPrecondition for a file there, or one that cannot be looked
// at (it could not be made either).
absl::StatusOr<bool> SocketDirExists(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create socket directory ", dir, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir, " is not a directory"));
  }
  return true;
}

// Whether a unix socket can be bound in `dir`, the directory of the
// address `path`: one is bound at `name` and removed at once. Some places
// root may write hold no sockets (/proc/self, sysfs, a filesystem without
// them): they passed the other checks and the bind failed only once the
// store was open (a new root's store made), naming the binding, not
// `path`. OK without a probe when `name` is too long for a unix socket
// address (the bind itself tells then).
absl::Status CheckSocketCanBeBound(const std::string& name,
                                   const std::string& dir,
                                   const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = UnixSocketAddress(name);
  if (!addr.ok()) return absl::OkStatus();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the socket ", path, ": socket(): ", ErrnoText(errno)));
  }
  int err = 0;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) ==
      0) {
    unlink(name.c_str());
  } else {
    err = errno;
  }
  close(fd);
  // EADDRINUSE: something has the probe's name, so names can be made there.
  if (err == 0 || err == EADDRINUSE) return absl::OkStatus();
  // A full filesystem (a full /run) holds sockets again once there is room:
  // another --address is not the fix.
  if (err == ENOSPC || err == EDQUOT) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the socket ", path, ": no room for it in ", dir,
        " (bind: ", ErrnoText(err), "); free space or inodes there"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot create the socket ", path, ": no unix socket can be made in ",
      dir, " (bind: ", ErrnoText(err), "); choose another --address"));
}

// Name of CheckSocketDirCanBeMade's probe: this prefix and mkdtemp's six
// characters.
constexpr absl::string_view kDirProbePrefix = ".gp-socket-dir-check-";

// Removes the probes that earlier checks, killed between making and
// removing theirs, left in `ancestor`: directories of the probe's name,
// empty or holding only the probe's socket (rmdir leaves one that holds
// anything else). A concurrent start's probe removed here only makes its
// own rmdir find it gone (and its bind, which then proves nothing).
void RemoveLeftDirProbes(const std::filesystem::path& ancestor) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(ancestor, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() != kDirProbePrefix.size() + 6 ||
        !absl::StartsWith(name, kDirProbePrefix)) {
      continue;
    }
    // Opened without following a link, so a directory swapped for one in
    // between (the ancestor may be world-writable, like /tmp) cannot lead
    // the socket's removal elsewhere; only this user's probes.
    int fd = open(it->path().c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_uid == geteuid()) {
      // The socket CheckSocketCanBeBound binds in it, if that was cut short.
      if (fstatat(fd, "s", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISSOCK(st.st_mode)) {
        unlinkat(fd, "s", 0);
      }
      rmdir(it->path().c_str());
    }
    close(fd);
  }
}

// Whether the missing socket directory `dir` can be made, leaving nothing
// changed: a directory of a private name is made in its nearest existing
// ancestor, a socket bound in it (CheckSocketCanBeBound), and both removed
// at once (and the directories of earlier checks cut short).
// FailedPrecondition naming `dir` if none can be made there (a read-only
// filesystem, /proc, no permission), or if a missing part of it is a
// symbolic link to nothing (create_directories would fail on it);
// naming `path` if the directory would hold no socket: found by the
// start's first check instead of once its store is open.
absl::Status CheckSocketDirCanBeMade(const std::string& dir,
                                     const std::string& path) {
  if (std::optional<DanglingLink> link = FindDanglingLink(dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create socket directory ", dir, ": ",
                     link->Describe(), " (create it, or choose another --address)"));
  }
  std::filesystem::path ancestor(dir);
  struct stat st;
  while (stat(ancestor.c_str(), &st) != 0 && errno == ENOENT &&
         ancestor != ancestor.parent_path()) {
    ancestor = ancestor.parent_path();
  }
  RemoveLeftDirProbes(ancestor);
  std::string probe =
      (ancestor / absl::StrCat(kDirProbePrefix, "XXXXXX")).string();
  if (mkdtemp(probe.data()) == nullptr) {
    int err = errno;
    if (err == ENOSPC || err == EDQUOT) {  // a full place, not a wrong one
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create socket directory ", dir, ": no room for it in ",
          ancestor.string(), " (", ErrnoText(err),
          "); free space or inodes there"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create socket directory ", dir, ": ", strerror(err),
        " (no directory can be made in ", ancestor.string(), ")"));
  }
  absl::Status bindable =
      CheckSocketCanBeBound(probe + "/s", ancestor.string(), path);
  if (!bindable.ok() && lstat(probe.c_str(), &st) != 0 && errno == ENOENT) {
    bindable = absl::OkStatus();  // removed meanwhile: the bind proves nothing
  }
  if (rmdir(probe.c_str()) != 0 && errno != ENOENT) {  // empty, just made
    LOG(WARNING) << "cannot remove " << probe << " (made to check that "
                 << dir << " can be made): " << strerror(errno);
  }
  return bindable;
}

// Whether the existing socket directory `dir` takes new entries (the
// binding name, the link to `path`): FailedPrecondition for a read-only
// filesystem or no permission, found by the start's first check. Else
// bind failed only once the store was open, so a start refused for it had
// made a new root's store, and named the binding, not `path`.
absl::Status CheckSocketDirWritable(const std::string& dir,
                                    const std::string& path) {
  // As the daemon's own user (AT_EACCESS), which binds the socket.
  if (faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) == 0) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot create the socket ", path, ": its directory ", dir,
      " takes no new entries (", ErrnoText(errno),
      "); choose another --address"));
}

// CheckSocketPath's checks of the existing socket directory `dir`.
absl::Status CheckExistingSocketDir(const std::string& dir,
                                    const std::string& path) {
  if (absl::Status s = CheckSocketDirWritable(dir, path); !s.ok()) return s;
  if (absl::Status s = StaleSocketAt(path).status(); !s.ok()) return s;
  // Probed under a binding name: one a killed check leaves, a start
  // removes (RemoveStaleBindings). Not at `path` itself when no other
  // name fits: another daemon may be about to bind there.
  const std::string name = BindingPath(path);
  if (name == path) return absl::OkStatus();
  return CheckSocketCanBeBound(name, dir, path);
}

}  // namespace

absl::Status CheckSocketPath(const std::string& path) {
  if (absl::Status s = CheckForm(path); !s.ok()) return s;
  // A missing directory is made by PrepareSocketPath; it must be possible.
  std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<bool> exists = SocketDirExists(dir);
  if (!exists.ok()) return exists.status();
  if (!*exists) return CheckSocketDirCanBeMade(dir, path);
  absl::Status s = CheckExistingSocketDir(dir, path);
  if (s.ok()) return s;
  // The directory removed since it was looked at (an operator, another
  // start's cleanup): PrepareSocketPath makes it again, as a missing one.
  // Replaced by a file: that is the error.
  absl::StatusOr<bool> still = SocketDirExists(dir);
  if (!still.ok()) return still.status();
  if (!*still) return CheckSocketDirCanBeMade(dir, path);
  return s;
}

absl::Status PrepareSocketPath(const std::string& path) {
  if (absl::Status s = CheckForm(path); !s.ok()) return s;
  std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<bool> exists = SocketDirExists(dir);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
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
  }
  RemoveStaleBindings(dir, std::filesystem::path(path).filename().string());
  absl::StatusOr<std::optional<struct stat>> stale = StaleSocketAt(path);
  if (!stale.ok()) return stale.status();
  if (!stale->has_value()) return absl::OkStatus();
  return RemoveStaleSocket(path, **stale);
}

absl::Status CheckUriSafe(absl::string_view path) {
  if (absl::c_any_of(path, [](char c) { return absl::ascii_iscntrl(c); })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path \"", absl::CEscape(path),
        "\" must not contain a control character (gRPC-Go clients such as "
        "containerd's proxy plugins refuse the URL \"unix://\" + the path)"));
  }
  size_t at = path.find_first_of("%?#");
  if (at == absl::string_view::npos) return absl::OkStatus();
  const char c = path[at];
  return absl::InvalidArgumentError(absl::StrCat(
      "socket path \"", absl::CEscape(path), "\" must not contain \"",
      std::string(1, c), "\" (",
      c == '%' ? "gRPC clients would percent-decode it"
               : "gRPC-Go clients such as containerd's proxy plugins read "
                 "\"unix://\" + the path as a URL, whose path ends there,",
      " and dial another path)"));
}

absl::StatusOr<sockaddr_un> UnixSocketAddress(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket address \"", path, "\" is ", path.size(),
        " bytes; unix sockets allow at most ", sizeof(addr.sun_path) - 1));
  }
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::string BindingPath(const std::string& path) {
  constexpr size_t kMax = sizeof(sockaddr_un{}.sun_path) - 1;
  uint32_t random = 0;
  if (getrandom(&random, sizeof(random), GRND_NONBLOCK) != sizeof(random)) {
    random = static_cast<uint32_t>(absl::ToUnixNanos(absl::Now()));
  }
  std::string unique =
      absl::StrCat(getpid(), "-", absl::Hex(random, absl::kZeroPad8));
  std::string beside = absl::StrCat(path, ".", unique);
  if (beside.size() <= kMax) return beside;
  std::string hidden = absl::StrCat(
      std::filesystem::path(path).parent_path().string(), "/.", unique);
  if (hidden.size() <= kMax) return hidden;
  return path;
}

absl::Status PublishSocket(const std::string& binding,
                           const std::string& path) {
  if (binding == path) return absl::OkStatus();
  int err = link(binding.c_str(), path.c_str()) == 0 ? 0 : errno;
  unlink(binding.c_str());
  if (err == EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " appeared while this daemon was starting (another process "
        "bound it); is a second containerd-guest-pull-grpc running?"));
  }
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot name the socket ", path, " (link from ", binding,
                     "): ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<SocketFile> IdentifySocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot inspect ", path, ": ", strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", base::FileTypeName(st.st_mode)));
  }
  return SocketFile{st.st_dev, st.st_ino};
}

absl::Status RemoveSocketIfOurs(const std::string& path,
                                const SocketFile& bound) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot inspect ", path, ": ", strerror(errno)));
  }
  if (st.st_dev != bound.dev || st.st_ino != bound.ino) {
    return absl::OkStatus();
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace snapshotter
