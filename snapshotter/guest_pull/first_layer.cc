// Proof that a layer prepared without a parent sits higher in its image.
#include "snapshotter/guest_pull/first_layer.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "snapshotter/guest_pull/labels.h"

namespace guest_pull {
namespace {

std::vector<absl::string_view> LayerList(absl::string_view value) {
  return absl::StrSplit(value, ',', absl::SkipEmpty());
}

// The parts of a layer's CRI labels a proof reads.
struct LayerOfImage {
  std::string manifest, digest;
  size_t list_length = 0;
};

std::optional<LayerOfImage> LayerOf(const snapshotter::Labels& labels) {
  LayerOfImage layer{LabelOr(labels, kLabelCriManifestDigest),
                     LabelOr(labels, kLabelCriLayerDigest)};
  layer.list_length = LayerList(LabelOr(labels, kLabelCriImageLayers)).size();
  if (layer.manifest.empty() || layer.digest.empty() || layer.list_length == 0) {
    return std::nullopt;
  }
  return layer;
}

// Whether `list`, of a layer of the same image, proves `layer` sits higher:
// it is longer and names the layer after its own first entry.
bool ProvesHigher(absl::string_view list, const LayerOfImage& layer) {
  std::vector<absl::string_view> layers = LayerList(list);
  if (layers.size() <= layer.list_length) return false;
  return std::find(layers.begin() + 1, layers.end(), layer.digest) != layers.end();
}

}  // namespace

std::string RecordBelowFirstLayer(const snapshotter::Labels& labels,
                                  snapshotter::RemoteLayers::Records records) {
  std::optional<LayerOfImage> layer = LayerOf(labels);
  if (!layer.has_value()) return "";
  std::string found;
  records([&](const snapshotter::InfoView& record) {
    const std::string* m = record.Label(kLabelCriManifestDigest);
    if (m == nullptr || *m != layer->manifest) return true;
    const std::string* marker = record.Label(kLabelGuestPulled);
    const std::string* list = record.Label(kLabelCriImageLayers);
    if (marker == nullptr || *marker != "true" || list == nullptr) return true;
    if (!ProvesHigher(*list, *layer)) return true;
    found = std::string(record.name);
    return false;
  });
  return found;
}

void RecentFirstLayers::Note(const snapshotter::Labels& labels) {
  std::optional<LayerOfImage> layer = LayerOf(labels);
  if (!layer.has_value() || capacity_ == 0) return;
  const std::string list = LabelOr(labels, kLabelCriImageLayers);
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = lists_.try_emplace(layer->manifest, list);
  if (!inserted) {
    if (LayerList(it->second).size() < layer->list_length) it->second = list;
    return;
  }
  order_.push_back(layer->manifest);
  if (order_.size() > capacity_) {
    lists_.erase(order_.front());
    order_.pop_front();
  }
}

std::string RecentFirstLayers::Below(const snapshotter::Labels& labels) const {
  std::optional<LayerOfImage> layer = LayerOf(labels);
  if (!layer.has_value()) return "";
  absl::MutexLock lock(&mu_);
  auto it = lists_.find(layer->manifest);
  if (it == lists_.end() || !ProvesHigher(it->second, *layer)) return "";
  return std::string(LayerList(it->second).front());
}

}  // namespace guest_pull
