// dm-verity hash tree writer.
#include "guest_agent/verity_hash_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "kata_volume/verity/sha256.h"
#include "base/status_macros.h"

namespace guest_pull::guest_agent {

namespace {

constexpr size_t kBlock = 4096;
constexpr size_t kDigest = verity::kSha256Size;

verity::Sha256Digest HashBlock(verity::Sha256Hasher* hasher, const std::string& salt,
                               const char* block) {
  hasher->Reset();
  hasher->Update(salt.data(), salt.size());
  hasher->Update(block, kBlock);
  return hasher->Finish();
}

// Hashes of every block of `blocks` (a whole number of blocks), packed into
// zero-padded hash blocks.
std::string HashLevel(verity::Sha256Hasher* hasher, const std::string& salt,
                      const std::string& blocks) {
  const size_t count = blocks.size() / kBlock;
  const size_t per_block = kBlock / kDigest;
  std::string level(((count + per_block - 1) / per_block) * kBlock, '\0');
  for (size_t i = 0; i < count; ++i) {
    verity::Sha256Digest d = HashBlock(hasher, salt, blocks.data() + i * kBlock);
    memcpy(level.data() + i * kDigest, d.data(), kDigest);
  }
  return level;
}

absl::Status PwriteAll(int fd, const std::string& data, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("write ", path, ": ", strerror(errno)));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VerityHashTree> AppendVerityHashTree(const std::string& path,
                                                    const std::string& salt) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("stat ", path, ": ", strerror(errno)));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0 || size % kBlock != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", size, " bytes, not a non-zero multiple of ", kBlock));
  }
  VerityHashTree tree;
  tree.data_blocks = size / kBlock;
  tree.hash_start_block = tree.data_blocks;

  // Level 0: hashes of the data blocks, read in 1 MiB chunks.
  verity::Sha256Hasher hasher;
  const size_t per_block = kBlock / kDigest;
  std::string level(((tree.data_blocks + per_block - 1) / per_block) * kBlock, '\0');
  std::vector<char> chunk(256 * kBlock);
  uint64_t block = 0;
  while (block < tree.data_blocks) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(256, tree.data_blocks - block)) * kBlock;
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd, chunk.data() + got, want - got, static_cast<off_t>(block * kBlock + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::InternalError(absl::StrCat("read ", path, ": ", n < 0 ? strerror(errno) : "short"));
      got += static_cast<size_t>(n);
    }
    for (size_t i = 0; i < want / kBlock; ++i, ++block) {
      verity::Sha256Digest d = HashBlock(&hasher, salt, chunk.data() + i * kBlock);
      memcpy(level.data() + block * kDigest, d.data(), kDigest);
    }
  }
  if (tree.data_blocks == 1) {
    // No hash level: the data block's own hash is the root (veritysetup).
    tree.root_hash = verity::HexEncode(HashBlock(&hasher, salt, chunk.data()));
    return tree;
  }
  std::vector<std::string> levels{std::move(level)};
  while (levels.back().size() > kBlock) levels.push_back(HashLevel(&hasher, salt, levels.back()));
  tree.root_hash = verity::HexEncode(HashBlock(&hasher, salt, levels.back().data()));

  uint64_t offset = size;
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
    RETURN_IF_ERROR(PwriteAll(fd, *it, offset, path));
    offset += it->size();
    tree.hash_blocks += it->size() / kBlock;
  }
  if (::fsync(fd) != 0) return absl::InternalError(absl::StrCat("fsync ", path, ": ", strerror(errno)));
  return tree;
}

}  // namespace guest_pull::guest_agent
