// Scrape-time gauges, read on a thread of their own with a bounded wait.
#include "snapshotter/metrics/scrape_gauge.h"

#include <system_error>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/monotonic_clock.h"
#include "glog/logging.h"

namespace snapshotter {

using ::base::MonotonicNow;

ScrapeGauge::ScrapeGauge(std::string name, std::string help, GaugeReader read,
                         absl::Duration read_timeout)
    : name_(std::move(name)),
      help_(std::move(help)),
      read_(std::move(read)),
      read_timeout_(read_timeout),
      state_(std::make_shared<State>()) {}

ScrapeGauge::~ScrapeGauge() {
  absl::MutexLock lock(&state_->mu);
  state_->stopped = true;
}

absl::StatusOr<int64_t> ScrapeGauge::Read() const {
  State* st = state_.get();
  absl::MutexLock lock(&st->mu);
  if (st->stopped) {
    return absl::UnavailableError("the exporter is stopping");
  }
  int64_t done = st->reads_done;
  if (!st->reading) {
    st->read_started = MonotonicNow();
    st->reading = true;
    try {
      // Detached: a read stuck in the kernel cannot be joined. The thread
      // owns the shared state and a copy of the reader, never `this`.
      std::thread([state = state_, read = read_] {
        absl::StatusOr<int64_t> value = read();
        absl::MutexLock lock(&state->mu);
        state->result = std::move(value);
        state->reading = false;
        ++state->reads_done;
      }).detach();
    } catch (const std::system_error& e) {
      st->reading = false;
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot start a thread to read it: ", e.what()));
    }
  }
  // A read that was already running (one a scrape before gave up on)
  // counts from its own start: once it is overdue, scrapes answer at once.
  absl::Duration left = st->read_started + read_timeout_ - MonotonicNow();
  auto returned = [st, done]() {
    st->mu.AssertReaderHeld();
    return st->reads_done != done;
  };
  if (left > absl::ZeroDuration()) {
    st->mu.AwaitWithTimeout(absl::Condition(&returned), left);
  }
  if (st->reads_done == done) {
    // The cause stays the same while the read is stuck: logged once.
    return absl::DeadlineExceededError(
        absl::StrCat("the read has not returned within ",
                     absl::FormatDuration(read_timeout_),
                     " (a hung disk?); no other starts until it does"));
  }
  return st->result;
}

bool ScrapeGauge::Stop() {
  State* st = state_.get();
  absl::MutexLock lock(&st->mu);
  st->stopped = true;
  if (st->reading) {
    absl::Duration left = st->read_started + read_timeout_ - MonotonicNow();
    if (left > absl::ZeroDuration()) {
      st->mu.AwaitWithTimeout(
          absl::Condition(
              +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
                return !s->reading;
              },
              st),
          left);
    }
  }
  return !st->reading;
}

std::vector<prometheus::MetricFamily> ScrapeGauge::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  absl::StatusOr<int64_t> value = Read();
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
