// Tests for the self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace guest_pull {
namespace {

std::string Entry(const std::string& hex, const std::string& hash) {
  return "{\"diff_id\":\"sha256:" + hex + "\",\"verity_hash\":\"" + hash +
         "\",\"passwd\":\"\",\"group\":\"\"}";
}

TEST(LayerCacheSourceTest, EmptyPathAndMissingFileAreEmpty) {
  EXPECT_TRUE(LayerCacheSource("").Get()->empty());
  EXPECT_TRUE(LayerCacheSource("/nonexistent/cache.json").Get()->empty());
}

TEST(LayerCacheSourceTest, ReloadsOnChangeAndKeepsLastGoodOnError) {
  std::string path = std::string(getenv("TEST_TMPDIR") ?: "/tmp") +
                     "/cache-" + std::to_string(getpid()) + ".json";
  std::string a(64, 'a'), b(64, 'b');
  std::ofstream(path) << "[" << Entry(a, a) << "]";
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  // Replace (new inode) with two entries.
  std::string tmp = path + ".new";
  std::ofstream(tmp) << "[" << Entry(a, a) << "," << Entry(b, b) << "]";
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
  EXPECT_EQ(source.Get()->size(), 2u);
  // A broken update keeps the last good cache.
  std::ofstream(tmp) << "[{not json";
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
  EXPECT_EQ(source.Get()->size(), 2u);
  unlink(path.c_str());
  EXPECT_TRUE(source.Get()->empty());
}

TEST(LayerCacheSourceTest, MergesTheHashesCompanionOfAnUpstreamCache) {
  std::string path = std::string(getenv("TEST_TMPDIR") ?: "/tmp") +
                     "/upstream-" + std::to_string(getpid()) + ".json";
  std::string hashes_path = verity::VerityHashesPath(path);
  std::string a(64, 'a'), b(64, 'b');
  std::ofstream(path) << "[{\"diff_id\":\"sha256:" << a
                      << "\",\"passwd\":\"root:x:0:0::/:/bin/sh\\n\",\"group\":\"\"}]";
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->at(0).verity_hash, "");
  // The companion appears: reloaded, hash merged, passwd kept.
  std::ofstream(hashes_path) << "[{\"diff_id\":\"sha256:" << a << "\",\"verity_hash\":\"" << b
                             << "\"}]";
  std::shared_ptr<const verity::LayerCache> merged = source.Get();
  ASSERT_EQ(merged->size(), 1u);
  EXPECT_EQ(merged->at(0).verity_hash, b);
  EXPECT_EQ(merged->at(0).passwd, "root:x:0:0::/:/bin/sh\n");
  // genpolicy deleted the cache it could not parse: the hashes still count.
  unlink(path.c_str());
  ASSERT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->at(0).verity_hash, b);
  unlink(hashes_path.c_str());
  EXPECT_TRUE(source.Get()->empty());
}

}  // namespace
}  // namespace guest_pull
