// The image_guest_pull KataVirtualVolume this snapshotter puts on a container
// rootfs mount, and the parser back from it (used by the guest side and
// tests).
//
// Kata's shim forwards only `image_pull.metadata` (merged with the container
// annotations) to the agent, so everything the guest needs lives there:
//
//   guest-pull.image-ref                   the CRI image reference as given
//   guest-pull.manifest-digest             sha256:<hex> of the image manifest
//   guest-pull.layer-count                 number of layers n, decimal
//   guest-pull.layer.<i>.digest            compressed blob digest of layer i
//   guest-pull.layer.<i>.diff-id           uncompressed digest (if known)
//   guest-pull.layer.<i>.verity-root-hash  expected dm-verity root hash (hex,
//                                          if known)
//   guest-pull.verity-params               kGuestPullVerityParams
//
// with i = 0..n-1 from the bottom layer to the top one. `source` is the image
// reference pinned by the manifest digest (repository@sha256:...).
#ifndef KATA_VOLUME_GUEST_PULL_VOLUME_H_
#define KATA_VOLUME_GUEST_PULL_VOLUME_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kata_volume/volume.h"

namespace kata_volume {

inline constexpr char kMetaImageRef[] = "guest-pull.image-ref";
inline constexpr char kMetaManifestDigest[] = "guest-pull.manifest-digest";
inline constexpr char kMetaLayerCount[] = "guest-pull.layer-count";
inline constexpr char kMetaLayerPrefix[] = "guest-pull.layer.";
inline constexpr char kMetaLayerDigestSuffix[] = ".digest";
inline constexpr char kMetaLayerDiffIdSuffix[] = ".diff-id";
inline constexpr char kMetaLayerVerityRootHashSuffix[] = ".verity-root-hash";
inline constexpr char kMetaVerityParams[] = "guest-pull.verity-params";

// The layer dm-verity parameters the root hashes are computed with.
inline constexpr char kGuestPullVerityParams[] =
    "format=tarfs-index,hash=sha256,data-block=4096,hash-block=4096,"
    "salt=0000000000000000000000000000000000000000000000000000000000000000,"
    "superblock=none";

// One image layer.
struct GuestPullLayer {
  std::string digest;            // compressed blob digest, sha256:<hex>
  std::string diff_id;           // uncompressed digest; empty if unknown
  std::string verity_root_hash;  // 64 hex digits; empty if unknown
  bool operator==(const GuestPullLayer& other) const;
};

// An image to pull inside the guest.
struct GuestPullImage {
  std::string image_ref;        // CRI image reference as given
  std::string manifest_digest;  // sha256:<hex>
  std::vector<GuestPullLayer> layers;  // bottom to top
  bool operator==(const GuestPullImage& other) const;
};

// Metadata key for `suffix` (one of kMetaLayer*Suffix) of layer `index`.
std::string LayerMetadataKey(size_t index, const char* suffix);

// Checks the image's fields as BuildGuestPullVolume and ParseGuestPullImage
// do: InvalidArgument if the reference is malformed, a digest is not
// sha256:<64 lowercase hex>, a root hash is not 64 lowercase hex digits, or
// there are no layers. Does not check the size limit.
absl::Status CheckGuestPullImage(const GuestPullImage& image);

// Builds the image_guest_pull volume. InvalidArgument if CheckGuestPullImage
// refuses the image or the encoded option would exceed the 64 KiB limit
// (kMaxVolumeBase64Bytes: about 150 layers with short references, see
// docs/architecture.md). The result passes ValidateGo and ValidateRust.
absl::StatusOr<KataVirtualVolume> BuildGuestPullVolume(
    const GuestPullImage& image);

// Reads the image back from a volume built by BuildGuestPullVolume, checking
// the type, every key's format, the layer count, the verity parameters and
// that `source` names the image: its repository once Docker-normalised
// (NormalizedImageName), pinned by a digest (the manifest's, or an index's
// the pod named; the guest pulls the manifest digest either way).
// InvalidArgument naming the problem.
absl::StatusOr<GuestPullImage> ParseGuestPullImage(
    const KataVirtualVolume& volume);

}  // namespace kata_volume

#endif  // KATA_VOLUME_GUEST_PULL_VOLUME_H_
