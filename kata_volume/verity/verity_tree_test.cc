// dm-verity tree tests against veritysetup (the independent oracle).
#include "kata_volume/verity/verity_tree.h"

#include <gtest/gtest.h>

#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PseudoRandomBytes;
using ::guest_pull::verity::testing::VeritysetupRootHash;
using ::guest_pull::verity::testing::WriteFileOrDie;

class VerityTreeVsVeritysetup : public ::testing::TestWithParam<size_t> {};

TEST_P(VerityTreeVsVeritysetup, RootHashMatches) {
  const size_t blocks = GetParam();
  std::string data = PseudoRandomBytes(blocks * kVerityBlockSize, blocks);
  std::string path = MakeTempDir() + "/data";
  WriteFileOrDie(path, data);
  absl::StatusOr<std::string> expected = VeritysetupRootHash(path);
  ASSERT_TRUE(expected.ok()) << expected.status();

  // Odd chunk sizes exercise the block reassembly.
  VerityTreeBuilder builder;
  for (size_t off = 0; off < data.size(); off += 1000) {
    builder.Update(data.data() + off, std::min<size_t>(1000, data.size() - off));
  }
  absl::StatusOr<std::string> root = builder.FinishHex();
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, *expected) << blocks << " blocks";
  EXPECT_EQ(*VerityRootHashHex(data), *expected);
}

INSTANTIATE_TEST_SUITE_P(Blocks, VerityTreeVsVeritysetup,
                         ::testing::Values(1, 2, 127, 128, 129, 16384, 16385));

TEST(VerityTreeTest, EmptyDataIsAnError) {
  VerityTreeBuilder builder;
  EXPECT_FALSE(builder.FinishHex().ok());
}

TEST(VerityTreeTest, PartialLastBlockIsZeroPadded) {
  std::string data = PseudoRandomBytes(5000, 7);
  std::string padded = data + std::string(2 * kVerityBlockSize - data.size(), '\0');
  EXPECT_EQ(*VerityRootHashHex(data), *VerityRootHashHex(padded));
}

}  // namespace
}  // namespace guest_pull::verity
