// Liveness watchdog: pings systemd (sd_notify WATCHDOG=1) only while a probe
// of the store keeps answering, so systemd restarts a wedged daemon (a store
// stuck in fsync, a deadlock) instead of keeping it alive from an idle thread.
#ifndef SNAPSHOTTER_WATCHDOG_H_
#define SNAPSHOTTER_WATCHDOG_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace snapshotter {

// Two threads: the prober runs `probe` every `interval` (it may block forever;
// Stop waits for it at most probe_timeout), the pinger calls `ping` every
// `interval` unless the store has owed an OK answer for longer than
// `probe_timeout`: since the start of a probe still running, or of the first
// of the probes failing since the last OK. The pause between probes does not
// count, so a probe may take up to probe_timeout.
class Watchdog {
 public:
  struct Options {
    std::function<absl::Status()> probe;
    std::function<void()> ping;
    absl::Duration interval = absl::Seconds(5);
    absl::Duration probe_timeout = absl::Seconds(10);
  };

  // Whether a ping is due: the answer owed since `unanswered_since`
  // (InfiniteFuture: none owed) is not overdue.
  static bool Healthy(absl::Time now, absl::Time unanswered_since,
                      absl::Duration probe_timeout);

  explicit Watchdog(Options options);
  ~Watchdog();  // Stop()

  void Start();
  // Stops pinging; waits up to probe_timeout for a running probe, never
  // for a stuck one, and only at the first call. False if a probe is still
  // running (what it uses must then stay alive).
  bool Stop();

 private:
  struct State {
    absl::Mutex mu;
    bool stopped ABSL_GUARDED_BY(mu) = false;
    bool probing ABSL_GUARDED_BY(mu) = false;
    // Start of the first probe not answered OK yet; InfiniteFuture while
    // none is owed (between OK probes).
    absl::Time unanswered_since ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  };
  void PingLoop();

  Options options_;
  std::shared_ptr<State> state_;
  std::thread pinger_;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_WATCHDOG_H_
