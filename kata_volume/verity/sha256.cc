// SHA-256 helpers on top of OpenSSL EVP.
#include "kata_volume/verity/sha256.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"

namespace guest_pull::verity {

namespace {
// EVP failures here only happen on allocation failure or a broken OpenSSL
// installation; there is no meaningful way to continue hashing.
void CheckEvp(int ok, const char* what) {
  if (ok != 1) {
    std::cerr << "fatal: OpenSSL " << what << " failed\n";
    std::abort();
  }
}
}  // namespace

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) CheckEvp(0, "EVP_MD_CTX_new");
  Reset();
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }

void Sha256Hasher::Reset() {
  CheckEvp(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr), "EVP_DigestInit_ex");
  finished_ = false;
}

void Sha256Hasher::ResetIfFinished() {
  if (finished_) Reset();
}

void Sha256Hasher::ResumeFrom(const Sha256Hasher& prefix) {
  CheckEvp(EVP_MD_CTX_copy_ex(ctx_, prefix.ctx_), "EVP_MD_CTX_copy_ex");
  finished_ = false;
}

void Sha256Hasher::Update(const void* data, size_t size) {
  ResetIfFinished();
  if (size == 0) return;
  CheckEvp(EVP_DigestUpdate(ctx_, data, size), "EVP_DigestUpdate");
}

Sha256Digest Sha256Hasher::Finish() {
  ResetIfFinished();
  Sha256Digest out{};
  unsigned int len = 0;
  CheckEvp(EVP_DigestFinal_ex(ctx_, out.data(), &len), "EVP_DigestFinal_ex");
  finished_ = true;  // re-initialised lazily: ResumeFrom() makes that free
  return out;
}

std::string Sha256Hasher::FinishHex() { return HexEncode(Finish()); }

std::string HexEncode(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  Sha256Hasher h;
  h.Update(data);
  return h.FinishHex();
}

bool IsSha256Digest(absl::string_view digest) {
  if (!absl::StartsWith(digest, "sha256:")) return false;
  absl::string_view hex = digest.substr(7);
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace guest_pull::verity
