// The tree written after the data must be byte for byte what `veritysetup
// format --no-superblock` writes to a separate hash device, with the same
// root hash as the project's streaming root-hash builder.
#include "guest_agent/verity_hash_tree.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kata_volume/verity/test_util.h"
#include "kata_volume/verity/verity_tree.h"

namespace guest_pull::guest_agent {
namespace {

namespace vt = ::guest_pull::verity::testing;

void CheckAgainstVeritysetup(size_t blocks) {
  const std::string dir = vt::MakeTempDir();
  const std::string data = vt::PseudoRandomBytes(blocks * 4096, blocks);
  const std::string file = dir + "/layer.img";
  vt::WriteFileOrDie(file, data);
  absl::StatusOr<VerityHashTree> tree = AppendVerityHashTree(file, std::string(32, '\0'));
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->data_blocks, blocks);
  EXPECT_EQ(tree->hash_start_block, blocks);
  absl::StatusOr<std::string> streaming = verity::VerityRootHashHex(data);
  ASSERT_TRUE(streaming.ok());
  EXPECT_EQ(tree->root_hash, *streaming);
  const std::string written = vt::ReadFileOrDie(file);
  EXPECT_EQ(written.substr(0, data.size()), data);
  EXPECT_EQ(written.size(), (blocks + tree->hash_blocks) * 4096);

  if (vt::VeritysetupPath().empty()) GTEST_SKIP() << "veritysetup not installed";
  const std::string data_only = dir + "/data", hash = dir + "/hash";
  vt::WriteFileOrDie(data_only, data);
  absl::StatusOr<std::string> out = vt::RunCommand(absl::StrCat(
      vt::VeritysetupPath(), " format --no-superblock --hash=sha256 --data-block-size=4096 --hash-block-size=4096",
      " --salt=", std::string(64, '0'), " ", data_only, " ", hash));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->find(tree->root_hash), std::string::npos) << *out;
  EXPECT_EQ(written.substr(data.size()), vt::ReadFileOrDie(hash));
}

TEST(VerityHashTreeTest, OneLevelMatchesVeritysetup) { CheckAgainstVeritysetup(3); }
TEST(VerityHashTreeTest, TwoLevelsMatchVeritysetup) { CheckAgainstVeritysetup(300); }
TEST(VerityHashTreeTest, ExactlyFullHashBlock) { CheckAgainstVeritysetup(128); }

TEST(VerityHashTreeTest, RefusesPartialBlocks) {
  const std::string file = vt::MakeTempDir() + "/odd";
  vt::WriteFileOrDie(file, std::string(5000, 'x'));
  EXPECT_EQ(AppendVerityHashTree(file, std::string(32, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace guest_pull::guest_agent
