// Self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <sys/stat.h>

#include <utility>

#include "glog/logging.h"

namespace guest_pull {

LayerCacheSource::LayerCacheSource(std::string path)
    : path_(std::move(path)),
      cache_(std::make_shared<const verity::LayerCache>()) {}

LayerCacheSource::Stamp LayerCacheSource::CurrentStamp() const {
  Stamp s;
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) return s;
  s.exists = true;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
               st.st_mtim.tv_nsec;
  return s;
}

std::shared_ptr<const verity::LayerCache> LayerCacheSource::Current() {
  absl::MutexLock lock(&mu_);
  return cache_;
}

std::shared_ptr<const verity::LayerCache> LayerCacheSource::Get() {
  if (path_.empty()) return cache_;
  absl::MutexLock lock(&mu_);
  Stamp now = CurrentStamp();
  if (loaded_ && now == stamp_) return cache_;
  loaded_ = true;
  stamp_ = now;
  if (!now.exists) {
    LOG(WARNING) << "layer cache " << path_
                 << " does not exist: no expected verity hashes are known";
    cache_ = std::make_shared<const verity::LayerCache>();
    return cache_;
  }
  auto cache = verity::ReadLayerCacheFile(path_);
  if (!cache.ok()) {
    LOG(ERROR) << "layer cache " << path_ << " not (re)loaded, keeping the "
               << cache_->size() << " entries known before: "
               << cache.status();
    return cache_;
  }
  LOG(INFO) << "layer cache " << path_ << " loaded: " << cache->size()
            << " layers";
  cache_ = std::make_shared<const verity::LayerCache>(*std::move(cache));
  return cache_;
}

}  // namespace guest_pull
