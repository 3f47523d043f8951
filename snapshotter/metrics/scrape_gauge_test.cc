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
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, "guest_pull_test_entries");
  EXPECT_EQ(first[0].type, prometheus::MetricType::Gauge);
  ASSERT_EQ(first[0].metric.size(), 1u);
  EXPECT_EQ(first[0].metric[0].gauge.value, 3);
  value = 0;
  EXPECT_EQ(g.Collect()[0].metric[0].gauge.value, 0);
}

TEST(ScrapeGaugeTest, FailedReadExportsNothing) {
  ScrapeGauge g("guest_pull_test_entries", "help",
                []() -> absl::StatusOr<int64_t> {
                  return absl::UnavailableError("not open");
                });
  EXPECT_TRUE(g.Collect().empty());
}

}  // namespace
}  // namespace snapshotter
