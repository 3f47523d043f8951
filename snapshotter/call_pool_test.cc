// Tests for the bounded call pool: calls run, the bounds refuse, the
// destructor runs what is queued.
#include "snapshotter/call_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(CallPoolTest, RunsEveryCall) {
  std::atomic<int> ran{0};
  {
    CallPool pool(4, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.TrySubmit([&ran] { ran++; }));
    }
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 50);
}

TEST(CallPoolTest, RefusesBeyondThreadsAndQueue) {
  absl::Notification release;
  std::atomic<int> ran{0};
  {
    CallPool pool(2, 3);
    auto blocked = [&] {
      release.WaitForNotification();
      ran++;
    };
    for (int i = 0; i < 5; ++i) {  // 2 running (or about to) + 3 waiting
      ASSERT_TRUE(pool.TrySubmit(blocked)) << i;
    }
    EXPECT_FALSE(pool.TrySubmit(blocked));
    EXPECT_EQ(pool.threads(), 2);
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 5);
}

TEST(CallPoolTest, StartsThreadsOnDemandOnly) {
  CallPool pool(8, 8);
  EXPECT_EQ(pool.threads(), 0);
  absl::Notification done;
  ASSERT_TRUE(pool.TrySubmit([&done] { done.Notify(); }));
  done.WaitForNotification();
  EXPECT_EQ(pool.threads(), 1);
}

}  // namespace
}  // namespace snapshotter
