// Bounded call pool.
#include "snapshotter/call_pool.h"

#include <system_error>
#include <utility>

#include "glog/logging.h"

namespace snapshotter {

CallPool::CallPool(int max_threads, int max_queued, ThreadStarter start_thread)
    : max_threads_(max_threads),
      max_queued_(max_queued),
      start_thread_(start_thread ? std::move(start_thread) : [](std::function<void()> fn) {
        return std::thread(std::move(fn));
      }) {}

CallPool::~CallPool() { Stop(); }

void CallPool::Stop(absl::Time drain_until) {
  std::vector<std::thread> threads;
  std::deque<Call> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    mu_.AwaitWithDeadline(absl::Condition(this, &CallPool::QueueEmpty),
                          drain_until);
    threads.swap(threads_);
    dropped.swap(queue_);
    unfinished_ -= static_cast<int>(dropped.size());
  }
  for (Call& call : dropped) {
    if (call.drop) call.drop();
  }
  for (std::thread& t : threads) t.join();
}

bool CallPool::TrySubmit(std::function<void()> run,
                         std::function<void()> drop) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || unfinished_ >= max_threads_ + max_queued_) return false;
  ++unfinished_;
  queue_.push_back(Call{std::move(run), std::move(drop)});
  if (static_cast<int>(queue_.size()) > idle_ &&
      static_cast<int>(threads_.size()) < max_threads_) {
    try {
      threads_.push_back(start_thread_([this] { Loop(); }));
      ++idle_;  // counted idle from its start: it takes a call at once
    } catch (const std::system_error& e) {
      LOG_EVERY_N(WARNING, 100)
          << "cannot start a call thread (" << e.what() << "; "
          << threads_.size() << " running): "
          << (threads_.empty() ? "refusing the call" : "the call waits for a running one")
          << "; is the service's pids limit too low?";
      if (threads_.empty()) {
        queue_.pop_back();
        --unfinished_;
        return false;
      }
    }
  }
  return true;
}

int CallPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

bool CallPool::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool CallPool::HasWork() const { return !queue_.empty() || stopping_; }

bool CallPool::QueueEmpty() const { return queue_.empty(); }

void CallPool::Loop() {
  while (true) {
    std::function<void()> run;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &CallPool::HasWork));
      --idle_;
      if (queue_.empty()) return;  // stopping, nothing left
      run = std::move(queue_.front().run);
      queue_.pop_front();
    }
    run();
    absl::MutexLock lock(&mu_);
    --unfinished_;
    ++idle_;
  }
}

}  // namespace snapshotter
