// Streaming dm-verity (format 1) root hash: SHA-256, 4096-byte data and hash
// blocks, salt prepended to every hashed block, no superblock -- the values
// `veritysetup format --no-superblock` prints. Memory is one partial hash
// block per tree level (O(levels * 4096)), independent of the data size. A
// single data block has no hash level: its own hash is the root (veritysetup).
#ifndef KATA_VOLUME_VERITY_VERITY_TREE_H_
#define KATA_VOLUME_VERITY_VERITY_TREE_H_

#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kata_volume/verity/sha256.h"

namespace guest_pull::verity {

inline constexpr size_t kVerityBlockSize = 4096;
inline constexpr size_t kHashesPerBlock = kVerityBlockSize / kSha256Size;  // 128

// Builds the tree bottom-up while data streams in.
class VerityTreeBuilder {
 public:
  // `salt` is raw bytes (genpolicy/tardev use 32 zero bytes).
  explicit VerityTreeBuilder(std::string salt = std::string(32, '\0'));

  // Feeds data; any chunking is accepted. A final partial block is
  // zero-padded by Finish().
  void Update(const char* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }

  // Returns the root hash as lowercase hex. Fails if no data was fed.
  absl::StatusOr<std::string> FinishHex();

  uint64_t bytes_fed() const { return bytes_fed_; }

 private:
  // Hash of salt || block.
  Sha256Digest HashBlock(const uint8_t* block);
  // Appends a child hash to `level`, hashing a full block into the level above.
  void PushHash(size_t level, const Sha256Digest& digest);

  struct Level {
    std::vector<uint8_t> block;  // partial hash block being filled
    size_t used = 0;             // hashes in `block`
    uint64_t total = 0;          // hashes ever pushed to this level
  };

  // State after the salt, copied for every block. The low-level context is
  // a plain struct (the copy is free) and runs the same SHA-NI code as EVP,
  // without EVP's per-call dispatch and context duplication, which matter
  // at one call per 4 KiB block.
  SHA256_CTX salted_;
  std::vector<uint8_t> data_block_;
  size_t data_used_ = 0;
  uint64_t bytes_fed_ = 0;
  std::vector<Level> levels_;
};

// Root hash of a whole in-memory buffer (convenience for tests and small data).
absl::StatusOr<std::string> VerityRootHashHex(absl::string_view data);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_VERITY_TREE_H_
