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

  // Odd chunk sizes exercise the block reassembly; 69999 mixes it with
  // runs of 16 whole blocks (hashed side by side with AVX-512 when the CPU
  // has it) that start after a reassembled block.
  for (size_t chunk : {size_t{1000}, size_t{69999}}) {
    VerityTreeBuilder builder;
    for (size_t off = 0; off < data.size(); off += chunk) {
      builder.Update(data.data() + off, std::min<size_t>(chunk, data.size() - off));
    }
    absl::StatusOr<std::string> root = builder.FinishHex();
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(*root, *expected) << blocks << " blocks, chunks of " << chunk;
  }
  EXPECT_EQ(*VerityRootHashHex(data), *expected);
}

INSTANTIATE_TEST_SUITE_P(Blocks, VerityTreeVsVeritysetup,
                         ::testing::Values(1, 2, 15, 16, 17, 127, 128, 129, 16384, 16385));

TEST(VerityTreeTest, EmptyDataIsAnError) {
  VerityTreeBuilder builder;
  EXPECT_FALSE(builder.FinishHex().ok());
}

// A partial last block after whole 16-block runs, against veritysetup (which
// pads the data file itself: the file is written zero-padded).
TEST(VerityTreeTest, OddSizeMatchesVeritysetup) {
  for (size_t size : {size_t{16 * kVerityBlockSize + 1}, size_t{1234567}}) {
    std::string data = PseudoRandomBytes(size, size);
    std::string path = MakeTempDir() + "/data";
    const size_t padded = (size + kVerityBlockSize - 1) / kVerityBlockSize * kVerityBlockSize;
    WriteFileOrDie(path, data + std::string(padded - size, '\0'));
    absl::StatusOr<std::string> expected = VeritysetupRootHash(path);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(*VerityRootHashHex(data), *expected) << size << " bytes";
  }
}

TEST(VerityTreeTest, PartialLastBlockIsZeroPadded) {
  std::string data = PseudoRandomBytes(5000, 7);
  std::string padded = data + std::string(2 * kVerityBlockSize - data.size(), '\0');
  EXPECT_EQ(*VerityRootHashHex(data), *VerityRootHashHex(padded));
}

}  // namespace
}  // namespace guest_pull::verity
