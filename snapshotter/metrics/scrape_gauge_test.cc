// Tests for the scrape-time gauge.
#include "snapshotter/metrics/scrape_gauge.h"

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

}  // namespace
}  // namespace snapshotter
