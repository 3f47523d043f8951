// Preparing the unix socket path the daemon listens on: create its parent
// directory (mode 0700 when we create it), replace a stale socket left by a
// previous run, and refuse anything else at that path -- a live socket
// (another daemon is serving) or a file that is not a socket.
#ifndef SNAPSHOTTER_SOCKET_PATH_H_
#define SNAPSHOTTER_SOCKET_PATH_H_

#include <string>

#include "absl/status/status.h"

namespace snapshotter {

// Readies `path` for bind(). Errors: FailedPrecondition naming the path and
// what is in the way; InvalidArgument for a relative or too long path.
absl::Status PrepareSocketPath(const std::string& path);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SOCKET_PATH_H_
