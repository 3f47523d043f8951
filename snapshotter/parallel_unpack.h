// containerd's parallel unpack (2.2 and later, for a snapshotter whose proxy
// plugin lists the "rebase" capability): each layer is prepared without a
// parent, its tar applied, and it is committed with its parent
// (CommitSnapshotRequest.parent), one after the other, bottom up. From 2.3
// the Prepare names the parent's chain ID in a label; 2.2 does not.
//
// A layer applied through a bind mount loses its whiteouts: with no parent
// below, "delete /x" deletes nothing. So such a Prepare gets an overlay
// mount over an empty lower directory, in which containerd's applier writes
// overlay whiteouts (character device 0/0, opaque directories) into the
// upper directory, and the layer keeps them when it is rebased.
//
// A guest-pulled layer cannot be unpacked so: it is recorded committed at
// its Prepare, and containerd records the target of such a Prepare without
// the parent it was not given. Its Prepare is refused (guest_pull_layers.cc).
#ifndef SNAPSHOTTER_PARALLEL_UNPACK_H_
#define SNAPSHOTTER_PARALLEL_UNPACK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// Set by containerd 2.3+'s unpacker on the Prepare of every layer but the
// first: the chain ID of the layer below.
inline constexpr char kLabelParentChainId[] =
    "containerd.io/snapshot/parent-chain-id";
// Set by containerd 2.3+'s unpacker on every layer's Prepare: its diff ID.
inline constexpr char kLabelDiffId[] = "containerd.io/snapshot/diff-id";

// The parent chain ID an unpack Prepare of `key` without `parent` names in
// its labels (containerd's parallel unpack), or "" if it names none. Only
// a parent whose chain ID and the layer's diff ID give the chain ID the key
// ends with ("extract-<nonce> <chain ID>") counts: an image's own layer
// annotations reach the labels too, and cannot name a parent so.
std::string ParallelUnpackParent(absl::string_view key,
                                 absl::string_view parent,
                                 const Labels& labels);

// Whether active snapshot `info` is a layer being unpacked in parallel,
// to be rebased at its commit: it gets the overlay mount described above.
bool AwaitsRebase(const Info& info);

// Checks the commit of active snapshot `active` onto `parent` when that is
// not its own parent (containerd's rebase): InvalidArgument when it has a
// parent already; FailedPrecondition for a layer unpacked without the
// overlay mount (containerd 2.2's parallel unpack, which names no parent),
// since its whiteouts are lost.
absl::Status CheckRebase(const Info& active, absl::string_view parent);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_PARALLEL_UNPACK_H_
