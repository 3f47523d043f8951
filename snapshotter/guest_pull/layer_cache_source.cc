// Self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace guest_pull {

LayerCacheSource::LayerCacheSource(std::string path, size_t max_bytes,
                                   absl::Duration lock_wait)
    : path_(std::move(path)),
      hashes_path_(path_.empty() ? "" : verity::VerityHashesPath(path_)),
      max_bytes_(max_bytes),
      lock_wait_(lock_wait),
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

absl::StatusOr<verity::LayerCache> LayerCacheSource::Read(
    const std::string& path, size_t last_entries) const {
  bool blank = false;
  absl::StatusOr<verity::LayerCache> read =
      verity::ReadLayerCacheFile(path, max_bytes_, &blank, lock_wait_);
  if (read.ok() && blank && last_entries > 0) {
    return absl::UnavailableError(absl::StrCat(
        path, " is blank where it had ", last_entries,
        " entries: taken for a write in progress (write [] to empty it)"));
  }
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

absl::StatusOr<LayerCacheSource::Snapshot> LayerCacheSource::Load(
    const Stamp& cache_stamp, const Snapshot& current) {
  auto keep = [&](const absl::Status& s) {
    LOG(ERROR) << "layer cache " << path_ << " not (re)loaded, keeping the "
               << current->size() << " entries known before: " << s;
    return current;
  };
  absl::StatusOr<verity::LayerCache> hashes =
      Read(hashes_path_, hashes_entries_);
  const bool hashes_exist = !absl::IsNotFound(hashes.status());
  if (!hashes_exist) hashes = verity::LayerCache{};
  if (absl::IsUnavailable(hashes.status())) return hashes.status();
  if (!hashes.ok()) return keep(hashes.status());
  if (!cache_stamp.exists) {
    cache_entries_ = 0;
    hashes_entries_ = hashes->size();
  }
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
  absl::StatusOr<verity::LayerCache> cache = Read(path_, cache_entries_);
  if (absl::IsUnavailable(cache.status())) return cache.status();
  // Deleted between the stat and the read: the next Get() sees it.
  if (!cache.ok()) return keep(cache.status());
  cache_entries_ = cache->size();
  hashes_entries_ = hashes->size();
  LOG(INFO) << "layer cache " << path_ << " loaded: " << cache->size()
            << " layers, "
            << (hashes_exist ? absl::StrCat(hashes->size(),
                                            " expected hashes from ",
                                            hashes_path_)
                             : absl::StrCat("no ", hashes_path_));
  return std::make_shared<const verity::LayerCacheIndex>(
      verity::MergeVerityHashes(*std::move(cache), *hashes));
}

LayerCacheSource::Snapshot LayerCacheSource::Get() {
  if (path_.empty()) return Current();
  // One reload at a time: a caller (outside every store lock) waits for a
  // reload in progress rather than act on the version it replaces.
  int64_t transients_before = transients_.load();
  absl::MutexLock reload_lock(&reload_mu_);
  Stamp now = StampOf(path_);
  Stamp hashes_now = StampOf(hashes_path_);
  if (loaded_ && now == stamp_ && hashes_now == hashes_stamp_) return Current();
  bool seen_transient =
      now == transient_stamp_ && hashes_now == transient_hashes_stamp_;
  if (seen_transient && transients_.load() != transients_before) {
    return Current();  // tried while this call waited: the write goes on
  }
  Snapshot current = Current();
  absl::StatusOr<Snapshot> next = Load(now, current);
  if (!next.ok()) {
    // A write in progress: the versions are not recorded, so the next call
    // reads again.
    if (!seen_transient) {
      LOG(WARNING) << "layer cache " << path_ << " not (re)loaded, keeping "
                   << "the " << current->size() << " entries known before "
                   << "and reading it again at the next use: " << next.status();
    }
    transient_stamp_ = now;
    transient_hashes_stamp_ = hashes_now;
    transients_++;
    return current;
  }
  loaded_ = true;
  stamp_ = now;
  hashes_stamp_ = hashes_now;
  if (*next != current) Publish(*next);
  return *next;
}

}  // namespace guest_pull
