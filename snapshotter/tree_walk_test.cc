// Tests for the descriptor-relative tree walk.
#include "snapshotter/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/deep_tree.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;

// A fresh directory, removed (whatever its depth) at the end of the test.
class TreeWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/walk-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(RemoveAll(root_).ok());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  }
  void TearDown() override { EXPECT_TRUE(RemoveAll(root_).ok()); }

  std::string root_;
};

// Descriptors open in this process.
int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = -3;  // ".", ".." and the listing's own
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

// 1500 levels of a 4-byte name: a 7.5 KB path at the bottom.
TEST_F(TreeWalkTest, WalksATreeDeeperThanPathMax) {
  int bottom = MakeDeepTree(root_, 1500, "dddd");
  ASSERT_GE(bottom, 0) << strerror(errno);
  int file = openat(bottom, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(file, 0);
  close(file);
  struct stat bottom_st;
  ASSERT_EQ(fstat(bottom, &bottom_st), 0);
  close(bottom);
  TreeWalk walk(root_);
  int visits = 0, leaves = 0, deepest = 0;
  std::string file_path;
  absl::Status s = walk.Run(
      [&](const WalkEntry& e) {
        ++visits;
        deepest = std::max(deepest, e.depth);
        if (std::string(e.name) == "file") file_path = walk.MessagePath(e.name);
        return absl::OkStatus();
      },
      [&](int, const struct stat& st) {
        // Post-order: the bottom is the first directory left.
        if (leaves++ == 0) {
          EXPECT_EQ(st.st_ino, bottom_st.st_ino);
        }
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(visits, 1 + 1500 + 1);
  EXPECT_EQ(leaves, 1 + 1500);
  EXPECT_EQ(deepest, 1501);
  // Cut in the middle: the root and the end stay.
  EXPECT_LE(file_path.size(), 1024u + 3);
  EXPECT_EQ(file_path.rfind(root_ + "/dddd/dddd", 0), 0u) << file_path;
  EXPECT_THAT(file_path, ::testing::EndsWith("/dddd/file"));
  EXPECT_THAT(file_path, HasSubstr("..."));
}

TEST_F(TreeWalkTest, KeepsAtMostMaxOpenDirsOpen) {
  int bottom = MakeDeepTree(root_, 200, "d");
  ASSERT_GE(bottom, 0) << strerror(errno);
  close(bottom);
  const int before = OpenFds();
  ASSERT_GT(before, 0);
  for (int max_open : {2, 8, TreeWalk::kMaxOpenDirs}) {
    TreeWalk walk(root_, max_open);
    int most = 0;
    auto count = [&] {
      most = std::max(most, OpenFds() - before);
      return absl::OkStatus();
    };
    absl::Status s = walk.Run([&](const WalkEntry&) { return count(); },
                              [&](int, const struct stat&) { return count(); });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(most, max_open);
    EXPECT_EQ(OpenFds(), before);
  }
}

TEST_F(TreeWalkTest, ShowsSymlinksWithoutFollowingThem) {
  ASSERT_EQ(mkdir((root_ + "/target").c_str(), 0755), 0);
  std::ofstream(root_ + "/target/x") << "x";
  ASSERT_EQ(symlink("target", (root_ + "/relative").c_str()), 0);
  ASSERT_EQ(symlink(root_.c_str(), (root_ + "/loop").c_str()), 0);
  std::vector<std::string> seen;
  absl::Status s = TreeWalk(root_).Run([&](const WalkEntry& e) {
    if (e.depth > 0) seen.push_back(e.name);
    if (std::string(e.name) == "loop") {
      EXPECT_TRUE(S_ISLNK(e.st.st_mode));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre("target", "x", "relative",
                                                    "loop"));
  // A symlink root is shown, not walked.
  seen.clear();
  s = TreeWalk(root_ + "/loop").Run([&](const WalkEntry& e) {
    seen.push_back(e.name);
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(seen, ::testing::ElementsAre(root_ + "/loop"));
}

// A mount point is shown (its st_dev differs) but not entered. Needs a
// mount namespace of its own: skipped where it cannot make one.
TEST_F(TreeWalkTest, DoesNotEnterAnotherFilesystem) {
  const std::string mnt = root_ + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("walk-test", mnt.c_str(), "tmpfs", 0, nullptr) != 0) {
      _exit(77);
    }
    std::ofstream(mnt + "/inside") << "x";
    bool shown = false, entered = false;
    absl::Status s = TreeWalk(root_).Run([&](const WalkEntry& e) {
      if (std::string(e.name) == "mnt") shown = e.other_fs;
      if (std::string(e.name) == "inside") entered = true;
      return absl::OkStatus();
    });
    _exit(s.ok() && shown && !entered ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// With only two directories open, the walk climbs back by "..". A
// directory moved meanwhile has another parent: the walk says so and
// stops instead of going on in the wrong place.
TEST_F(TreeWalkTest, ADirectoryMovedMeanwhileIsAnError) {
  int bottom = MakeDeepTree(root_, 10, "d");
  ASSERT_GE(bottom, 0) << strerror(errno);
  close(bottom);
  ASSERT_EQ(mkdir((root_ + "/z").c_str(), 0755), 0);
  const int before = OpenFds();
  bool moved = false;
  int visits_after = 0;
  TreeWalk walk(root_, 2);
  absl::Status s = walk.Run([&](const WalkEntry& e) {
    if (moved) ++visits_after;
    if (e.depth == 10) {
      EXPECT_EQ(rename((root_ + "/d/d").c_str(), (root_ + "/z/d").c_str()), 0);
      moved = true;
    }
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(root_ + "/d/d was moved while it was walked"));
  EXPECT_EQ(visits_after, 0);
  EXPECT_EQ(OpenFds(), before);
  // Moved while its parent is still open: the walk goes on there, by the
  // descriptors it holds.
  ASSERT_EQ(rename((root_ + "/z/d").c_str(), (root_ + "/d/d").c_str()), 0);
  int deepest = 0;
  s = TreeWalk(root_).Run([&](const WalkEntry& e) {
    if (e.depth == 10) {
      EXPECT_EQ(rename((root_ + "/d/d").c_str(), (root_ + "/z/d").c_str()), 0);
    }
    deepest = std::max(deepest, e.depth);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(deepest, 10);
}

TEST_F(TreeWalkTest, SkipsEntriesRemovedMeanwhile) {
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(mkdir((root_ + "/" + name).c_str(), 0755), 0);
  }
  int shown = 0;
  absl::Status s = TreeWalk(root_).Run([&](const WalkEntry& e) {
    if (e.depth != 1) return absl::OkStatus();
    ++shown;
    for (const char* name : {"a", "b", "c"}) {
      if (name != std::string(e.name)) rmdir((root_ + "/" + name).c_str());
    }
    // This one goes too, between its fstatat and its openat.
    EXPECT_EQ(rmdir((root_ + "/" + e.name).c_str()), 0);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(shown, 1);
}

TEST_F(TreeWalkTest, AnErrorOfTheVisitEndsTheWalk) {
  int bottom = MakeDeepTree(root_, 100, "d");
  ASSERT_GE(bottom, 0);
  close(bottom);
  const int before = OpenFds();
  TreeWalk walk(root_, 4);
  std::string where;
  int visits = 0;
  absl::Status s = walk.Run([&](const WalkEntry& e) {
    ++visits;
    if (e.depth < 50) return absl::OkStatus();
    where = walk.MessagePath(e.name);
    return absl::CancelledError("enough");
  });
  EXPECT_EQ(s, absl::CancelledError("enough"));
  EXPECT_EQ(visits, 51);
  EXPECT_EQ(where.size(), root_.size() + 50 * 2);
  EXPECT_EQ(OpenFds(), before);
  // A leave's error too.
  s = TreeWalk(root_).Run([](const WalkEntry&) { return absl::OkStatus(); },
                          [](int, const struct stat&) {
                            return absl::InternalError("leave");
                          });
  EXPECT_EQ(s, absl::InternalError("leave"));
  EXPECT_EQ(OpenFds(), before);
}

TEST_F(TreeWalkTest, MessagePathNamesTheEntry) {
  ASSERT_EQ(mkdir((root_ + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root_ + "/a/b").c_str(), 0755), 0);
  std::ofstream(root_ + "/a/b/name") << "x";
  TreeWalk walk(root_);
  std::vector<std::string> paths, left;
  absl::Status s = walk.Run(
      [&](const WalkEntry& e) {
        paths.push_back(walk.MessagePath(e.name));
        return absl::OkStatus();
      },
      [&](int, const struct stat&) {
        left.push_back(walk.MessagePath());
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(paths, ::testing::ElementsAre(root_, root_ + "/a",
                                            root_ + "/a/b",
                                            root_ + "/a/b/name"));
  EXPECT_THAT(left, ::testing::ElementsAre(root_ + "/a/b", root_ + "/a",
                                           root_));
}

TEST_F(TreeWalkTest, RootThatIsMissingOrAFile) {
  absl::Status s = TreeWalk(root_ + "/missing").Run(
      [](const WalkEntry&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("lstat " + root_ + "/missing: "));
  std::ofstream(root_ + "/file") << "x";
  int visits = 0, leaves = 0;
  s = TreeWalk(root_ + "/file").Run(
      [&](const WalkEntry& e) {
        ++visits;
        EXPECT_EQ(e.dir_fd, AT_FDCWD);
        return absl::OkStatus();
      },
      [&](int, const struct stat&) {
        ++leaves;
        return absl::OkStatus();
      });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(visits, 1);
  EXPECT_EQ(leaves, 0);
}

}  // namespace
}  // namespace snapshotter
