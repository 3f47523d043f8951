// Tests for the SHA-256 helpers (FIPS 180-2 test vectors).
#include "kata_volume/verity/sha256.h"

#include <gtest/gtest.h>

namespace guest_pull::verity {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShotAndResets) {
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.FinishHex(), Sha256Hex("abc"));
  h.Update("abc");  // reusable after Finish
  EXPECT_EQ(h.FinishHex(), Sha256Hex("abc"));
}

TEST(Sha256Test, ResumeFromContinuesAPrefix) {
  Sha256Hasher prefix, h;
  prefix.Update("salt");
  for (int i = 0; i < 3; ++i) {  // the prefix is unchanged by its copies
    h.ResumeFrom(prefix);
    h.Update("block");
    EXPECT_EQ(h.FinishHex(), Sha256Hex("saltblock"));
  }
  h.Update("abc");  // a finished hasher starts afresh
  EXPECT_EQ(h.FinishHex(), Sha256Hex("abc"));
}

TEST(Sha256Test, DigestSyntax) {
  EXPECT_TRUE(IsSha256Digest("sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(IsSha256Digest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Digest("sha512:" + std::string(64, 'a')));
  EXPECT_FALSE(IsSha256Digest("sha256:../../" + std::string(58, 'a')));
}

}  // namespace
}  // namespace guest_pull::verity
