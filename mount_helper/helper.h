// The guest-pull-overlayfs mount helper as a function: parse arguments,
// translate options, fit the data into a page and mount(2) an overlay.
#ifndef MOUNT_HELPER_HELPER_H_
#define MOUNT_HELPER_HELPER_H_

#include <ostream>
#include <string>
#include <vector>

namespace mount_helper {

inline constexpr char kHelperVersion[] = "0.1.0";

// Exit statuses, mount(8)'s: incorrect invocation, and mount failure.
inline constexpr int kExitUsage = 1;
inline constexpr int kExitMountFailed = 32;

// Runs the helper with the arguments after argv[0]; `program` (ProgramName
// of argv[0]) begins every message and names it in the usage and version
// texts. Prints nothing on
// success but, with -v, the call it makes (on `err`). Returns 0 when mounted
// (or checked, with -f), kExitMountFailed when mount(2) failed or the data
// cannot fit in a page (strerror/sizes and the data on `err`), kExitUsage on
// usage errors.
int RunGuestPullOverlayfs(const std::string& program,
                          const std::vector<std::string>& args,
                          std::ostream& out, std::ostream& err);

}  // namespace mount_helper

#endif  // MOUNT_HELPER_HELPER_H_
