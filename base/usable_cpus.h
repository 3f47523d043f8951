// How many CPUs this thread may run on.
#ifndef BASE_USABLE_CPUS_H_
#define BASE_USABLE_CPUS_H_

#include <cstddef>

namespace base {

// The CPUs of the calling thread's affinity mask (which taskset, systemd's
// CPUAffinity= and a cgroup's cpuset narrow), at least 1; the machine's
// count when the mask cannot be read. A CPU quota (cpu.max) does not
// narrow it: a quota slows threads, it does not forbid them CPUs.
size_t UsableCpus();

}  // namespace base

#endif  // BASE_USABLE_CPUS_H_
