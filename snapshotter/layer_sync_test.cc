#include "snapshotter/layer_sync.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "snapshotter/deep_tree.h"
#include "snapshotter/fsync_recorder.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {
namespace {

using ::snapshotter::fsync_recorder::TakeFsynced;

// As the recorder names it (the target of /proc/self/fd/N).
std::string Real(const std::string& path) {
  char real[PATH_MAX];
  EXPECT_NE(realpath(path.c_str(), real), nullptr);
  return real;
}

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

// A container can make a tree deeper than PATH_MAX in its upper directory;
// its Commit failed for good (ENAMETOOLONG). Here 1500 levels of a 4-byte
// name with 300 files at the bottom (more than a batch), flushed in a
// child that may not open 320 descriptors.
TEST(SyncTreeTest, SyncsATreeDeeperThanPathMax) {
  const std::string root = TempDir();
  int bottom = MakeDeepTree(root, 1500, "dddd");
  ASSERT_GE(bottom, 0) << strerror(errno);
  for (int i = 0; i < 300; ++i) {
    std::string name = "file" + std::to_string(i);
    int fd = openat(bottom, name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "data", 4), 4);
    close(fd);
  }
  // A second name at the top, and a symlink to the top (not followed).
  ASSERT_EQ(linkat(bottom, "file0", AT_FDCWD, (root + "/link").c_str(), 0), 0);
  ASSERT_EQ(symlinkat(root.c_str(), bottom, "up"), 0);
  close(bottom);
  TakeFsynced();
  absl::StatusOr<Usage> synced = SyncTree(root);
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->inodes, 1 + 1500 + 300 + 1);  // the root, ..., up
  absl::StatusOr<Usage> measured = DiskUsage(root);
  ASSERT_TRUE(measured.ok()) << measured.status();
  EXPECT_EQ(synced->size, measured->size);
  // What the recorder can name (paths within PATH_MAX): the top levels,
  // the root last.
  std::vector<std::string> fsynced = TakeFsynced();
  ASSERT_FALSE(fsynced.empty());
  EXPECT_EQ(fsynced.back(), Real(root));
  EXPECT_TRUE(TrueWithFdLimit(320, [&] {
    absl::StatusOr<Usage> limited = SyncTree(root);
    return limited.ok() && limited->inodes == synced->inodes;
  }));
  std::atomic<bool> stop{true};
  EXPECT_EQ(SyncTree(root, &stop).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(RemoveAll(root).ok());
}

// Directories last: each is fsynced after every file below it (its
// entries then name inodes already durable), batch after batch; every
// file once (a hard link too).
TEST(SyncTreeTest, FlushesEachDirectoryAfterTheFilesBelowIt) {
  const std::string root = Real(TempDir());
  ASSERT_EQ(mkdir((root + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/a/b").c_str(), 0755), 0);
  std::vector<std::string> files = {root + "/top"};
  for (int i = 0; i < 300; ++i) {
    files.push_back(root + "/a/b/f" + std::to_string(i));
  }
  for (int i = 0; i < 100; ++i) {
    std::string dir = root + "/c" + std::to_string(i);
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    files.push_back(dir + "/f");
  }
  for (const std::string& file : files) std::ofstream(file) << "x";
  ASSERT_EQ(link((root + "/top").c_str(), (root + "/a/hard").c_str()), 0);
  TakeFsynced();
  ASSERT_TRUE(SyncTree(root).ok());
  std::vector<std::string> fsynced = TakeFsynced();
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < fsynced.size(); ++i) at[fsynced[i]] = i;
  EXPECT_EQ(at.size(), fsynced.size());  // each once
  EXPECT_EQ(fsynced.size(), files.size() + 3 + 100);
  for (const std::string& file : files) {
    ASSERT_EQ(at.count(file), 1u) << file;
    for (std::string dir = file.substr(0, file.rfind('/'));
         dir.size() >= root.size(); dir = dir.substr(0, dir.rfind('/'))) {
      ASSERT_EQ(at.count(dir), 1u) << dir;
      EXPECT_LT(at[file], at[dir]) << file << " after " << dir;
    }
  }
  EXPECT_TRUE(RemoveAll(root).ok());
}

TEST(SyncTreeTest, MissingRootIsAnError) {
  absl::Status s = SyncTree(TempDir() + "/missing").status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing"), absl::string_view::npos);
}

}  // namespace
}  // namespace snapshotter
