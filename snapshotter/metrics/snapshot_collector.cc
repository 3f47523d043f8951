// Scrape-time snapshot counts.
#include "snapshotter/metrics/snapshot_collector.h"

#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "glog/logging.h"

namespace snapshotter {
namespace {

absl::StatusOr<std::map<std::string, int64_t>> CallCounter(
    const SnapshotCounter& counter) {
  // The HTTP server thread must not die with the daemon over a scrape.
  try {
    return counter();
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

}  // namespace

SnapshotCollector::SnapshotCollector(SnapshotCounter counter)
    : counter_(std::move(counter)) {}

std::vector<prometheus::MetricFamily> SnapshotCollector::Collect() const {
  std::vector<prometheus::MetricFamily> families;

  absl::StatusOr<std::map<std::string, int64_t>> counts = CallCounter(counter_);
  if (counts.ok()) {
    std::map<std::string, int64_t> all = {
        {"active", 0}, {"view", 0}, {"committed", 0}};
    for (const auto& [kind, n] : *counts) all[kind] = n;

    prometheus::MetricFamily gauge;
    gauge.name = kGaugeName;
    // Not a partition: a sum over kind counts guest-pulled layers twice.
    gauge.help =
        "Snapshots currently stored, by kind; guest_pulled counts the "
        "committed layers pulled for the guest, also counted in committed.";
    gauge.type = prometheus::MetricType::Gauge;
    for (const auto& [kind, n] : all) {
      prometheus::ClientMetric m;
      m.label.push_back({"kind", kind});
      m.gauge.value = static_cast<double>(n);
      gauge.metric.push_back(std::move(m));
    }
    families.push_back(std::move(gauge));
  } else if (absl::IsFailedPrecondition(counts.status())) {
    VLOG(1) << "metrics: no snapshot counts yet: " << counts.status();
  } else {
    errors_.fetch_add(1, std::memory_order_relaxed);
    LOG(WARNING) << "metrics: counting snapshots failed: " << counts.status();
  }

  prometheus::MetricFamily errors;
  errors.name = kErrorsName;
  errors.help = "Scrapes in which counting snapshots failed.";
  errors.type = prometheus::MetricType::Counter;
  prometheus::ClientMetric m;
  m.counter.value =
      static_cast<double>(errors_.load(std::memory_order_relaxed));
  errors.metric.push_back(std::move(m));
  families.push_back(std::move(errors));
  return families;
}

}  // namespace snapshotter
