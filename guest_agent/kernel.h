// What the agent, as the guest's init, asks of the kernel directly: loading
// the initramfs's modules with finit_module, the kernel log (dm-verity's
// "data block N is corrupted" lines) and the time since boot.
#ifndef GUEST_AGENT_KERNEL_H_
#define GUEST_AGENT_KERNEL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace guest_pull::guest_agent {

// Loads, in order, the modules listed in `list_file` (one path per line,
// '#' comments). A module the kernel already has counts as loaded. Returns
// the module file names loaded.
absl::StatusOr<std::vector<std::string>> LoadKernelModules(const std::string& list_file);

// Kernel log lines containing `needle` (klogctl READ_ALL), oldest first.
std::vector<std::string> KernelLogLines(const std::string& needle);

// Seconds since boot (CLOCK_BOOTTIME).
double SecondsSinceBoot();

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_KERNEL_H_
