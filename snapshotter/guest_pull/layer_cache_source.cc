// Self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <sys/stat.h>

#include <utility>

#include "glog/logging.h"

namespace guest_pull {

LayerCacheSource::LayerCacheSource(std::string path, size_t max_bytes)
    : path_(std::move(path)),
      hashes_path_(path_.empty() ? "" : verity::VerityHashesPath(path_)),
      max_bytes_(max_bytes),
      cache_(std::make_shared<const verity::LayerCacheIndex>()) {}

LayerCacheSource::Stamp LayerCacheSource::StampOf(const std::string& path) {
  Stamp s;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
               st.st_mtim.tv_nsec;
  return s;
}

absl::StatusOr<verity::LayerCache> LayerCacheSource::ReadHashes() const {
  absl::StatusOr<verity::LayerCache> read =
      verity::ReadLayerCacheFile(hashes_path_, max_bytes_);
  if (absl::IsNotFound(read.status())) return verity::LayerCache{};
  return read;
}

LayerCacheSource::Snapshot LayerCacheSource::Current() const {
  absl::MutexLock lock(&mu_);
  return cache_;
}

int64_t LayerCacheSource::loads() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

void LayerCacheSource::Publish(Snapshot snapshot) {
  Snapshot old;  // freed outside the lock
  absl::MutexLock lock(&mu_);
  old = std::move(cache_);
  cache_ = std::move(snapshot);
  ++loads_;
}

LayerCacheSource::Snapshot LayerCacheSource::Load(
    const Stamp& cache_stamp, const Snapshot& current) const {
  auto keep = [&](const absl::Status& s) {
    LOG(ERROR) << "layer cache " << path_ << " not (re)loaded, keeping the "
               << current->size() << " entries known before: " << s;
    return current;
  };
  absl::StatusOr<verity::LayerCache> hashes = ReadHashes();
  if (!hashes.ok()) return keep(hashes.status());
  if (!cache_stamp.exists && !hashes->empty()) {
    // genpolicy deletes a cache it cannot parse: the hashes still count.
    LOG(WARNING) << "layer cache " << path_ << " does not exist: using the "
                 << hashes->size() << " expected hashes of " << hashes_path_;
    return std::make_shared<const verity::LayerCacheIndex>(
        verity::MergeVerityHashes({}, *hashes));
  }
  if (!cache_stamp.exists) {
    LOG(WARNING) << "layer cache " << path_
                 << " does not exist: no expected verity hashes are known";
    return std::make_shared<const verity::LayerCacheIndex>();
  }
  absl::StatusOr<verity::LayerCache> cache =
      verity::ReadLayerCacheFile(path_, max_bytes_);
  // Deleted between the stat and the read: the next Get() sees it.
  if (!cache.ok()) return keep(cache.status());
  LOG(INFO) << "layer cache " << path_ << " loaded: " << cache->size()
            << " layers, " << hashes->size() << " expected hashes from "
            << hashes_path_;
  return std::make_shared<const verity::LayerCacheIndex>(
      verity::MergeVerityHashes(*std::move(cache), *hashes));
}

LayerCacheSource::Snapshot LayerCacheSource::Get() {
  if (path_.empty()) return Current();
  // One reload at a time: a caller (outside every store lock) waits for a
  // reload in progress rather than act on the version it replaces.
  absl::MutexLock reload_lock(&reload_mu_);
  Stamp now = StampOf(path_);
  Stamp hashes_now = StampOf(hashes_path_);
  if (loaded_ && now == stamp_ && hashes_now == hashes_stamp_) return Current();
  loaded_ = true;
  stamp_ = now;
  hashes_stamp_ = hashes_now;
  Snapshot current = Current();
  Snapshot next = Load(now, current);
  if (next != current) Publish(next);
  return next;
}

}  // namespace guest_pull
