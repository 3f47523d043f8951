// Cache updates: one writer at a time, each seeing what the one before it
// wrote, across the rename that replaces the file.
#include "kata_volume/verity/layer_cache_update.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kata_volume/verity/layer_cache.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::WriteFileOrDie;

LayerCacheEntry Entry(char c) {
  return LayerCacheEntry{absl::StrCat("sha256:", std::string(64, c)), std::string(64, 'f'), "", ""};
}

TEST(LayerCacheUpdateTest, AMissingCacheIsCreatedEmptyAndGoesWithAFailedUpdate) {
  const std::string path = MakeTempDir() + "/cache.json";
  {
    absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path);
    ASSERT_TRUE(update.ok()) << update.status();
    absl::StatusOr<LayerCache> cache = update->Read();
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_TRUE(cache->empty());
    EXPECT_EQ(ReadFileOrDie(path), "");
  }  // never Written(): the file it made is gone
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  {
    absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path);
    ASSERT_TRUE(update.ok()) << update.status();
    ASSERT_TRUE(WriteLayerCacheFile(path, LayerCache{Entry('a')}).ok());
    update->Written();
  }
  EXPECT_EQ(*ReadLayerCacheFile(path), LayerCache{Entry('a')});
  {
    // An existing file stays, written or not.
    absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path);
    ASSERT_TRUE(update.ok()) << update.status();
  }
  EXPECT_EQ(*ReadLayerCacheFile(path), LayerCache{Entry('a')});
}

// A writer that truncates before it locks (upstream genpolicy) is seen.
TEST(LayerCacheUpdateTest, ACacheFoundBlankAfterItHadEntriesIsUnavailable) {
  const std::string path = MakeTempDir() + "/cache.json";
  WriteFileOrDie(path, "");
  absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path);
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_TRUE(update->Read(0).ok());
  absl::StatusOr<LayerCache> read = update->Read(3);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable) << read.status();
  EXPECT_NE(read.status().message().find("became blank"), std::string::npos) << read.status();
}

TEST(LayerCacheUpdateTest, AFifoIsRefusedWithoutWaiting) {
  const std::string path = MakeTempDir() + "/cache.json";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  EXPECT_EQ(LayerCacheUpdate::Begin(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadLayerCacheFile(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LayerCacheUpdateTest, AnotherWritersLockIsWaitedForThenReported) {
  const std::string path = MakeTempDir() + "/cache.json";
  WriteFileOrDie(path, "[]");
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);  // genpolicy writing
  absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path, absl::Milliseconds(50));
  EXPECT_EQ(update.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(update.status().message().find("locked by another writer"), std::string::npos)
      << update.status();
  close(fd);
  EXPECT_TRUE(LayerCacheUpdate::Begin(path, absl::Milliseconds(50)).ok());
}

TEST(LayerCacheUpdateTest, AWaitingUpdateReadsWhatTheUpdateBeforeItRenamedIn) {
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/cache.json";
  ASSERT_EQ(symlink("real.json", path.c_str()), 0);  // the link stays; its target is the cache
  std::optional<absl::StatusOr<LayerCacheUpdate>> first(LayerCacheUpdate::Begin(path));
  ASSERT_TRUE(first->ok()) << first->status();
  absl::StatusOr<LayerCache> seen_by_second = absl::UnknownError("not run");
  std::thread second([&] {
    absl::StatusOr<LayerCacheUpdate> update = LayerCacheUpdate::Begin(path);
    if (!update.ok()) {
      seen_by_second = update.status();
      return;
    }
    seen_by_second = update->Read();
    if (seen_by_second.ok()) {
      LayerCache merged = *seen_by_second;
      UpsertLayer(&merged, Entry('b'));
      EXPECT_TRUE(WriteLayerCacheFile(path, merged).ok());
    }
  });
  absl::SleepFor(absl::Milliseconds(100));  // the second now waits for the lock
  ASSERT_TRUE(WriteLayerCacheFile(path, LayerCache{Entry('a')}).ok());
  first.reset();  // releases the lock on the file the rename replaced
  second.join();
  ASSERT_TRUE(seen_by_second.ok()) << seen_by_second.status();
  EXPECT_EQ(*seen_by_second, LayerCache{Entry('a')});
  absl::StatusOr<LayerCache> final_cache = ReadLayerCacheFile(path);
  ASSERT_TRUE(final_cache.ok()) << final_cache.status();
  EXPECT_EQ(*final_cache, (LayerCache{Entry('a'), Entry('b')}));
  char target[64] = {};
  ASSERT_GT(readlink(path.c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "real.json");
}

}  // namespace
}  // namespace guest_pull::verity
