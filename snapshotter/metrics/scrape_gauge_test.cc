// Tests for the scrape-time gauge.
#include "snapshotter/metrics/scrape_gauge.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(ScrapeGaugeTest, ReadsAtEveryCollect) {
  int64_t value = 3;
  ScrapeGauge g("guest_pull_test_entries", "help",
                [&]() -> absl::StatusOr<int64_t> { return value; });
  auto first = g.Collect();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].name, "guest_pull_test_entries");
  EXPECT_EQ(first[0].type, prometheus::MetricType::Gauge);
  ASSERT_EQ(first[0].metric.size(), 1u);
  EXPECT_EQ(first[0].metric[0].gauge.value, 3);
  EXPECT_EQ(first[1].name, "guest_pull_test_entries_read_errors_total");
  EXPECT_EQ(first[1].type, prometheus::MetricType::Counter);
  EXPECT_EQ(first[1].metric[0].counter.value, 0);
  value = 0;
  EXPECT_EQ(g.Collect()[0].metric[0].gauge.value, 0);
}

// A failed read (the quarantine directory unreadable) exports no gauge
// sample, so an alert on "> 0" cannot fire: the errors counter beside it
// counts it. Not while the store is still opening (FailedPrecondition).
TEST(ScrapeGaugeTest, FailedReadExportsNoGaugeAndCountsAnError) {
  absl::Status status = absl::FailedPreconditionError("not open yet");
  ScrapeGauge g("guest_pull_test_entries", "help",
                [&]() -> absl::StatusOr<int64_t> { return status; });
  auto opening = g.Collect();
  ASSERT_EQ(opening.size(), 1u);
  EXPECT_EQ(opening[0].name, "guest_pull_test_entries_read_errors_total");
  EXPECT_EQ(opening[0].metric[0].counter.value, 0);
  status = absl::PermissionDeniedError("cannot list quarantine");
  g.Collect();
  auto failed = g.Collect();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].name, "guest_pull_test_entries_read_errors_total");
  EXPECT_EQ(failed[0].metric[0].counter.value, 2);
}

// A reader that blocks until released, as a directory listing on a hung
// disk does. Shared with the reading thread, which outlives the test's
// scope while it is stuck.
struct BlockingRead {
  absl::Notification release;
  std::atomic<int> calls{0};
  std::atomic<int> returned{0};
  int64_t value = 5;
};

GaugeReader Blocking(std::shared_ptr<BlockingRead> b) {
  return [b]() -> absl::StatusOr<int64_t> {
    ++b->calls;
    b->release.WaitForNotification();
    ++b->returned;
    return b->value;
  };
}

// Waits (bounded) until `pred` holds.
template <typename P>
bool Eventually(P pred) {
  for (int i = 0; i < 500 && !pred(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

// prometheus-cpp collects under one lock: a read stuck in the disk held
// that scrape, every later one and the exporter's stop, until systemd's
// SIGKILL. The scrape now waits the read timeout at most, and the ones
// while the read stays stuck answer at once, without a second read.
TEST(ScrapeGaugeTest, StuckReadFailsTheScrapeInTimeAndStartsNoOther) {
  auto b = std::make_shared<BlockingRead>();
  ScrapeGauge g("guest_pull_test_entries", "help", Blocking(b),
                absl::Milliseconds(200));
  absl::Time start = absl::Now();
  auto first = g.Collect();
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(2));
  ASSERT_EQ(first.size(), 1u);  // no gauge sample
  EXPECT_EQ(first[0].name, "guest_pull_test_entries_read_errors_total");
  EXPECT_EQ(first[0].metric[0].counter.value, 1);

  start = absl::Now();
  for (int i = 0; i < 5; ++i) g.Collect();
  auto later = g.Collect();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(150));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].metric[0].counter.value, 7);
  EXPECT_EQ(b->calls.load(), 1);  // one thread stuck, not one per scrape

  // Once it returns, the next scrapes read again.
  b->release.Notify();
  ASSERT_TRUE(Eventually([&] { return b->returned.load() == 1; }));
  std::vector<prometheus::MetricFamily> again;
  ASSERT_TRUE(Eventually([&] {
    again = g.Collect();
    return again.size() == 2;
  }));
  EXPECT_EQ(again[0].metric[0].gauge.value, 5);
  EXPECT_GE(b->calls.load(), 2);
  EXPECT_TRUE(g.Stop());
}

TEST(ScrapeGaugeTest, StopDoesNotWaitForAStuckRead) {
  auto b = std::make_shared<BlockingRead>();
  {
    ScrapeGauge g("guest_pull_test_entries", "help", Blocking(b),
                  absl::Milliseconds(200));
    g.Collect();  // gives up on the read after 200 ms
    absl::Time start = absl::Now();
    EXPECT_FALSE(g.Stop());
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));
    // Stopped: no read starts any more.
    auto stopped = g.Collect();
    ASSERT_EQ(stopped.size(), 1u);
    EXPECT_EQ(b->calls.load(), 1);
  }
  // The gauge is gone; its stuck read returns later, harmlessly.
  b->release.Notify();
  EXPECT_TRUE(Eventually([&] { return b->returned.load() == 1; }));
}

// A read still within its timeout is let finish: what it uses is freed
// after Stop.
TEST(ScrapeGaugeTest, StopWaitsForAReadWithinItsTimeout) {
  auto b = std::make_shared<BlockingRead>();
  ScrapeGauge g("guest_pull_test_entries", "help", Blocking(b),
                absl::Seconds(5));
  std::thread scrape([&] { g.Collect(); });
  ASSERT_TRUE(Eventually([&] { return b->calls.load() == 1; }));
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(100));
    b->release.Notify();
  });
  absl::Time start = absl::Now();
  EXPECT_TRUE(g.Stop());
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(b->returned.load(), 1);
  releaser.join();
  scrape.join();
}

}  // namespace
}  // namespace snapshotter
