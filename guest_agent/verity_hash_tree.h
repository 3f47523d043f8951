// Writes the dm-verity hash tree of a data file right after its data, the
// layout tardev uses for a layer (data blocks, then the tree in the same
// file): format 1, SHA-256, 4096-byte data and hash blocks, the salt
// prepended to every hashed block, no superblock. The levels are stored top
// level first, as the kernel's dm-verity target expects them.
#ifndef GUEST_AGENT_VERITY_HASH_TREE_H_
#define GUEST_AGENT_VERITY_HASH_TREE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace guest_pull::guest_agent {

// Where the tree went and the root hash it yields.
struct VerityHashTree {
  uint64_t data_blocks = 0;       // 4096-byte blocks of data
  uint64_t hash_start_block = 0;  // first tree block (== data_blocks)
  uint64_t hash_blocks = 0;
  std::string root_hash;          // lowercase hex, what the tree commits to
};

// Appends the tree to `path`, whose size must be a non-zero multiple of 4096.
// `salt` is raw bytes (32 zero bytes for genpolicy/tardev layers).
absl::StatusOr<VerityHashTree> AppendVerityHashTree(const std::string& path,
                                                    const std::string& salt);

}  // namespace guest_pull::guest_agent

#endif  // GUEST_AGENT_VERITY_HASH_TREE_H_
