// The spare directory pool and its refilling thread.
#include "snapshotter/spare_dirs.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

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
      make_(make ? std::move(make) : [dirs] { return dirs->CreateSpare(); }) {}

SpareDirs::~SpareDirs() { Stop(); }

absl::StatusOr<std::string> SpareDirs::Take(const std::string& parent_fs) {
  std::string spare;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && capacity_ > 0) {
      wanted_ = true;
      if (!thread_.joinable()) thread_ = std::thread([this] { Refill(); });
      if (!ready_.empty()) {
        spare = std::move(ready_.back());
        ready_.pop_back();
      }
      cv_.Signal();
    }
  }
  if (spare.empty()) {
    return dirs_->CreateTemp(/*with_work=*/true, parent_fs, /*sync=*/false);
  }
  if (absl::Status s = SnapshotDirs::TakeOwner(spare, parent_fs); !s.ok()) {
    RemoveAll(spare).IgnoreError();
    return s;
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
    // A CondVar, not Await: the condition is then read by this thread only
    // (an Await's is also read by the unlocking one, which TSan's view of
    // Debian's abseil does not cover).
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
      // lasts; the next Take asks again.
      LOG_EVERY_N(WARNING, 100)
          << "cannot make a spare snapshot directory "
          << "(logged every 100th time): " << made.status().message();
      wanted_ = false;
      continue;
    }
    ready_.push_back(*std::move(made));
  }
}

}  // namespace snapshotter
