// One writer's read-merge-write of a layer cache file, under its lock.
#ifndef KATA_VOLUME_VERITY_LAYER_CACHE_UPDATE_H_
#define KATA_VOLUME_VERITY_LAYER_CACHE_UPDATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kata_volume/verity/layer_cache.h"

namespace guest_pull::verity {

// How long Begin waits for another writer by default.
inline constexpr absl::Duration kLayerCacheUpdateWait = absl::Seconds(30);

// Holds the exclusive flock that genpolicy and tardev writers take on a
// cache file while they write, so that two updates never interleave (each
// reads what the other wrote, merges and replaces it). The lock is on the
// file that a symbolic link at the path leads to, created empty if there
// is none (an empty cache). Readers (the daemon) wait for it briefly, as
// for any writer. The update's own writes replace the file by rename
// (WriteLayerCacheFile); the lock goes with the object, and so does the
// empty file Begin made when there was none, unless Written() was called.
//
// genpolicy's writers take the lock without waiting and skip their write
// when they cannot (tardev's), or truncate the file before they try
// (upstream's): they are not made safe by it, but such a truncation is
// seen (Read(expected_entries) is then Unavailable).
class LayerCacheUpdate {
 public:
  // Locks `path`'s cache file, waiting at most `wait` (Unavailable, naming
  // the file, after that). It is the file at `path` once locked: one that
  // another writer renamed away meanwhile is not.
  static absl::StatusOr<LayerCacheUpdate> Begin(const std::string& path,
                                                absl::Duration wait = kLayerCacheUpdateWait);

  // Says that the cache was written: the file Begin made stays.
  void Written() { written_ = true; }

  LayerCacheUpdate(LayerCacheUpdate&& other) noexcept;
  LayerCacheUpdate& operator=(LayerCacheUpdate&&) = delete;
  LayerCacheUpdate(const LayerCacheUpdate&) = delete;
  ~LayerCacheUpdate();

  // The cache as it is now (no writer that takes the lock can change it
  // meanwhile). Unavailable when it is blank though it had entries when
  // the caller read it before Begin (`expected_entries` > 0): a writer
  // that truncates before it locks is at work.
  absl::StatusOr<LayerCache> Read(size_t expected_entries = 0) const;

 private:
  LayerCacheUpdate(int fd, std::string path, bool created)
      : fd_(fd), path_(std::move(path)), created_(created) {}
  int fd_;
  std::string path_;
  bool created_;  // the file did not exist: Begin made it, empty
  bool written_ = false;
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_LAYER_CACHE_UPDATE_H_
