// Blob -> tardev image, in place when the blob is a plain tar.
#include "guest_agent/layer_layout.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"
#include "kata_volume/verity/byte_source.h"

namespace guest_pull::guest_agent {

absl::StatusOr<LaidOutLayer> LayOutLayer(const std::string& blob, const std::string& image) {
  LaidOutLayer out;
  absl::StatusOr<verity::LayerVerity> layout = absl::UnknownError("not laid out");
  absl::StatusOr<verity::BlobCompression> compression = verity::DetectBlobCompression(blob);
  if (!compression.ok()) {
    layout = compression.status();
  } else if (*compression == verity::BlobCompression::kNone) {
    out.in_place = true;
    layout = verity::AppendIndexInPlace(blob);
    if (layout.ok() && ::rename(blob.c_str(), image.c_str()) != 0) {
      layout = base::ErrnoError(absl::StrCat("cannot rename ", blob, " to"), image, errno);
    }
  } else {
    layout = verity::WriteIndexedLayer(blob, image);  // removes its output on failure
  }
  ::unlink(blob.c_str());
  if (!layout.ok()) {
    ::unlink(image.c_str());  // none is left, not even one made before
    return layout.status();
  }
  out.layout = *std::move(layout);
  return out;
}

}  // namespace guest_pull::guest_agent
