// Watchdog: a prober thread and a pinger thread sharing since when an answer
// of the store is owed.
#include "snapshotter/watchdog.h"

#include <utility>

#include "base/monotonic_clock.h"
#include "glog/logging.h"

namespace snapshotter {

using ::base::MonotonicNow;

bool Watchdog::Healthy(absl::Time now, absl::Time unanswered_since,
                       absl::Duration probe_timeout) {
  return now - unanswered_since <= probe_timeout;
}

Watchdog::Watchdog(Options options)
    : options_(std::move(options)), state_(std::make_shared<State>()) {}

Watchdog::~Watchdog() { Stop(); }

void Watchdog::Start() {
  // Detached: a probe stuck in the kernel cannot be joined. It owns copies
  // of what it needs and the shared state, never `this`.
  std::thread([state = state_, probe = options_.probe,
               interval = options_.interval] {
    bool was_ok = true;
    while (true) {
      {
        absl::MutexLock lock(&state->mu);
        if (state->stopped) return;
        state->probing = true;
        // Timed from the probe's start, not from the last OK answer: that
        // one is `interval` older, and a probe well within probe_timeout
        // stopped the pings (and logged a restart that never came).
        if (state->unanswered_since == absl::InfiniteFuture()) {
          state->unanswered_since = MonotonicNow();
        }
      }
      absl::Status s = probe();
      absl::MutexLock lock(&state->mu);
      state->probing = false;
      if (state->stopped) return;
      if (s.ok()) {
        state->unanswered_since = absl::InfiniteFuture();
      } else if (was_ok) {
        LOG(WARNING) << "watchdog: store probe failed: " << s;
      }
      was_ok = s.ok();
      state->mu.AwaitWithTimeout(absl::Condition(&state->stopped), interval);
    }
  }).detach();
  pinger_ = std::thread([this] { PingLoop(); });
}

void Watchdog::PingLoop() {
  State* state = state_.get();
  bool pinging = true;
  absl::MutexLock lock(&state->mu);
  while (!state->stopped) {
    bool healthy =
        Healthy(MonotonicNow(), state->unanswered_since, options_.probe_timeout);
    if (healthy != pinging) {
      if (healthy) {
        LOG(INFO) << "watchdog: store answers again, pinging systemd";
      } else {
        LOG(ERROR) << "watchdog: the store has not answered for "
                   << options_.probe_timeout
                   << "; no more WATCHDOG=1, systemd will restart the daemon";
      }
      pinging = healthy;
    }
    if (healthy) {
      state->mu.Unlock();
      options_.ping();
      state->mu.Lock();
    }
    state->mu.AwaitWithTimeout(absl::Condition(&state->stopped),
                               options_.interval);
  }
}

bool Watchdog::Stop() {
  bool probe_done;
  {
    absl::MutexLock lock(&state_->mu);
    bool again = state_->stopped;
    state_->stopped = true;
    // The probe uses what the caller frees next: let a running one finish,
    // unless it is stuck (then the store is wedged and closing it hangs too).
    // Only the first Stop waits: the destructor's answers at once.
    if (!again) {
      state_->mu.AwaitWithTimeout(
          absl::Condition(
              +[](State* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st->mu) {
                return !st->probing;
              },
              state_.get()),
          options_.probe_timeout);
    }
    probe_done = !state_->probing;
  }
  if (pinger_.joinable()) pinger_.join();
  return probe_done;
}

}  // namespace snapshotter
