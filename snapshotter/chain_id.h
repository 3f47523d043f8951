// Chain IDs and unpack keys from backend snapshot names. containerd's
// metadata layer names backend snapshots "<namespace>/<n>/<name>"; for image
// layers <name> is the layer's chain ID ("sha256:<hex>"), and its unpacker
// prepares a layer as "extract-<nonce> <chain ID>".
#ifndef SNAPSHOTTER_CHAIN_ID_H_
#define SNAPSHOTTER_CHAIN_ID_H_

#include "absl/strings/string_view.h"

namespace snapshotter {

// How containerd's unpacker begins the <name> of a layer's Prepare
// (snapshots.UnpackKeyPrefix + "-").
inline constexpr char kUnpackKeyPrefix[] = "extract-";

// The <name> part of "<namespace>/<n>/<name>", or `key` itself when it does
// not have that form.
absl::string_view ChainIdOf(absl::string_view key);

// The <namespace> of "<namespace>/<n>/<name>", or "" when `key` does not
// have that form (a key no containerd named).
absl::string_view NamespaceOf(absl::string_view key);

// Whether `key` is one containerd's unpacker prepares a layer under.
bool IsUnpackKey(absl::string_view key);

// Whether `key` is the snapshot of a Kubernetes image volume that
// containerd's CRI (2.1+) mounts on the host: its <name> is the volume's
// host path, "<state dir>/image-volumes/<pod ID>/<image ID>" (the state
// dir absolute or, as containerd allows, relative; the pod ID
// 64 lowercase hex digits, the image ID its manifest digest's hex: 64, 96
// or 128).
bool IsCriImageVolumeKey(absl::string_view key);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_CHAIN_ID_H_
