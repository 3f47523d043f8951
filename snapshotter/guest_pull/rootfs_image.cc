// The guest's view of a rootfs chain.
#include "snapshotter/guest_pull/rootfs_image.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snapshotter/chain_id.h"
#include "snapshotter/guest_pull/labels.h"

namespace guest_pull {

using ::snapshotter::ChainIdOf;

bool IsGuestPulled(const snapshotter::Info& info) {
  return LabelOr(info.labels, kLabelGuestPulled) == "true";
}

absl::StatusOr<std::optional<kata_volume::GuestPullImage>> DescribeRootfsImage(
    const std::vector<snapshotter::Info>& parents, const verity::LayerCacheIndex& cache,
    VerityMode mode, GuestPullObserver* observer) {
  bool any_remote = false;
  for (const snapshotter::Info& p : parents) any_remote = any_remote || IsGuestPulled(p);
  if (!any_remote) return std::nullopt;

  const snapshotter::Info& top = parents.front();
  if (!IsGuestPulled(top)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer ", top.name, " was unpacked on the host but sits on layers "
        "pulled for the guest, which have no content on the host; remove the "
        "image and its snapshots and pull it again with one guest-pull "
        "policy (see docs/troubleshooting.md)"));
  }
  kata_volume::GuestPullImage image;
  image.image_ref = LabelOr(top.labels, kLabelCriImageRef);
  image.manifest_digest = LabelOr(top.labels, kLabelCriManifestDigest);
  if (image.image_ref.empty() || image.manifest_digest.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "guest-pulled layer ", top.name,
        " lacks the CRI image reference or manifest digest labels"));
  }
  std::vector<std::string> missing_hash;
  // Bottom to top.
  for (size_t i = parents.size(); i-- > 0;) {
    const snapshotter::Info& layer = parents[i];
    kata_volume::GuestPullLayer out;
    out.digest = LabelOr(layer.labels, kLabelCriLayerDigest);
    if (out.digest.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "layer ", layer.name, " of image ", image.image_ref,
          " has no recorded layer digest (it was unpacked without CRI "
          "labels), so the guest cannot be told the image's layers; remove "
          "the image and pull it again through CRI"));
    }
    const verity::LayerCacheEntry* entry =
        cache.FindByChain(ChainIdOf(layer.parent), ChainIdOf(layer.name));
    if (entry != nullptr) out.diff_id = entry->diff_id;
    if (mode != VerityMode::kOff) {
      out.verity_root_hash = LabelOr(layer.labels, kLabelVerityRootHash);
      if (out.verity_root_hash.empty()) {
        out.verity_root_hash = LabelOr(layer.labels, kLabelInheritedVerityRootHash);
      }
      if (out.verity_root_hash.empty()) {
        bool hit = entry != nullptr && !entry->verity_hash.empty();
        if (observer != nullptr) observer->ObserveLayerCacheLookup(hit);
        if (hit) out.verity_root_hash = entry->verity_hash;
      }
      if (out.verity_root_hash.empty()) {
        missing_hash.push_back(absl::StrCat("layer ", image.layers.size(), " ",
                                            out.digest, " (chain ",
                                            ChainIdOf(layer.name), ")"));
      }
    }
    image.layers.push_back(std::move(out));
  }
  if (mode == VerityMode::kRequired && !missing_hash.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "verity mode is required but ", missing_hash.size(), " of ",
        image.layers.size(), " layers of ", image.image_ref,
        " have no expected dm-verity root hash: ",
        absl::StrJoin(missing_hash, ", "),
        "; add them to the layer cache (guest-pull-verity cache) or label "
        // The spelling containerd passes on (`ctr snapshots label`).
        "the layer snapshots with ", kLabelInheritedVerityRootHash));
  }
  return image;
}

}  // namespace guest_pull
