// Tests for the spare directory pool.
#include "snapshotter/spare_dirs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

// The modes below assume the usual umask.
const mode_t kUmask = umask(022);

std::string NewRoot(const char* name) {
  std::string root = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/spares-" +
                     name + "-" + std::to_string(getpid());
  RemoveAll(root).IgnoreError();
  return root;
}

// Waits (bounded) until `spares` holds `n` ready ones.
bool WaitReady(const SpareDirs& spares, int n) {
  for (int i = 0; i < 2000 && spares.Ready() != n; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  return spares.Ready() == n;
}

bool IsEmptyDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::is_empty(path, ec) && !ec;
}

TEST(SpareDirsTest, NothingIsMadeBeforeTheFirstTake) {
  SnapshotDirs dirs(NewRoot("idle"));
  ASSERT_TRUE(dirs.Init().ok());
  SpareDirs spares(&dirs, 4);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(spares.Ready(), 0);
  auto listing = dirs.List();
  ASSERT_TRUE(listing.ok());
  EXPECT_TRUE(listing->temps.empty());
  EXPECT_TRUE(listing->spares.empty());
}

TEST(SpareDirsTest, NoneWithCapacityZero) {
  SnapshotDirs dirs(NewRoot("zero"));
  ASSERT_TRUE(dirs.Init().ok());
  SpareDirs spares(&dirs, 0);
  for (int i = 0; i < 3; ++i) {
    auto taken = spares.Take("");
    ASSERT_TRUE(taken.ok()) << taken.status();
    EXPECT_NE(taken->find("/new-"), std::string::npos) << *taken;
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(spares.Ready(), 0);
  EXPECT_EQ(dirs.List()->temps.size(), 3u);  // the three taken
  EXPECT_TRUE(dirs.List()->spares.empty());
}

TEST(SpareDirsTest, TakeGivesAnEmptyLayerAndTheThreadRefills) {
  SnapshotDirs dirs(NewRoot("take"));
  ASSERT_TRUE(dirs.Init().ok());
  SpareDirs spares(&dirs, 3);
  auto first = spares.Take("");
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat((*first + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_TRUE(IsEmptyDir(*first + "/fs"));
  EXPECT_TRUE(IsEmptyDir(*first + "/work"));
  ASSERT_TRUE(WaitReady(spares, 3));
  // A ready one is taken and installed as a made one would be.
  auto second = spares.Take("");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->find("/spare-"), std::string::npos) << *second;
  EXPECT_TRUE(IsEmptyDir(*second + "/fs"));
  EXPECT_TRUE(IsEmptyDir(*second + "/work"));
  ASSERT_TRUE(dirs.Install(*second, 5).ok());
  EXPECT_TRUE(IsEmptyDir(dirs.FsPath(5)));
  ASSERT_TRUE(WaitReady(spares, 3));
  // The listing tells them from creations and snapshots.
  auto listing = dirs.List();
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->spares.size(), 3u);
  EXPECT_EQ(listing->temps, std::vector<std::string>{*first});
  EXPECT_TRUE(listing->others.empty());
}

TEST(SpareDirsTest, ASpareStandsOnlyForTheParentsOwnerAndMode) {
  SnapshotDirs dirs(NewRoot("owner"));
  ASSERT_TRUE(dirs.Init().ok());
  SpareDirs spares(&dirs, 2);
  ASSERT_TRUE(spares.Take("").ok());
  ASSERT_TRUE(WaitReady(spares, 2));
  // A parent like the spares (0755, the daemon's owner): one is taken.
  std::string same = dirs.root() + "/same-fs";
  ASSERT_EQ(mkdir(same.c_str(), 0755), 0);
  ASSERT_EQ(chmod(same.c_str(), 0755), 0);
  auto taken = spares.Take(same);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_NE(taken->find("/spare-"), std::string::npos) << *taken;
  // Another mode (and owner, where the sandbox lets this chown): the
  // spares stay, and fs/ is made with the parent's.
  ASSERT_TRUE(WaitReady(spares, 2));
  std::string other = dirs.root() + "/other-fs";
  ASSERT_EQ(mkdir(other.c_str(), 0750), 0);
  bool chowned = chown(other.c_str(), 1234, 5678) == 0;
  auto made = spares.Take(other);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_NE(made->find("/new-"), std::string::npos) << *made;
  struct stat st;
  ASSERT_EQ(stat((*made + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  if (chowned) {
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
  }
  EXPECT_EQ(spares.Ready(), 2);
  // A parent gone meanwhile: an error, and no spare is lost.
  auto gone = spares.Take(dirs.root() + "/no-such-parent");
  EXPECT_FALSE(gone.ok());
  EXPECT_EQ(spares.Ready(), 2);
  auto listing = dirs.List();
  ASSERT_TRUE(listing.ok());
  // The callers' to install: `taken` (still a spare-*), and the first
  // Take's and `made` (new-*).
  EXPECT_EQ(listing->spares.size(), 3u);
  EXPECT_EQ(listing->temps.size(), 2u);
}

TEST(SpareDirsTest, TakesThatCannotUseASpareLeaveThePoolAlone) {
  SnapshotDirs dirs(NewRoot("mismatch"));
  ASSERT_TRUE(dirs.Init().ok());
  absl::Mutex mu;
  int made = 0;
  SpareDirs spares(&dirs, 2, [&]() -> absl::StatusOr<std::string> {
    absl::MutexLock lock(&mu);
    ++made;
    return dirs.CreateSpare();
  });
  ASSERT_TRUE(spares.Take("").ok());
  ASSERT_TRUE(WaitReady(spares, 2));
  std::string other = dirs.root() + "/other-fs";
  ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
  // Each makes its own; the full pool neither dips nor wakes the thread
  // (one woken in a dip would make a third).
  for (int i = 0; i < 50; ++i) {
    auto taken = spares.Take(other);
    ASSERT_TRUE(taken.ok()) << taken.status();
    ASSERT_NE(taken->find("/new-"), std::string::npos) << *taken;
    ASSERT_EQ(spares.Ready(), 2);
  }
  spares.Stop();  // joins the thread: whatever it made is counted
  absl::MutexLock lock(&mu);
  EXPECT_EQ(made, 2);
}

TEST(SpareDirsTest, StopRemovesTheSparesAndTakeStillWorks) {
  SnapshotDirs dirs(NewRoot("stop"));
  ASSERT_TRUE(dirs.Init().ok());
  SpareDirs spares(&dirs, 4);
  auto taken = spares.Take("");
  ASSERT_TRUE(taken.ok());
  ASSERT_TRUE(WaitReady(spares, 4));
  spares.Stop();
  EXPECT_EQ(spares.Ready(), 0);
  auto listing = dirs.List();
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->temps, std::vector<std::string>{*taken});
  EXPECT_TRUE(listing->spares.empty());
  auto after = spares.Take("");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->find("/new-"), std::string::npos);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(spares.Ready(), 0);
  spares.Stop();  // idempotent
}

TEST(SpareDirsTest, AFailureWaitsForTheNextTake) {
  SnapshotDirs dirs(NewRoot("fail"));
  ASSERT_TRUE(dirs.Init().ok());
  absl::Mutex mu;
  bool fail = true;
  int calls = 0;
  SpareDirs spares(&dirs, 2, [&]() -> absl::StatusOr<std::string> {
    absl::MutexLock lock(&mu);
    ++calls;
    if (fail) return absl::InternalError("no space left (test)");
    return dirs.CreateSpare();
  });
  // Each Take makes its own and asks once: no retry loop.
  for (int i = 0; i < 3; ++i) {
    auto taken = spares.Take("");
    ASSERT_TRUE(taken.ok()) << taken.status();
    EXPECT_NE(taken->find("/new-"), std::string::npos);
  }
  // The thread runs at nice 10: on a loaded machine its first call can
  // come late (bounded wait), and more than three never come.
  auto called = [&] {
    absl::MutexLock lock(&mu);
    return calls;
  };
  for (int i = 0; i < 2000 && called() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(spares.Ready(), 0);
  {
    absl::MutexLock lock(&mu);
    EXPECT_GE(calls, 1);
    EXPECT_LE(calls, 3);
    fail = false;
  }
  // Back: the next Take asks again and the thread refills.
  ASSERT_TRUE(spares.Take("").ok());
  ASSERT_TRUE(WaitReady(spares, 2));
}

}  // namespace
}  // namespace snapshotter
