// Tests for the parallel-unpack rules: which Prepares await a rebase, and
// which commits onto a new parent are refused.
#include "snapshotter/parallel_unpack.h"

#include "gtest/gtest.h"
#include "kata_volume/verity/layer_cache.h"

namespace snapshotter {
namespace {

constexpr char kParent[] = "sha256:bb";
constexpr char kDiffId[] = "sha256:dd";
// The chain ID of a layer with diff ID kDiffId on kParent.
const std::string kChain = ::guest_pull::verity::ChainId(kParent, kDiffId);
// The key and labels of containerd 2.3+'s parallel Prepare of that layer.
const std::string kKey = "k8s.io/7/extract-12-ab " + kChain;
const Labels kLabels = {{kLabelParentChainId, kParent}, {kLabelDiffId, kDiffId}};

Info Active(const std::string& key, const std::string& parent, Labels labels) {
  Info info;
  info.name = key;
  info.parent = parent;
  info.kind = Kind::kActive;
  info.labels = std::move(labels);
  return info;
}

TEST(ParallelUnpackTest, ParentNamedOnlyByParentlessUnpackPrepares) {
  EXPECT_EQ(ParallelUnpackParent(kKey, "", kLabels), kParent);
  EXPECT_EQ(ParallelUnpackParent(kKey, "k8s.io/6/sha256:bb", kLabels), "");
  EXPECT_EQ(ParallelUnpackParent("k8s.io/7/ctr-1", "", kLabels), "");
  EXPECT_EQ(ParallelUnpackParent(kKey, "", {}), "");
  EXPECT_EQ(ParallelUnpackParent(kKey, "", {{kLabelParentChainId, kParent}}), "");
}

// An image's annotation on its first layer (whose chain ID is its diff ID)
// reaches the labels too, but cannot name a parent the chain ID agrees with.
TEST(ParallelUnpackTest, ParentNotMatchingTheChainIdIsIgnored) {
  const std::string first = std::string("k8s.io/7/extract-1-ab ") + kDiffId;
  EXPECT_EQ(ParallelUnpackParent(first, "", kLabels), "");
  Labels other = kLabels;
  other[kLabelParentChainId] = "sha256:ee";
  EXPECT_EQ(ParallelUnpackParent(kKey, "", other), "");
  EXPECT_FALSE(AwaitsRebase([&] {
    Info info;
    info.name = first;
    info.kind = Kind::kActive;
    info.labels = kLabels;
    return info;
  }()));
}

TEST(ParallelUnpackTest, AwaitsRebaseOnlyWhileActive) {
  Info info = Active(kKey, "", kLabels);
  EXPECT_TRUE(AwaitsRebase(info));
  info.kind = Kind::kView;
  EXPECT_FALSE(AwaitsRebase(info));
  EXPECT_FALSE(AwaitsRebase(Active(kKey, "", {})));
}

TEST(ParallelUnpackTest, RebaseOfALabelledLayerOrAnyOtherKeyIsAllowed) {
  EXPECT_TRUE(CheckRebase(Active(kKey, "", kLabels), "k8s.io/6/sha256:bb").ok());
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
