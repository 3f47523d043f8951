// The spare directory pool and its refilling thread.
#include "snapshotter/spare_dirs.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <system_error>
#include <utility>

#include "glog/logging.h"

namespace snapshotter {
namespace {

// The refilling thread's nice value: it only uses a core the RPCs leave.
constexpr int kRefillNice = 10;

}  // namespace

SpareDirs::SpareDirs(const SnapshotDirs* dirs, int capacity, Maker make)
    : dirs_(dirs),
      capacity_(capacity),
      make_(make ? std::move(make) : [dirs] { return dirs->CreateSpare(); }) {
  if (capacity_ == 0) return;
  // Here, not on an RPC's path; a thread that cannot start (a pids limit)
  // leaves the pool off, every Take making its own.
  absl::MutexLock lock(&mu_);
  try {
    thread_ = std::thread([this] { Refill(); });
    pooled_ = true;
  } catch (const std::system_error& e) {
    LOG(WARNING) << "spare directories off: cannot start their thread: "
                 << e.what();
  }
}

SpareDirs::~SpareDirs() { Stop(); }

absl::StatusOr<std::string> SpareDirs::Take(const std::string& parent_fs) {
  if (!pooled_) {
    return dirs_->CreateTemp(/*with_work=*/true, parent_fs, /*sync=*/false);
  }
  std::string spare;
  {
    absl::MutexLock lock(&mu_);
    // A spare stands for a new directory only with the owner and mode one
    // made now would get (root 0755, the usual case): changing an older
    // inode's would not be flushed with the rename on every filesystem.
    // Checked here (two stats at most) rather than after taking it out,
    // so the pool never dips for a spare that stays: the thread, woken in
    // such a dip, would make one too many.
    if (!stopping_ && !ready_.empty() &&
        SnapshotDirs::OwnerMatches(ready_.back(), parent_fs)) {
      spare = std::move(ready_.back());
      ready_.pop_back();
    }
    wanted_ = true;
    if (static_cast<int>(ready_.size()) < capacity_) cv_.Signal();
  }
  if (spare.empty()) {
    return dirs_->CreateTemp(/*with_work=*/true, parent_fs, /*sync=*/false);
  }
  return spare;
}

void SpareDirs::Stop() {
  std::thread thread;
  std::vector<std::string> left;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    thread = std::move(thread_);
    cv_.Signal();
  }
  if (thread.joinable()) thread.join();
  {
    absl::MutexLock lock(&mu_);
    left.swap(ready_);
  }
  for (const std::string& path : left) {
    if (absl::Status s = RemoveAll(path); !s.ok()) {
      LOG(WARNING) << "cannot remove spare directory " << path
                   << " (the next start sweeps it): " << s.message();
    }
  }
}

int SpareDirs::Ready() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(ready_.size());
}

void SpareDirs::Refill() {
  // Per thread on Linux: only this thread yields to the RPCs.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)),
                  kRefillNice) != 0) {
    PLOG(WARNING) << "spare directories: cannot lower the thread's priority";
  }
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ &&
           !(wanted_ && static_cast<int>(ready_.size()) < capacity_)) {
      cv_.Wait(&mu_);
    }
    if (stopping_) return;
    mu_.Unlock();
    absl::StatusOr<std::string> made = make_();
    mu_.Lock();
    if (!made.ok()) {
      // Prepares make their own meanwhile, and report the error if it
      // lasts; the next Take asks again (one that came during this attempt
      // is forgotten: the one after it asks).
      LOG_EVERY_N(WARNING, 100)
          << "cannot make a spare snapshot directory "
          << "(logged every 100th time): " << made.status().message();
      wanted_ = false;
      continue;
    }
    ready_.push_back(*std::move(made));  // only this thread adds spares
  }
}

}  // namespace snapshotter
