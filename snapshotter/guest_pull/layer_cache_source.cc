// Self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <sys/stat.h>

#include <utility>

#include "glog/logging.h"

namespace guest_pull {

LayerCacheSource::LayerCacheSource(std::string path)
    : path_(std::move(path)),
      hashes_path_(path_.empty() ? "" : verity::VerityHashesPath(path_)),
      cache_(std::make_shared<const verity::LayerCache>()) {}

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

absl::Status LayerCacheSource::ReadHashes(verity::LayerCache* hashes) const {
  auto read = verity::ReadLayerCacheFile(hashes_path_);
  if (read.ok()) {
    *hashes = *std::move(read);
    return absl::OkStatus();
  }
  hashes->clear();
  return absl::IsNotFound(read.status()) ? absl::OkStatus() : read.status();
}

std::shared_ptr<const verity::LayerCache> LayerCacheSource::Current() {
  absl::MutexLock lock(&mu_);
  return cache_;
}

std::shared_ptr<const verity::LayerCache> LayerCacheSource::Get() {
  if (path_.empty()) return cache_;
  absl::MutexLock lock(&mu_);
  Stamp now = StampOf(path_);
  Stamp hashes_now = StampOf(hashes_path_);
  if (loaded_ && now == stamp_ && hashes_now == hashes_stamp_) return cache_;
  loaded_ = true;
  stamp_ = now;
  hashes_stamp_ = hashes_now;
  verity::LayerCache hashes;
  if (absl::Status s = ReadHashes(&hashes); !s.ok()) {
    LOG(ERROR) << "layer cache " << path_ << " not (re)loaded, keeping the "
               << cache_->size() << " entries known before: " << s;
    return cache_;
  }
  if (!now.exists && !hashes.empty()) {
    // genpolicy deletes a cache it cannot parse: the hashes still count.
    LOG(WARNING) << "layer cache " << path_ << " does not exist: using the "
                 << hashes.size() << " expected hashes of " << hashes_path_;
    cache_ = std::make_shared<const verity::LayerCache>(
        verity::MergeVerityHashes({}, hashes));
    return cache_;
  }
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
            << " layers, " << hashes.size() << " expected hashes from "
            << hashes_path_;
  cache_ = std::make_shared<const verity::LayerCache>(
      verity::MergeVerityHashes(*std::move(cache), hashes));
  return cache_;
}

}  // namespace guest_pull
