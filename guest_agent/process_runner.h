// Runs the container's process in the assembled rootfs (chroot + exec in a
// child of the agent, so never pid 1) and streams its stdout and stderr to
// the host as frames while it runs.
#ifndef GUEST_AGENT_PROCESS_RUNNER_H_
#define GUEST_AGENT_PROCESS_RUNNER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "guest_agent/frame_channel.h"

namespace guest_pull::guest_agent {

struct RunSpec {
  std::string rootfs;
  std::vector<std::string> args;  // args[0] is looked up in the env's PATH if it has no '/'
  std::vector<std::string> env;
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> supplementary_gids;  // setgroups(2); none when empty
};

// Starts the process, relays its output and returns its exit code (128 +
// signal number when killed by a signal). A failed exec is reported on the
// process's stderr and yields 127.
absl::StatusOr<int> RunProcess(const RunSpec& spec, FrameChannel* channel);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_PROCESS_RUNNER_H_
