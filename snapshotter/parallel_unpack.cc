// containerd's parallel unpack: which Prepares await a rebase, and which
// rebases are refused.
#include "snapshotter/parallel_unpack.h"

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/layer_cache.h"
#include "snapshotter/chain_id.h"

namespace snapshotter {

std::string ParallelUnpackParent(absl::string_view key,
                                 absl::string_view parent,
                                 const Labels& labels) {
  if (!parent.empty() || !IsUnpackKey(key)) return "";
  auto named = labels.find(kLabelParentChainId);
  auto diff_id = labels.find(kLabelDiffId);
  if (named == labels.end() || diff_id == labels.end()) return "";
  absl::string_view name = ChainIdOf(key);
  absl::string_view chain = name.substr(name.rfind(' ') + 1);
  if (chain != ::guest_pull::verity::ChainId(named->second, diff_id->second)) {
    return "";
  }
  return named->second;
}

bool AwaitsRebase(const Info& info) {
  return info.kind == Kind::kActive &&
         !ParallelUnpackParent(info.name, info.parent, info.labels).empty();
}

absl::Status CheckRebase(const Info& active, absl::string_view parent) {
  if (!active.parent.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot commit snapshot ", active.name, " onto parent ", parent,
        ": it was prepared on ", active.parent,
        ", and only a snapshot prepared without a parent can be given one at "
        "commit"));
  }
  if (IsUnpackKey(active.name) && !AwaitsRebase(active)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot commit layer ", active.name, " onto parent ", parent,
        ": it was prepared without a parent and without the label ",
        kLabelParentChainId,
        ", so containerd applied it through a bind mount and its whiteouts "
        "were lost (containerd 2.2's parallel unpack). List the \"rebase\" "
        "capability in the proxy plugin's config only for containerd 2.3 or "
        "later; nothing was changed"));
  }
  return absl::OkStatus();
}

}  // namespace snapshotter
