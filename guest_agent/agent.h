// The guest agent's job for one container: take the request from the host,
// fetch and check the manifest and config, verify every layer through
// dm-verity (verified_layer.h), assemble the rootfs with overlayfs, run the
// process and report its exit code.
#ifndef GUEST_AGENT_AGENT_H_
#define GUEST_AGENT_AGENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "guest_agent/host_client.h"
#include "guest_agent/process_runner.h"
#include "guest_agent/verified_layer.h"

namespace guest_pull::guest_agent {

// How a run ended when it did not produce an exit code.
struct AgentFailure {
  std::string kind = "internal";  // request | manifest | config | fetch | digest | verification | internal
  std::string layer;              // the layer digest, when one is at fault
};

// The JSON of the failure frame ('F') for a run that ended with `status`:
// {"error", "kind", "layer"?}; bytes of the message that are not UTF-8 are
// replaced and a message beyond 64 KiB is cut, so that it fits in a frame.
std::string FailureJson(const absl::Status& status, const AgentFailure& failure);

// Sets spec->uid/gid from an image or request user, "user[:group]": each a
// number or a name, looked up in the /etc/passwd or /etc/group of `rootfs`. Without a gid, the
// group is that of the user's /etc/passwd entry (the OCI image spec), 0
// for a uid with none, and the supplementary groups those of /etc/group
// that list the user's name (none with a group given); spec is changed
// only on success.
absl::Status ResolveUser(const std::string& user, const std::string& rootfs, RunSpec* spec);

// Adds `gids` (the OCI spec's additionalGids: a pod's supplementalGroups
// and fsGroup) to spec's supplementary groups, each group once.
void AddSupplementaryGroups(const std::vector<uint32_t>& gids, RunSpec* spec);

class GuestAgent {
 public:
  // `work_dir` is an empty directory on a tmpfs.
  GuestAgent(HostClient* host, std::string work_dir) : host_(host), work_dir_(std::move(work_dir)) {}

  // Runs to the end. OK: the process ran and an exit frame was sent.
  // Otherwise `failure()` says what failed; the caller reports it.
  absl::Status Run();

  const AgentFailure& failure() const { return failure_; }

 private:
  absl::Status Fail(std::string kind, std::string layer, absl::Status status);
  FrameChannel* channel() { return host_->channel(); }

  HostClient* host_;
  std::string work_dir_;
  AgentFailure failure_;
};

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_AGENT_H_
