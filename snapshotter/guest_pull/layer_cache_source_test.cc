// Tests for the self-refreshing layer cache.
#include "snapshotter/guest_pull/layer_cache_source.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace {

// A file name of this test's own.
std::string TempPath(const std::string& name) {
  return std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/" + name + "-" +
         std::to_string(getpid()) + ".json";
}

std::string Entry(const std::string& hex, const std::string& hash) {
  return "{\"diff_id\":\"sha256:" + hex + "\",\"verity_hash\":\"" + hash +
         "\",\"passwd\":\"\",\"group\":\"\"}";
}

const std::string kA(64, 'a'), kB(64, 'b');
// Caches of layer A, and of layers A and B.
std::string OneLayer() { return "[" + Entry(kA, kA) + "]"; }
std::string TwoLayers() { return "[" + Entry(kA, kA) + "," + Entry(kB, kB) + "]"; }

// Replaces `path` (a new inode) with `text`.
void ReplaceFile(const std::string& path, const std::string& text) {
  std::ofstream(path + ".new") << text;
  ASSERT_EQ(rename((path + ".new").c_str(), path.c_str()), 0);
}

TEST(LayerCacheSourceTest, EmptyPathAndMissingFileAreEmpty) {
  EXPECT_TRUE(LayerCacheSource("").Get()->empty());
  EXPECT_TRUE(LayerCacheSource("/nonexistent/cache.json").Get()->empty());
}

TEST(LayerCacheSourceTest, ReloadsOnChangeAndKeepsLastGoodOnError) {
  std::string path = TempPath("cache");
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
  std::string path = TempPath("upstream");
  std::string hashes_path = verity::VerityHashesPath(path);
  std::string a(64, 'a'), b(64, 'b');
  std::ofstream(path) << "[{\"diff_id\":\"sha256:" << a
                      << "\",\"passwd\":\"root:x:0:0::/:/bin/sh\\n\",\"group\":\"\"}]";
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->entries().at(0).verity_hash, "");
  // The companion appears: reloaded, hash merged, passwd kept.
  std::ofstream(hashes_path) << "[{\"diff_id\":\"sha256:" << a << "\",\"verity_hash\":\"" << b
                             << "\"}]";
  LayerCacheSource::Snapshot merged = source.Get();
  ASSERT_EQ(merged->size(), 1u);
  EXPECT_EQ(merged->entries().at(0).verity_hash, b);
  EXPECT_EQ(merged->entries().at(0).passwd, "root:x:0:0::/:/bin/sh\n");
  // genpolicy deleted the cache it could not parse: the hashes still count.
  unlink(path.c_str());
  ASSERT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->entries().at(0).verity_hash, b);
  unlink(hashes_path.c_str());
  EXPECT_TRUE(source.Get()->empty());
}

TEST(LayerCacheSourceTest, UnchangedFilesAreNotReadAgainAndChainsAreIndexed) {
  std::string path = TempPath("indexed");
  std::ofstream(path) << TwoLayers();
  LayerCacheSource source(path);
  LayerCacheSource::Snapshot first = source.Get();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(source.Get(), first);
  EXPECT_EQ(source.loads(), 1);
  EXPECT_EQ(source.Current(), first);
  std::string c1 = verity::ChainId("", "sha256:" + kA);
  std::string c2 = verity::ChainId(c1, "sha256:" + kB);
  EXPECT_EQ(first->FindByChain("", c1)->diff_id, "sha256:" + kA);
  EXPECT_EQ(first->FindByChain(c1, c2)->diff_id, "sha256:" + kB);
  unlink(path.c_str());
}

TEST(LayerCacheSourceTest, TooLargeFileKeepsTheLastGoodVersion) {
  std::string path = TempPath("large");
  std::ofstream(path) << OneLayer();
  LayerCacheSource source(path, OneLayer().size() + 10);
  ASSERT_EQ(source.Get()->size(), 1u);
  ReplaceFile(path, TwoLayers());
  EXPECT_EQ(source.Get()->size(), 1u);  // refused, logged, old kept
  EXPECT_EQ(source.Get()->entries()[0].diff_id, "sha256:" + kA);
  unlink(path.c_str());
}

// A reload blocked in the middle of reading the file (a FIFO nobody has
// written yet) does not block Current(): it answers the previous version.
// Before the fix it waited for the reload's lock and this test hung.
TEST(LayerCacheSourceTest, CurrentDoesNotWaitForAReloadInProgress) {
  std::string path = TempPath("locked");
  std::ofstream(path) << OneLayer();
  // A reload waits for the writer's lock as long as the test holds it.
  LayerCacheSource source(path, verity::kMaxLayerCacheFileBytes, absl::Minutes(5));
  ASSERT_EQ(source.Get()->size(), 1u);
  std::ofstream(path, std::ios::trunc) << TwoLayers();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);  // a writer at work
  size_t reloaded = 0;
  std::thread reload([&] { reloaded = source.Get()->size(); });
  // Whether or not the reload has begun waiting, Current() answers at once
  // with the version before it.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(source.Current()->size(), 1u);
    absl::SleepFor(absl::Milliseconds(1));
  }
  close(fd);  // the writer is done
  reload.join();
  EXPECT_EQ(reloaded, 2u);
  EXPECT_EQ(source.Current()->size(), 2u);
}

// A FIFO named as the cache is refused, never waited on for a writer.
TEST(LayerCacheSourceTest, AFifoIsRefusedWithoutWaiting) {
  std::string path = TempPath("fifo");
  std::ofstream(path) << OneLayer();
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  std::string fifo = path + ".fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(rename(fifo.c_str(), path.c_str()), 0);
  EXPECT_EQ(source.Get()->size(), 1u);  // the last good version kept
  unlink(path.c_str());
}

// Readers (the store's transactions) never wait for a reload: Current()
// answers while other threads rewrite the file and reload it.
TEST(LayerCacheSourceTest, ConcurrentReloadsAndReaders) {
  std::string path = TempPath("concurrent");
  std::ofstream(path) << OneLayer();
  LayerCacheSource source(path);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (!stop.load()) {
        LayerCacheSource::Snapshot s = t % 2 ? source.Get() : source.Current();
        if (s->size() > 2 || (s->size() > 0 && s->FindByDiffId("sha256:" + kA) == nullptr)) {
          ++bad;
        }
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    ReplaceFile(path, i % 2 ? TwoLayers() : OneLayer());
    source.Get();
  }
  stop = true;
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(source.loads(), 2);
  unlink(path.c_str());
}

// Rewrites `path` in place (same inode) as genpolicy does: truncates it,
// then writes `text` holding an exclusive flock; returns the open file with
// the lock still held if `keep_locked`, else closes it (-1).
int RewriteInPlace(const std::string& path, const std::string& text,
                   bool keep_locked) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(flock(fd, LOCK_EX), 0);
  EXPECT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  if (keep_locked) return fd;
  close(fd);
  return -1;
}

// A writer holding its lock: the last good cache stays, and the file is
// read again at the next Get although it did not change since.
TEST(LayerCacheSourceTest, WriterHoldingTheLockKeepsTheLastGoodCache) {
  std::string path = TempPath("locked");
  std::ofstream(path) << OneLayer();
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  int writer = RewriteInPlace(path, TwoLayers(), /*keep_locked=*/true);
  EXPECT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->size(), 1u);
  close(writer);
  EXPECT_EQ(source.Get()->size(), 2u);
  EXPECT_EQ(source.loads(), 2);
  unlink(path.c_str());
}

// Callers that queue behind a reload which finds the writer's lock held
// do not each wait for that lock again: they get the last good cache at
// once. A later call, with the writer still there, tries again.
TEST(LayerCacheSourceTest, CallersWaitingForAReloadDoNotWaitForTheWriterAgain) {
  std::string path = TempPath("backoff");
  std::ofstream(path) << OneLayer();
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 1u);
  int writer = RewriteInPlace(path, TwoLayers(), /*keep_locked=*/true);
  constexpr int kCallers = 8;
  std::atomic<int> ready{0};
  std::atomic<int> sizes{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] {
      ready++;
      while (ready.load() < kCallers) std::this_thread::yield();
      sizes += static_cast<int>(source.Get()->size());
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(sizes.load(), kCallers);  // each got the last good cache
  // The first caller waited for the writer (kLayerCacheLockWait); those
  // that started during that wait did not (without the back-off, all 8
  // do). Only one delayed past that wait reads again: a loaded machine may
  // delay one or two.
  int64_t seen = source.writes_in_progress_seen();
  EXPECT_GE(seen, 1);
  EXPECT_LE(seen, kCallers / 2);
  EXPECT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.writes_in_progress_seen(), seen + 1);
  close(writer);
  EXPECT_EQ(source.Get()->size(), 2u);
  EXPECT_EQ(source.writes_in_progress_seen(), seen + 1);
  EXPECT_EQ(source.loads(), 2);
  unlink(path.c_str());
}

// A file truncated in place (a writer between its truncation and its
// write) is not taken for an empty cache; "[]" is, and so is a blank file
// where the last version had no entries.
TEST(LayerCacheSourceTest, BlankFileReplacingEntriesIsAWriteInProgress) {
  std::string path = TempPath("blank");
  std::ofstream(path) << TwoLayers();
  LayerCacheSource source(path);
  ASSERT_EQ(source.Get()->size(), 2u);
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  EXPECT_EQ(source.Get()->size(), 2u);
  EXPECT_EQ(source.Get()->size(), 2u);  // read again: nothing recorded
  RewriteInPlace(path, OneLayer(), /*keep_locked=*/false);
  EXPECT_EQ(source.Get()->size(), 1u);
  ReplaceFile(path, "[]");
  EXPECT_TRUE(source.Get()->empty());
  ReplaceFile(path, "");
  EXPECT_TRUE(source.Get()->empty());
  EXPECT_EQ(source.loads(), 4);
  // The companion of an upstream cache follows the same rule.
  std::string hashes_path = verity::VerityHashesPath(path);
  std::ofstream(hashes_path) << "[{\"diff_id\":\"sha256:" << kA
                             << "\",\"verity_hash\":\"" << kB << "\"}]";
  ASSERT_EQ(source.Get()->size(), 1u);
  ASSERT_EQ(truncate(hashes_path.c_str(), 0), 0);
  ASSERT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(source.Get()->entries()[0].verity_hash, kB);
  unlink(hashes_path.c_str());
  EXPECT_TRUE(source.Get()->empty());
  unlink(path.c_str());
}

}  // namespace
}  // namespace guest_pull
