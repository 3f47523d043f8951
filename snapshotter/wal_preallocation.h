// The SQLite WAL kept at a fixed size, so a commit's flush is a data flush,
// and whether it has a header.
#ifndef SNAPSHOTTER_WAL_PREALLOCATION_H_
#define SNAPSHOTTER_WAL_PREALLOCATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace snapshotter {

// Writes (not fallocates: unwritten extents are converted by a metadata
// change) zeros at the end of `db_path`-wal up to `size`, and makes a new
// WAL's directory entry durable. A WAL that never grows past them needs no
// file system metadata commit at a transaction's fdatasync after the first:
// one data flush. The zeros themselves are only written back, not waited
// for (a restart serves without flushing 5 MiB first).
// Zeros are never a valid frame, so SQLite's recovery stops where they begin.
// A full disk or quota (ENOSPC, EDQUOT) is ResourceExhausted, and leaves the
// -wal at its size before (the zeros written are given back).
absl::Status PreallocateWal(const std::string& db_path, int64_t size);

// True if `db_path`-wal begins with a WAL header (SQLite's magic number),
// which SQLite writes with a store's first commit after the -wal was made
// and keeps there; false for a missing, empty or zero-filled one.
bool WalHasHeader(const std::string& db_path);

// Flushes `db_path`-wal (fdatasync): what a start reads of it may be in the
// page cache only, if an earlier flush failed.
absl::Status SyncWal(const std::string& db_path);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_WAL_PREALLOCATION_H_
