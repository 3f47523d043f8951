// Tests of what Cleanup makes durable, by the directories it flushes (every
// fsync of this test binary is recorded by path: fsync_recorder.h).

#include <stdio.h>

#include <chrono>
#include <fstream>
#include <future>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "snapshotter/fsync_recorder.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/store_state.h"

namespace snapshotter {
namespace {

using ::snapshotter::fsync_recorder::HoldNextFsyncOf;
using ::snapshotter::fsync_recorder::ReleaseHeldFsync;
using ::snapshotter::fsync_recorder::TakeFsynced;
using ::snapshotter::fsync_recorder::WaitForHeldFsync;

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

// A snapshots/ gone from under the daemon fails Cleanup as the daemon's
// error, not NotFound (containerd's "no such snapshot").
TEST(SnapshotterCleanupTest, MissingSnapshotsDirectoryIsNotNotFound) {
  const std::string root = std::string(getenv("TEST_TMPDIR")) + "/gone";
  Snapshotter::Options options;
  options.root = root;
  auto sn = Snapshotter::Open(options);
  ASSERT_TRUE(sn.ok()) << sn.status();
  const std::string snapshots = (*sn)->dirs().SnapshotsDir();
  ASSERT_EQ(rename(snapshots.c_str(), (root + "/moved").c_str()), 0);
  auto cleaned = (*sn)->Cleanup();
  EXPECT_EQ(cleaned.status().code(), absl::StatusCode::kInternal)
      << cleaned.status();
  EXPECT_NE(cleaned.status().message().find(snapshots), std::string::npos);
  ASSERT_EQ(rename((root + "/moved").c_str(), snapshots.c_str()), 0);
  EXPECT_TRUE((*sn)->Cleanup().ok());
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

// The flush waits for the filesystem (and, on ext4, for others' writeback
// in the same journal commit): no RPC may wait behind it.
TEST(SnapshotterCleanupTest, FlushesWithoutHoldingTheStore) {
  const std::string root = std::string(getenv("TEST_TMPDIR")) + "/unlocked";
  Snapshotter::Options options;
  options.root = root;
  options.spare_dirs = 0;
  auto sn = Snapshotter::Open(options);
  ASSERT_TRUE(sn.ok()) << sn.status();
  ASSERT_TRUE((*sn)->Prepare("a", "", {}).ok());
  ASSERT_TRUE((*sn)->Commit("layer", "a", {}).ok());
  ASSERT_TRUE((*sn)->Remove("layer").ok());
  HoldNextFsyncOf((*sn)->dirs().SnapshotsDir());
  auto cleanup = std::async(std::launch::async, [&] { return (*sn)->Cleanup(); });
  if (!WaitForHeldFsync(absl::Seconds(30))) {
    ReleaseHeldFsync();
    FAIL() << "Cleanup never flushed snapshots/";
  }
  auto prepare = std::async(std::launch::async, [&] { return (*sn)->Prepare("b", "", {}).status(); });
  bool served = prepare.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  ReleaseHeldFsync();
  EXPECT_TRUE(served) << "a Prepare waited for Cleanup's flush";
  EXPECT_TRUE(prepare.get().ok());
  ASSERT_TRUE(cleanup.get().ok());
  EXPECT_TRUE(Journal(root).empty()) << "the id is forgotten once flushed";
}

}  // namespace
}  // namespace snapshotter
