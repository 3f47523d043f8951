// A prometheus::Collectable exporting one unlabelled gauge whose value is
// read at scrape time (e.g. the daemon's undeletable or quarantined
// entries), and the counter <name>_read_errors_total. A failing read
// exports no gauge sample for that scrape; it is counted, and logged at
// WARNING when its cause differs from the last one logged, so an alert on
// the gauge that cannot fire has one on the counter beside it.
// FailedPrecondition (not readable yet: the store still opening) is
// neither.
//
// The read runs on a thread of its own, and a scrape waits for it
// read_timeout at most from its start: prometheus-cpp collects every
// collectable under one lock, so a read stuck in the kernel (listing a
// directory on a hung disk) held that scrape, every later one, and the
// exporter's stop (which waits for the scrape) with it. A read that has
// not answered in time fails that scrape as DeadlineExceeded (no sample,
// counted, logged once); no second read starts while it runs (at most one
// thread per gauge is ever stuck), so the scrapes meanwhile answer at once
// with the same failure. The first scrape after it returns starts a new
// read.
#ifndef SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
#define SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace snapshotter {

// Called on a thread of its own, at most one call per gauge at a time; it
// may block (the scrape does not wait for it past the gauge's read
// timeout). What it uses must outlive it: see ScrapeGauge::Stop.
using GaugeReader = std::function<absl::StatusOr<int64_t>()>;

class ScrapeGauge : public prometheus::Collectable {
 public:
  // How long a scrape waits for a read, counted from the read's start.
  // Listing the quarantine directory takes microseconds; the exporter's
  // whole scrape must stay well within Prometheus' 10 s timeout.
  static constexpr absl::Duration kReadTimeout = absl::Seconds(1);

  ScrapeGauge(std::string name, std::string help, GaugeReader read,
              absl::Duration read_timeout = kReadTimeout);
  ~ScrapeGauge() override;  // does not wait for a running read
  ScrapeGauge(const ScrapeGauge&) = delete;
  ScrapeGauge& operator=(const ScrapeGauge&) = delete;

  std::vector<prometheus::MetricFamily> Collect() const override;

  // No read starts from now on (a Collect then fails Unavailable). Waits
  // for a running read until its read timeout is over at most (at once if
  // it is over already: a stuck read is not waited for again). Returns
  // whether no read runs; false: one is still running (stuck), and what
  // the reader uses must stay alive.
  bool Stop();

 private:
  // Shared with the reading thread, which may outlive the gauge.
  struct State {
    absl::Mutex mu;
    bool stopped ABSL_GUARDED_BY(mu) = false;
    bool reading ABSL_GUARDED_BY(mu) = false;  // a read runs
    absl::Time read_started ABSL_GUARDED_BY(mu);  // its start, monotonic
    int64_t reads_done ABSL_GUARDED_BY(mu) = 0;
    // The result of the last read that returned.
    absl::StatusOr<int64_t> result ABSL_GUARDED_BY(mu);
  };

  // The value of a read this scrape waited for, or why there is none.
  absl::StatusOr<int64_t> Read() const;

  std::string name_;
  std::string help_;
  GaugeReader read_;
  absl::Duration read_timeout_;
  std::shared_ptr<State> state_;
  mutable std::atomic<int64_t> errors_{0};
  mutable absl::Mutex mu_;
  mutable std::string last_error_ ABSL_GUARDED_BY(mu_);  // logged last
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_SCRAPE_GAUGE_H_
