#include "snapshotter/layer_sync.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/layer_sync-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

TEST(SyncTreeTest, SyncsFilesDirsAndSkipsSpecialEntries) {
  std::string root = TempDir();
  ASSERT_EQ(mkdir((root + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/a/b").c_str(), 0755), 0);
  std::ofstream(root + "/a/b/file") << "data";
  std::ofstream(root + "/top") << "x";
  ASSERT_EQ(link((root + "/top").c_str(), (root + "/a/hard").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent", (root + "/dangling").c_str()), 0);
  ASSERT_EQ(mkfifo((root + "/a/fifo").c_str(), 0644), 0);
  // Unreadable for others, and a file with no permissions at all: root
  // opens them anyway; a non-root test user would not create such layers.
  std::ofstream(root + "/a/locked") << "y";
  chmod((root + "/a/locked").c_str(), 0);
  absl::StatusOr<Usage> synced = SyncTree(root);
  ASSERT_TRUE(synced.ok()) << synced.status();
  // Measured as DiskUsage measures it: every inode once (the hard link
  // too), the root included.
  absl::StatusOr<Usage> measured = DiskUsage(root);
  ASSERT_TRUE(measured.ok());
  EXPECT_EQ(synced->inodes, 8);
  EXPECT_EQ(synced->inodes, measured->inodes);
  EXPECT_EQ(synced->size, measured->size);
}

TEST(SyncTreeTest, EmptyDirectory) {
  std::string root = TempDir();
  absl::StatusOr<Usage> synced = SyncTree(root);
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->inodes, 1);
  EXPECT_EQ(synced->size, DiskUsage(root)->size);
}

TEST(SyncTreeTest, StopCutsTheWalkShort) {
  std::string root = TempDir();
  ASSERT_EQ(mkdir((root + "/d").c_str(), 0755), 0);
  std::ofstream(root + "/d/f") << "x";
  std::atomic<bool> stop{false};
  EXPECT_TRUE(SyncTree(root, &stop).ok());
  EXPECT_TRUE(DiskUsage(root, &stop).ok());
  stop = true;
  absl::Status s = SyncTree(root, &stop).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  s = DiskUsage(root, &stop).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

TEST(SyncTreeTest, MissingRootIsAnError) {
  absl::Status s = SyncTree(TempDir() + "/missing").status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing"), absl::string_view::npos);
}

}  // namespace
}  // namespace snapshotter
