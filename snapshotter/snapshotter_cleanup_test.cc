// Tests of what Cleanup makes durable, by the directories it flushes. Every
// fsync of this test binary is recorded by path (an interposed fsync).
#include <limits.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/store_state.h"

namespace {
std::mutex fsync_mu;
std::vector<std::string> fsynced;
}  // namespace

extern "C" int fsync(int fd) {
  char link[64];
  char target[PATH_MAX + 1];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, PATH_MAX);
  if (n > 0) {
    target[n] = '\0';
    std::lock_guard<std::mutex> lock(fsync_mu);
    fsynced.push_back(target);
  }
  return static_cast<int>(syscall(SYS_fsync, fd));
}

namespace snapshotter {
namespace {

bool TakeFsynced(const std::string& path) {
  std::lock_guard<std::mutex> lock(fsync_mu);
  bool seen = std::find(fsynced.begin(), fsynced.end(), path) != fsynced.end();
  fsynced.clear();
  return seen;
}

std::set<int64_t> Journal(const std::string& root) {
  std::set<int64_t> ids;
  auto reader = MetaStore::Open(root + "/metadata.db", MetaStore::Mode::kReadOnly);
  EXPECT_TRUE(reader.ok()) << reader.status();
  absl::Status s = (*reader)->View([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<std::set<int64_t>> journal = JournalledIds(tx);
    if (journal.ok()) ids = *journal;
    return journal.status();
  });
  EXPECT_TRUE(s.ok()) << s;
  return ids;
}

// Remove deletes a layer's directory and journals its id; the rmdir is not
// flushed then. Cleanup must flush snapshots/ before it forgets the id: a
// power cut that undid the rmdir would otherwise bring the directory back
// with nothing proving it released (the next start quarantines it for good).
TEST(SnapshotterCleanupTest, FlushesTheDeletionBeforeForgettingTheJournalRow) {
  const std::string root = std::string(getenv("TEST_TMPDIR")) + "/root";
  Snapshotter::Options options;
  options.root = root;
  auto sn = Snapshotter::Open(options);
  ASSERT_TRUE(sn.ok()) << sn.status();
  auto mounts = (*sn)->Prepare("a", "", {});
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  std::ofstream((*mounts)[0].source + "/file") << "layer data";
  ASSERT_TRUE((*sn)->Commit("layer", "a", {}).ok());
  const std::string snapshots = (*sn)->dirs().SnapshotsDir();
  ASSERT_TRUE(TakeFsynced(snapshots)) << "the interposed fsync sees Commit's flush";

  ASSERT_TRUE((*sn)->Remove("layer").ok());
  EXPECT_EQ(Journal(root), std::set<int64_t>{1});
  TakeFsynced(snapshots);
  ASSERT_TRUE((*sn)->Cleanup().ok());
  EXPECT_TRUE(Journal(root).empty());
  EXPECT_TRUE(TakeFsynced(snapshots))
      << "the journal row was forgotten without a flush of " << snapshots;
}

}  // namespace
}  // namespace snapshotter
