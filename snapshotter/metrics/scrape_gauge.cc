// Scrape-time gauges.
#include "snapshotter/metrics/scrape_gauge.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace snapshotter {

ScrapeGauge::ScrapeGauge(std::string name, std::string help, GaugeReader read)
    : name_(std::move(name)), help_(std::move(help)), read_(std::move(read)) {}

std::vector<prometheus::MetricFamily> ScrapeGauge::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  absl::StatusOr<int64_t> value = read_();
  if (value.ok()) {
    {
      absl::MutexLock lock(&mu_);
      last_error_.clear();  // a later failure is logged again
    }
    prometheus::MetricFamily family;
    family.name = name_;
    family.help = help_;
    family.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric m;
    m.gauge.value = static_cast<double>(*value);
    family.metric.push_back(std::move(m));
    families.push_back(std::move(family));
  } else if (absl::IsFailedPrecondition(value.status())) {
    VLOG(1) << "metrics: " << name_ << ": " << value.status();
  } else {
    errors_.fetch_add(1, std::memory_order_relaxed);
    // Once per cause (a scrape every 15-60 s would repeat it all day); the
    // counter counts every failure.
    std::string cause = value.status().ToString();
    absl::MutexLock lock(&mu_);
    if (cause != last_error_) {
      LOG(WARNING) << "metrics: reading " << name_ << " failed: " << cause
                   << " (logged again only when the cause changes; "
                   << name_ << "_read_errors_total counts them)";
      last_error_ = std::move(cause);
    } else {
      VLOG(1) << "metrics: reading " << name_ << " failed: " << cause;
    }
  }
  prometheus::MetricFamily errors;
  errors.name = absl::StrCat(name_, "_read_errors_total");
  errors.help = absl::StrCat("Scrapes in which reading ", name_, " failed.");
  errors.type = prometheus::MetricType::Counter;
  prometheus::ClientMetric m;
  m.counter.value =
      static_cast<double>(errors_.load(std::memory_order_relaxed));
  errors.metric.push_back(std::move(m));
  families.push_back(std::move(errors));
  return families;
}

}  // namespace snapshotter
