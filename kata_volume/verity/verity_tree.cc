// Streaming dm-verity root hash computation.
#include "kata_volume/verity/verity_tree.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "kata_volume/verity/sha256_x16.h"

namespace guest_pull::verity {

namespace {
constexpr size_t kLaneBytes = Sha256x16::kLanes * kVerityBlockSize;
}  // namespace

VerityTreeBuilder::VerityTreeBuilder(std::string salt) : data_block_(kVerityBlockSize, 0) {
  SHA256_Init(&salted_);
  SHA256_Update(&salted_, salt.data(), salt.size());
}

Sha256Digest VerityTreeBuilder::HashBlock(const uint8_t* block) {
  SHA256_CTX ctx = salted_;
  SHA256_Update(&ctx, block, kVerityBlockSize);
  Sha256Digest out;
  SHA256_Final(out.data(), &ctx);
  return out;
}

void VerityTreeBuilder::PushHash(size_t level, const Sha256Digest& digest) {
  if (levels_.size() <= level) levels_.resize(level + 1);
  Level& l = levels_[level];
  if (l.block.empty()) l.block.assign(kVerityBlockSize, 0);
  // Blocks are hashed lazily: a full block is only pushed up once a further
  // hash arrives, so at Finish() the topmost level still holds its block.
  if (l.used == kHashesPerBlock) {
    Sha256Digest up = HashBlock(l.block.data());
    std::fill(l.block.begin(), l.block.end(), 0);
    l.used = 0;
    PushHash(level + 1, up);
  }
  Level& same = levels_[level];  // PushHash may have resized levels_
  std::memcpy(same.block.data() + same.used * kSha256Size, digest.data(), kSha256Size);
  ++same.used;
  ++same.total;
}

void VerityTreeBuilder::Update(const char* data, size_t size) {
  bytes_fed_ += size;
  while (size > 0) {
    if (data_used_ == 0 && size >= kLaneBytes && Sha256x16::Available()) {
      // 16 whole blocks side by side (AVX-512), hashed in place.
      Sha256Digest hashes[Sha256x16::kLanes];
      Sha256x16::HashBlocksAfter(salted_, reinterpret_cast<const uint8_t*>(data), kVerityBlockSize,
                                 hashes);
      for (const Sha256Digest& h : hashes) PushHash(0, h);
      data += kLaneBytes;
      size -= kLaneBytes;
      continue;
    }
    if (data_used_ == 0 && size >= kVerityBlockSize) {  // whole block: no copy
      PushHash(0, HashBlock(reinterpret_cast<const uint8_t*>(data)));
      data += kVerityBlockSize;
      size -= kVerityBlockSize;
      continue;
    }
    size_t n = std::min(size, kVerityBlockSize - data_used_);
    std::memcpy(data_block_.data() + data_used_, data, n);
    data_used_ += n;
    data += n;
    size -= n;
    if (data_used_ == kVerityBlockSize) {
      PushHash(0, HashBlock(data_block_.data()));
      data_used_ = 0;
    }
  }
}

absl::StatusOr<std::string> VerityTreeBuilder::FinishHex() {
  if (data_used_ > 0) {
    std::fill(data_block_.begin() + data_used_, data_block_.end(), 0);
    PushHash(0, HashBlock(data_block_.data()));
    data_used_ = 0;
  }
  if (levels_.empty()) {
    return absl::FailedPreconditionError("dm-verity tree over empty data");
  }
  // A single data block needs no hash level: veritysetup (cryptsetup's
  // VERITY_create) then uses the data block's own hash as the root.
  if (levels_[0].total == 1) {
    std::string root = HexEncode(levels_[0].block.data(), kSha256Size);
    levels_.clear();
    return root;
  }
  // Flush each level's partial block upward until a level holds the single
  // top block; the root hash is the hash of that block.
  for (size_t level = 0;; ++level) {
    const bool is_top = level + 1 >= levels_.size() || levels_[level + 1].total == 0;
    if (is_top) {
      std::string root = HexEncode(HashBlock(levels_[level].block.data()));
      levels_.clear();
      return root;
    }
    Sha256Digest up = HashBlock(levels_[level].block.data());
    PushHash(level + 1, up);
  }
}

absl::StatusOr<std::string> VerityRootHashHex(absl::string_view data) {
  VerityTreeBuilder b;
  b.Update(data);
  return b.FinishHex();
}

}  // namespace guest_pull::verity
