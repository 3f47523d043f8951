// Sha256x16 against OpenSSL's one-message SHA-256, for prefixes (salts) and
// block sizes that put the padding in every position of the last blocks.
#include "kata_volume/verity/sha256_x16.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>
#include <tuple>

#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::PseudoRandomBytes;

class Sha256x16VsOpenssl : public ::testing::TestWithParam<std::tuple<size_t, size_t>> {};

TEST_P(Sha256x16VsOpenssl, EveryLaneMatches) {
  if (!Sha256x16::Available()) GTEST_SKIP() << "this CPU has no AVX-512F/BW";
  const auto [prefix_size, block_size] = GetParam();
  const std::string prefix = PseudoRandomBytes(prefix_size, prefix_size + 1);
  const std::string blocks = PseudoRandomBytes(Sha256x16::kLanes * block_size, block_size);
  SHA256_CTX salted;
  SHA256_Init(&salted);
  SHA256_Update(&salted, prefix.data(), prefix.size());
  const SHA256_CTX before = salted;

  Sha256Digest got[Sha256x16::kLanes];
  Sha256x16::HashBlocksAfter(salted, reinterpret_cast<const uint8_t*>(blocks.data()), block_size,
                             got);
  for (size_t l = 0; l < Sha256x16::kLanes; ++l) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, prefix.data(), prefix.size());
    SHA256_Update(&c, blocks.data() + l * block_size, block_size);
    Sha256Digest want;
    SHA256_Final(want.data(), &c);
    EXPECT_EQ(HexEncode(got[l]), HexEncode(want))
        << "lane " << l << ", prefix " << prefix_size << ", block " << block_size;
  }
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&before), sizeof(before)),
            std::string(reinterpret_cast<const char*>(&salted), sizeof(salted)));
}

INSTANTIATE_TEST_SUITE_P(
    PrefixAndBlockSizes, Sha256x16VsOpenssl,
    ::testing::Combine(::testing::Values(0, 1, 31, 32, 55, 56, 63, 64, 65, 100, 128),
                       ::testing::Values(1, 23, 55, 56, 64, 119, 4096)));

}  // namespace
}  // namespace guest_pull::verity
