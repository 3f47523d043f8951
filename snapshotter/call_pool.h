// A bounded pool of threads for the RPCs that may wait on the store (every
// mutation waits for its group commit's fsync). The completion-queue threads
// answer reads inline and hand mutations here, so a writer stuck in fsync
// never holds a thread that reads need. Bounded twice: at most
// `max_threads` threads (started on demand) and at most `max_queued` calls
// waiting for one; a call beyond both is refused, not queued. Stop() runs
// the queued calls until a deadline and drops the rest (each gets its
// `drop` instead). A thread that cannot be started (a pids limit) leaves
// the call to the running threads, or refuses it when there are none.
#ifndef SNAPSHOTTER_CALL_POOL_H_
#define SNAPSHOTTER_CALL_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace snapshotter {

class CallPool {
 public:
  // Starts a thread running its argument; throws std::system_error when it
  // cannot (as std::thread does). Replaced by tests.
  using ThreadStarter = std::function<std::thread(std::function<void()>)>;

  CallPool(int max_threads, int max_queued, ThreadStarter start_thread = nullptr);
  CallPool(const CallPool&) = delete;
  CallPool& operator=(const CallPool&) = delete;
  // Stop().
  ~CallPool();

  // Queues `run` for a thread; false (nothing queued) when the pool is
  // full (max_threads + max_queued calls accepted and not finished) or
  // stopped. If Stop() finds it still queued, `drop` (may be null) runs
  // instead, on Stop's thread.
  bool TrySubmit(std::function<void()> run,
                 std::function<void()> drop = nullptr);

  // Refuses new calls, lets the threads take queued ones until
  // `drain_until`, drops those still queued then (their `drop`), lets the
  // running ones finish and joins every thread. Idempotent; thread-safe
  // with TrySubmit.
  void Stop(absl::Time drain_until = absl::InfinitePast());

  // Threads started so far (never more than max_threads).
  int threads() const;
  // True once Stop() began.
  bool stopped() const;

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool QueueEmpty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  const int max_queued_;
  const ThreadStarter start_thread_;
  mutable absl::Mutex mu_;
  struct Call {
    std::function<void()> run;
    std::function<void()> drop;
  };
  std::deque<Call> queue_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  // Calls accepted and not yet finished (running or queued).
  int unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_CALL_POOL_H_
