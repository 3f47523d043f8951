// CLOCK_MONOTONIC as an absl::Time.
#include "base/monotonic_clock.h"

#include <time.h>

namespace base {

absl::Time MonotonicNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

}  // namespace base
