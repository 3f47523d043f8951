// Describes the image behind a container rootfs for the guest: which image
// to pull (pinned by manifest digest) and each layer's digest, diff_id and
// expected dm-verity root hash.
//
// Chains and what they get (documented in docs/architecture.md):
//  - no guest-pulled layer: nothing (host content, a plain overlay mount);
//  - the topmost layer guest-pulled and every layer labelled with its CRI
//    layer digest: the image of the topmost layer. Lower layers unpacked on
//    the host (shared with an image kept on the host) are listed too; the
//    guest pulls the whole image anyway;
//  - a guest-pulled layer under a host-unpacked one, or a layer without a
//    digest: FailedPrecondition, since neither the host nor the guest can
//    build that rootfs faithfully.
#ifndef SNAPSHOTTER_GUEST_PULL_ROOTFS_IMAGE_H_
#define SNAPSHOTTER_GUEST_PULL_ROOTFS_IMAGE_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "kata_volume/guest_pull_volume.h"
#include "kata_volume/verity/layer_cache_index.h"
#include "snapshotter/guest_pull/options.h"
#include "snapshotter/guest_pull/observer.h"
#include "snapshotter/snapshot_types.h"

namespace guest_pull {

// Whether a snapshot is a layer created for guest pull (it carries the
// marker label; its content is not on the host).
bool IsGuestPulled(const snapshotter::Info& info);

// `parents` are the rootfs snapshot's ancestors, closest first. Verity
// hashes come from the snapshot label io.katacontainers.dm-verity.root-hash
// (or its containerd-inherited spelling under containerd.io/snapshot/), else
// from `cache` via the chain-ID equation, like diff IDs. With mode
// kRequired, a layer without an expected hash is FailedPrecondition naming
// every such layer. `observer` may be null.
absl::StatusOr<std::optional<kata_volume::GuestPullImage>> DescribeRootfsImage(
    const std::vector<snapshotter::Info>& parents, const verity::LayerCacheIndex& cache,
    VerityMode mode, GuestPullObserver* observer);

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_ROOTFS_IMAGE_H_
