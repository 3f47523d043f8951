// Indexed layer cache snapshot.
#include "kata_volume/verity/layer_cache_index.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace guest_pull::verity {
namespace {

absl::flat_hash_map<std::string, const LayerCacheEntry*> IndexByDiffId(
    const LayerCache& entries) {
  absl::flat_hash_map<std::string, const LayerCacheEntry*> index;
  index.reserve(entries.size());
  for (const LayerCacheEntry& e : entries) index.emplace(e.diff_id, &e);
  return index;
}

}  // namespace

// entries_ is initialised before by_diff_id_ (declaration order), so the
// index points into the vector this object keeps.
LayerCacheIndex::LayerCacheIndex(LayerCache entries)
    : entries_(std::move(entries)), by_diff_id_(IndexByDiffId(entries_)) {}

const LayerCacheEntry* LayerCacheIndex::FindByDiffId(
    absl::string_view diff_id) const {
  auto it = by_diff_id_.find(diff_id);
  return it == by_diff_id_.end() ? nullptr : it->second;
}

const LayerCacheEntry* LayerCacheIndex::FindByChain(
    absl::string_view parent_chain_id, absl::string_view chain_id) const {
  // The bottom layer's chain ID is its diff_id.
  if (parent_chain_id.empty()) return FindByDiffId(chain_id);
  std::string key = absl::StrCat(parent_chain_id, " ", chain_id);
  {
    absl::MutexLock lock(&mu_);
    auto it = by_chain_.find(key);
    if (it != by_chain_.end()) return it->second;
  }
  // Hash outside the lock; two threads asking at once both compute the
  // same answer.
  const LayerCacheEntry* found =
      FindLayerByChain(entries_, parent_chain_id, chain_id);
  absl::MutexLock lock(&mu_);
  ++chain_scans_;
  if (by_chain_.size() >= kMaxRememberedChains) by_chain_.clear();
  by_chain_.emplace(std::move(key), found);
  return found;
}

size_t LayerCacheIndex::chain_scans() const {
  absl::MutexLock lock(&mu_);
  return chain_scans_;
}

}  // namespace guest_pull::verity
