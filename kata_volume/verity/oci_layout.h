// Reader for an OCI image layout directory (index.json, blobs/sha256/...):
// resolves one image to its ordered layer blobs, verifying the digests of the
// index-referenced manifest and config on the way.
#ifndef KATA_VOLUME_VERITY_OCI_LAYOUT_H_
#define KATA_VOLUME_VERITY_OCI_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace guest_pull::verity {

// A layer descriptor resolved to its blob file.
struct OciLayerBlob {
  std::string digest;      // "sha256:<hex>"
  std::string media_type;
  uint64_t size = 0;       // from the descriptor
  std::string path;        // <layout>/blobs/sha256/<hex>
};

// An image resolved from the layout.
struct OciImage {
  std::string manifest_digest;
  std::vector<OciLayerBlob> layers;    // bottom to top
  std::vector<std::string> diff_ids;   // from the config's rootfs (may be empty)
};

// The OCI architecture of this build (GOARCH's names: "amd64", "arm64",
// ...): the platform linux/<it> is the one picked from an image index.
absl::string_view BuildArchitecture();

// Path of a blob inside the layout; fails for malformed digests.
absl::StatusOr<std::string> OciBlobPath(const std::string& layout_dir, absl::string_view digest);

// Picks the manifest whose org.opencontainers.image.ref.name annotation equals
// `image_ref` (or the only manifest when `image_ref` is empty), following one
// level of nested image index (platform linux/<build arch>), and returns its
// layers. Docker schema2 and OCI media types are accepted. A layer blob
// whose size is not its descriptor's is DataLoss (as containerd refuses it).
absl::StatusOr<OciImage> ReadOciImage(const std::string& layout_dir, absl::string_view image_ref);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_OCI_LAYOUT_H_
