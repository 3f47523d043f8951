// The container's rootfs: one overlay of the verified layer directories
// under a writable upper directory.
#ifndef GUEST_AGENT_ROOTFS_OVERLAY_H_
#define GUEST_AGENT_ROOTFS_OVERLAY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace guest_pull::guest_agent {

// Mounts an overlay of `lower` (top layer first) with `upper` and `work` on
// `target`. mount(2) takes one page of options and silently cuts what is
// beyond it (the kernel then mounts fewer layers, or some other directory,
// without the upper), so paths that do not fit are made relative to their
// common parent (mount_helper/overlay_data.h), the working directory of the
// call. ResourceExhausted if they still do not fit; Internal naming errno
// if a call fails.
absl::Status MountRootfsOverlay(const std::vector<std::string>& lower, const std::string& upper,
                                const std::string& work, const std::string& target);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_ROOTFS_OVERLAY_H_
