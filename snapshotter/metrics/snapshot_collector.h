// A prometheus::Collectable that asks the daemon for its snapshot counts at
// scrape time, so guest_pull_snapshots is never stale. A failing count exports
// no guest_pull_snapshots samples for that scrape and increments
// guest_pull_snapshot_count_errors_total, which the same scrape shows.
#ifndef SNAPSHOTTER_METRICS_SNAPSHOT_COLLECTOR_H_
#define SNAPSHOTTER_METRICS_SNAPSHOT_COLLECTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace snapshotter {

// Snapshot counts by kind name ("active", "view", "committed", and any extra
// kind such as "guest_pulled"). Called from the HTTP server's threads, possibly
// concurrently; must be thread-safe. FailedPrecondition means there is
// nothing to count yet (the daemon is still opening its store): no samples,
// and no error counted, so a start's scrapes do not look like failures.
using SnapshotCounter =
    std::function<absl::StatusOr<std::map<std::string, int64_t>>()>;

// Exports the guest_pull_snapshots{kind} gauge and its error counter.
class SnapshotCollector : public prometheus::Collectable {
 public:
  static constexpr char kGaugeName[] = "guest_pull_snapshots";
  static constexpr char kErrorsName[] =
      "guest_pull_snapshot_count_errors_total";

  // `counter` must be non-empty.
  explicit SnapshotCollector(SnapshotCounter counter);

  // "active", "view" and "committed" are always exported (0 when the counter
  // omits them), with any other kinds it returns, all in name order.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  SnapshotCounter counter_;
  mutable std::atomic<uint64_t> errors_{0};
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_SNAPSHOT_COLLECTOR_H_
