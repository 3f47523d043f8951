#include "snapshotter/watchdog.h"

#include <atomic>
#include <functional>
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "base/monotonic_clock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(WatchdogTest, HealthyWithinTimeout) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(Watchdog::Healthy(t0 + absl::Seconds(3), t0, absl::Seconds(5)));
  EXPECT_TRUE(Watchdog::Healthy(t0 + absl::Seconds(5), t0, absl::Seconds(5)));
  EXPECT_FALSE(Watchdog::Healthy(t0 + absl::Seconds(6), t0, absl::Seconds(5)));
  // No answer owed.
  EXPECT_TRUE(Watchdog::Healthy(t0, absl::InfiniteFuture(), absl::Seconds(5)));
}

// Waits (bounded) until `pred` holds.
template <typename P>
bool Eventually(P pred) {
  for (int i = 0; i < 500 && !pred(); ++i) absl::SleepFor(absl::Milliseconds(10));
  return pred();
}

// Waits (bounded) until `pings` stays unchanged over two 50 ms windows.
bool PingsStop(const std::atomic<int>& pings) {
  int last = -1;
  return Eventually([&] {
    int now = pings.load();
    bool stable = now == last;
    last = now;
    absl::SleepFor(absl::Milliseconds(50));
    return stable && pings.load() == now;
  });
}

TEST(WatchdogTest, PingsWhileProbeAnswers) {
  std::atomic<int> pings{0};
  Watchdog wd({[] { return absl::OkStatus(); }, [&pings] { ++pings; },
               absl::Milliseconds(5), absl::Milliseconds(500)});
  wd.Start();
  EXPECT_TRUE(Eventually([&] { return pings.load() >= 5; }));
  EXPECT_TRUE(wd.Stop());  // a quick probe is waited for
  int after_stop = pings.load();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(pings.load(), after_stop);
}

// A probe that answers within probe_timeout keeps the pings going, however
// long the pause between probes: the daemon's 10 s interval and 15 s
// timeout stopped a ping (and logged that systemd would restart it) when
// a probe took over 5 s.
TEST(WatchdogTest, SlowProbeWithinTimeoutKeepsPinging) {
  const absl::Duration interval = absl::Milliseconds(300);
  auto pings_owned = std::make_shared<std::vector<absl::Time>>();
  auto mu = std::make_shared<absl::Mutex>();
  Watchdog wd({[] {
                 absl::SleepFor(absl::Milliseconds(100));  // half the timeout
                 return absl::OkStatus();
               },
               [pings_owned, mu] {
                 absl::MutexLock lock(mu.get());
                 pings_owned->push_back(base::MonotonicNow());
               },
               interval, absl::Milliseconds(200)});
  wd.Start();
  absl::SleepFor(absl::Milliseconds(2500));
  wd.Stop();
  absl::MutexLock lock(mu.get());
  const std::vector<absl::Time>& pings = *pings_owned;
  ASSERT_GE(pings.size(), 2u);
  absl::Duration longest;
  for (size_t i = 1; i < pings.size(); ++i) {
    longest = std::max(longest, pings[i] - pings[i - 1]);
  }
  // A skipped ping shows as a gap of two intervals.
  EXPECT_LT(longest, interval * 1.6) << pings.size() << " pings";
}

TEST(WatchdogTest, StopsPingingWhenProbeBlocks) {
  std::atomic<int> pings{0};
  // Shared: the detached prober may outlive the test body.
  auto probes_owned = std::make_shared<std::atomic<int>>(0);
  std::atomic<int>& probes = *probes_owned;
  auto unblock = std::make_shared<absl::Notification>();
  Watchdog wd({[probes_owned, unblock] {
                 if (++*probes_owned > 3) unblock->WaitForNotification();
                 return absl::OkStatus();
               },
               [&pings] { ++pings; }, absl::Milliseconds(5),
               absl::Milliseconds(100)});
  wd.Start();
  EXPECT_TRUE(Eventually([&] { return probes.load() > 3; }));
  // The probe is stuck: pings stop once the timeout has passed.
  EXPECT_TRUE(PingsStop(pings));
  // The store answers again: pings resume.
  int stopped_at = pings.load();
  unblock->Notify();
  EXPECT_TRUE(Eventually([&] { return pings.load() > stopped_at; }));
  wd.Stop();
}

TEST(WatchdogTest, StopsPingingWhenProbeFails) {
  std::atomic<int> pings{0};
  auto fail_owned = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool>& fail = *fail_owned;
  Watchdog wd({[fail_owned] {
                 return *fail_owned ? absl::UnavailableError("down")
                                    : absl::OkStatus();
               },
               [&pings] { ++pings; }, absl::Milliseconds(5),
               absl::Milliseconds(100)});
  wd.Start();
  EXPECT_TRUE(Eventually([&] { return pings.load() >= 3; }));
  fail = true;
  EXPECT_TRUE(PingsStop(pings));
  wd.Stop();
}

// A probe that blocks, once entered, until `unblock` is notified.
struct StuckProbe {
  std::shared_ptr<absl::Notification> entered = std::make_shared<absl::Notification>();
  std::shared_ptr<absl::Notification> unblock = std::make_shared<absl::Notification>();
  std::function<absl::Status()> Probe() const {
    return [entered = entered, unblock = unblock] {
      if (!entered->HasBeenNotified()) entered->Notify();
      unblock->WaitForNotification();
      return absl::OkStatus();
    };
  }
};

TEST(WatchdogTest, StopReturnsWhileProbeIsStuck) {
  StuckProbe stuck;
  Watchdog wd({stuck.Probe(), [] {}, absl::Milliseconds(5), absl::Milliseconds(100)});
  wd.Start();
  stuck.entered->WaitForNotification();
  // Bounded by probe_timeout; the probe is still stuck.
  EXPECT_FALSE(wd.Stop());
  EXPECT_FALSE(stuck.unblock->HasBeenNotified());
  stuck.unblock->Notify();
}

// The daemon stops the watchdog, then destroys it: with the probe stuck,
// only the first Stop waits for it (probe_timeout); the second, the
// destructor's, answers at once, still false.
TEST(WatchdogTest, SecondStopDoesNotWaitForAStuckProbeAgain) {
  StuckProbe stuck;
  Watchdog wd({stuck.Probe(), [] {}, absl::Milliseconds(5), absl::Seconds(2)});
  wd.Start();
  stuck.entered->WaitForNotification();
  EXPECT_FALSE(wd.Stop());
  absl::Time start = absl::Now();
  EXPECT_FALSE(wd.Stop());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  stuck.unblock->Notify();
}

}  // namespace
}  // namespace snapshotter
