// The daemon's lifecycle: open the snapshotter, serve the Snapshots API on
// the unix socket, tell systemd when ready, and shut down gracefully on
// SIGTERM/SIGINT (stop accepting, finish in-flight RPCs, close the
// database).
#ifndef SNAPSHOTTER_DAEMON_H_
#define SNAPSHOTTER_DAEMON_H_

#include "absl/status/status.h"
#include "snapshotter/config/config.h"

namespace snapshotter {

// The exit status when a metadata commit's outcome is unknown (an I/O
// error at COMMIT, MetaStore::SetOnCommitInDoubt): the daemon stops at once,
// as a crash would, and systemd's Restart= starts it again; the start
// settles the commit from the WAL (EX_TEMPFAIL).
inline constexpr int kExitCommitInDoubt = 75;

// Runs until a termination signal; returns the error that kept it from
// starting or serving.
absl::Status RunDaemon(const config::Config& cfg);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_DAEMON_H_
