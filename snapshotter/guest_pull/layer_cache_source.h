// The genpolicy layer cache named by `[verity] layer_cache`, loaded on first
// use and reloaded whenever the file changes (inode, size or mtime), so an
// operator can add images' layers without restarting the daemon. Either form
// is read (verity/layer_cache.h); the expected hashes of an upstream-form
// cache come from its companion file VerityHashesPath(path), merged in
// (watched the same way; the cache's own hashes win).
//
// Readers get an immutable indexed snapshot (verity/layer_cache_index.h).
// A reload reads and parses the files holding no lock that readers take:
// Current(), which the store's transactions call, only copies a pointer.
//
// Writers that rewrite the file in place (genpolicy, tardev: truncate, then
// write under an exclusive flock) can be caught mid-write. A file is read
// under a shared flock (waiting for a writer a bounded time), and a blank
// file where the last version read had entries is taken for a write in
// progress (write "[]" to empty a cache); either way the last good cache
// stays and the next Get() reads again. A malformed file also keeps the
// last good cache, until the file changes.
#ifndef SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_
#define SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kata_volume/verity/layer_cache.h"
#include "kata_volume/verity/layer_cache_index.h"

namespace guest_pull {

// Thread-safe, self-refreshing view of one layers-cache.json.
class LayerCacheSource {
 public:
  using Snapshot = std::shared_ptr<const verity::LayerCacheIndex>;

  // `path` empty: no cache (Get() is always empty). Files larger than
  // `max_bytes` are refused (logged; the last good version stays), and so
  // is anything but a regular file (a FIFO is never waited on). A reload
  // waits at most `lock_wait` for a writer's lock.
  explicit LayerCacheSource(
      std::string path,
      size_t max_bytes = verity::kMaxLayerCacheFileBytes,
      absl::Duration lock_wait = verity::kLayerCacheLockWait);

  // The cache as of the files' current version: stats them and reloads when
  // they changed. A missing file is an empty cache; a malformed or too
  // large one keeps the last good version, as does a write in progress
  // (then read again at the next call). Problems are logged once per file
  // version. Waits for a reload another thread is doing (and up to
  // verity::kLayerCacheLockWait for a writer); call it outside every lock
  // (RemoteLayers::Refresh).
  Snapshot Get();

  // The cache as last loaded; no I/O, never waits for a reload.
  Snapshot Current() const;

  // How many new versions of the cache were loaded and published (a
  // re-read that found a write in progress, a malformed file or no change
  // does not count; tests and figures).
  int64_t loads() const;
  // How many reloads found a write in progress in either file (tests). A
  // caller that queued behind such a reload, the files unchanged since,
  // returns the last good cache without reading.
  int64_t writes_in_progress_seen() const { return transients_.load(); }

  const std::string& path() const { return path_; }

 private:
  // Identifies a version of a file.
  struct Stamp {
    bool exists = false;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp& o) const {
      return exists == o.exists && ino == o.ino && size == o.size &&
             mtime_ns == o.mtime_ns;
    }
  };
  static Stamp StampOf(const std::string& path);
  // Reads `path`; Unavailable while a writer holds it or when it is blank
  // and its last version read had `last_entries` > 0 (a write in progress).
  absl::StatusOr<verity::LayerCache> Read(const std::string& path,
                                          size_t last_entries) const;
  // Reads both files as they are now; `current` is the snapshot kept when
  // they cannot be read. Unavailable for a write in progress (the stamps
  // must not be recorded). Logs what it did.
  absl::StatusOr<Snapshot> Load(const Stamp& cache_stamp,
                                const Snapshot& current)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);
  void Publish(Snapshot snapshot);

  const std::string path_;
  const std::string hashes_path_;
  const size_t max_bytes_;
  const absl::Duration lock_wait_;
  // Held for a whole reload (stat, read, parse, index) by the one thread
  // doing it; readers never take it.
  absl::Mutex reload_mu_;
  bool loaded_ ABSL_GUARDED_BY(reload_mu_) = false;
  Stamp stamp_ ABSL_GUARDED_BY(reload_mu_);
  Stamp hashes_stamp_ ABSL_GUARDED_BY(reload_mu_);
  // Entries of each file's last version read.
  size_t cache_entries_ ABSL_GUARDED_BY(reload_mu_) = 0;
  size_t hashes_entries_ ABSL_GUARDED_BY(reload_mu_) = 0;
  // The versions of the last write in progress seen (logged once), and
  // how many were seen: a caller that waited for reload_mu_ while one was
  // seen on the same versions does not wait for the writer's lock again.
  Stamp transient_stamp_ ABSL_GUARDED_BY(reload_mu_);
  Stamp transient_hashes_stamp_ ABSL_GUARDED_BY(reload_mu_);
  std::atomic<int64_t> transients_{0};
  // Held only to copy or swap the pointer.
  mutable absl::Mutex mu_;
  Snapshot cache_ ABSL_GUARDED_BY(mu_);
  int64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_
