// genpolicy layer cache (`layers-cache.json`, Microsoft kata fork): a JSON
// array of {diff_id, verity_hash, passwd, group}. Also the OCI chain-ID
// helpers the snapshotter uses to map a layer snapshot to its diff_id without
// downloading anything.
#ifndef KATA_VOLUME_VERITY_LAYER_CACHE_H_
#define KATA_VOLUME_VERITY_LAYER_CACHE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace guest_pull::verity {

// One cached layer.
struct LayerCacheEntry {
  std::string diff_id;      // "sha256:<hex>"
  std::string verity_hash;  // hex root hash ("" in caches of upstream genpolicy)
  std::string passwd;       // etc/passwd of the layer, "WHITEOUT", or ""
  std::string group;        // etc/group of the layer, "WHITEOUT", or ""

  bool operator==(const LayerCacheEntry& o) const {
    return diff_id == o.diff_id && verity_hash == o.verity_hash && passwd == o.passwd &&
           group == o.group;
  }
};

using LayerCache = std::vector<LayerCacheEntry>;

// Parses the JSON text. Empty or whitespace-only text is an empty cache (as
// genpolicy treats a fresh file). Fails with InvalidArgument naming the
// offending element on malformed input. Unknown fields are ignored.
absl::StatusOr<LayerCache> ParseLayerCache(absl::string_view json_text);

// Pretty-printed JSON (2-space indent), entries in order.
std::string SerializeLayerCache(const LayerCache& cache);

// Reads and parses a cache file; NotFound when it does not exist.
absl::StatusOr<LayerCache> ReadLayerCacheFile(const std::string& path);

// Writes atomically: temp file in the same directory, fsync, rename, fsync
// of the directory.
absl::Status WriteLayerCacheFile(const std::string& path, const LayerCache& cache);

// Replaces the entry with the same diff_id, or appends.
void UpsertLayer(LayerCache* cache, const LayerCacheEntry& entry);

// Entry with this diff_id, or nullptr.
const LayerCacheEntry* FindLayerByDiffId(const LayerCache& cache, absl::string_view diff_id);

// OCI chain ID: chainID(1) = diffID(1); chainID(n) =
// "sha256:" + hex(sha256(chainID(n-1) + " " + diffID(n))). Pass an empty
// parent for the bottom layer.
std::string ChainId(absl::string_view parent_chain_id, absl::string_view diff_id);

// The entry whose diff_id satisfies ChainId(parent_chain_id, diff_id) ==
// chain_id, or nullptr.
const LayerCacheEntry* FindLayerByChain(const LayerCache& cache, absl::string_view parent_chain_id,
                                        absl::string_view chain_id);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_LAYER_CACHE_H_
