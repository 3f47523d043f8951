// Sha256x16: SHA-256 of 16 messages at once, one per 32-bit lane of AVX-512
// registers. A dm-verity tree hashes every 4 KiB block separately behind
// the same salt: 16 such blocks side by side run about twice as fast as
// SHA-NI on one stream, whose rounds are a serial dependency chain. Only on
// x86-64 CPUs with AVX-512F/BW; Available() says whether this one has them.
#ifndef KATA_VOLUME_VERITY_SHA256_X16_H_
#define KATA_VOLUME_VERITY_SHA256_X16_H_

#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>

#include "kata_volume/verity/sha256.h"

namespace guest_pull::verity {

class Sha256x16 {
 public:
  static constexpr size_t kLanes = 16;

  // True when the CPU and the OS support the AVX-512 code.
  static bool Available();

  // out[i] = SHA-256 of (the bytes `prefix` has absorbed) followed by
  // blocks[i * block_size, (i + 1) * block_size), for i < 16: the prefix is
  // typically a salt hashed once. `prefix` is not modified. Requires
  // Available().
  static void HashBlocksAfter(const SHA256_CTX& prefix, const uint8_t* blocks, size_t block_size,
                              Sha256Digest out[kLanes]);
};

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_SHA256_X16_H_
