// Block devices for a verified layer, made through the kernel's own
// interfaces (no libdevmapper, no losetup): a read-only loop device over the
// layer file (LOOP_CTL_GET_FREE + LOOP_CONFIGURE) and a dm-verity device over
// it (DM_DEV_CREATE, DM_TABLE_LOAD with one `verity` target, DM_DEV_SUSPEND
// to resume). The device nodes are made with mknod under a caller-given dir.
#ifndef GUEST_AGENT_DEVICE_MAPPER_H_
#define GUEST_AGENT_DEVICE_MAPPER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace guest_pull::guest_agent {

struct BlockDevice {
  dev_t dev = 0;
  std::string node;  // a block special file for `dev`
};

// The `verity` target of one device whose data and hash tree share one
// block device (tree right after the data).
struct VerityTarget {
  dev_t device = 0;
  uint64_t data_blocks = 0;       // 4096-byte blocks
  uint64_t hash_start_block = 0;  // in 4096-byte blocks
  std::string root_hash_hex;      // the ONLY trust anchor
  std::string salt_hex;
};

// The dm table parameter string: "1 M:m M:m 4096 4096 <blocks> <start>
// sha256 <root> <salt>".
std::string VerityTableParams(const VerityTarget& target);

// Attaches `file` read-only to a free loop device that clears itself once
// the last user (the returned fd, then dm) lets go. Keep `*loop_fd` open
// until the dm device holds the loop device.
absl::StatusOr<BlockDevice> AttachLoopReadOnly(const std::string& file, const std::string& node_dir,
                                               int* loop_fd);

// Creates and activates the read-only dm-verity device `name`.
absl::StatusOr<BlockDevice> CreateVerityDevice(const std::string& name, const VerityTarget& target,
                                               const std::string& node_dir);

// Removes the dm device `name`.
absl::Status RemoveDmDevice(const std::string& name);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_DEVICE_MAPPER_H_
