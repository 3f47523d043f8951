// Tests for the parallel-unpack rules: which Prepares await a rebase, and
// which commits onto a new parent are refused.
#include "snapshotter/parallel_unpack.h"

#include "gtest/gtest.h"

namespace snapshotter {
namespace {

constexpr char kKey[] = "k8s.io/7/extract-12-ab sha256:cc";

Info Active(const std::string& key, const std::string& parent, Labels labels) {
  Info info;
  info.name = key;
  info.parent = parent;
  info.kind = Kind::kActive;
  info.labels = std::move(labels);
  return info;
}

TEST(ParallelUnpackTest, ParentNamedOnlyByParentlessUnpackPrepares) {
  Labels labels = {{kLabelParentChainId, "sha256:bb"}};
  EXPECT_EQ(ParallelUnpackParent(kKey, "", labels), "sha256:bb");
  EXPECT_EQ(ParallelUnpackParent(kKey, "k8s.io/6/sha256:bb", labels), "");
  EXPECT_EQ(ParallelUnpackParent("k8s.io/7/ctr-1", "", labels), "");
  EXPECT_EQ(ParallelUnpackParent(kKey, "", {}), "");
}

TEST(ParallelUnpackTest, AwaitsRebaseOnlyWhileActive) {
  Info info = Active(kKey, "", {{kLabelParentChainId, "sha256:bb"}});
  EXPECT_TRUE(AwaitsRebase(info));
  info.kind = Kind::kView;
  EXPECT_FALSE(AwaitsRebase(info));
  EXPECT_FALSE(AwaitsRebase(Active(kKey, "", {})));
}

TEST(ParallelUnpackTest, RebaseOfALabelledLayerOrAnyOtherKeyIsAllowed) {
  EXPECT_TRUE(CheckRebase(Active(kKey, "", {{kLabelParentChainId, "sha256:bb"}}),
                          "k8s.io/6/sha256:bb")
                  .ok());
  // Not an unpack: no tar was applied by containerd (as containerd allows).
  EXPECT_TRUE(CheckRebase(Active("k8s.io/7/mine", "", {}), "k8s.io/6/sha256:bb").ok());
}

TEST(ParallelUnpackTest, ParentCannotChange) {
  absl::Status s = CheckRebase(Active(kKey, "k8s.io/5/sha256:aa", {}), "k8s.io/6/sha256:bb");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("prepared on k8s.io/5/sha256:aa"), std::string::npos) << s;
}

TEST(ParallelUnpackTest, UnpackWithoutTheLabelLostItsWhiteouts) {
  absl::Status s = CheckRebase(Active(kKey, "", {}), "k8s.io/6/sha256:bb");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("whiteouts"), std::string::npos) << s;
  EXPECT_NE(s.message().find("2.3"), std::string::npos) << s;
}

}  // namespace
}  // namespace snapshotter
