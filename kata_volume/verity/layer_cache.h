// genpolicy layer cache (`layers-cache.json`) in its two forms: the
// Microsoft kata fork's (tarfs/tardev) JSON array of {diff_id, verity_hash,
// passwd, group}, and upstream genpolicy's (3.20+) {diff_id, passwd, group},
// which refuses unknown fields. With the upstream form the expected verity
// hashes live in a companion file next to the cache, VerityHashesPath(),
// a JSON array of {diff_id, verity_hash}. Also the OCI chain-ID
// helpers the snapshotter uses to map a layer snapshot to its diff_id without
// downloading anything.
#ifndef KATA_VOLUME_VERITY_LAYER_CACHE_H_
#define KATA_VOLUME_VERITY_LAYER_CACHE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// Which fields a serialized cache carries.
enum class LayerCacheFormat {
  kTardev,        // diff_id, verity_hash, passwd, group (the fork's genpolicy)
  kGenpolicy,     // diff_id, passwd, group (upstream genpolicy 3.20+)
  kVerityHashes,  // diff_id, verity_hash (the companion of a kGenpolicy cache)
};

// Pretty-printed JSON (2-space indent), entries in order (entries without a
// verity_hash are left out of kVerityHashes).
std::string SerializeLayerCache(const LayerCache& cache,
                                LayerCacheFormat format = LayerCacheFormat::kTardev);

// The companion file holding the expected hashes of the cache at
// `cache_path`: cache_path + ".verity.json".
std::string VerityHashesPath(const std::string& cache_path);

// `cache` with the verity_hash of every entry that has none taken from the
// entry of `hashes` with the same diff_id; entries of `hashes` whose diff_id
// `cache` lacks are appended. The cache's own hashes win. A diff_id the
// cache repeats gets the hash on its first entry, the one lookups return
// (FindLayerByDiffId, LayerCacheIndex).
LayerCache MergeVerityHashes(LayerCache cache, const LayerCache& hashes);

// The largest cache file read: genpolicy writes ~1-3 KiB per layer (its
// passwd and group files), so this is tens of thousands of layers, and it
// bounds what a reload may allocate.
inline constexpr size_t kMaxLayerCacheFileBytes = size_t{64} << 20;

// How long ReadLayerCacheFile waits for a writer's lock by default.
inline constexpr absl::Duration kLayerCacheLockWait = absl::Milliseconds(100);

// Reads and parses a cache file holding a shared flock, the lock genpolicy
// and tardev writers take exclusively while they write (after truncating
// the file, though: a blank file can be a write in progress). NotFound
// when it does not exist; Unavailable when a writer holds the lock longer
// than `lock_wait`; ResourceExhausted (naming the file, its size and the
// limit, reading nothing more) when it is larger than `max_bytes`. If
// `blank` is not null, it is set to whether the file held only whitespace
// (read as an empty cache).
absl::StatusOr<LayerCache> ReadLayerCacheFile(
    const std::string& path, size_t max_bytes = kMaxLayerCacheFileBytes,
    bool* blank = nullptr, absl::Duration lock_wait = kLayerCacheLockWait);

// Reads and parses the cache open at `fd` from where it stands, taking no
// lock (the caller holds one); errors as ReadLayerCacheFile's.
absl::StatusOr<LayerCache> ReadLayerCacheFd(int fd, const std::string& path,
                                            size_t max_bytes = kMaxLayerCacheFileBytes,
                                            bool* blank = nullptr);

// Writes atomically: temp file in the same directory, fsync, rename, fsync
// of the directory. A symbolic link at `path` stays: its target is
// replaced. Something other than a regular file there is refused. A cache
// whose text would exceed kMaxLayerCacheFileBytes, which every reader
// refuses, is not written (CheckLayerCacheFits's error; the file stays).
absl::Status WriteLayerCacheFile(const std::string& path, const LayerCache& cache,
                                 LayerCacheFormat format = LayerCacheFormat::kTardev);

// OK when `cache` serialized as `format` is at most kMaxLayerCacheFileBytes;
// else ResourceExhausted naming `path`, the size and the limit.
absl::Status CheckLayerCacheFits(const std::string& path, const LayerCache& cache,
                                 LayerCacheFormat format);

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
