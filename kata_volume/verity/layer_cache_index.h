// An immutable, indexed snapshot of a loaded layer cache: lookups by diff_id
// through a hash index built once when the snapshot is made, and lookups by
// chain (parent chain ID + chain ID) that hash the cache's diff_ids only the
// first time a chain is asked for in this snapshot (a chain ID cannot be
// inverted to a diff_id, so the answer, hit or miss, is remembered; a new
// snapshot, i.e. a reloaded file, starts afresh).
#ifndef KATA_VOLUME_VERITY_LAYER_CACHE_INDEX_H_
#define KATA_VOLUME_VERITY_LAYER_CACHE_INDEX_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "kata_volume/verity/layer_cache.h"

namespace guest_pull::verity {

// Thread-safe; share it as std::shared_ptr<const LayerCacheIndex>.
class LayerCacheIndex {
 public:
  // At most this many chain answers are remembered; past it the memo is
  // cleared (a bound on memory, not on correctness).
  static constexpr size_t kMaxRememberedChains = 1 << 16;

  LayerCacheIndex() = default;
  explicit LayerCacheIndex(LayerCache entries);
  LayerCacheIndex(const LayerCacheIndex&) = delete;
  LayerCacheIndex& operator=(const LayerCacheIndex&) = delete;

  const LayerCache& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // The entry with this diff_id (the first one if the file repeats it, as
  // FindLayerByDiffId), or nullptr.
  const LayerCacheEntry* FindByDiffId(absl::string_view diff_id) const;

  // The entry whose diff_id satisfies ChainId(parent_chain_id, diff_id) ==
  // chain_id, or nullptr (same answer as FindLayerByChain).
  const LayerCacheEntry* FindByChain(absl::string_view parent_chain_id,
                                     absl::string_view chain_id) const;

  // How many chain lookups hashed the entries (tests and figures).
  size_t chain_scans() const;

 private:
  const LayerCache entries_;
  const absl::flat_hash_map<std::string, const LayerCacheEntry*> by_diff_id_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, const LayerCacheEntry*> by_chain_
      ABSL_GUARDED_BY(mu_);
  mutable size_t chain_scans_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_LAYER_CACHE_INDEX_H_
