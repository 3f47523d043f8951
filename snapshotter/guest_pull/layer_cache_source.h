// The genpolicy layer cache named by `[verity] layer_cache`, loaded on first
// use and reloaded whenever the file changes (inode, size or mtime), so an
// operator can add images' layers without restarting the daemon. Either form
// is read (verity/layer_cache.h); the expected hashes of an upstream-form
// cache come from its companion file VerityHashesPath(path), merged in
// (watched the same way; the cache's own hashes win).
#ifndef SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_
#define SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "kata_volume/verity/layer_cache.h"

namespace guest_pull {

// Thread-safe, self-refreshing view of one layers-cache.json.
class LayerCacheSource {
 public:
  // `path` empty: no cache (Get() is always empty).
  explicit LayerCacheSource(std::string path);

  // The cache as of the file's current version (stats the file, reparses
  // it when it changed). A missing file is an empty cache; a malformed one
  // keeps the last good version. Problems are logged once per file version.
  std::shared_ptr<const verity::LayerCache> Get();

  // The cache as last loaded by Get(); no I/O.
  std::shared_ptr<const verity::LayerCache> Current();

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
  // Reads the companion into *hashes (empty if it does not exist).
  absl::Status ReadHashes(verity::LayerCache* hashes) const;

  const std::string path_;
  const std::string hashes_path_;
  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  Stamp stamp_ ABSL_GUARDED_BY(mu_);
  Stamp hashes_stamp_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const verity::LayerCache> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_LAYER_CACHE_SOURCE_H_
