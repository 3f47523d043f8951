// BackgroundSink: runs consumers of byte chunks each on its own thread, so
// that a single pass over a layer can hash on every core (the dm-verity tree
// on one, the diff_id on another, the reading and tar parsing on the caller's
// thread). Pushed bytes are copied once into a small fixed pool of buffers
// that all consumers read; Push() waits while every buffer is in flight, so
// memory stays bounded whatever the stream size. Each consumer sees the bytes
// in order, in chunks of at most the buffer size (pushed bytes in whole
// buffers but the last).
#ifndef KATA_VOLUME_VERITY_BACKGROUND_SINK_H_
#define KATA_VOLUME_VERITY_BACKGROUND_SINK_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace guest_pull::verity {

class BackgroundSink {
 public:
  using Consumer = std::function<void(const char* data, size_t size)>;

  explicit BackgroundSink(std::vector<Consumer> consumers, size_t buffer_size = 1 << 20,
                          size_t buffer_count = 4);
  // Waits for the consumers (Finish()).
  ~BackgroundSink();
  BackgroundSink(const BackgroundSink&) = delete;
  BackgroundSink& operator=(const BackgroundSink&) = delete;

  // Copies `data` for the consumers; blocks while every buffer is in flight.
  // Bytes are handed over in whole buffers, whatever the sizes pushed (a
  // decompressor's short reads), so that a consumer writing with direct I/O
  // stays on block boundaries; a partly filled buffer goes at the next
  // Acquire() or at Finish().
  void Push(const char* data, size_t size);
  // Zero-copy alternative to Push(): Acquire() waits for a free buffer and
  // returns it (capacity() bytes) for the caller to fill; Publish(size) hands
  // its first `size` bytes to the consumers (0 returns the buffer unused).
  // The published bytes stay valid and unchanged until the next Acquire(),
  // so the caller may still read them (e.g. write them out) meanwhile. One
  // buffer at a time; no Push() between Acquire() and Publish().
  char* Acquire();
  void Publish(size_t size);
  // Every buffer starts on a kBufferAlignment boundary (direct I/O).
  size_t capacity() const { return capacity_; }
  static constexpr size_t kBufferAlignment = 4096;
  // Returns once every consumer has seen every pushed byte; the threads end.
  // Idempotent; no Push() after it.
  void Finish();

 private:
  struct FreeBytes {
    void operator()(char* p) const;
  };
  struct Chunk {
    std::unique_ptr<char, FreeBytes> bytes;
    size_t size = 0;
    size_t pending = 0;  // consumers that have not seen it yet
  };
  void Run(size_t consumer);
  // Hands the buffer Push() is filling, if any, to the consumers.
  void PublishPartial();

  std::vector<Consumer> consumers_;
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Chunk> pool_;
  std::deque<size_t> free_;   // indexes into pool_
  std::deque<size_t> ready_;  // filled, in push order; front has sequence base_
  uint64_t base_ = 0;
  std::vector<uint64_t> next_;  // per consumer: sequence of its next chunk
  bool closing_ = false;
  bool finished_ = false;
  std::vector<std::thread> threads_;
  size_t acquired_ = 0;  // slot handed out by Acquire(), owned by the caller
  char* partial_ = nullptr;  // the buffer Push() fills (slot acquired_), if any
  size_t partial_size_ = 0;
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_BACKGROUND_SINK_H_
