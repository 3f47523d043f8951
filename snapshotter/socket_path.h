// Preparing the unix socket path the daemon listens on: check it before
// anything is changed, then create its parent directory (mode 0700 when we
// create it), replace a stale socket left by a previous run, and refuse
// anything else at that path -- a live socket
// (another daemon is serving), a socket of another type (a datagram socket
// such as systemd's notify or journal socket), one we may not probe, or a
// file that is not a socket. The daemon binds a per-process name first and
// links it to the path once it listens (BindingPath): the path never names
// a socket that is bound but not listening yet (it would look stale to
// another daemon's start), and the link never replaces what another daemon
// bound meanwhile.
// At exit the daemon removes the socket only if it is still the one it
// bound.
#ifndef SNAPSHOTTER_SOCKET_PATH_H_
#define SNAPSHOTTER_SOCKET_PATH_H_

#include <sys/types.h>
#include <sys/un.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snapshotter {

// Readies `path` for bind(): makes its directory if missing and removes a
// stale socket there. Only a stream socket that refuses connections
// (ECONNREFUSED) is stale and removed. Errors: FailedPrecondition naming the
// path and what is in the way (with the errno of the probe); InvalidArgument
// for a relative or too long path, or one with "%", "?", "#" or a control
// character (CheckUriSafe).
absl::Status PrepareSocketPath(const std::string& path);

// The errors PrepareSocketPath would return for what is there now, found
// without changing anything (a stale socket is fine): the daemon's first
// check, before its store is opened. A missing directory is fine if one can
// be made where it is missing, which is tried with a directory of a private
// name (.gp-socket-dir-check-XXXXXX in its nearest existing ancestor),
// removed at once: FailedPrecondition otherwise (a read-only place, /proc).
// An existing directory must take new entries (access W_OK): a read-only
// one is FailedPrecondition too. Either must hold unix sockets, which is
// tried by binding one (at a BindingPath name, or in the probe directory)
// and removing it at once: FailedPrecondition naming the path otherwise
// (/proc/self, sysfs, a filesystem without sockets; a full one, ENOSPC or
// EDQUOT, is called full: there the address is fine once there is room).
absl::Status CheckSocketPath(const std::string& path);

// The unix socket address of `path`; InvalidArgument naming the path and
// the limit if it is too long for one.
absl::StatusOr<sockaddr_un> UnixSocketAddress(const std::string& path);

// InvalidArgument if `path` holds "%", "?", "#" or a control character:
// gRPC clients dial "unix:" + the path as a URI, so they would dial another
// path (C++ ones percent-decode it; gRPC-Go's, containerd's proxy plugins
// among them, parse "unix://" + the path as a URL, whose path ends at "?"
// or "#", and refuse one with a control character).
// Asked by the config's check of `address` and by PrepareSocketPath.
absl::Status CheckUriSafe(absl::string_view path);

// A fresh name the daemon binds before PublishSocket gives the socket
// `path`: `path`.<pid>-<8 random hex digits> (random too: daemons in other
// pid namespaces may share the directory), or .<pid>-<hex> in its
// directory when that is too long for a unix socket address; `path`
// itself when neither fits (then, between its bind and its listen, the
// daemon's socket looks stale to another daemon's start: the race this
// name avoids).
// PrepareSocketPath removes such names a daemon left (killed between its
// bind and the link) when they are stale sockets.
std::string BindingPath(const std::string& path);

// Names the socket bound at `binding` `path` too (a hard link: it fails
// rather than replace a file that appeared there since PrepareSocketPath)
// and removes `binding` either way. FailedPrecondition if `path` is taken
// (what is there stays). Nothing to do when `binding` is `path`.
absl::Status PublishSocket(const std::string& binding, const std::string& path);

// The file a socket path names, recorded right after bind.
struct SocketFile {
  dev_t dev = 0;
  ino_t ino = 0;
};

// The identity of the socket at `path`; FailedPrecondition if it is gone or
// not a socket.
absl::StatusOr<SocketFile> IdentifySocket(const std::string& path);

// Unlinks `path` if it is still `bound` (another process may have replaced
// it since). OK if it was removed, is gone, or is not ours.
absl::Status RemoveSocketIfOurs(const std::string& path,
                                const SocketFile& bound);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SOCKET_PATH_H_
