// SHA-256 helpers on top of OpenSSL EVP, used for layer digests, diff_ids,
// chain IDs and the dm-verity tree.
#ifndef KATA_VOLUME_VERITY_SHA256_H_
#define KATA_VOLUME_VERITY_SHA256_H_

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace guest_pull::verity {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// Incremental SHA-256 (OpenSSL EVP, which uses the CPU's SHA extensions when
// present). Reusable after Finish(): the next Update() starts a new digest.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Reset();
  // Continues from `prefix`'s state (e.g. a salt hashed once): cheaper than
  // Reset() plus re-hashing the prefix for every block.
  void ResumeFrom(const Sha256Hasher& prefix);
  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  Sha256Digest Finish();
  // Finish() as lowercase hex.
  std::string FinishHex();

 private:
  void ResetIfFinished();

  EVP_MD_CTX* ctx_;
  bool finished_ = false;  // Finish() ran; re-initialise before the next use
};

// Lowercase hex of a byte string.
std::string HexEncode(const uint8_t* data, size_t size);
inline std::string HexEncode(const Sha256Digest& d) { return HexEncode(d.data(), d.size()); }

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool IsSha256Digest(absl::string_view digest);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_SHA256_H_
