// Tests for describing a rootfs chain to the guest.
#include "snapshotter/guest_pull/rootfs_image.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/guest_pull/labels.h"

namespace guest_pull {
namespace {

using ::testing::HasSubstr;

std::string Hex(char c) { return std::string(64, c); }

// A guest-pulled layer named as containerd's metadata layer names it.
snapshotter::Info Layer(const std::string& chain, const std::string& parent_chain,
           char digest, bool remote = true) {
  snapshotter::Info info;
  info.name = "k8s.io/7/" + chain;
  info.parent = parent_chain.empty() ? "" : "k8s.io/5/" + parent_chain;
  info.kind = snapshotter::Kind::kCommitted;
  info.labels[kLabelCriLayerDigest] = "sha256:" + Hex(digest);
  info.labels[kLabelCriImageRef] = "127.0.0.1:5000/app:1";
  info.labels[kLabelCriManifestDigest] = "sha256:" + Hex('f');
  if (remote) info.labels[kLabelGuestPulled] = "true";
  return info;
}

struct Chain {
  std::vector<snapshotter::Info> parents;  // closest first
  verity::LayerCache cache;
};

// Two layers with diff IDs d1, d2 and a cache holding both.
Chain TwoLayers() {
  Chain c;
  std::string d1 = "sha256:" + Hex('1'), d2 = "sha256:" + Hex('2');
  std::string c1 = verity::ChainId("", d1), c2 = verity::ChainId(c1, d2);
  c.parents = {Layer(c2, c1, 'b'), Layer(c1, "", 'a')};
  c.cache = {{d1, Hex('3'), "", ""}, {d2, Hex('4'), "", ""}};
  return c;
}

TEST(RootfsImageTest, HostOnlyChainIsNotDescribed) {
  Chain c = TwoLayers();
  for (snapshotter::Info& p : c.parents) p.labels.erase(kLabelGuestPulled);
  auto image = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                   VerityMode::kRequired, nullptr);
  ASSERT_TRUE(image.ok());
  EXPECT_FALSE(image->has_value());
}

TEST(RootfsImageTest, DescribesLayersBottomToTopWithCacheHashes) {
  Chain c = TwoLayers();
  auto image = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                   VerityMode::kRequired, nullptr);
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_TRUE(image->has_value());
  const auto& img = **image;
  EXPECT_EQ(img.image_ref, "127.0.0.1:5000/app:1");
  ASSERT_EQ(img.layers.size(), 2u);
  EXPECT_EQ(img.layers[0].digest, "sha256:" + Hex('a'));
  EXPECT_EQ(img.layers[0].diff_id, "sha256:" + Hex('1'));
  EXPECT_EQ(img.layers[0].verity_root_hash, Hex('3'));
  EXPECT_EQ(img.layers[1].verity_root_hash, Hex('4'));
}

TEST(RootfsImageTest, LabelHashWinsOverCache) {
  Chain c = TwoLayers();
  c.parents[0].labels[kLabelVerityRootHash] = Hex('9');
  auto image = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                   VerityMode::kBestEffort, nullptr);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ((**image).layers[1].verity_root_hash, Hex('9'));
}

TEST(RootfsImageTest, InheritedLabelSpellingIsAccepted) {
  Chain c = TwoLayers();
  c.cache.clear();
  c.parents[0].labels[kLabelInheritedVerityRootHash] = Hex('8');
  c.parents[1].labels[kLabelVerityRootHash] = Hex('7');
  auto image = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                   VerityMode::kRequired, nullptr);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ((**image).layers[0].verity_root_hash, Hex('7'));
  EXPECT_EQ((**image).layers[1].verity_root_hash, Hex('8'));
}

TEST(RootfsImageTest, RequiredModeNamesLayersWithoutHash) {
  Chain c = TwoLayers();
  c.cache.pop_back();
  auto image = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                   VerityMode::kRequired, nullptr);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(image.status().message(), HasSubstr("layer 1 sha256:bbbb"));
  // The label an operator can set through containerd.
  EXPECT_THAT(image.status().message(),
              HasSubstr("label the layer snapshots with containerd.io/snapshot/"
                        "io.katacontainers.dm-verity.root-hash"));
  auto best = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                  VerityMode::kBestEffort, nullptr);
  ASSERT_TRUE(best.ok());
  EXPECT_TRUE((**best).layers[1].verity_root_hash.empty());
  auto off = DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache), VerityMode::kOff,
                                 nullptr);
  EXPECT_TRUE((**off).layers[0].verity_root_hash.empty());
  EXPECT_FALSE((**off).layers[0].diff_id.empty());
}

TEST(RootfsImageTest, MixedChains) {
  Chain c = TwoLayers();
  // Host-unpacked lower layer under a guest-pulled top: described.
  c.parents[1].labels.erase(kLabelGuestPulled);
  EXPECT_TRUE(DescribeRootfsImage(c.parents, verity::LayerCacheIndex(c.cache),
                                  VerityMode::kRequired, nullptr)
                  .ok());
  // Host-unpacked top over a guest-pulled layer: refused.
  Chain d = TwoLayers();
  d.parents[0].labels.erase(kLabelGuestPulled);
  auto image = DescribeRootfsImage(d.parents, verity::LayerCacheIndex(d.cache),
                                   VerityMode::kOff, nullptr);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(image.status().message(), HasSubstr("unpacked on the host"));
  // A layer without a digest: refused.
  Chain e = TwoLayers();
  e.parents[1].labels.erase(kLabelCriLayerDigest);
  image = DescribeRootfsImage(e.parents, verity::LayerCacheIndex(e.cache), VerityMode::kOff,
                              nullptr);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace guest_pull
