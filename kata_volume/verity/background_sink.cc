// BackgroundSink: a bounded producer/consumers pipe, one thread per consumer.
#include "kata_volume/verity/background_sink.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace guest_pull::verity {

BackgroundSink::BackgroundSink(std::vector<Consumer> consumers, size_t buffer_size,
                               size_t buffer_count)
    : consumers_(std::move(consumers)),
      capacity_(std::max<size_t>(buffer_size, 1)),
      pool_(std::max<size_t>(buffer_count, 1)),
      next_(consumers_.size(), 0) {
  // aligned_alloc wants a multiple of the alignment.
  const size_t allocated = (capacity_ + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  for (size_t i = 0; i < pool_.size(); ++i) {
    pool_[i].bytes.reset(static_cast<char*>(std::aligned_alloc(kBufferAlignment, allocated)));
    if (pool_[i].bytes == nullptr) throw std::bad_alloc();
    free_.push_back(i);
  }
  for (size_t i = 0; i < consumers_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

BackgroundSink::~BackgroundSink() { Finish(); }

void BackgroundSink::FreeBytes::operator()(char* p) const { std::free(p); }

void BackgroundSink::Push(const char* data, size_t size) {
  if (consumers_.empty()) return;
  while (size > 0) {
    if (partial_ == nullptr) {
      partial_ = Acquire();
      partial_size_ = 0;
    }
    size_t n = std::min(size, capacity_ - partial_size_);
    std::memcpy(partial_ + partial_size_, data, n);
    partial_size_ += n;
    data += n;
    size -= n;
    if (partial_size_ == capacity_) PublishPartial();
  }
}

void BackgroundSink::PublishPartial() {
  if (partial_ == nullptr) return;
  partial_ = nullptr;
  Publish(partial_size_);
}

char* BackgroundSink::Acquire() {
  PublishPartial();  // the bytes pushed before come first
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [this] { return !free_.empty(); });
  acquired_ = free_.front();
  free_.pop_front();
  return pool_[acquired_].bytes.get();  // owned by this thread until published
}

void BackgroundSink::Publish(size_t size) {
  Chunk& c = pool_[acquired_];
  c.size = std::min(size, capacity_);
  c.pending = consumers_.size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (c.size == 0 || consumers_.empty()) {
      free_.push_front(acquired_);
      return;
    }
    ready_.push_back(acquired_);
  }
  changed_.notify_all();
}

void BackgroundSink::Run(size_t consumer) {
  while (true) {
    size_t slot;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return next_[consumer] < base_ + ready_.size() || closing_; });
      if (next_[consumer] >= base_ + ready_.size()) return;  // closing and drained
      slot = ready_[next_[consumer] - base_];
    }
    consumers_[consumer](pool_[slot].bytes.get(), pool_[slot].size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++next_[consumer];
      --pool_[slot].pending;
      // Recycle the oldest chunks every consumer is done with.
      while (!ready_.empty() && pool_[ready_.front()].pending == 0) {
        free_.push_back(ready_.front());
        ready_.pop_front();
        ++base_;
      }
    }
    changed_.notify_all();
  }
}

void BackgroundSink::Finish() {
  if (finished_) return;
  finished_ = true;
  PublishPartial();
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

}  // namespace guest_pull::verity
