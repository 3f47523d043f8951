// MonotonicNow is CLOCK_MONOTONIC.
#include "base/monotonic_clock.h"

#include <time.h>

#include "gtest/gtest.h"

namespace base {
namespace {

// A step of the wall clock must neither keep a wedged store pinged or a
// stuck read fresh (a step back) nor make a healthy one look stuck (a step
// forward): the watchdog and the scrape gauges time by this clock.
TEST(MonotonicClockTest, IsClockMonotonic) {
  timespec before, after;
  clock_gettime(CLOCK_MONOTONIC, &before);
  absl::Time now = MonotonicNow();
  clock_gettime(CLOCK_MONOTONIC, &after);
  EXPECT_GE(now, absl::TimeFromTimespec(before));
  EXPECT_LE(now, absl::TimeFromTimespec(after));
}

}  // namespace
}  // namespace base
