#include "base/usable_cpus.h"

#include <sched.h>

#include <thread>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(UsableCpusTest, FollowsTheAffinityMask) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  EXPECT_EQ(UsableCpus(), static_cast<size_t>(CPU_COUNT(&all)));
  // On a thread of its own, pinned to one CPU of the mask.
  size_t pinned = 0;
  bool denied = false;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &all)) {
        CPU_SET(cpu, &one);
        break;
      }
    }
    if (sched_setaffinity(0, sizeof(one), &one) == 0) {
      pinned = UsableCpus();
    } else {
      denied = true;
    }
  }).join();
  if (denied) GTEST_SKIP() << "sched_setaffinity is denied here";
  EXPECT_EQ(pinned, 1u);
  EXPECT_GE(UsableCpus(), 1u);
}

}  // namespace
}  // namespace base
