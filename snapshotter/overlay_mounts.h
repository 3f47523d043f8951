// The mounts that expose a snapshot, as containerd's overlayfs snapshotter
// returns them: a bind mount for a snapshot without parents (read-only for
// a view), a read-only bind of the parent for a view on one layer, and an
// overlay with lowerdir (closest parent first) plus upperdir/workdir for
// active snapshots; an overlay over an empty lower directory for a layer
// unpacked in parallel.
#ifndef SNAPSHOTTER_OVERLAY_MOUNTS_H_
#define SNAPSHOTTER_OVERLAY_MOUNTS_H_

#include <vector>

#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/snapshot_types.h"
#include "snapshotter/storage.h"

namespace snapshotter {

// Builds the mounts of `snapshot`; `index_off` adds "index=off" (used when
// the kernel's overlay has the index feature, as containerd does). An active
// snapshot without parents that `awaits_rebase` (parallel_unpack.h) gets an
// overlay over dirs.EmptyLowerPath() instead of a bind mount.
std::vector<Mount> OverlayMounts(const SnapshotDirs& dirs,
                                 const SnapshotRecord& snapshot,
                                 bool index_off, bool awaits_rebase = false);

// Whether this kernel's overlay module knows the "index" option.
bool KernelOverlayHasIndex();

}  // namespace snapshotter

#endif  // SNAPSHOTTER_OVERLAY_MOUNTS_H_
