// Directories made ahead of the Prepares that need them. A plain active
// snapshot needs three new directories (snapshots/<id>, its fs/ and work/),
// and making them is most of what a Prepare costs the kernel (the inode
// allocator, docs/benchmarks.md). A background thread makes them while the
// server waits for its client or for a flush, and a Prepare takes one that
// is ready. A spare is an empty, unflushed spare-XXXXXX directory, the same
// as a Prepare makes itself: one left by a crash is removed at Open
// (snapshotter_cleanup.cc), one lost in a power cut was never used.
#ifndef SNAPSHOTTER_SPARE_DIRS_H_
#define SNAPSHOTTER_SPARE_DIRS_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {

// A bounded pool of spare directories for active snapshots, refilled by one
// thread (at a lower priority than the RPCs: on a busy machine a Prepare
// makes its own). The thread makes nothing before the first Take, so a
// snapshotter that only records guest-pulled layers never makes one.
class SpareDirs {
 public:
  // Makes one spare (SnapshotDirs::CreateSpare; replaceable in tests).
  using Maker = std::function<absl::StatusOr<std::string>()>;
  // Keeps up to `capacity` spares under `dirs` (not owned; outlives this);
  // with 0, no thread: every Take makes its own.
  SpareDirs(const SnapshotDirs* dirs, int capacity, Maker make = nullptr);
  SpareDirs(const SpareDirs&) = delete;
  SpareDirs& operator=(const SpareDirs&) = delete;
  ~SpareDirs();  // Stop()

  // A directory with an empty fs/ (owner and mode of `parent_fs` when
  // given) and an empty work/, not flushed, for SnapshotDirs::Install: a
  // spare when one is ready whose fs/ already has that owner and mode, else
  // made now (SnapshotDirs::CreateTemp). The caller owns it (and removes it
  // if it does not install it).
  absl::StatusOr<std::string> Take(const std::string& parent_fs);

  // Stops the thread and removes the spares not taken (a graceful stop
  // leaves none for the next Open to sweep). Take still works, making its
  // own. Idempotent.
  void Stop();

  // Spares ready now (tests).
  int Ready() const;

  static constexpr int kDefaultCapacity = 8;

 private:
  void Refill();

  const SnapshotDirs* const dirs_;
  const int capacity_;
  const Maker make_;
  bool pooled_ = false;  // the thread runs (set before any Take)
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // wakes the thread: a Take, or Stop
  std::vector<std::string> ready_ ABSL_GUARDED_BY(mu_);
  // A Take asked for spares since the thread last failed to make one (a
  // failure waits for the next Take rather than retrying in a loop).
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);  // none unless pooled_
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SPARE_DIRS_H_
