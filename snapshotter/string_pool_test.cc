#include "snapshotter/string_pool.h"

#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(StringPoolTest, EqualStringsShareOneCopyUntilTheLastRelease) {
  StringPool pool;
  const std::string* a = pool.Acquire("containerd.io/snapshot/cri.image-ref");
  const std::string* b = pool.Acquire(std::string("containerd.io/snapshot/cri.image-ref"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(*a, "containerd.io/snapshot/cri.image-ref");
  const std::string* c = pool.Acquire("other");
  EXPECT_NE(a, c);
  EXPECT_EQ(pool.size(), 2u);
  pool.Release(a);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(*b, "containerd.io/snapshot/cri.image-ref");
  pool.Release(b);
  EXPECT_EQ(pool.size(), 1u);
  pool.Release(c);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(StringPoolTest, CopiesStayPutWhileThePoolGrows) {
  StringPool pool;
  const std::string* first = pool.Acquire("first");
  for (int i = 0; i < 1000; ++i) pool.Acquire(std::to_string(i));
  EXPECT_EQ(*first, "first");
  EXPECT_EQ(pool.Acquire("first"), first);
}

}  // namespace
}  // namespace snapshotter
