// Tests for the snapshot directory layout and filesystem helpers.
#include "snapshotter/snapshot_dirs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace {

std::string NewRoot(const char* name) {
  std::string root = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/dirs-" +
                     name + "-" + std::to_string(getpid());
  RemoveAll(root).IgnoreError();
  return root;
}

TEST(SnapshotDirsTest, CreateInstallAndOrphans) {
  SnapshotDirs dirs(NewRoot("install"));
  ASSERT_TRUE(dirs.Init().ok());
  auto temp = dirs.CreateTemp(true, "");
  ASSERT_TRUE(temp.ok()) << temp.status();
  struct stat st;
  ASSERT_EQ(stat((*temp + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(stat((*temp + "/work").c_str(), &st), 0);
  // A stale directory of the same id (crash before commit) is replaced.
  ASSERT_EQ(mkdir(dirs.SnapshotPath(7).c_str(), 0700), 0);
  std::ofstream(dirs.SnapshotPath(7) + "/stale") << "x";
  ASSERT_TRUE(dirs.Install(*temp, 7).ok());
  EXPECT_NE(access((dirs.SnapshotPath(7) + "/stale").c_str(), F_OK), 0);
  EXPECT_EQ(access(dirs.FsPath(7).c_str(), F_OK), 0);

  ASSERT_EQ(mkdir(dirs.SnapshotPath(8).c_str(), 0700), 0);
  auto leftover = dirs.CreateTemp(false, "");
  ASSERT_TRUE(leftover.ok());
  // A creation in progress is no orphan; Open sweeps it after a crash.
  auto orphans_now = dirs.Orphans({7});
  EXPECT_THAT(*orphans_now, testing::UnorderedElementsAre(dirs.SnapshotPath(8)));
  auto trash = dirs.MoveToTrash(dirs.SnapshotPath(8));
  ASSERT_TRUE(trash.ok()) << trash.status();
  EXPECT_NE(access(dirs.SnapshotPath(8).c_str(), F_OK), 0);
  auto leftovers = dirs.LeftoverDirs();
  EXPECT_THAT(*leftovers, testing::UnorderedElementsAre(*leftover, *trash));
}

TEST(SnapshotDirsTest, TempCopiesParentModeAndOwner) {
  SnapshotDirs dirs(NewRoot("perm"));
  ASSERT_TRUE(dirs.Init().ok());
  std::string parent = dirs.root() + "/parentfs";
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(chmod(parent.c_str(), 0750), 0);
  // Inside Bazel's sandbox root is mapped and chown fails; check ownership
  // only where it can be set.
  bool can_chown = chown(parent.c_str(), 1234, 5678) == 0;
  auto temp = dirs.CreateTemp(false, parent);
  ASSERT_TRUE(temp.ok());
  struct stat st;
  ASSERT_EQ(stat((*temp + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  if (can_chown) {
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
  }
}

TEST(SnapshotDirsTest, DiskUsageCountsHardlinksOnce) {
  std::string root = NewRoot("du");
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  std::ofstream(root + "/a") << std::string(10000, 'a');
  ASSERT_EQ(link((root + "/a").c_str(), (root + "/b").c_str()), 0);
  ASSERT_EQ(symlink("a", (root + "/c").c_str()), 0);
  auto usage = DiskUsage(root);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->inodes, 3);  // dir, a(=b), c
  EXPECT_GE(usage->size, 10000);
  EXPECT_EQ(DiskUsage(root + "/missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SnapshotDirsTest, RemoveAllMissingIsFine) {
  EXPECT_TRUE(RemoveAll(NewRoot("missing") + "/x/y").ok());
}

}  // namespace
}  // namespace guest_pull
