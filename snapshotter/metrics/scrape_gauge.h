// A prometheus::Collectable exporting one unlabelled gauge whose value is
// read at scrape time (e.g. the daemon's undeletable or quarantined
// entries), and the counter <name>_read_errors_total. A failing read
// exports no gauge sample for that scrape; it is counted, and logged at
// WARNING when its cause differs from the last one logged, so an alert on
// the gauge that cannot fire has one on the counter beside it.
// FailedPrecondition (not readable yet: the store still opening) is
// neither.
#ifndef SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
#define SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace snapshotter {

// Called from the HTTP server's threads; must be thread-safe.
using GaugeReader = std::function<absl::StatusOr<int64_t>()>;

class ScrapeGauge : public prometheus::Collectable {
 public:
  ScrapeGauge(std::string name, std::string help, GaugeReader read);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string name_;
  std::string help_;
  GaugeReader read_;
  mutable std::atomic<int64_t> errors_{0};
  mutable absl::Mutex mu_;
  mutable std::string last_error_ ABSL_GUARDED_BY(mu_);  // logged last
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
