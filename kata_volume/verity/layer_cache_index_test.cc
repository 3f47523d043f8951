// Tests for the indexed layer cache: same answers as the linear lookups,
// each chain hashed once per snapshot, concurrent lookups.
#include "kata_volume/verity/layer_cache_index.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace guest_pull::verity {
namespace {

std::string Digest(int i) {
  std::string hex = std::to_string(i);
  return "sha256:" + std::string(64 - hex.size(), '0') + hex;
}

// 50 layers; chains[i] is the chain ID of layers 0..i.
struct Fixture {
  LayerCache entries;
  std::vector<std::string> chains;
};

Fixture Layers(int n) {
  Fixture f;
  std::string chain;
  for (int i = 0; i < n; ++i) {
    f.entries.push_back({Digest(i), std::string(64, 'a' + i % 6), "", ""});
    chain = ChainId(chain, Digest(i));
    f.chains.push_back(chain);
  }
  return f;
}

TEST(LayerCacheIndexTest, AnswersLikeTheLinearLookups) {
  Fixture f = Layers(50);
  LayerCacheIndex index(f.entries);
  EXPECT_EQ(index.size(), 50u);
  EXPECT_EQ(index.FindByDiffId(Digest(7)), &index.entries()[7]);
  EXPECT_EQ(index.FindByDiffId(Digest(99)), nullptr);
  EXPECT_EQ(index.FindByChain("", f.chains[0]), &index.entries()[0]);
  for (int i = 1; i < 50; ++i) {
    const LayerCacheEntry* e = index.FindByChain(f.chains[i - 1], f.chains[i]);
    ASSERT_NE(e, nullptr) << i;
    EXPECT_EQ(*e, *FindLayerByChain(f.entries, f.chains[i - 1], f.chains[i]));
  }
  // A chain the cache cannot form, or the right chain on the wrong parent.
  EXPECT_EQ(index.FindByChain(f.chains[3], ChainId(f.chains[3], Digest(99))), nullptr);
  EXPECT_EQ(index.FindByChain(f.chains[1], f.chains[3]), nullptr);
  EXPECT_TRUE(LayerCacheIndex().empty());
  EXPECT_EQ(LayerCacheIndex().FindByChain(f.chains[0], f.chains[1]), nullptr);
}

TEST(LayerCacheIndexTest, RepeatedDiffIdFindsTheFirstEntryLikeTheLinearLookup) {
  LayerCache entries = {{Digest(1), std::string(64, 'a'), "", ""},
                        {Digest(1), std::string(64, 'b'), "", ""}};
  LayerCacheIndex index(entries);
  EXPECT_EQ(index.FindByDiffId(Digest(1))->verity_hash, std::string(64, 'a'));
  EXPECT_EQ(FindLayerByDiffId(entries, Digest(1))->verity_hash, std::string(64, 'a'));
}

TEST(LayerCacheIndexTest, EachChainIsHashedOncePerSnapshot) {
  Fixture f = Layers(20);
  LayerCacheIndex index(f.entries);
  const std::string missing = ChainId(f.chains[4], Digest(99));
  for (int round = 0; round < 100; ++round) {  // 100 Mounts of one rootfs
    for (int i = 1; i < 20; ++i) {
      ASSERT_NE(index.FindByChain(f.chains[i - 1], f.chains[i]), nullptr);
    }
    ASSERT_EQ(index.FindByChain(f.chains[4], missing), nullptr);
  }
  EXPECT_EQ(index.chain_scans(), 20u);  // 19 hits and 1 miss, once each
}

TEST(LayerCacheIndexTest, ConcurrentLookupsAgree) {
  Fixture f = Layers(40);
  LayerCacheIndex index(f.entries);
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (int i = 1; i < 40; ++i) {
          const LayerCacheEntry* e = index.FindByChain(f.chains[i - 1], f.chains[i]);
          if (e == nullptr || e->diff_id != Digest(i)) ++wrong[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(wrong[t], 0) << t;
  EXPECT_LE(index.chain_scans(), 39u * 8);
}

}  // namespace
}  // namespace guest_pull::verity
