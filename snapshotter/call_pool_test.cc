// Tests for the bounded call pool: calls run, the bounds refuse, Stop drops
// what is queued and lets running calls finish.
#include "snapshotter/call_pool.h"

#include <atomic>
#include <system_error>
#include <thread>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(CallPoolTest, RunsEveryCall) {
  std::atomic<int> ran{0};
  absl::BlockingCounter all(50);
  {
    CallPool pool(4, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.TrySubmit([&] {
        ran++;
        all.DecrementCount();
      }));
    }
    all.Wait();
  }
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
    for (int i = 0; i < 10000 && ran.load() < 5; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
    }
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

// At shutdown: a queued call gets its `drop` on Stop's thread and never
// runs; a running call finishes before Stop returns; nothing new is taken.
TEST(CallPoolTest, StopDropsQueuedCallsAndLetsRunningOnesFinish) {
  absl::Notification started, release;
  std::atomic<int> ran{0}, dropped{0};
  CallPool pool(1, 3);
  ASSERT_TRUE(pool.TrySubmit(
      [&] {
        started.Notify();
        release.WaitForNotification();
        ran++;
      },
      [&] { dropped++; }));
  started.WaitForNotification();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] { ran++; }, [&] { dropped++; }));
  }
  ASSERT_TRUE(pool.TrySubmit([&] { ran++; }) == false);  // full
  std::thread stopper([&] { pool.Stop(); });
  for (int i = 0; i < 10000 && dropped.load() < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(pool.stopped());
  EXPECT_FALSE(pool.TrySubmit([&] { ran++; }, [&] { dropped++; }));
  EXPECT_EQ(ran.load(), 0);
  release.Notify();
  stopper.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(dropped.load(), 3);
  pool.Stop();  // again: nothing to do
}

// Before its deadline Stop lets the threads take the queued calls; new
// ones are refused meanwhile.
TEST(CallPoolTest, StopRunsQueuedCallsUntilItsDeadline) {
  absl::Notification started, release;
  std::atomic<int> ran{0}, dropped{0};
  CallPool pool(1, 3);
  ASSERT_TRUE(pool.TrySubmit([&] {
    started.Notify();
    release.WaitForNotification();
    ran++;
  }));
  started.WaitForNotification();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] { ran++; }, [&] { dropped++; }));
  }
  std::thread stopper([&] { pool.Stop(absl::Now() + absl::Seconds(60)); });
  for (int i = 0; i < 10000 && !pool.stopped(); ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_FALSE(pool.TrySubmit([&] { ran++; }, [&] { dropped++; }));
  release.Notify();
  stopper.join();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(dropped.load(), 0);
}

// A thread that cannot be started (EAGAIN, as under a pids limit) refuses
// the call when no thread runs, and leaves it to a running one otherwise:
// never an exception out of TrySubmit (which would end the daemon).
TEST(CallPoolTest, ThreadThatCannotStartRefusesOrWaits) {
  std::atomic<int> allowed{0};
  CallPool pool(4, 8, [&allowed](std::function<void()> fn) {
    if (allowed.fetch_sub(1) <= 0) {
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    }
    return std::thread(std::move(fn));
  });
  std::atomic<int> ran{0};
  EXPECT_FALSE(pool.TrySubmit([&ran] { ++ran; }));
  EXPECT_EQ(pool.threads(), 0);

  allowed = 1;
  absl::Notification release;
  ASSERT_TRUE(pool.TrySubmit([&] { release.WaitForNotification(); ++ran; }));
  // No second thread: this one waits for the first.
  ASSERT_TRUE(pool.TrySubmit([&ran] { ++ran; }));
  EXPECT_EQ(pool.threads(), 1);
  release.Notify();
  pool.Stop(absl::Now() + absl::Seconds(30));
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace snapshotter
