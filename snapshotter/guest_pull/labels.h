// Snapshot label names the guest-pull snapshotter reads and writes.
// containerd's CRI plugin sets the containerd.io/snapshot/cri.* labels on a
// layer Prepare (with disable_snapshot_annotations = false); only labels
// under containerd.io/snapshot/ (and containerd.io/snapshot.ref) reach a
// proxy snapshotter.
#ifndef SNAPSHOTTER_GUEST_PULL_LABELS_H_
#define SNAPSHOTTER_GUEST_PULL_LABELS_H_

#include <string>

#include "snapshotter/snapshot_types.h"

namespace guest_pull {

// Set by containerd: the chain ID the layer snapshot will be committed as.
inline constexpr char kLabelSnapshotRef[] = "containerd.io/snapshot.ref";
// The containerd namespace of CRI (constants.K8sContainerdNamespace).
inline constexpr char kCriNamespace[] = "k8s.io";
// Set by CRI: the image reference, the compressed layer blob digest, the
// image manifest digest, and this layer plus the ones above it.
inline constexpr char kLabelCriImageRef[] =
    "containerd.io/snapshot/cri.image-ref";
inline constexpr char kLabelCriLayerDigest[] =
    "containerd.io/snapshot/cri.layer-digest";
inline constexpr char kLabelCriManifestDigest[] =
    "containerd.io/snapshot/cri.manifest-digest";
inline constexpr char kLabelCriImageLayers[] =
    "containerd.io/snapshot/cri.image-layers";

// Written by us on every layer committed without host content ("true");
// dropped from a client's creation labels, never changed by an Update.
inline constexpr char kLabelGuestPulled[] =
    "containerd.io/snapshot/guest-pull.remote";
// An expected dm-verity root hash for a layer, given by the operator or a
// tool through an Update; takes precedence over the layer cache. Dropped
// from a client's creation labels (an image's layer annotations reach
// them), as is its spelling below.
inline constexpr char kLabelVerityRootHash[] =
    "io.katacontainers.dm-verity.root-hash";
// The same under containerd's inherited prefix: only this spelling reaches
// the snapshotter when set through containerd (e.g. `ctr snapshots label`).
inline constexpr char kLabelInheritedVerityRootHash[] =
    "containerd.io/snapshot/io.katacontainers.dm-verity.root-hash";
// Both spellings of the expected hash.
inline constexpr const char* kExpectedHashLabels[] = {kLabelVerityRootHash,
                                                      kLabelInheritedVerityRootHash};

// The value of label `key`, or "" if it is not set.
inline std::string LabelOr(const snapshotter::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_LABELS_H_
