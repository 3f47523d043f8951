// Tests for the snapshot directory layout and filesystem helpers.
#include "snapshotter/snapshot_dirs.h"

#include <fcntl.h>
#include <signal.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "base/private_mounts_for_test.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/deep_tree.h"
#include "snapshotter/fsync_recorder.h"

// Interposed unlink/unlinkat: once armed, the first file deleted runs
// `after_first_unlink` (a container changing its upper directory while the
// daemon deletes it).
namespace {
std::function<void()>* after_first_unlink = nullptr;
int AfterUnlink(int rc) {
  if (rc == 0 && after_first_unlink != nullptr) {
    std::function<void()> fn = std::move(*after_first_unlink);
    after_first_unlink = nullptr;
    fn();
  }
  return rc;
}
}  // namespace
extern "C" int unlink(const char* path) {
  return AfterUnlink(
      static_cast<int>(syscall(SYS_unlinkat, AT_FDCWD, path, 0)));
}
extern "C" int unlinkat(int dir, const char* path, int flags) {
  int rc = static_cast<int>(syscall(SYS_unlinkat, dir, path, flags));
  return (flags & AT_REMOVEDIR) ? rc : AfterUnlink(rc);
}

namespace snapshotter {
namespace {

using ::snapshotter::fsync_recorder::TakeFsynced;

std::string NewRoot(const char* name) {
  std::string root = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/dirs-" +
                     name + "-" + std::to_string(getpid());
  RemoveAll(root).IgnoreError();
  return root;
}

TEST(SnapshotDirsTest, InitRefusesARootOfOtherFilesAndLeavesIt) {
  const std::string root = NewRoot("foreign");
  ASSERT_EQ(mkdir(root.c_str(), 01777), 0);
  ASSERT_EQ(chmod(root.c_str(), 01777), 0);
  std::ofstream(root + "/notes.txt") << "keep";
  absl::Status s = SnapshotDirs(root).Init();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("holds no store of this daemon but 1 other entry (\"notes.txt\")"));
  struct stat st;
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);  // its mode kept
  EXPECT_NE(access((root + "/snapshots").c_str(), F_OK), 0);
  // Empty but for lost+found (a dedicated filesystem): taken, made 0700.
  const std::string mounted = NewRoot("mounted");
  ASSERT_EQ(mkdir(mounted.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((mounted + "/lost+found").c_str(), 0700), 0);
  ASSERT_TRUE(SnapshotDirs(mounted).Init().ok());
  ASSERT_EQ(stat(mounted.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // Another snapshotter's root (containerd's overlayfs: a bolt metadata.db
  // and snapshots/) is no store of this daemon.
  const std::string overlayfs = NewRoot("overlayfs");
  ASSERT_EQ(mkdir(overlayfs.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((overlayfs + "/snapshots").c_str(), 0700), 0);
  std::ofstream(overlayfs + "/metadata.db") << std::string(16, '\0') << "bolt";
  s = SnapshotDirs(overlayfs).Init();
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("(\"metadata.db\")"));
  // A store's root keeps working whatever else it holds.
  std::ofstream(mounted + "/store-id") << "x";
  std::ofstream(mounted + "/operator-notes") << "x";
  EXPECT_TRUE(SnapshotDirs(mounted).Init().ok());
  // A file is no root.
  s = SnapshotDirs(root + "/notes.txt").Init();
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("is a regular file, not a directory"));
}

// The start's steps before its store is accepted change nothing more than
// they must: CheckRoot only reads (and refuses as Init does), MakeRoot
// makes a missing root and nothing in it; the root's mode and snapshots/
// wait for MakeLayout.
TEST(SnapshotDirsTest, OnlyMakeLayoutChangesAnExistingRoot) {
  const std::string root = NewRoot("layout");
  SnapshotDirs dirs(root);
  EXPECT_TRUE(dirs.CheckRoot().ok());
  EXPECT_NE(access(root.c_str(), F_OK), 0);
  ASSERT_TRUE(dirs.MakeRoot().ok());
  EXPECT_TRUE(std::filesystem::is_empty(root));
  ASSERT_EQ(chmod(root.c_str(), 0755), 0);
  std::ofstream(root + "/store-id") << "x";
  EXPECT_TRUE(dirs.CheckRoot().ok());
  EXPECT_TRUE(dirs.MakeRoot().ok());
  struct stat st;
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_NE(access(dirs.SnapshotsDir().c_str(), F_OK), 0);
  ASSERT_TRUE(dirs.MakeLayout().ok());
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(stat(dirs.SnapshotsDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // Not this daemon's: refused by both, left as it was.
  const std::string foreign = NewRoot("layout-foreign");
  ASSERT_EQ(mkdir(foreign.c_str(), 0755), 0);
  std::ofstream(foreign + "/notes.txt") << "keep";
  EXPECT_EQ(SnapshotDirs(foreign).CheckRoot().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SnapshotDirs(foreign).MakeRoot().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(foreign),
                          std::filesystem::directory_iterator()),
            1);
}

// <root>/lock that is no file, or <root>/guest-pull that is no directory,
// was put there by hand: refused (a refusal, exit 65) before anything is
// made, with what is wrong and what to do. The lock's open failed with
// EISDIR (exit 1, restarted forever); a guest-pull file failed the start
// after the store was created or opened.
TEST(SnapshotDirsTest, EntryOfTheWrongKindIsRefusedBeforeAnythingIsMade) {
  struct Case {
    const char* name;
    bool make_dir;
    const char* found;
  };
  for (const Case& c : {Case{"lock", true, "lock is a directory, not a regular file"},
                        Case{"guest-pull", false,
                             "guest-pull is a regular file, not a directory"}}) {
    SCOPED_TRACE(c.name);
    for (bool with_store : {true, false}) {
      const std::string root = NewRoot(with_store ? "kind-store" : "kind-new");
      ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
      if (with_store) std::ofstream(root + "/store-id") << "x";
      const std::string path = root + "/" + c.name;
      if (c.make_dir) {
        ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
      } else {
        std::ofstream(path) << "";
      }
      SnapshotDirs dirs(root);
      for (const absl::Status& s : {dirs.CheckRoot(), dirs.MakeRoot()}) {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
        EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(c.found));
        EXPECT_THAT(std::string(s.message()),
                    ::testing::HasSubstr("move it away and start again"));
      }
      EXPECT_FALSE(dirs.Init().ok());
      EXPECT_NE(access(dirs.SnapshotsDir().c_str(), F_OK), 0);
      struct stat st;
      ASSERT_EQ(stat(root.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 0755u);
      ASSERT_TRUE(RemoveAll(root).ok());
    }
  }
  // A link to the right kind is used as it is.
  const std::string root = NewRoot("kind-link");
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/elsewhere").c_str(), 0700), 0);
  ASSERT_EQ(rename((root + "/elsewhere").c_str(), (root + "-gp").c_str()), 0);
  ASSERT_EQ(symlink((root + "-gp").c_str(), (root + "/guest-pull").c_str()), 0);
  EXPECT_TRUE(SnapshotDirs(root).CheckRoot().ok());
  ASSERT_TRUE(RemoveAll(root).ok());
  ASSERT_EQ(rmdir((root + "-gp").c_str()), 0);
}

// A lock held by another program (`flock <root>/lock sleep 100`) is not
// called a daemon's: the message named "another containerd-guest-pull-grpc"
// whoever held it; it names the holder from /proc/locks.
TEST(SnapshotDirsTest, LockHeldByAnotherProgramNamesIt) {
  const std::string root = NewRoot("lock-holder");
  SnapshotDirs dirs(root);
  ASSERT_TRUE(dirs.MakeRoot().ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_NAME, "lock-holder");
    alarm(30);  // bounded, whatever the parent does
    int fd = open((root + "/lock").c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  absl::StatusOr<int> lock = dirs.LockRoot();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string message(lock.status().message());
  EXPECT_THAT(message, ::testing::HasSubstr(absl::StrCat(
                           "is locked by process ", child, " (lock-holder)")));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr(
                           "another containerd-guest-pull-grpc")));
  // Free again once the holder is gone.
  lock = dirs.LockRoot();
  ASSERT_TRUE(lock.ok()) << lock.status();
  close(*lock);
}

// A missing root is made 0700 at once, whatever the umask: its lock, and
// what a crash or failure before MakeLayout leaves, are never in a root
// others may read or write. Missing parents take the umask's mode.
TEST(SnapshotDirsTest, MakeRootMakesAMissingRoot0700) {
  const std::string parent = NewRoot("mode-parent");
  const std::string root = parent + "/sub/root";
  mode_t old_umask = umask(0);
  absl::Status made = SnapshotDirs(root).MakeRoot();
  umask(old_umask);
  ASSERT_TRUE(made.ok()) << made;
  struct stat st;
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(stat((parent + "/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  EXPECT_TRUE(std::filesystem::is_empty(root));
  // Made by another start meanwhile: taken as it is.
  EXPECT_TRUE(SnapshotDirs(root).MakeRoot().ok());
}

// A symbolic link to nothing at the root or above it (its target on a
// disk not mounted yet) is named by CheckRoot, the start's first check, and
// by MakeRoot, as NotFound (exit 1, tried again), and nothing is made at
// its target; MakeRoot said "File exists" and the lock's open "No such
// file or directory" before.
TEST(SnapshotDirsTest, ADanglingLinkOnTheWayIsNamed) {
  const std::string parent = NewRoot("dangling");
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  const std::string target = parent + "/unmounted/gp";
  ASSERT_EQ(symlink(target.c_str(), (parent + "/link").c_str()), 0);
  for (const std::string& root : {parent + "/link", parent + "/link/a/root"}) {
    for (bool make : {false, true}) {
      SnapshotDirs dirs(root);
      absl::Status s = make ? dirs.MakeRoot() : dirs.CheckRoot();
      EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << root << ": " << s;
      EXPECT_THAT(std::string(s.message()),
                  ::testing::HasSubstr(parent + "/link is a symbolic link to " +
                                       target + ", which does not exist"));
    }
  }
  EXPECT_NE(access((parent + "/unmounted").c_str(), F_OK), 0);
  // Once the target exists, the link is an ordinary way to the root.
  std::filesystem::create_directories(target);
  EXPECT_TRUE(SnapshotDirs(parent + "/link").MakeRoot().ok());
  EXPECT_TRUE(SnapshotDirs(parent + "/link/a/root").MakeRoot().ok());
  EXPECT_TRUE(std::filesystem::is_directory(target + "/a/root"));
}

// What an operator who gives a wrong root reads: the file in its way and
// what to do, not a bare "stat <root>: Not a directory"; a root that is a
// file says what it is. Nothing is made.
TEST(SnapshotDirsTest, AFileAtOrAboveTheRootIsNamed) {
  const std::string parent = NewRoot("file-on-way");
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  const std::string file = parent + "/fstab";
  std::ofstream(file) << "x";
  absl::Status s = SnapshotDirs(file).CheckRoot();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;  // exit 65
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("root " + file +
                                   " is a regular file, not a directory: "
                                   "give a new or empty directory as root"));
  for (const std::string& root : {file + "/gp", file + "/a/gp"}) {
    for (bool make : {false, true}) {
      SnapshotDirs dirs(root);
      s = make ? dirs.MakeRoot() : dirs.CheckRoot();
      EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << root << ": " << s;
      EXPECT_EQ(std::string(s.message()),
                "cannot create root " + root + ": " + file +
                    " is a regular file, not a directory (give another root)");
    }
  }
  std::ifstream in(file);
  std::string content((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "x");
}

// A root on a filesystem mounted read-only (remounted so after disk errors,
// or a read-only bind) names the root and the way out; the lock's open
// said "open <root>/lock: Read-only file system" alone. Needs a private
// mount namespace (root); skipped without one.
TEST(SnapshotDirsTest, ARootOnAReadOnlyFilesystemSaysSo) {
  const std::string parent = NewRoot("read-only");
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((parent + "/store").c_str(), 0700), 0);
  std::optional<std::string> out = base::RunWithPrivateMounts(
      [&] { return base::BindReadOnly(parent); },
      [&] {
        absl::StatusOr<int> lock = SnapshotDirs(parent + "/store").LockRoot();
        std::string lines = lock.ok() ? "locked" : std::string(lock.status().message());
        lines += "\n";
        absl::Status made = SnapshotDirs(parent + "/new").MakeRoot();
        return lines + (made.ok() ? "made" : std::string(made.message()));
      });
  if (!out.has_value()) GTEST_SKIP() << "no private mount namespace";
  const std::string hint =
      "Read-only file system; the root must be on a writable filesystem: "
      "remount it read-write, or give another root";
  EXPECT_THAT(*out, ::testing::HasSubstr("cannot lock root " + parent +
                                        "/store: open " + parent +
                                        "/store/lock: " + hint));
  EXPECT_THAT(*out, ::testing::HasSubstr("cannot create root " + parent +
                                        "/new: " + hint));
  EXPECT_NE(access((parent + "/store/lock").c_str(), F_OK), 0);
}

// A root of another user: tests/e2e/recovery.sh (the sandbox cannot chown).

TEST(SnapshotDirsTest, CreateInstallAndList) {
  SnapshotDirs dirs(NewRoot("install"));
  ASSERT_TRUE(dirs.Init().ok());
  auto temp = dirs.CreateTemp(true, "");
  ASSERT_TRUE(temp.ok()) << temp.status();
  struct stat st;
  ASSERT_EQ(stat((*temp + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(stat((*temp + "/work").c_str(), &st), 0);
  ASSERT_TRUE(dirs.Install(*temp, 7).ok());
  EXPECT_EQ(access(dirs.FsPath(7).c_str(), F_OK), 0);

  ASSERT_EQ(mkdir(dirs.SnapshotPath(8).c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dirs.SnapshotsDir() + "/007").c_str(), 0700), 0);
  auto leftover = dirs.CreateTemp(false, "");
  ASSERT_TRUE(leftover.ok());
  auto spare = dirs.CreateSpare();
  ASSERT_TRUE(spare.ok());
  // Not the shape CreateSpare makes: not a spare.
  ASSERT_EQ(mkdir((dirs.SnapshotsDir() + "/spare-old-one").c_str(), 0700), 0);
  auto trash = dirs.MoveToTrash(dirs.SnapshotPath(8));
  ASSERT_TRUE(trash.ok()) << trash.status();
  EXPECT_NE(access(dirs.SnapshotPath(8).c_str(), F_OK), 0);
  auto listing = dirs.List();
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_THAT(listing->ids, testing::ElementsAre(7));
  EXPECT_THAT(listing->temps, testing::ElementsAre(*leftover));
  EXPECT_THAT(listing->spares, testing::ElementsAre(*spare));
  EXPECT_THAT(listing->trash, testing::ElementsAre(*trash));
  EXPECT_THAT(listing->others, testing::UnorderedElementsAre(
                                   dirs.SnapshotsDir() + "/007",
                                   dirs.SnapshotsDir() + "/spare-old-one"));
}

// Start-up checks every listed directory (in parts, one per core, for
// 1000 and more): each one whose fs/ is gone, a file or a link to nothing
// is named, in whichever part it falls; one that links to a directory is
// fine.
TEST(SnapshotDirsTest, WithoutFsNamesEveryDirectoryThatLostItsFs) {
  SnapshotDirs dirs(NewRoot("without-fs"));
  ASSERT_TRUE(dirs.Init().ok());
  std::set<int64_t> ids;
  for (int64_t id = 1; id <= 2500; ++id) {
    ASSERT_EQ(mkdir(dirs.SnapshotPath(id).c_str(), 0700), 0);
    ids.insert(id);
    if (id == 7 || id == 1800 || id == 2499) continue;  // no fs/
    if (id == 1300) {
      ASSERT_EQ(symlink("nowhere", dirs.FsPath(id).c_str()), 0);
    } else if (id == 2000) {
      std::ofstream(dirs.FsPath(id)) << "not a directory";
    } else if (id == 2100) {
      ASSERT_EQ(symlink("../1/fs", dirs.FsPath(id).c_str()), 0);
    } else {
      ASSERT_EQ(mkdir(dirs.FsPath(id).c_str(), 0755), 0);
    }
  }
  auto without = dirs.WithoutFs(ids);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_THAT(*without, testing::ElementsAre(7, 1300, 1800, 2000, 2499));
  auto none = dirs.WithoutFs({3, 4});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(SnapshotDirsTest, InstallQuarantinesAnExistingDirectory) {
  SnapshotDirs dirs(NewRoot("install-stale"));
  ASSERT_TRUE(dirs.Init().ok());
  // A directory of the same id (a rolled-back creation whose removal
  // failed) is kept, with its content, in quarantine.
  ASSERT_EQ(mkdir(dirs.SnapshotPath(7).c_str(), 0700), 0);
  std::ofstream(dirs.SnapshotPath(7) + "/data") << "keep me";
  auto temp = dirs.CreateTemp(false, "");
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE(dirs.Install(*temp, 7).ok());
  EXPECT_NE(access((dirs.SnapshotPath(7) + "/data").c_str(), F_OK), 0);
  EXPECT_EQ(access(dirs.FsPath(7).c_str(), F_OK), 0);
  auto count = dirs.QuarantineCount();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
  std::vector<std::string> kept;
  for (const auto& e : std::filesystem::directory_iterator(dirs.QuarantineDir())) {
    kept.push_back(e.path().string());
  }
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_THAT(kept[0], testing::EndsWith("-7"));
  std::ifstream in(kept[0] + "/data");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep me");
}

TEST(SnapshotDirsTest, QuarantineNamesNeverCollide) {
  SnapshotDirs dirs(NewRoot("quarantine"));
  ASSERT_TRUE(dirs.Init().ok());
  EXPECT_EQ(*dirs.QuarantineCount(), 0);
  std::set<std::string> targets;
  for (int i = 0; i < 3; ++i) {
    std::string path = dirs.SnapshotsDir() + "/x";
    ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
    auto moved = dirs.Quarantine(path);
    ASSERT_TRUE(moved.ok()) << moved.status();
    targets.insert(*moved);
  }
  EXPECT_EQ(targets.size(), 3u);
  EXPECT_EQ(*dirs.QuarantineCount(), 3);
}

// The first quarantine makes quarantine/: its entry in the root is flushed
// before anything is moved into it, or a power cut could take quarantine/
// away with what it kept (snapshots/ no longer names it).
TEST(SnapshotDirsTest, FirstQuarantineFlushesTheRootBeforeTheMove) {
  SnapshotDirs dirs(NewRoot("quarantine-flush"));
  ASSERT_TRUE(dirs.Init().ok());
  std::string path = dirs.SnapshotsDir() + "/x";
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  TakeFsynced();
  ASSERT_TRUE(dirs.Quarantine(path).ok());
  std::vector<std::string> synced = TakeFsynced();
  auto root = std::find(synced.begin(), synced.end(), dirs.root());
  auto source = std::find(synced.begin(), synced.end(), dirs.SnapshotsDir());
  ASSERT_NE(root, synced.end()) << ::testing::PrintToString(synced);
  EXPECT_LT(root, source) << ::testing::PrintToString(synced);
  // quarantine/ exists from now on: the root is not flushed again.
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  ASSERT_TRUE(dirs.Quarantine(path).ok());
  EXPECT_THAT(TakeFsynced(), ::testing::Not(::testing::Contains(dirs.root())));
}

// A root Init makes (with its missing parents) is flushed into its parent,
// and snapshots/ into the root: the store's own flushes make its files
// durable, not the directories that name them.
TEST(SnapshotDirsTest, InitFlushesTheDirectoriesItMakes) {
  const std::string parent = NewRoot("made");
  const std::string root = parent + "/store";
  TakeFsynced();
  ASSERT_TRUE(SnapshotDirs(root).Init().ok());
  std::vector<std::string> synced = TakeFsynced();
  std::string above = parent.substr(0, parent.rfind('/'));
  EXPECT_THAT(synced, ::testing::Contains(above));
  EXPECT_THAT(synced, ::testing::Contains(parent));
  EXPECT_THAT(synced, ::testing::Contains(root));
  // Nothing made: only the root, for what an earlier start made in it and
  // a kill kept from being flushed (MakeDirDurably skips what exists).
  ASSERT_TRUE(SnapshotDirs(root).Init().ok());
  EXPECT_THAT(TakeFsynced(), ::testing::ElementsAre(root));
}

// quarantine/ made by a start killed before its flush: the next start
// flushes the root, though quarantine/ exists by then.
TEST(SnapshotDirsTest, InitFlushesARootWhoseQuarantineAnEarlierStartMade) {
  const std::string root = NewRoot("killed-quarantine");
  ASSERT_TRUE(SnapshotDirs(root).Init().ok());
  ASSERT_EQ(mkdir((root + "/quarantine").c_str(), 0700), 0);  // no flush
  TakeFsynced();
  SnapshotDirs dirs(root);
  ASSERT_TRUE(dirs.Init().ok());
  EXPECT_THAT(TakeFsynced(), ::testing::Contains(root));
}

// A parent the daemon may write into but not read cannot be flushed: Init
// still makes the root there, as it did before it flushed parents (a child
// without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH stands for a non-root daemon
// or an LSM profile granting only the root's own path).
TEST(SnapshotDirsTest, InitUnderAParentItCannotReadStillStarts) {
  const std::string parent = NewRoot("write-only");
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(chmod(parent.c_str(), 0300), 0);
  const std::string root = parent + "/store";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2] = {};
    if (syscall(SYS_capget, &header, caps) != 0) _exit(2);
    caps[0].effective &=
        ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    if (syscall(SYS_capset, &header, caps) != 0) _exit(2);
    if (open(parent.c_str(), O_RDONLY | O_DIRECTORY) >= 0) _exit(3);
    _exit(SnapshotDirs(root).Init().ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  chmod(parent.c_str(), 0700);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  struct stat st;
  EXPECT_EQ(stat((root + "/snapshots").c_str(), &st), 0);
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

// A container can make a tree deeper than PATH_MAX in its upper directory
// (mkdir and chdir, again and again): whole paths fail ENAMETOOLONG, and
// the Usage of its snapshot failed for good. Here 1500 levels of a 4-byte
// name, measured in a child that may not open 64 descriptors.
TEST(SnapshotDirsTest, DiskUsageOfATreeDeeperThanPathMax) {
  const std::string root = NewRoot("du-deep");
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  int bottom = MakeDeepTree(root, 1500, "dddd");
  ASSERT_GE(bottom, 0) << strerror(errno);
  int file = openat(bottom, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(file, 0);
  ASSERT_EQ(write(file, std::string(10000, 'a').data(), 10000), 10000);
  close(file);
  // A second name at the top, and a symlink to the top (not followed).
  ASSERT_EQ(linkat(bottom, "file", AT_FDCWD, (root + "/link").c_str(), 0), 0);
  ASSERT_EQ(symlinkat(root.c_str(), bottom, "up"), 0);
  close(bottom);
  auto usage = DiskUsage(root);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->inodes, 1 + 1500 + 2);  // the root, dddd..., file, up
  EXPECT_GE(usage->size, 10000);
  EXPECT_TRUE(TrueWithFdLimit(64, [&] {
    auto limited = DiskUsage(root);
    return limited.ok() && limited->inodes == usage->inodes &&
           limited->size == usage->size;
  }));
  std::atomic<bool> stop{true};
  EXPECT_EQ(DiskUsage(root, &stop).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(RemoveAll(root).ok());
}

TEST(SnapshotDirsTest, RemoveAllMissingIsFine) {
  EXPECT_TRUE(RemoveAll(NewRoot("missing") + "/x/y").ok());
}

// A container can make a tree of any depth in its upper directory; its
// paths then pass PATH_MAX, and whole-path calls fail ENAMETOOLONG: the
// directory would stay in trash for good. Here 3 branches of 40 levels of
// 200-byte names (8 KiB paths), a file and a symlink at the bottom of each.
TEST(SnapshotDirsTest, RemoveAllDeletesATreeDeeperThanPathMax) {
  const std::string root = NewRoot("deep");
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0);
  const std::string name(200, 'd');
  for (int branch = 0; branch < 3; ++branch) {
    int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (int level = 0; level < 40; ++level) {
      std::string dir = level == 0 ? name + std::to_string(branch) : name;
      ASSERT_EQ(mkdirat(fd, dir.c_str(), 0755), 0) << strerror(errno);
      int next = openat(fd, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ASSERT_GE(next, 0);
      close(fd);
      fd = next;
    }
    int file = openat(fd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(file, 0);
    close(file);
    ASSERT_EQ(symlinkat("/etc/passwd", fd, "link"), 0);
    close(fd);
  }
  ASSERT_TRUE(RemoveAll(root).ok());
  struct stat st;
  EXPECT_NE(lstat(root.c_str(), &st), 0);
  EXPECT_EQ(lstat("/etc/passwd", &st), 0);  // the symlink was not followed
}

// A filesystem mounted on the directory to delete itself (a bind mount
// over a snapshot's directory) is not the tree's: nothing on it is
// deleted, and once it is unmounted the directory is. Needs a mount
// namespace of its own: skipped where it cannot make one.
TEST(SnapshotDirsTest, RemoveAllOfAMountPointDeletesNothingOnIt) {
  const std::string root = NewRoot("mounted-top");
  const std::string top = root + "/top", other = root + "/other";
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(top.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
  std::ofstream(top + "/own") << "x";
  std::ofstream(other + "/keep") << "keep";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount(other.c_str(), top.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      _exit(77);
    }
    absl::Status s = RemoveAll(top);
    bool refused = absl::IsFailedPrecondition(s) &&
                   s.message().find("mounted there") != std::string::npos;
    bool kept = access((other + "/keep").c_str(), F_OK) == 0;
    if (umount(top.c_str()) != 0) _exit(2);
    bool removed = RemoveAll(top).ok() && access(top.c_str(), F_OK) != 0;
    _exit(refused && kept && removed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(access((other + "/keep").c_str(), F_OK), 0);
  ASSERT_TRUE(RemoveAll(root).ok());
}

// An upper directory is the container's to change while its snapshot is
// deleted (an overlay still mounted): a directory of it swapped for a
// symlink, between its listing and the deletion of its entries, must not
// lead the walk out of the tree. Here top/a becomes a symlink to `victim`
// after the first file of a is deleted; every file of victim stays.
TEST(SnapshotDirsTest, RemoveAllNeverFollowsADirectorySwappedForASymlink) {
  const std::string root = NewRoot("swap");
  const std::string top = root + "/top", victim = root + "/victim";
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(top.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((top + "/a").c_str(), 0700), 0);
  ASSERT_EQ(mkdir(victim.c_str(), 0700), 0);
  for (int i = 0; i < 10; ++i) {
    std::ofstream(top + "/a/f" + std::to_string(i)) << "x";
    std::ofstream(victim + "/f" + std::to_string(i)) << "keep";
  }
  std::function<void()> swap = [&] {
    ASSERT_EQ(rename((top + "/a").c_str(), (top + "/moved").c_str()), 0);
    ASSERT_EQ(symlink(victim.c_str(), (top + "/a").c_str()), 0);
  };
  after_first_unlink = &swap;
  RemoveAll(top).IgnoreError();  // whether it finishes is not the point
  after_first_unlink = nullptr;
  for (int i = 0; i < 10; ++i) {
    struct stat st;
    EXPECT_EQ(lstat((victim + "/f" + std::to_string(i)).c_str(), &st), 0)
        << "victim/f" << i << " was deleted through the symlink";
  }
  // What is left of the tree goes at the next try; the symlink only.
  EXPECT_TRUE(RemoveAll(top).ok());
  struct stat st;
  EXPECT_NE(lstat(top.c_str(), &st), 0);
  EXPECT_EQ(lstat(victim.c_str(), &st), 0);
  ASSERT_TRUE(RemoveAll(root).ok());
}

// A top whose own path is near or past the move-up length: its entries
// are not moved (a move would land them under the same long top, again
// and again). The walk used to rename top/a to top/.deep-0, .deep-1, ...
// for good (no stop given by most callers); here a stop after 20 s ends
// that as Cancelled.
TEST(SnapshotDirsTest, RemoveAllOfALongTopEnds) {
  std::string top = NewRoot("longtop");
  ASSERT_EQ(mkdir(top.c_str(), 0700), 0);
  const std::string name(200, 'l');
  while (top.size() < 2100) {
    top += "/" + name;
    ASSERT_EQ(mkdir(top.c_str(), 0700), 0) << strerror(errno);
  }
  ASSERT_EQ(mkdir((top + "/a").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((top + "/a/b").c_str(), 0700), 0);
  std::ofstream(top + "/a/b/file") << "x";
  std::atomic<bool> stop{false}, done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 200 && !done.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop.store(true);
  });
  absl::Status s = RemoveAll(top, &stop);
  done.store(true);
  watchdog.join();
  EXPECT_TRUE(s.ok()) << s;
  struct stat st;
  EXPECT_NE(lstat(top.c_str(), &st), 0);
}

// A stop (or a failure) part-way leaves directories moved up as .deep-N;
// the next RemoveAll must not need those names. Here 1001 of them, each
// still deep enough (18 levels) to need a move: the names used to be
// tried from .deep-0 for 1000 attempts, so every later Cleanup failed ("no
// free name") and the entry stayed in trash for good.
TEST(SnapshotDirsTest, RemoveAllResumesAfterManyDirectoriesWereMovedUp) {
  std::string top = NewRoot("resume");
  ASSERT_EQ(mkdir(top.c_str(), 0700), 0);
  for (int n = 0; n <= 1000; ++n) {
    int fd = open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (int level = 0; level < 18; ++level) {
      std::string dir = level == 0 ? ".deep-" + std::to_string(n) : "d";
      ASSERT_EQ(mkdirat(fd, dir.c_str(), 0700), 0) << strerror(errno);
      int next = openat(fd, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ASSERT_GE(next, 0);
      close(fd);
      fd = next;
    }
    close(fd);
  }
  absl::Status s = RemoveAll(top);
  EXPECT_TRUE(s.ok()) << s;
  struct stat st;
  EXPECT_NE(lstat(top.c_str(), &st), 0);
}

}  // namespace
}  // namespace snapshotter

namespace snapshotter {
TEST(SnapshotDirsHoldsNoData, OnlyEmptyFsAndWork) {
  std::string dir = ::testing::TempDir() + "/holds-no-data";
  ASSERT_TRUE(RemoveAll(dir).ok());
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir + "/fs").c_str(), 0755), 0);
  EXPECT_TRUE(SnapshotDirs::HoldsNoData(dir));
  ASSERT_EQ(mkdir((dir + "/work").c_str(), 0700), 0);
  EXPECT_TRUE(SnapshotDirs::HoldsNoData(dir));
  ASSERT_EQ(mkdir((dir + "/fs/etc").c_str(), 0755), 0);
  EXPECT_FALSE(SnapshotDirs::HoldsNoData(dir));
  ASSERT_EQ(rmdir((dir + "/fs/etc").c_str()), 0);
  ASSERT_EQ(mkdir((dir + "/other").c_str(), 0700), 0);
  EXPECT_FALSE(SnapshotDirs::HoldsNoData(dir));
  EXPECT_FALSE(SnapshotDirs::HoldsNoData(dir + "/missing"));
}
}  // namespace snapshotter
