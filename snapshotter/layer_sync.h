// Flushing a layer by what it holds: every regular file and directory below
// a path is fsynced, so a layer is durable before its commit is recorded
// without a whole-filesystem syncfs (which would also wait for every other
// tenant's dirty data on the same filesystem).
#ifndef SNAPSHOTTER_LAYER_SYNC_H_
#define SNAPSHOTTER_LAYER_SYNC_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// fsyncs every regular file (once per inode) and every directory below and
// including `root`, without following symlinks or crossing into other
// filesystems, in a tree of any depth (a TreeWalk: no path passes
// PATH_MAX). Symlinks, device nodes (overlay whiteouts) and fifos are made
// durable by the fsync of their directory, and a directory is fsynced only
// after every file below it. Writeback of a batch of files is started
// together before each is waited for, so the I/O of a many-file layer
// overlaps. Entries removed meanwhile are skipped. Returns the usage of
// `root` as DiskUsage (snapshot_dirs.h) measures it, taken in the same
// walk. Once `*stop` is true (the daemon's stop) it gives up at the next
// entry or batch: Unavailable, with part of the tree flushed.
absl::StatusOr<Usage> SyncTree(const std::string& root,
                               const std::atomic<bool>* stop = nullptr);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_LAYER_SYNC_H_
