// A fetched layer blob -> the tardev image (tar + tarfs index) that the
// dm-verity tree is appended to next.
#ifndef GUEST_AGENT_LAYER_LAYOUT_H_
#define GUEST_AGENT_LAYER_LAYOUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "kata_volume/verity/layer_verity.h"

namespace guest_pull::guest_agent {

struct LaidOutLayer {
  verity::LayerVerity layout;
  bool in_place = false;  // the blob itself became the image (no copy)
};

// Lays out `blob` as the image at `image`. An uncompressed tar is indexed
// in place and renamed: guest memory never holds a second copy of the
// layer. A compressed one is inflated into `image`. The blob is gone
// afterwards either way, and `image` exists only on success (a file there
// before is replaced, or removed on failure).
absl::StatusOr<LaidOutLayer> LayOutLayer(const std::string& blob, const std::string& image);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_LAYER_LAYOUT_H_
