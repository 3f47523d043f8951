// Test helper: a binary that links this records every fsync it makes by
// path (an interposed fsync), and can hold one fsync of a given path until
// released, to see what waits behind a flush.
#ifndef SNAPSHOTTER_FSYNC_RECORDER_H_
#define SNAPSHOTTER_FSYNC_RECORDER_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace snapshotter::fsync_recorder {

// The paths fsynced since the last call.
std::vector<std::string> TakeFsynced();

// Whether `path` was fsynced since the last TakeFsynced (which this is).
bool TakeFsynced(const std::string& path);

// The next fsync of `path` waits, once it began, until ReleaseHeldFsync.
void HoldNextFsyncOf(const std::string& path);
// Whether that fsync began within `timeout`.
bool WaitForHeldFsync(absl::Duration timeout);
void ReleaseHeldFsync();

}  // namespace snapshotter::fsync_recorder

#endif  // SNAPSHOTTER_FSYNC_RECORDER_H_
