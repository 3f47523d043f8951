// Tests for telling an image's first layer from a later one prepared
// without its parent.
#include "snapshotter/guest_pull/first_layer.h"

#include <functional>
#include <vector>

#include "gtest/gtest.h"
#include "snapshotter/guest_pull/labels.h"

namespace guest_pull {
namespace {

std::string Digest(char c) { return "sha256:" + std::string(64, c); }

// The CRI labels containerd gives layer `position` of an image of
// `layers` (digests) with manifest `manifest`: its list holds the layers
// from it up, at most `cap` of them (the label's size limit).
snapshotter::Labels LayerLabels(const std::string& layers, size_t position,
                                char manifest = 'm', size_t cap = 64) {
  snapshotter::Labels labels;
  std::string list;
  for (size_t i = position; i < layers.size() && i - position < cap; ++i) {
    list += (list.empty() ? "" : ",") + Digest(layers[i]);
  }
  labels[kLabelCriLayerDigest] = Digest(layers[position]);
  labels[kLabelCriManifestDigest] = Digest(manifest);
  labels[kLabelCriImageLayers] = list;
  labels[kLabelCriImageRef] = "127.0.0.1:5000/app:1";
  return labels;
}

snapshotter::Info Record(const std::string& name, snapshotter::Labels labels,
                         bool guest_pulled = true) {
  snapshotter::Info info;
  info.name = name;
  info.kind = snapshotter::Kind::kCommitted;
  info.labels = std::move(labels);
  if (guest_pulled) info.labels[kLabelGuestPulled] = "true";
  return info;
}

std::string Below(const snapshotter::Labels& labels,
                  const std::vector<snapshotter::Info>& records) {
  auto visit = [&](absl::string_view label, absl::string_view value,
                   const std::function<bool(const snapshotter::InfoView&)>& fn) {
    for (const snapshotter::Info& info : records) {
      auto it = info.labels.find(std::string(label));
      if (it == info.labels.end() || it->second != value) continue;
      snapshotter::InfoView::LabelRefs refs;
      if (!fn(snapshotter::InfoView::Of(info, &refs))) return;
    }
  };
  return RecordBelowFirstLayer(labels, visit);
}

TEST(FirstLayerTest, LaterLayerOfARecordedImageIsNotFirst) {
  std::vector<snapshotter::Info> records = {Record("c0", LayerLabels("abc", 0))};
  EXPECT_EQ(Below(LayerLabels("abc", 1), records), "c0");
  EXPECT_EQ(Below(LayerLabels("abc", 2), records), "c0");
}

TEST(FirstLayerTest, FirstLayerIsFirst) {
  std::vector<snapshotter::Info> records = {Record("c0", LayerLabels("abc", 0)),
                                            Record("c1", LayerLabels("abc", 1)),
                                            Record("c2", LayerLabels("abc", 2))};
  EXPECT_EQ(Below(LayerLabels("abc", 0), records), "");
}

TEST(FirstLayerTest, OneLayerImageOnAnotherImagesLaterLayerIsFirst) {
  // Image "xab" (manifest n) has blob a second; image "a" (manifest m) has
  // it alone: another manifest proves nothing.
  std::vector<snapshotter::Info> records = {Record("x0", LayerLabels("xab", 0, 'n'))};
  EXPECT_EQ(Below(LayerLabels("a", 0), records), "");
}

TEST(FirstLayerTest, RepeatedBlobAtTheBottomIsFirst) {
  // Image "aba": its first layer lists all three and is the longest list.
  std::vector<snapshotter::Info> records = {Record("c1", LayerLabels("aba", 1)),
                                            Record("c2", LayerLabels("aba", 2))};
  EXPECT_EQ(Below(LayerLabels("aba", 0), records), "");
}

TEST(FirstLayerTest, OnlyGuestPulledRecordsCount) {
  // A rootfs or another client's snapshot may carry the same labels.
  std::vector<snapshotter::Info> records = {
      Record("active", LayerLabels("abc", 0), /*guest_pulled=*/false)};
  EXPECT_EQ(Below(LayerLabels("abc", 2), records), "");
}

TEST(FirstLayerTest, TruncatedListsProveOnlyShorterOnes) {
  // Lists capped at 3: layer 0 lists a,b,c; layer 1 b,c,d; layer 2 c,d,e.
  std::vector<snapshotter::Info> records = {Record("c0", LayerLabels("abcde", 0, 'm', 3)),
                                            Record("c1", LayerLabels("abcde", 1, 'm', 3))};
  EXPECT_EQ(Below(LayerLabels("abcde", 3, 'm', 3), records), "c1");
  EXPECT_EQ(Below(LayerLabels("abcde", 4, 'm', 3), records), "");  // beyond every list
  // As long as the first layer's: a repeated blob could be the same list,
  // so nothing is proven.
  EXPECT_EQ(Below(LayerLabels("abcde", 2, 'm', 3), records), "");
  EXPECT_EQ(Below(LayerLabels("abcde", 0, 'm', 3), records), "");
}

TEST(FirstLayerTest, LabelsWithoutImageProveNothing) {
  std::vector<snapshotter::Info> records = {Record("c0", LayerLabels("abc", 0))};
  snapshotter::Labels labels = LayerLabels("abc", 2);
  labels.erase(kLabelCriManifestDigest);
  EXPECT_EQ(Below(labels, records), "");
  labels = LayerLabels("abc", 2);
  labels.erase(kLabelCriImageLayers);
  EXPECT_EQ(Below(labels, records), "");
}

}  // namespace
}  // namespace guest_pull
