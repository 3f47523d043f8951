// A prometheus::Collectable exporting one unlabelled gauge whose value is
// read at scrape time (e.g. the daemon's undeletable or quarantined
// entries). A failing read exports no sample for that scrape.
#ifndef SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
#define SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
