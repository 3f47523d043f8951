// Tests for the metadata store's transaction helper and schema handling.
#include "snapshotter/metastore.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/private_mounts_for_test.h"
#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/failing_io_vfs.h"
#include "snapshotter/wal_preallocation.h"

namespace {
// While set, every pwrite to a -wal fails as on a full disk (interposed).
std::atomic<bool> wal_disk_full{false};

bool WritesFullWal(int fd) {
  if (!wal_disk_full.load()) return false;
  char link[64];
  char target[PATH_MAX + 1];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, PATH_MAX);
  if (n < 4) return false;
  target[n] = '\0';
  return std::string(target).rfind("-wal") == static_cast<size_t>(n) - 4;
}
}  // namespace

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) {
  if (WritesFullWal(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return syscall(SYS_pwrite64, fd, buf, n, at);
}

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t at) {
  return pwrite(fd, buf, n, at);
}

namespace snapshotter {
namespace {

std::string TempDbPath(const char* name) {
  return std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
         "/" + name + "." + std::to_string(getpid()) + ".db";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int64_t CountSnapshots(MetaStore& store) {
  int64_t n = -1;
  EXPECT_TRUE(store
                  .View([&](Transaction& tx) -> absl::Status {
                    auto st = tx.Prepare("SELECT COUNT(*) FROM snapshots");
                    if (!st.ok()) return st.status();
                    auto row = st->Step();
                    if (!row.ok()) return row.status();
                    n = st->ColumnInt64(0);
                    return absl::OkStatus();
                  })
                  .ok());
  return n;
}

absl::Status InsertKey(Transaction& tx, absl::string_view key) {
  auto st = tx.Prepare(
      "INSERT INTO snapshots(key, kind, created_ns, updated_ns) "
      "VALUES(?, 2, 0, 0)");
  if (!st.ok()) return st.status();
  return st->Bind(1, key).Run();
}

TEST(MetaStoreTest, CommitsAndRollsBack) {
  std::string path = TempDbPath("commit");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Update([](Transaction& tx) {
                        return InsertKey(tx, "a");
                      })
                  .ok());
  absl::Status failed = (*store)->Update([](Transaction& tx) -> absl::Status {
    if (absl::Status s = InsertKey(tx, "b"); !s.ok()) return s;
    return absl::InternalError("boom");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(CountSnapshots(**store), 1);
}

TEST(MetaStoreTest, FullDatabaseIsResourceExhaustedWithThePath) {
  std::string path = TempDbPath("full");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Status full = (*store)->Update([](Transaction& tx) -> absl::Status {
    // SQLite answers SQLITE_FULL past max_page_count, as on a full disk.
    auto cap = tx.Prepare("PRAGMA max_page_count=1");
    if (!cap.ok()) return cap.status();
    cap->Step().IgnoreError();
    for (int i = 0; i < 1000; ++i) {
      absl::Status s = InsertKey(tx, std::string(200, 'a' + i % 26) +
                                         std::to_string(i));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  });
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_THAT(std::string(full.message()), testing::HasSubstr(path)) << full;
  unlink(path.c_str());
}

TEST(MetaStoreTest, UniqueKeyIsAlreadyExists) {
  std::string path = TempDbPath("unique");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(
      (*store)->Update([](Transaction& tx) { return InsertKey(tx, "k"); }).ok());
  absl::Status dup =
      (*store)->Update([](Transaction& tx) { return InsertKey(tx, "k"); });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
}

TEST(MetaStoreTest, OnRollbackRunsOnlyWhenNothingCommitted) {
  std::string path = TempDbPath("rollback");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok());
  int rollbacks = 0;
  auto count = [&] { ++rollbacks; };
  ASSERT_TRUE((*store)
                  ->Update([](Transaction& tx) { return InsertKey(tx, "a"); },
                           count)
                  .ok());
  EXPECT_EQ(rollbacks, 0);
  EXPECT_FALSE((*store)
                   ->Update(
                       [](Transaction& tx) -> absl::Status {
                         return absl::InternalError("boom");
                       },
                       count)
                   .ok());
  EXPECT_EQ(rollbacks, 1);
}

TEST(MetaStoreTest, FailedCheckpointDoesNotFailTheDurableCommit) {
  std::string path = TempDbPath("checkpoint");
  unlink(path.c_str());
  FailingIoVfs vfs(SQLITE_OPEN_MAIN_DB);
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  vfs.FailSyncs(true);
  // More WAL frames than the checkpoint interval (rows of about a page
  // each): the commit runs SQLite's automatic checkpoint, which syncs the
  // main file and fails.
  int rollbacks = 0, commits = 0;
  absl::Status s = (*store)->Update(
      [](Transaction& tx) -> absl::Status {
        for (int i = 0; i < 1200; ++i) {
          RETURN_IF_ERROR(
              InsertKey(tx, absl::StrCat(i, std::string(3000, 'k'))));
        }
        return absl::OkStatus();
      },
      [&] { ++rollbacks; }, [&] { ++commits; });
  vfs.FailSyncs(false);
  EXPECT_GT(vfs.failed(), 0) << "no checkpoint synced the database";
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(rollbacks, 0);
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(CountSnapshots(**store), 1200);
}

TEST(MetaStoreTest, FullDiskLeavesTheWalUnfoldedAtOpen) {
  std::string path = TempDbPath("foldfull");
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  FailingIoVfs vfs(SQLITE_OPEN_MAIN_DB);
  {
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)
                    ->Update([](Transaction& tx) { return InsertKey(tx, "a"); })
                    .ok());
    (*store)->SetBeforeClose([] { return false; });
  }  // closed keeping the WAL, as a crash: the commit is only there
  vfs.FailWrites(true);
  auto reopened = MetaStore::Open(path, MetaStore::Mode::kExisting);
  vfs.FailWrites(false);
  EXPECT_GT(vfs.failed(), 0) << "the fold wrote nothing to the main file";
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(CountSnapshots(**reopened), 1);
}

TEST(MetaStoreTest, CommitWhoseWalFsyncFailsIsInDoubtAndChangesNothingMore) {
  std::string path = TempDbPath("indoubt");
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  FailingIoVfs vfs(SQLITE_OPEN_WAL);
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)
                  ->Update([](Transaction& tx) { return InsertKey(tx, "a"); })
                  .ok());
  std::vector<std::string> handled;
  (*store)->SetOnCommitInDoubt(
      [&](const absl::Status& s) { handled.push_back(s.ToString()); });
  int rollbacks = 0, commits = 0;
  vfs.FailSyncs(true);
  absl::Status s =
      (*store)->Update([](Transaction& tx) { return InsertKey(tx, "b"); },
                       [&] { ++rollbacks; }, [&] { ++commits; });
  vfs.FailSyncs(false);
  ASSERT_EQ(vfs.failed(), 1);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(IsCommitInDoubt(s)) << s;
  EXPECT_THAT(s.message(), testing::HasSubstr("outcome is unknown"));
  // The text docs/operations.md quotes (the daemon logs it, then
  // ": exiting (status 75) ...").
  EXPECT_THAT(std::string(s.message()),
              testing::StartsWith("metadata database: the commit's outcome is "
                                  "unknown (metadata database: exec \"COMMIT\": "));
  EXPECT_THAT(std::string(s.message()),
              testing::EndsWith("); the next start recovers it from the WAL"));
  // The filesystem work of an in-doubt commit is not undone, nor recorded.
  EXPECT_EQ(rollbacks, 0);
  EXPECT_EQ(commits, 0);
  EXPECT_THAT(handled, testing::ElementsAre(s.ToString()));
  // Nothing more is written: not even a commit that would succeed.
  absl::Status later = (*store)->Update(
      [](Transaction& tx) { return InsertKey(tx, "c"); }, [&] { ++rollbacks; });
  EXPECT_TRUE(IsCommitInDoubt(later)) << later;
  EXPECT_EQ(rollbacks, 0);
  EXPECT_EQ(handled.size(), 1u);
  // The frames reached the file (only their sync failed): the next open
  // replays the commit. Had they not, it would be absent; never half there.
  store->reset();
  auto reopened = MetaStore::Open(path, MetaStore::Mode::kExisting);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(CountSnapshots(**reopened), 2);
  // The open folded the WAL into the main file, fsynced: the replayed
  // commit no longer depends on frames whose fsync failed.
  std::string copy = path + ".main-only";
  unlink((copy + "-wal").c_str());
  std::ofstream(copy, std::ios::binary) << ReadFile(path);
  auto main_only = MetaStore::Open(copy, MetaStore::Mode::kReadOnly);
  ASSERT_TRUE(main_only.ok()) << main_only.status();
  EXPECT_EQ(CountSnapshots(**main_only), 2);
}

TEST(MetaStoreTest, OtherConstraintsAreNotAlreadyExists) {
  std::string path = TempDbPath("notnull");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok());
  absl::Status s = (*store)->Update([](Transaction& tx) -> absl::Status {
    auto st = tx.Prepare(
        "INSERT INTO snapshots(key, kind, created_ns, updated_ns) "
        "VALUES(NULL, 2, 0, 0)");
    if (!st.ok()) return st.status();
    return st->Run();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), absl::StatusCode::kAlreadyExists);
}

TEST(MetaStoreTest, PersistsAcrossReopen) {
  std::string path = TempDbPath("reopen");
  unlink(path.c_str());
  {
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)
                    ->Update([](Transaction& tx) { return InsertKey(tx, "x"); })
                    .ok());
  }
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(CountSnapshots(**store), 1);
}

// A -shm (or -wal) SQLite cannot open for writing makes it open the whole
// connection read-only, and its error then names neither the file nor why:
// the error names them.
TEST(MetaStoreTest, ReadOnlyDatabaseNamesTheFileThatCannotBeWritten) {
  std::string path = TempDbPath("readonly-shm");
  unlink(path.c_str());
  unlink((path + "-wal").c_str());
  rmdir((path + "-shm").c_str());
  {
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)
                    ->Update([](Transaction& tx) { return InsertKey(tx, "x"); })
                    .ok());
  }
  ASSERT_EQ(mkdir((path + "-shm").c_str(), 0700), 0);
  absl::Status s;
  {
    auto store = MetaStore::Open(path, MetaStore::Mode::kExisting);
    s = store.ok() ? (*store)->Update([](Transaction& tx) {
      return InsertKey(tx, "y");
    })
                   : store.status();
  }
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), testing::HasSubstr("readonly"));
  EXPECT_THAT(s.message(),
              testing::HasSubstr(path + "-shm cannot be opened for writing: " +
                                 strerror(EISDIR)));
  rmdir((path + "-shm").c_str());
}

TEST(MetaStoreTest, WalIsPreallocatedAndItsFramesSurviveACrash) {
  std::string path = TempDbPath("prealloc");
  std::string copy = TempDbPath("prealloc-copy");
  for (const std::string& p : {path, copy}) {
    unlink(p.c_str());
    unlink((p + "-wal").c_str());
    unlink((p + "-shm").c_str());
  }
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  struct stat st;
  ASSERT_EQ(stat((path + "-wal").c_str(), &st), 0);
  EXPECT_GE(st.st_size, MetaStore::kWalBytes);
  for (const char* key : {"x", "y"}) {
    ASSERT_TRUE((*store)
                    ->Update([&](Transaction& tx) { return InsertKey(tx, key); })
                    .ok());
  }
  ASSERT_EQ(stat((path + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, MetaStore::kWalBytes);  // written in place
  // A crash: the files as they are while the store is open (the commits are
  // in the WAL only, followed by the zeros).
  std::ofstream(copy, std::ios::binary) << ReadFile(path);
  std::ofstream(copy + "-wal", std::ios::binary) << ReadFile(path + "-wal");
  store->reset();
  auto recovered = MetaStore::Open(copy);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(CountSnapshots(**recovered), 2);
}

// The last write runs at the close of a store whose open finished, before
// the SetBeforeClose function, which sees it committed; not at the close
// of one whose start-up writes never ran, nor after a commit in doubt
// (the -wal is kept then, and the in-doubt handler does not run).
TEST(MetaStoreTest, LastWriteRunsAtACloseThatFoldsTheWal) {
  std::string path = TempDbPath("last-write");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    unlink((path + suffix).c_str());
  }
  std::vector<std::string> events;
  auto hooks = [&](MetaStore& store, const std::string& key) {
    store.SetLastWrite(
        [&events, key](Transaction& tx) {
          events.push_back("write " + key);
          return InsertKey(tx, key);
        },
        [&events] { events.push_back("committed"); });
    store.SetBeforeClose([&events] {
      events.push_back("before close");
      return true;
    });
  };
  {
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    hooks(**store, "a");
  }
  EXPECT_THAT(events, testing::ElementsAre("write a", "committed",
                                           "before close"));
  events.clear();
  {
    auto store = MetaStore::OpenServingReads(path, MetaStore::Mode::kExisting,
                                             [] { return absl::OkStatus(); });
    ASSERT_TRUE(store.ok()) << store.status();
    hooks(**store, "b");
  }  // no FinishOpen: nothing written, the -wal kept
  EXPECT_TRUE(events.empty());
  struct stat st;
  EXPECT_EQ(stat((path + "-wal").c_str(), &st), 0);
  {
    FailingIoVfs vfs(SQLITE_OPEN_WAL);
    auto store = MetaStore::Open(path, MetaStore::Mode::kExisting);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(CountSnapshots(**store), 1);
    hooks(**store, "c");
    int in_doubt = 0;
    (*store)->SetOnCommitInDoubt([&](const absl::Status&) { ++in_doubt; });
    vfs.FailSyncs(true);
    store->reset();  // the last write's commit is in doubt
    vfs.FailSyncs(false);
    EXPECT_EQ(in_doubt, 0);
  }
  EXPECT_THAT(events, testing::ElementsAre("write c"));
  EXPECT_EQ(stat((path + "-wal").c_str(), &st), 0);
}

// A new store at `path` holding key "a", closed cleanly (no -wal left).
void MakeClosedStoreWithKeyA(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    unlink((path + suffix).c_str());
  }
  {
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)
                    ->Update([](Transaction& tx) { return InsertKey(tx, "a"); })
                    .ok());
  }
}

// OpenServingReads serves reads at once; the WAL's preparation and the
// caller's step run once, before the first write commits; a failed step
// fails every write after it, changes nothing and keeps the -wal.
TEST(MetaStoreTest, OpenServingReadsDefersTheStartUpWritesToTheFirstWrite) {
  std::string path = TempDbPath("serving-reads");
  ASSERT_NO_FATAL_FAILURE(MakeClosedStoreWithKeyA(path));
  struct stat st;
  ASSERT_NE(stat((path + "-wal").c_str(), &st), 0);  // the close deleted it
  int steps = 0;
  {
    auto store = MetaStore::OpenServingReads(path, MetaStore::Mode::kExisting,
                                             [&]() -> absl::Status {
                                               ++steps;
                                               EXPECT_TRUE(WalHasHeader(path));
                                               return absl::OkStatus();
                                             });
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(CountSnapshots(**store), 1);
    EXPECT_EQ(steps, 0);
    EXPECT_FALSE(WalHasHeader(path));
    ASSERT_TRUE((*store)
                    ->Update([](Transaction& tx) { return InsertKey(tx, "b"); })
                    .ok());
    EXPECT_EQ(steps, 1);
    ASSERT_EQ(stat((path + "-wal").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, MetaStore::kWalBytes);
    EXPECT_TRUE((*store)->FinishOpen().ok());
    EXPECT_EQ(steps, 1);
  }
  {
    auto store = MetaStore::OpenServingReads(
        path, MetaStore::Mode::kExisting,
        [] { return absl::InternalError("marker: boom"); });
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(CountSnapshots(**store), 2);
    absl::Status write =
        (*store)->Update([](Transaction& tx) { return InsertKey(tx, "c"); });
    EXPECT_EQ(write.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(write.message(), testing::HasSubstr("takes no writes"));
    EXPECT_THAT(write.message(), testing::HasSubstr("marker: boom"));
    EXPECT_EQ((*store)->FinishOpen().message(), "marker: boom");
    EXPECT_EQ(CountSnapshots(**store), 2);
  }
  // Not folded at that close: the -wal stays.
  EXPECT_EQ(stat((path + "-wal").c_str(), &st), 0);
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(CountSnapshots(**store), 2);
}

// A start on a full disk cannot preallocate the -wal (the last clean close
// deleted it). The store must still take writes, as it does when the fold
// or the header commit meet a full disk: the Removes that free space go
// through it, and a store refusing every write until a restart wedges them.
TEST(MetaStoreTest, FullDiskAtThePreallocationStillTakesWrites) {
  std::string path = TempDbPath("prealloc-full");
  ASSERT_NO_FATAL_FAILURE(MakeClosedStoreWithKeyA(path));
  auto store = MetaStore::OpenServingReads(path, MetaStore::Mode::kExisting,
                                           [] { return absl::OkStatus(); });
  ASSERT_TRUE(store.ok()) << store.status();
  wal_disk_full.store(true);
  absl::Status finished = (*store)->FinishOpen();
  wal_disk_full.store(false);
  EXPECT_TRUE(finished.ok()) << finished;
  // Space was freed: writes go through without a restart.
  absl::Status write =
      (*store)->Update([](Transaction& tx) { return InsertKey(tx, "b"); });
  EXPECT_TRUE(write.ok()) << write;
  EXPECT_EQ(CountSnapshots(**store), 2);
}

// A preallocation the disk cannot hold takes no space: on a filesystem
// with less than kWalBytes free it leaves the -wal as it was and the
// filesystem's free space as it was, and a new store still takes writes
// and folds its -wal into the database at close (as a new root's
// metadata.db is made). Zeros left up to the last free byte made both
// fail. Needs a mount namespace of its own: skipped where it cannot make
// one.
TEST(MetaStoreTest, PreallocationOnAFullDiskGivesItsZerosBack) {
  const std::string mnt = TempDbPath("prealloc-tmpfs");
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0) << strerror(errno);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("prealloc-test", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
      _exit(77);
    }
    const std::string path = mnt + "/metadata.db";
    struct statvfs before, after;
    if (statvfs(mnt.c_str(), &before) != 0) _exit(2);
    absl::Status s = PreallocateWal(path, MetaStore::kWalBytes);
    if (!absl::IsResourceExhausted(s)) _exit(3);
    struct stat st;
    if (stat((path + "-wal").c_str(), &st) != 0 || st.st_size != 0) _exit(4);
    if (statvfs(mnt.c_str(), &after) != 0 || after.f_bfree < before.f_bfree) {
      _exit(5);
    }
    unlink((path + "-wal").c_str());
    {
      auto store = MetaStore::Open(path, MetaStore::Mode::kCreate);
      if (!store.ok()) _exit(6);
      if (!(*store)->Update([](Transaction& tx) { return InsertKey(tx, "a"); })
               .ok()) {
        _exit(7);
      }
    }
    _exit(access((path + "-wal").c_str(), F_OK) != 0 ? 0 : 8);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  rmdir(mnt.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no mount namespace here";
  // 3: not refused as a full disk; 4, 5: zeros kept; 6-8: no store made.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A store made on a filesystem too small for it: SQLite reports the
// growth its first checkpoint asks for as an I/O error ("disk I/O error",
// SQLITE_IOERR_WRITE) though the cause is ENOSPC. It is a full disk all
// the same: ResourceExhausted naming the cause, or a store made with its
// WAL unfolded, never Internal. A mount namespace of its own: skipped
// where it cannot make one.
TEST(MetaStoreTest, NoSpaceReportedAsAnIoErrorIsAFullDisk) {
  const std::string mnt = TempDbPath("tiny-tmpfs");
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0) << strerror(errno);
  std::optional<std::string> out = base::RunWithPrivateMounts(
      [&] { return mount("tiny-test", mnt.c_str(), "tmpfs", 0, "size=16k") == 0; },
      [&] {
        auto store = MetaStore::Open(mnt + "/metadata.db", MetaStore::Mode::kCreate);
        return store.ok() ? std::string("OK") : store.status().ToString();
      });
  rmdir(mnt.c_str());
  if (!out.has_value()) GTEST_SKIP() << "no mount namespace here";
  if (*out != "OK") {
    EXPECT_THAT(*out, ::testing::StartsWith("RESOURCE_EXHAUSTED"));
    EXPECT_THAT(*out, ::testing::AnyOf(
                         ::testing::HasSubstr("No space left on device"),
                         ::testing::HasSubstr("database or disk is full")));
  }
}

TEST(MetaStoreTest, RefusesNewerSchema) {
  std::string path = TempDbPath("newer");
  unlink(path.c_str());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::string before = ReadFile(path);
  auto store = MetaStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), testing::HasSubstr("99"));
  // Refused before anything is written (not even the journal mode).
  EXPECT_EQ(ReadFile(path), before);
  EXPECT_NE(access((path + "-wal").c_str(), F_OK), 0);
}

TEST(MetaStoreTest, MigratesSchemaOneInPlace) {
  std::string path = TempDbPath("v1");
  unlink(path.c_str());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string v1 = ReadFile("snapshotter/testdata/metadata_v1.sql");
  ASSERT_FALSE(v1.empty());
  ASSERT_EQ(sqlite3_exec(db, v1.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = MetaStore::Open(path, MetaStore::Mode::kExisting);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(CountSnapshots(**store), 2);
  ASSERT_TRUE((*store)
                  ->View([](Transaction& tx) -> absl::Status {
                    EXPECT_EQ(*ReadSchemaVersion(tx), 2);
                    for (const char* sql : {"SELECT COUNT(*) FROM store",
                                            "SELECT COUNT(*) FROM removals"}) {
                      auto st = tx.Prepare(sql);
                      if (!st.ok()) return st.status();
                      EXPECT_TRUE(*st->Step()) << sql;
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  store->reset();
  // Reopening at the current version changes nothing.
  EXPECT_TRUE(MetaStore::Open(path, MetaStore::Mode::kExisting).ok());
}

TEST(MetaStoreTest, ExistingModeDoesNotCreate) {
  std::string path = TempDbPath("absent");
  unlink(path.c_str());
  EXPECT_FALSE(MetaStore::Open(path, MetaStore::Mode::kExisting).ok());
  EXPECT_FALSE(MetaStore::Open(path, MetaStore::Mode::kReadOnly).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

// SQLite would delete the -wal beside an empty database file: a reader
// refuses such a file before SQLite sees it.
TEST(MetaStoreTest, ReaderOfEmptyFileLeavesTheWal) {
  std::string path = TempDbPath("empty-with-wal");
  FILE* db = fopen(path.c_str(), "w");
  ASSERT_NE(db, nullptr);
  fclose(db);
  FILE* wal = fopen((path + "-wal").c_str(), "w");
  ASSERT_NE(wal, nullptr);
  fputs("frames a recovery may still need", wal);
  fclose(wal);
  EXPECT_FALSE(MetaStore::Open(path, MetaStore::Mode::kReadOnly).ok());
  EXPECT_EQ(access((path + "-wal").c_str(), F_OK), 0);
}

TEST(MetaStoreTest, RefusesGarbageFile) {
  std::string path = TempDbPath("garbage");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("this is not a database, just some text that is long enough......\n",
        f);
  fclose(f);
  auto store = MetaStore::Open(path);
  EXPECT_FALSE(store.ok());
}

// The statement cache: a statement is reused across transactions with its
// bindings cleared, and a nested use of the same SQL gets its own copy.
TEST(MetaStoreTest, CachedStatementsAreReusedAndNestedUseIsSafe) {
  std::string path = TempDbPath("stmt_cache");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  constexpr const char* kSelect = "SELECT ?1 + 0";
  for (int64_t round = 0; round < 3; ++round) {
    ASSERT_TRUE((*store)
                    ->Update([&](Transaction& tx) -> absl::Status {
                      auto outer = tx.Prepare(kSelect);
                      if (!outer.ok()) return outer.status();
                      outer->Bind(1, round);
                      auto row = outer->Step();
                      if (!row.ok()) return row.status();
                      EXPECT_TRUE(*row);
                      // Same SQL while `outer` is still stepping.
                      auto inner = tx.Prepare(kSelect);
                      if (!inner.ok()) return inner.status();
                      auto inner_row = inner->Bind(1, int64_t{100}).Step();
                      if (!inner_row.ok()) return inner_row.status();
                      EXPECT_EQ(inner->ColumnInt64(0), 100);
                      EXPECT_EQ(outer->ColumnInt64(0), round);
                      return absl::OkStatus();
                    })
                    .ok());
  }
  // Bindings do not leak into the next use: an unbound parameter is NULL.
  ASSERT_TRUE((*store)
                  ->View([&](Transaction& tx) -> absl::Status {
                    auto st = tx.Prepare("SELECT ?1 IS NULL");
                    if (!st.ok()) return st.status();
                    st->Bind(1, int64_t{5});
                    return st->Step().status();
                  })
                  .ok());
  ASSERT_TRUE((*store)
                  ->View([&](Transaction& tx) -> absl::Status {
                    auto st = tx.Prepare("SELECT ?1 IS NULL");
                    if (!st.ok()) return st.status();
                    auto row = st->Step();
                    if (!row.ok()) return row.status();
                    EXPECT_EQ(st->ColumnInt64(0), 1);
                    return absl::OkStatus();
                  })
                  .ok());
}

// A statement stays lent out while many other SQL strings enter the cache
// (its table grows and rehashes): returning it afterwards must find it
// (ASan catches an entry that moved), and it is reused, not re-prepared.
TEST(MetaStoreTest, LentStatementSurvivesTheCacheGrowing) {
  std::string path = TempDbPath("stmt_cache_grow");
  unlink(path.c_str());
  auto store = MetaStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE((*store)
                    ->Update([&](Transaction& tx) -> absl::Status {
                      ASSIGN_OR_RETURN(Statement outer, tx.Prepare("SELECT 7"));
                      ASSIGN_OR_RETURN(bool row, outer.Step());
                      EXPECT_TRUE(row);
                      for (int i = 0; i < 64; ++i) {
                        ASSIGN_OR_RETURN(
                            Statement other,
                            tx.Prepare("SELECT " + std::to_string(1000 + i)));
                        ASSIGN_OR_RETURN(bool other_row, other.Step());
                        EXPECT_TRUE(other_row);
                        EXPECT_EQ(other.ColumnInt64(0), 1000 + i);
                      }
                      EXPECT_EQ(outer.ColumnInt64(0), 7);
                      return absl::OkStatus();
                    })
                    .ok());
  }
}

}  // namespace
}  // namespace snapshotter
