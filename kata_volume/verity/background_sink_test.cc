// BackgroundSink: every byte reaches every consumer once, in order.
#include "kata_volume/verity/background_sink.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace guest_pull::verity {
namespace {

TEST(BackgroundSinkTest, ConsumerSeesAllBytesInOrder) {
  std::string input;
  for (int i = 0; i < 100000; ++i) input.push_back(static_cast<char>(i * 31 + i / 7));
  std::string seen;
  size_t largest = 0;
  {
    std::string other;
    BackgroundSink sink({[&](const char* d, size_t n) {
                           seen.append(d, n);
                           largest = std::max(largest, n);
                         },
                         [&](const char* d, size_t n) { other.append(d, n); }},
                        /*buffer_size=*/4096, /*buffer_count=*/2);
    for (size_t off = 0; off < input.size(); off += 999) {
      sink.Push(input.data() + off, std::min<size_t>(999, input.size() - off));
    }
    sink.Push(input.data(), 0);  // empty pushes are no-ops
    sink.Finish();
    EXPECT_EQ(seen, input);
    EXPECT_EQ(other, input);  // every consumer sees every byte
  }  // the destructor after Finish() is a no-op
  EXPECT_LE(largest, 4096u);
}

TEST(BackgroundSinkTest, LargePushIsSplitIntoBufferSizedChunks) {
  std::string input(10 * 1000 + 3, 'x');
  size_t calls = 0, total = 0;
  {
    BackgroundSink sink({[&](const char*, size_t n) { ++calls; total += n; }}, 1000, 3);
    sink.Push(input.data(), input.size());
  }  // destructor waits
  EXPECT_EQ(total, input.size());
  EXPECT_EQ(calls, 11u);
}

// Small pushes (a decompressor's short reads) reach the consumers in whole
// buffers, the last one excepted: an output written with direct I/O stays
// on block boundaries (DirectWriter).
TEST(BackgroundSinkTest, SmallPushesAreGatheredIntoWholeBuffers) {
  std::string input;
  for (int i = 0; i < 20000; ++i) input.push_back(static_cast<char>(i * 7 + i / 5));
  std::string seen;
  std::vector<size_t> sizes;
  {
    BackgroundSink sink({[&](const char* d, size_t n) {
                          seen.append(d, n);
                          sizes.push_back(n);
                        }},
                        /*buffer_size=*/4096, /*buffer_count=*/2);
    for (size_t off = 0; off < input.size(); off += 777) {
      sink.Push(input.data() + off, std::min<size_t>(777, input.size() - off));
    }
  }  // the destructor hands over the last, partial buffer
  EXPECT_EQ(seen, input);
  ASSERT_EQ(sizes.size(), 5u);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], 4096u) << i;
  EXPECT_EQ(sizes.back(), input.size() - 4 * 4096);
}

// Filling the buffers in place: every published byte reaches every consumer
// in order, a published buffer is still readable until the next Acquire(),
// and Publish(0) hands the buffer back unused.
TEST(BackgroundSinkTest, AcquireAndPublishInPlace) {
  std::string input;
  for (int i = 0; i < 50000; ++i) input.push_back(static_cast<char>(i * 13 + i / 3));
  std::string seen, other;
  {
    BackgroundSink sink({[&](const char* d, size_t n) { seen.append(d, n); },
                         [&](const char* d, size_t n) { other.append(d, n); }},
                        /*buffer_size=*/3000, /*buffer_count=*/2);
    ASSERT_EQ(sink.capacity(), 3000u);
    size_t off = 0;
    for (int round = 0; off < input.size(); ++round) {
      char* buffer = sink.Acquire();
      // Aligned for direct I/O, though 3000 is not a multiple of it.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer) % BackgroundSink::kBufferAlignment, 0u);
      if (round % 5 == 4) {
        sink.Publish(0);
        continue;
      }
      size_t n = std::min<size_t>(round % 2 ? 3000 : 1234, input.size() - off);
      std::memcpy(buffer, input.data() + off, n);
      sink.Publish(n);
      EXPECT_EQ(std::string(buffer, n), input.substr(off, n));  // unchanged after Publish
      off += n;
    }
    sink.Finish();
  }
  EXPECT_EQ(seen, input);
  EXPECT_EQ(other, input);
}

TEST(BackgroundSinkTest, FinishWithoutPushes) {
  int calls = 0;
  BackgroundSink sink({[&](const char*, size_t) { ++calls; }});
  sink.Finish();
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace guest_pull::verity
