// Proof that a layer prepared without a parent sits higher in its image.
#include "snapshotter/guest_pull/first_layer.h"

#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "snapshotter/guest_pull/labels.h"

namespace guest_pull {
namespace {

std::vector<absl::string_view> LayerList(absl::string_view value) {
  return absl::StrSplit(value, ',', absl::SkipEmpty());
}

}  // namespace

std::string RecordBelowFirstLayer(const snapshotter::Labels& labels,
                                  snapshotter::RemoteLayers::Records records) {
  const std::string manifest = LabelOr(labels, kLabelCriManifestDigest);
  const std::string digest = LabelOr(labels, kLabelCriLayerDigest);
  const std::string own = LabelOr(labels, kLabelCriImageLayers);
  if (manifest.empty() || digest.empty() || own.empty()) return "";
  const size_t own_length = LayerList(own).size();
  std::string found;
  auto check = [&](const snapshotter::InfoView& record) {
    const std::string* marker = record.Label(kLabelGuestPulled);
    const std::string* list = record.Label(kLabelCriImageLayers);
    if (marker == nullptr || *marker != "true" || list == nullptr) return true;
    std::vector<absl::string_view> layers = LayerList(*list);
    if (layers.size() <= own_length) return true;
    for (size_t i = 1; i < layers.size(); ++i) {
      if (layers[i] == digest) {
        found = std::string(record.name);
        return false;
      }
    }
    return true;
  };
  records(kLabelCriManifestDigest, manifest, check);
  return found;
}

}  // namespace guest_pull
