// Scrape-time gauges.
#include "snapshotter/metrics/scrape_gauge.h"

#include <utility>

#include "glog/logging.h"

namespace snapshotter {

ScrapeGauge::ScrapeGauge(std::string name, std::string help, GaugeReader read)
    : name_(std::move(name)), help_(std::move(help)), read_(std::move(read)) {}

std::vector<prometheus::MetricFamily> ScrapeGauge::Collect() const {
  absl::StatusOr<int64_t> value = read_();
  if (!value.ok()) {
    VLOG(1) << "metrics: " << name_ << ": " << value.status();
    return {};
  }
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.gauge.value = static_cast<double>(*value);
  family.metric.push_back(std::move(m));
  return {std::move(family)};
}

}  // namespace snapshotter
