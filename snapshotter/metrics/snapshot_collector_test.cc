// Tests for the scrape-time snapshot collector.
#include "snapshotter/metrics/snapshot_collector.h"

#include <stdexcept>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

std::map<std::string, double> Gauge(
    const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, double> out;
  for (const auto& f : families) {
    if (f.name != SnapshotCollector::kGaugeName) continue;
    EXPECT_EQ(f.type, prometheus::MetricType::Gauge);
    for (const auto& m : f.metric) {
      EXPECT_EQ(m.label.size(), 1u);
      EXPECT_EQ(m.label[0].name, "kind");
      out[m.label[0].value] = m.gauge.value;
    }
  }
  return out;
}

double Errors(const std::vector<prometheus::MetricFamily>& families) {
  for (const auto& f : families) {
    if (f.name == SnapshotCollector::kErrorsName) {
      EXPECT_EQ(f.type, prometheus::MetricType::Counter);
      EXPECT_EQ(f.metric.size(), 1u);
      return f.metric[0].counter.value;
    }
  }
  ADD_FAILURE() << "no " << SnapshotCollector::kErrorsName;
  return -1;
}

TEST(SnapshotCollectorTest, CallsCounterAtEveryCollect) {
  int calls = 0;
  SnapshotCollector c([&]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    ++calls;
    return std::map<std::string, int64_t>{{"active", calls},
                                          {"guest_pulled", 7}};
  });
  auto first = c.Collect();
  EXPECT_EQ(
      Gauge(first),
      (std::map<std::string, double>{
          {"active", 1}, {"committed", 0}, {"guest_pulled", 7}, {"view", 0}}));
  EXPECT_EQ(Errors(first), 0);
  // guest_pulled overlaps committed (SnapshotIndex::CountByKind): the HELP
  // an operator reads must say so, or a sum over kind double counts.
  for (const auto& f : first) {
    if (f.name == SnapshotCollector::kGaugeName) {
      EXPECT_THAT(f.help, testing::HasSubstr("also counted in committed"));
    }
  }
  EXPECT_EQ(Gauge(c.Collect())["active"], 2);
  EXPECT_EQ(calls, 2);
}

TEST(SnapshotCollectorTest, FailureDropsGaugeAndCountsError) {
  bool fail = true;
  SnapshotCollector c([&]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    if (fail) return absl::UnavailableError("metadata db locked");
    return std::map<std::string, int64_t>{{"committed", 3}};
  });
  auto failed = c.Collect();
  EXPECT_TRUE(Gauge(failed).empty());
  EXPECT_EQ(Errors(failed), 1);
  EXPECT_EQ(Errors(c.Collect()), 2);
  fail = false;
  auto ok = c.Collect();
  EXPECT_EQ(Gauge(ok)["committed"], 3);
  EXPECT_EQ(Errors(ok), 2);
}

// While the daemon opens its store (a long recovery) a scrape gets no
// counts, and that is no failure: an alert on the error counter would fire
// at every start.
TEST(SnapshotCollectorTest, NothingToCountYetIsNoError) {
  bool open = false;
  SnapshotCollector c([&]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    if (!open) return absl::FailedPreconditionError("snapshotter not open yet");
    return std::map<std::string, int64_t>{{"committed", 3}};
  });
  auto starting = c.Collect();
  EXPECT_TRUE(Gauge(starting).empty());
  EXPECT_EQ(Errors(starting), 0);
  open = true;
  EXPECT_EQ(Gauge(c.Collect())["committed"], 3);
}

TEST(SnapshotCollectorTest, ThrowingCounterIsAnError) {
  SnapshotCollector c([]() -> absl::StatusOr<std::map<std::string, int64_t>> {
    throw std::runtime_error("boom");
  });
  auto families = c.Collect();
  EXPECT_TRUE(Gauge(families).empty());
  EXPECT_EQ(Errors(families), 1);
}

}  // namespace
}  // namespace snapshotter
