// The clock that deadlines of work which may hang are timed by.
#ifndef BASE_MONOTONIC_CLOCK_H_
#define BASE_MONOTONIC_CLOCK_H_

#include "absl/time/time.h"

namespace base {

// CLOCK_MONOTONIC as an absl::Time (differences only): a step of the wall
// clock (NTP at boot) moves neither a deadline nor an age, as systemd's own
// watchdog timer. A running call must not look stuck, nor a stuck one fresh.
absl::Time MonotonicNow();

}  // namespace base

#endif  // BASE_MONOTONIC_CLOCK_H_
