// Tests for startup recovery: every lost, stale, corrupt, foreign or newer
// database is refused without a byte under the root changing; a fresh root,
// a healthy store and a schema-1 database open.
#include "snapshotter/store_recovery.h"

#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/fsync_recorder.h"
#include "snapshotter/group_commit.h"
#include "snapshotter/store_state.h"
#include "snapshotter/wal_preallocation.h"

namespace snapshotter {
namespace {

using ::snapshotter::fsync_recorder::TakeFsynced;

using ::testing::HasSubstr;
using ::testing::Not;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A file's content, or nullopt if it is missing.
std::optional<std::string> ReadIfAny(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) return std::nullopt;
  return Read(path);
}

// Puts back what ReadIfAny read (removing a file that was missing).
void Restore(const std::string& path, const std::optional<std::string>& text) {
  if (text) {
    Write(path, *text);
  } else {
    unlink(path.c_str());
  }
}

// Every entry below `root` with its content ("<dir>" for directories).
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> tree;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    tree[e.path().string()] = e.is_directory() ? "<dir>" : Read(e.path());
  }
  return tree;
}

void Sql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

class StoreRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string root = std::string(getenv("TEST_TMPDIR") ?: "/tmp") +
                       "/recovery-" +
                       ::testing::UnitTest::GetInstance()
                           ->current_test_info()
                           ->name() +
                       "-" + std::to_string(getpid());
    RemoveAll(root).IgnoreError();
    dirs_ = std::make_unique<SnapshotDirs>(root);
    ASSERT_TRUE(dirs_->Init().ok());
  }

  absl::StatusOr<OpenedStore> Open() { return OpenStore(*dirs_); }

  // A healthy store with `n` snapshots (ids 1..n), each with its directory;
  // closed again.
  void MakeStore(int n) {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    for (int i = 1; i <= n; ++i) AddSnapshot(*opened->store, i);
  }

  // A committed layer (Commit recorded its usage) with a file, or, with
  // `kind` active/view or `inodes` 0 (a remote layer), a record without
  // content and an empty directory.
  void AddSnapshot(MetaStore& store, int64_t id, Kind kind = Kind::kCommitted,
                   int64_t inodes = 2, int64_t parent_id = 0,
                   bool make_dir = true) {
    ASSERT_TRUE(store
                    .Update([&](Transaction& tx) -> absl::Status {
                      auto st = tx.Prepare(
                          "INSERT INTO snapshots(id, key, kind, created_ns, "
                          "updated_ns, inodes, parent_id) "
                          "VALUES(?, ?, ?, 0, 0, ?, NULLIF(?, 0))");
                      if (!st.ok()) return st.status();
                      return st->Bind(1, id)
                          .Bind(2, absl::StrCat("key-", id))
                          .Bind(3, static_cast<int64_t>(kind))
                          .Bind(4, inodes)
                          .Bind(5, parent_id)
                          .Run();
                    })
                    .ok());
    if (!make_dir) return;
    bool data = kind == Kind::kCommitted && inodes > 0;
    MakeDir(id, data);
  }

  // snapshots/<id>/fs, with a file when `data`.
  void MakeDir(int64_t id, bool data) {
    ASSERT_EQ(mkdir(dirs_->SnapshotPath(id).c_str(), 0700), 0);
    ASSERT_EQ(mkdir(dirs_->FsPath(id).c_str(), 0755), 0);
    if (data) Write(dirs_->FsPath(id) + "/data", absl::StrCat("layer ", id));
  }

  // A crash imitated by what it leaves: after snapshot 2 on 1 was recorded
  // without a directory (a guest-pulled layer by default), the database
  // (and, `with_wal`, its -wal) as they were while the store was open, put
  // back with the marker and store-generation once it closed.
  void LeaveCrashed(bool with_wal, Kind kind = Kind::kCommitted) {
    std::string db, wal, marker;
    std::optional<std::string> generation;
    {
      auto opened = Open();
      ASSERT_TRUE(opened.ok());
      AddSnapshot(*opened->store, 2, kind, /*inodes=*/0, 1,
                  /*make_dir=*/false);
      db = Read(dirs_->MetadataPath());  // 2 is in the -wal only
      wal = Read(dirs_->MetadataPath() + "-wal");
      marker = Read(dirs_->OpenMarkerPath());
      generation = ReadIfAny(dirs_->GenerationPath());
    }
    Write(dirs_->MetadataPath(), db);
    if (with_wal) Write(dirs_->MetadataPath() + "-wal", wal);
    Write(dirs_->OpenMarkerPath(), marker);
    Restore(dirs_->GenerationPath(), generation);
  }

  // Opening must refuse and leave every byte under the root as it was.
  void ExpectRefused(const std::vector<std::string>& message_parts,
                     bool reset_helps = true) {
    auto before = Tree(dirs_->root());
    auto opened = Open();
    ASSERT_FALSE(opened.ok());
    EXPECT_TRUE(IsRefusal(opened.status())) << opened.status();
    for (const std::string& part : message_parts) {
      EXPECT_THAT(opened.status().message(), HasSubstr(part));
    }
    EXPECT_THAT(opened.status().message(), HasSubstr("Nothing was changed"));
    if (reset_helps) {
      EXPECT_THAT(opened.status().message(), HasSubstr("--reset-store"));
    } else {
      EXPECT_THAT(opened.status().message(), Not(HasSubstr("--reset-store")));
    }
    EXPECT_EQ(Tree(dirs_->root()), before);
  }

  std::unique_ptr<SnapshotDirs> dirs_;
};

TEST_F(StoreRecoveryTest, FreshRootCreatesStoreAndMarker) {
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_FALSE(opened->migrated_from_v1);
  std::string marker = Read(dirs_->StoreIdPath());
  ASSERT_EQ(marker.size(), 33u);
  std::string in_db;
  ASSERT_TRUE(opened->store
                  ->View([&](Transaction& tx) -> absl::Status {
                    auto id = ReadStoreId(tx);
                    if (!id.ok()) return id.status();
                    in_db = *id;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(in_db + "\n", marker);
}

TEST_F(StoreRecoveryTest, HealthyStoreReopens) {
  MakeStore(3);
  std::string marker = Read(dirs_->StoreIdPath());
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(Read(dirs_->StoreIdPath()), marker);
}

TEST_F(StoreRecoveryTest, DeletedDatabaseIsRefused) {
  MakeStore(2);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  ExpectRefused({"metadata.db is missing", "ids 1, 2"});
}

// The reset command in a refusal, given to the shell as the operator would
// paste it, acts on this root: one with a space, a quote and a "$" was
// written unquoted, and the shell split it or expanded "$HOME" into
// another path. A plain root stays unquoted.
TEST_F(StoreRecoveryTest, TheResetCommandNamesThisRootToTheShell) {
  for (const std::string suffix : {"", " it's $HOME (b)"}) {
    dirs_ = std::make_unique<SnapshotDirs>(dirs_->root() + suffix);
    ASSERT_TRUE(dirs_->Init().ok());
    MakeStore(1);
    ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
    auto opened = Open();
    ASSERT_FALSE(opened.ok());
    const std::string message(opened.status().message());
    const size_t begin = message.find("`containerd-guest-pull-grpc ");
    ASSERT_NE(begin, std::string::npos) << message;
    const size_t end = message.find('`', begin + 1);
    ASSERT_NE(end, std::string::npos) << message;
    std::string command = message.substr(begin + 1, end - begin - 1);
    if (suffix.empty()) {
      EXPECT_EQ(command, "containerd-guest-pull-grpc --root=" + dirs_->root() +
                             " --reset-store");
    }
    // The shell's words, one a line, instead of running the daemon.
    command.replace(0, strlen("containerd-guest-pull-grpc"), "printf '%s\\n'");
    FILE* shell = popen(command.c_str(), "r");
    ASSERT_NE(shell, nullptr);
    std::string words;
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof(buffer), shell)) > 0;) {
      words.append(buffer, n);
    }
    EXPECT_EQ(pclose(shell), 0) << command;
    EXPECT_EQ(words, "--root=" + dirs_->root() + "\n--reset-store\n")
        << command;
  }
}

// A creation cut short (a kill) leaves its metadata.db.new files only: the
// next start removes them and creates the store, quarantining nothing.
TEST_F(StoreRecoveryTest, CreationCutShortLeavesNothingBehind) {
  const std::string temp = dirs_->MetadataPath() + ".new";
  Write(temp, "half a database");
  Write(temp + "-wal", "frames");
  Write(temp + "-shm", "index");
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    EXPECT_NE(access((temp + suffix).c_str(), F_OK), 0) << suffix;
  }
  EXPECT_EQ(*dirs_->QuarantineCount(), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->records.empty());
}

TEST_F(StoreRecoveryTest, EmptyDatabaseIsRefused) {
  MakeStore(1);
  ASSERT_EQ(truncate(dirs_->MetadataPath().c_str(), 0), 0);
  ExpectRefused({"is empty (0 bytes)", "id 1"});
}

TEST_F(StoreRecoveryTest, CorruptHeaderIsRefused) {
  MakeStore(1);
  std::string db = Read(dirs_->MetadataPath());
  for (int i = 0; i < 100; ++i) db[i] = static_cast<char>(0x5a ^ i);
  Write(dirs_->MetadataPath(), db);
  ExpectRefused({"cannot be read"});
}

TEST_F(StoreRecoveryTest, CorruptPageIsRefused) {
  MakeStore(2);
  std::string db = Read(dirs_->MetadataPath());
  ASSERT_GE(db.size(), 3 * 4096u);
  for (size_t i = 4096; i < 3 * 4096; ++i) db[i] = static_cast<char>(i * 7);
  Write(dirs_->MetadataPath(), db);
  ExpectRefused({"cannot be read"});
}

TEST_F(StoreRecoveryTest, OtherSqliteFileIsRefused) {
  MakeStore(1);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  Sql(dirs_->MetadataPath(), "CREATE TABLE other(a)");
  ExpectRefused({"not a metadata database"});
}

// A directory in the place of metadata.db is named as such, not as
// SQLite's "disk I/O error", which points at the disk.
TEST_F(StoreRecoveryTest, DatabaseThatIsNotAFileIsRefusedAsSuch) {
  MakeStore(1);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  ASSERT_EQ(mkdir(dirs_->MetadataPath().c_str(), 0700), 0);
  ExpectRefused(
      {dirs_->MetadataPath() + " is not a regular file (a directory)"});
  EXPECT_THAT(Open().status().message(), Not(HasSubstr("I/O error")));
}

TEST_F(StoreRecoveryTest, ForeignDatabaseIsRefused) {
  MakeStore(1);
  Write(dirs_->StoreIdPath(), "0123456789abcdef0123456789abcdef\n");
  ExpectRefused({"belongs to store", "another root"});
}

TEST_F(StoreRecoveryTest, StaleCopyIsRefused) {
  MakeStore(2);
  std::string copy = Read(dirs_->MetadataPath());
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok());
    AddSnapshot(*opened->store, 3);
  }
  // The copy lacks snapshot 3; snapshot 1 was removed since.
  ASSERT_TRUE(RemoveAll(dirs_->SnapshotPath(1)).ok());
  Write(dirs_->MetadataPath(), copy);
  ExpectRefused({"records whose snapshot directories are missing", "id 1"});
  MakeDir(1, true);
  MakeDir(4, true);
  ExpectRefused({"never handed out", "ids 3, 4", "2 holding data",
                 "highest id is 2"});
}

TEST_F(StoreRecoveryTest, InterruptedBatchIsAccepted) {
  MakeStore(2);
  // A crash between the renames into place and the COMMIT of a batch leaves
  // its empty directories (creations never acknowledged, so nothing was
  // written in them) and at most one holding data, just past the counter.
  for (int id = 3; id <= 10; ++id) MakeDir(id, /*data=*/id == 7);
  MakeDir(2 + GroupCommitter::kMaxBatch, false);
  ASSERT_TRUE(Open().ok());
  // Not one batch: two holding data, or one beyond what a batch can reach.
  MakeDir(12, true);
  ExpectRefused({"never handed out", "2 holding data", "highest id is 2"});
  ASSERT_TRUE(RemoveAll(dirs_->SnapshotPath(12)).ok());
  MakeDir(3 + GroupCommitter::kMaxBatch, false);
  ExpectRefused({"never handed out", "1 holding data", "highest id is 2"});
}

// Active and view snapshots get their lost directories back at the start;
// a remote layer without content does not (it is made when a snapshot on
// it needs it, SnapshotterTest.EmptyRemoteLayerGetsItsDirectoryWhenNeeded).
TEST_F(StoreRecoveryTest, LostDirectoriesOfRecordsWithoutContentAreRecreated) {
  MakeStore(1);
  ASSERT_EQ(chmod(dirs_->FsPath(1).c_str(), 0750), 0);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok());
    // Made without a flush and lost in a power cut: an active snapshot on
    // layer 1, a view, a remote layer (committed without content); an
    // active one whose directory survived without its fs/ and work/.
    AddSnapshot(*opened->store, 2, Kind::kActive, 0, 1, /*make_dir=*/false);
    AddSnapshot(*opened->store, 3, Kind::kView, 0, 1, /*make_dir=*/false);
    AddSnapshot(*opened->store, 4, Kind::kCommitted, 0, 1,
                /*make_dir=*/false);
    AddSnapshot(*opened->store, 5, Kind::kActive, 0, 0, /*make_dir=*/false);
    ASSERT_EQ(mkdir(dirs_->SnapshotPath(5).c_str(), 0700), 0);
  }
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_NE(access(dirs_->SnapshotPath(4).c_str(), F_OK), 0);
  for (int id : {2, 3, 5}) {
    EXPECT_TRUE(SnapshotDirs::HoldsNoData(dirs_->SnapshotPath(id))) << id;
    EXPECT_EQ(access(dirs_->FsPath(id).c_str(), F_OK), 0) << id;
    EXPECT_EQ(access(dirs_->WorkPath(id).c_str(), F_OK) == 0,
              id == 2 || id == 5)
        << id;
  }
  struct stat st;
  ASSERT_EQ(stat(dirs_->FsPath(2).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);  // its parent's, as at Prepare
  ASSERT_EQ(stat(dirs_->FsPath(5).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // A layer a Commit recorded is never made again empty: refused.
  opened->store.reset();
  ASSERT_TRUE(RemoveAll(dirs_->SnapshotPath(1)).ok());
  ExpectRefused({"records whose snapshot directories are missing", "id 1"});
}

// A committed layer's content is its fs/: a start that finds its
// snapshot directory without one (deleted, or a file in its place) refuses
// as for a missing directory, instead of serving mounts on a lower
// directory that is not there.
TEST_F(StoreRecoveryTest, CommittedLayerWithoutItsFsIsRefused) {
  MakeStore(2);
  ASSERT_TRUE(RemoveAll(dirs_->FsPath(1)).ok());
  ExpectRefused({"committed layers whose snapshot directories hold no fs/",
                 "(id 1, e.g. " + dirs_->FsPath(1) + ")"});
  Write(dirs_->FsPath(1), "not a layer");
  ExpectRefused({"hold no fs/ directory", "id 1"});
  ASSERT_EQ(unlink(dirs_->FsPath(1).c_str()), 0);
  ASSERT_EQ(mkdir(dirs_->FsPath(1).c_str(), 0755), 0);
  auto opened = Open();
  EXPECT_TRUE(opened.ok()) << opened.status();
}

// What stands in the place of such a lost directory, or of its fs/ or
// work/, and is no directory (a file, a link to none) was not made by the
// daemon: it goes to quarantine, intact, and the empty directory is made
// (a file at fs/ is not chmod-ed). A link to a directory is used as it is:
// nothing is quarantined, made or chmod-ed through it.
TEST_F(StoreRecoveryTest,
       NonDirectoriesInPlaceOfLostDirectoriesAreQuarantined) {
  MakeStore(1);
  std::string outside = dirs_->root() + "-outside";
  ASSERT_TRUE(RemoveAll(outside).ok());
  ASSERT_EQ(mkdir(outside.c_str(), 0700), 0);
  Write(outside + "/kept", "a container's file");
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok());
    AddSnapshot(*opened->store, 2, Kind::kActive, 0, 1, /*make_dir=*/false);
    AddSnapshot(*opened->store, 3, Kind::kView, 0, 1, /*make_dir=*/false);
    AddSnapshot(*opened->store, 4, Kind::kActive, 0, 1, /*make_dir=*/false);
    AddSnapshot(*opened->store, 5, Kind::kView, 0, 1, /*make_dir=*/false);
  }
  Write(dirs_->SnapshotPath(2), "a file at 2");
  ASSERT_EQ(mkdir(dirs_->SnapshotPath(3).c_str(), 0700), 0);
  Write(dirs_->FsPath(3), "a file at 3/fs");
  ASSERT_EQ(chmod(dirs_->FsPath(3).c_str(), 0600), 0);
  ASSERT_EQ(mkdir(dirs_->SnapshotPath(4).c_str(), 0700), 0);
  ASSERT_EQ(mkdir(dirs_->FsPath(4).c_str(), 0755), 0);
  ASSERT_EQ(symlink("/nonexistent", dirs_->WorkPath(4).c_str()), 0);
  ASSERT_EQ(mkdir(dirs_->SnapshotPath(5).c_str(), 0700), 0);
  ASSERT_EQ(symlink(outside.c_str(), dirs_->FsPath(5).c_str()), 0);

  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  struct stat st;
  for (int id : {2, 3, 4}) {
    ASSERT_EQ(lstat(dirs_->SnapshotPath(id).c_str(), &st), 0) << id;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << id;
    EXPECT_TRUE(SnapshotDirs::HoldsNoData(dirs_->SnapshotPath(id))) << id;
    ASSERT_EQ(lstat(dirs_->FsPath(id).c_str(), &st), 0) << id;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << id;
  }
  ASSERT_EQ(lstat(dirs_->WorkPath(4).c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(lstat(dirs_->FsPath(5).c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(Read(outside + "/kept"), "a container's file");
  ASSERT_EQ(stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  std::map<std::string, std::string> quarantined;
  for (const auto& e :
       std::filesystem::directory_iterator(dirs_->QuarantineDir())) {
    std::string name = e.path().filename().string();
    std::string what = name.substr(name.find('-') + 1);
    quarantined[what] =
        e.is_symlink()
            ? "-> " + std::filesystem::read_symlink(e.path()).string()
            : Read(e.path());
    if (what == "3-fs") {
      ASSERT_EQ(lstat(e.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 0600u);  // not given fs/'s mode
    }
  }
  EXPECT_EQ(quarantined, (std::map<std::string, std::string>{
                             {"2", "a file at 2"},
                             {"3-fs", "a file at 3/fs"},
                             {"4-work", "-> /nonexistent"}}));
  ASSERT_TRUE(RemoveAll(outside).ok());
}

TEST_F(StoreRecoveryTest, LostWalIsRefused) {
  MakeStore(1);  // closed: checkpointed into metadata.db
  std::string checkpointed;
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok());
    AddSnapshot(*opened->store, 2);
    AddSnapshot(*opened->store, 3);
    // These commits are in metadata.db-wal only.
    checkpointed = Read(dirs_->MetadataPath());
  }
  Write(dirs_->MetadataPath(), checkpointed);
  unlink((dirs_->MetadataPath() + "-wal").c_str());
  unlink((dirs_->MetadataPath() + "-shm").c_str());
  ExpectRefused({"never handed out", "ids 2, 3", "highest id is 1"});
}

TEST_F(StoreRecoveryTest, OpenStoreIsMarkedUntilItCloses) {
  std::string marker = dirs_->OpenMarkerPath();
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(access(marker.c_str(), F_OK), 0);
  }
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
  EXPECT_NE(access((dirs_->MetadataPath() + "-wal").c_str(), F_OK), 0);
}

// Guest-pulled layers leave no directory: without the marker their lost
// records could not be seen.
TEST_F(StoreRecoveryTest, LostWalAfterACrashIsRefused) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/false);
  ExpectRefused({"store-open shows the store was not closed cleanly",
                 "metadata.db-wal is missing", "a lost -wal",
                 "remove " + dirs_->OpenMarkerPath()});
}

// A directory in the place of store-open was not made by the daemon: it
// was refused as a lost -wal, which sent the operator after the database.
TEST_F(StoreRecoveryTest, StoreOpenThatIsNoFileIsRefusedAsSuch) {
  MakeStore(1);  // closed cleanly: no -wal
  ASSERT_EQ(mkdir(dirs_->OpenMarkerPath().c_str(), 0700), 0);
  ExpectRefused({dirs_->OpenMarkerPath() + " is not a regular file (a directory)",
                 "remove it and start again"},
                /*reset_helps=*/false);
  auto opened = Open();
  EXPECT_THAT(opened.status().message(), Not(HasSubstr("lost -wal")));
  ASSERT_EQ(rmdir(dirs_->OpenMarkerPath().c_str()), 0);
  EXPECT_TRUE(Open().ok());
}

// sqlite3 -readonly, run on a root whose -wal was lost, makes an empty one:
// the marker says the -wal had its header, so that one is no proof.
TEST_F(StoreRecoveryTest, LostWalMadeAgainEmptyIsRefused) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/false);
  Write(dirs_->MetadataPath() + "-wal", "");
  ExpectRefused({"store-open shows the store was not closed cleanly",
                 "metadata.db-wal is without a WAL header (it had one",
                 "a lost -wal"});
  // Zeros (a preallocated -wal) are not a header either.
  Write(dirs_->MetadataPath() + "-wal", std::string(8192, '\0'));
  ExpectRefused({"metadata.db-wal is without a WAL header (it had one"});
}

// A marker from a release that wrote it empty proves nothing about the
// header: such a store opens as before (losing what the -wal held).
TEST_F(StoreRecoveryTest, EmptyWalUnderAnOldMarkerOpens) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/false);
  Write(dirs_->MetadataPath() + "-wal", "");
  Write(dirs_->OpenMarkerPath(), "");
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1}));
}

// The -wal a start makes (the last clean stop deleted the previous one)
// has its header on disk before the marker says so: a crash before any
// change is not taken for a lost -wal.
TEST_F(StoreRecoveryTest, CrashBeforeAnyChangeReopens) {
  MakeStore(1);
  std::string db, wal, marker;
  std::optional<std::string> generation;
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
    EXPECT_TRUE(WalHasHeader(dirs_->MetadataPath()));
    db = Read(dirs_->MetadataPath());
    wal = Read(dirs_->MetadataPath() + "-wal");
    marker = Read(dirs_->OpenMarkerPath());
    generation = ReadIfAny(dirs_->GenerationPath());
  }
  EXPECT_EQ(marker, "wal-header\n");
  Write(dirs_->MetadataPath(), db);
  Write(dirs_->MetadataPath() + "-wal", wal);
  Write(dirs_->OpenMarkerPath(), marker);
  Restore(dirs_->GenerationPath(), generation);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1}));
}

// A marker a crash left is made again only to record the -wal's header;
// if that fails, the start goes on with the marker as it was (and the
// -wal), where failing it would close the store and delete the -wal.
TEST_F(StoreRecoveryTest, MarkerThatCannotBeRewrittenIsKept) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/true);
  Write(dirs_->OpenMarkerPath(), "");  // as an older release left it
  const std::string temp = dirs_->OpenMarkerPath() + ".new";
  ASSERT_EQ(mkdir(temp.c_str(), 0700), 0);  // the rewrite cannot be made
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2}));
    ASSERT_TRUE(opened->store->FinishOpen().ok());
    EXPECT_EQ(Read(dirs_->OpenMarkerPath()), "");
  }
  ASSERT_EQ(rmdir(temp.c_str()), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2}));
}

// The start-up's writes (the -wal's header, the marker) wait for the
// first write: a crash before them leaves no marker, and the next start
// opens as after a clean stop.
TEST_F(StoreRecoveryTest, CrashBeforeTheStartUpWritesReopens) {
  MakeStore(1);
  std::string db;
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_NE(access(dirs_->OpenMarkerPath().c_str(), F_OK), 0);
    ASSERT_TRUE(opened->store
                    ->View([&](Transaction& tx) -> absl::Status {
                      EXPECT_THAT(*RecordIds(tx), testing::ElementsAre(1));
                      return absl::OkStatus();
                    })
                    .ok());
    db = Read(dirs_->MetadataPath());
  }
  Write(dirs_->MetadataPath(), db);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1}));
}

// A start that cannot make its marker takes no write, keeping the -wal
// (the close does not fold it): the next start opens as after a crash
// before it.
TEST_F(StoreRecoveryTest, FailedMarkingKeepsTheWal) {
  MakeStore(1);
  const std::string temp = dirs_->OpenMarkerPath() + ".new";
  ASSERT_EQ(mkdir(temp.c_str(), 0700), 0);  // the marker cannot be made
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    absl::Status finished = opened->store->FinishOpen();
    EXPECT_THAT(finished.message(), HasSubstr("store-open"));
    absl::Status write = opened->store->Update(
        [](Transaction& tx) { return tx.Exec("DELETE FROM labels"); });
    EXPECT_FALSE(write.ok());
    EXPECT_THAT(write.message(), HasSubstr("takes no writes"));
    EXPECT_THAT(write.message(), HasSubstr("store-open"));
  }
  EXPECT_EQ(access((dirs_->MetadataPath() + "-wal").c_str(), F_OK), 0);
  EXPECT_NE(access(dirs_->OpenMarkerPath().c_str(), F_OK), 0);
  ASSERT_EQ(rmdir(temp.c_str()), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1}));
  ASSERT_TRUE(opened->store->FinishOpen().ok());
  EXPECT_EQ(Read(dirs_->OpenMarkerPath()), "wal-header\n");
}

// store-id is read only if it is a regular file: a FIFO put there is
// refused, not waited on.
TEST_F(StoreRecoveryTest, StoreIdThatIsNotAFileIsRefused) {
  MakeStore(1);
  ASSERT_EQ(unlink(dirs_->StoreIdPath().c_str()), 0);
  ASSERT_EQ(mkfifo(dirs_->StoreIdPath().c_str(), 0600), 0);
  auto opened = Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(IsRefusal(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(),
              HasSubstr("is not a regular file"));
  unlink(dirs_->StoreIdPath().c_str());  // Tree() would block on it
}

// A damaged store-id (zeros, cut short, edited) is not another store's:
// the refusal says to remove it (it is written again from the database),
// not that the database comes from another root, and quotes the bytes
// escaped.
TEST_F(StoreRecoveryTest, DamagedStoreIdIsRefusedAsDamaged) {
  MakeStore(1);
  const std::string id = Read(dirs_->StoreIdPath());
  ASSERT_EQ(id.size(), 33u);
  for (const std::string& damaged :
       {std::string(33, '\0'), id.substr(0, 10), std::string("not an id\n"),
        absl::AsciiStrToUpper(id)}) {
    SCOPED_TRACE(absl::CHexEscape(damaged));
    Write(dirs_->StoreIdPath(), damaged);
    ExpectRefused({dirs_->StoreIdPath() + " does not hold a store id",
                   "remove " + dirs_->StoreIdPath() + " and start again"});
    auto opened = Open();
    EXPECT_THAT(opened.status().message(), Not(HasSubstr("another root")));
    EXPECT_THAT(opened.status().message(),
                Not(HasSubstr(std::string(1, '\0'))));
  }
  ASSERT_EQ(unlink(dirs_->StoreIdPath().c_str()), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(Read(dirs_->StoreIdPath()), id);
}

TEST_F(StoreRecoveryTest, CrashWithItsWalReopens) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/true);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2}));
}

// A crash after snapshots 2..6 were recorded one transaction each
// (guest-pulled layers: no directories), then a byte of the -wal changed
// by the disk. In the third of those transactions: SQLite's recovery
// would drop it and the three after it, acknowledged, without a word (the
// layers' records gone, nothing on disk to show it): refused, naming the
// frame. In the last one (torn by the crash, never acknowledged): opens
// with the others.
TEST_F(StoreRecoveryTest, DamagedWalFrameBeforeAcknowledgedOnesIsRefused) {
  MakeStore(1);
  std::string db, wal, marker;
  std::optional<std::string> generation;
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok());
    for (int id = 2; id <= 6; ++id) {
      AddSnapshot(*opened->store, id, Kind::kCommitted, /*inodes=*/0, 1,
                  /*make_dir=*/false);
    }
    db = Read(dirs_->MetadataPath());
    wal = Read(dirs_->MetadataPath() + "-wal");
    marker = Read(dirs_->OpenMarkerPath());
    generation = ReadIfAny(dirs_->GenerationPath());
  }
  // The first frame of each transaction, by the commit frames' marks.
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(wal[at + i]);
    return v;
  };
  size_t frame = 24 + be32(8);
  std::vector<size_t> firsts{32};
  for (size_t at = 32; at + frame <= wal.size() && be32(at) != 0; at += frame) {
    if (be32(at + 4) != 0) firsts.push_back(at + frame);
  }
  firsts.pop_back();  // past the last commit
  ASSERT_GE(firsts.size(), 5u);
  auto put_back = [&](size_t damaged) {
    std::string w = wal;
    w[damaged] = static_cast<char>(w[damaged] ^ 0x5a);
    Write(dirs_->MetadataPath(), db);
    Write(dirs_->MetadataPath() + "-wal", w);
    Write(dirs_->OpenMarkerPath(), marker);
    Restore(dirs_->GenerationPath(), generation);
  };
  size_t third = firsts[firsts.size() - 3];
  put_back(third + 24 + 64);
  auto before = Tree(dirs_->root());
  auto refused = Open();
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsRefusal(refused.status())) << refused.status();
  for (const std::string& part :
       {absl::StrCat("(byte ", third, ") of ", dirs_->MetadataPath(), "-wal"),
        std::string("drops the 3 written whole after it"),
        std::string("the disk changed data it had flushed"),
        std::string("smartctl"), std::string("--reset-store")}) {
    EXPECT_THAT(refused.status().message(), HasSubstr(part));
  }
  auto after = Tree(dirs_->root());
  after.erase(dirs_->MetadataPath() + "-shm");  // SQLite's read made it
  EXPECT_EQ(after, before);
  put_back(firsts.back() + 24 + 64);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2, 3, 4, 5}));
}

// A start after a crash that fails (here: the lost directory of an active
// snapshot cannot be made again, as the file in its place cannot be moved
// to quarantine) never leaves the marker without the -wal (it closes the
// store as a clean stop does, or keeps both), so the next start is not
// taken for a lost -wal.
TEST_F(StoreRecoveryTest, FailedStartAfterACrashIsNotALostWal) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/true, Kind::kActive);
  Write(dirs_->SnapshotPath(2), "not a directory");
  Write(dirs_->QuarantineDir(), "not a directory either");
  auto failed = Open();
  ASSERT_FALSE(failed.ok());
  EXPECT_FALSE(IsRefusal(failed.status())) << failed.status();
  bool wal = access((dirs_->MetadataPath() + "-wal").c_str(), F_OK) == 0;
  bool marker = access(dirs_->OpenMarkerPath().c_str(), F_OK) == 0;
  EXPECT_TRUE(wal || !marker);
  ASSERT_EQ(unlink(dirs_->SnapshotPath(2).c_str()), 0);
  ASSERT_EQ(unlink(dirs_->QuarantineDir().c_str()), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2}));
}

// Another process holding metadata.db locked (sqlite3 with
// locking_mode=EXCLUSIVE) past the busy wait: a temporary condition of a
// good store, so no refusal (systemd restarts a failed start) and no
// --reset-store advice, the file and the way to find the holder named.
// Both ways in: the survey (a -wal left by a crash) and the open for
// writing (after a clean stop, no -wal).
TEST_F(StoreRecoveryTest, DatabaseLockedByAnotherProcessIsNotARefusal) {
  MakeStore(1);
  for (bool crashed : {true, false}) {
    SCOPED_TRACE(crashed ? "after a crash" : "after a clean stop");
    if (crashed) LeaveCrashed(/*with_wal=*/true);
    sqlite3* holder = nullptr;
    ASSERT_EQ(sqlite3_open(dirs_->MetadataPath().c_str(), &holder), SQLITE_OK);
    // Closing it must not fold the crash's -wal into the database (which
    // the next start would take for a lost -wal, as it says).
    sqlite3_db_config(holder, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    ASSERT_EQ(sqlite3_exec(holder,
                           "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; "
                           "SELECT COUNT(*) FROM snapshots;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    auto before = Tree(dirs_->root());
    auto opened = Open();
    ASSERT_FALSE(opened.ok());
    EXPECT_TRUE(absl::IsUnavailable(opened.status())) << opened.status();
    EXPECT_FALSE(IsRefusal(opened.status()));
    EXPECT_THAT(opened.status().message(),
                HasSubstr(dirs_->MetadataPath() + ": "));
    EXPECT_THAT(opened.status().message(), HasSubstr("by another process"));
    EXPECT_THAT(opened.status().message(),
                HasSubstr("fuser -v " + dirs_->MetadataPath()));
    EXPECT_THAT(opened.status().message(), Not(HasSubstr("--reset-store")));
    EXPECT_EQ(Tree(dirs_->root()), before);
    sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    auto reopened = Open();
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ(reopened->records.count(1), 1u);
  }
}

TEST_F(StoreRecoveryTest, NewerSchemaIsRefusedUntouched) {
  MakeStore(1);
  Sql(dirs_->MetadataPath(), "PRAGMA user_version=3");
  ExpectRefused({"schema version 3", "newer than this daemon's (2)"},
                /*reset_helps=*/false);
  EXPECT_NE(access((dirs_->MetadataPath() + "-wal").c_str(), F_OK), 0);
}

TEST_F(StoreRecoveryTest, MissingMarkerIsRewrittenFromTheDatabase) {
  MakeStore(1);
  std::string marker = Read(dirs_->StoreIdPath());
  ASSERT_EQ(unlink(dirs_->StoreIdPath().c_str()), 0);
  ASSERT_TRUE(Open().ok());
  EXPECT_EQ(Read(dirs_->StoreIdPath()), marker);
}

// A store's lost database is refused even without a snapshot directory: a
// guest-pulled layer has none, so the store may have held records.
TEST_F(StoreRecoveryTest, LostDatabaseWithoutDirectoriesIsRefused) {
  MakeStore(0);
  std::string marker = Read(dirs_->StoreIdPath());
  marker = marker.substr(0, marker.find('\n'));
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  ExpectRefused(
      {"metadata.db is missing", "names store " + marker, "records are lost"});
}

// A root with neither a database nor a marker (a store never created) is
// a new store; a stray -wal there is kept aside, not replayed.
TEST_F(StoreRecoveryTest, RootWithoutStoreStartsEmpty) {
  MakeStore(0);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  ASSERT_EQ(unlink(dirs_->StoreIdPath().c_str()), 0);
  Write(dirs_->MetadataPath() + "-wal", "stray");
  ASSERT_TRUE(Open().ok());
  EXPECT_FALSE(Read(dirs_->StoreIdPath()).empty());
  EXPECT_EQ(*dirs_->QuarantineCount(), 1);  // the stray -wal, kept
}

// OpenStore is given the root as the start leaves it before the checks
// (SnapshotDirs::MakeRoot: no snapshots/ yet, any mode): a refusal keeps
// it so; the store accepted, the root gets its mode and snapshots/.
TEST_F(StoreRecoveryTest, LayoutIsMadeOnlyOnceTheStoreIsAccepted) {
  MakeStore(0);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  ASSERT_EQ(rmdir(dirs_->SnapshotsDir().c_str()), 0);
  ASSERT_EQ(chmod(dirs_->root().c_str(), 0755), 0);
  ExpectRefused({"metadata.db is missing", "records are lost"});
  struct stat st;
  ASSERT_EQ(stat(dirs_->root().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_NE(access(dirs_->SnapshotsDir().c_str(), F_OK), 0);
  ASSERT_EQ(unlink(dirs_->StoreIdPath().c_str()), 0);  // a store never made
  ASSERT_TRUE(Open().ok());
  ASSERT_EQ(stat(dirs_->root().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(stat(dirs_->SnapshotsDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

// A store a crash left, with its -wal, refused (here: another store's
// id): the database and its -wal are only read; the one entry that may
// change is SQLite's -shm, the -wal's index, which any reader makes.
TEST_F(StoreRecoveryTest, RefusalOfACrashedStoreChangesNothingButTheShm) {
  MakeStore(1);
  LeaveCrashed(/*with_wal=*/true);
  Write(dirs_->StoreIdPath(), "0123456789abcdef0123456789abcdef\n");
  auto before = Tree(dirs_->root());
  auto opened = Open();
  EXPECT_TRUE(IsRefusal(opened.status())) << opened.status();
  auto after = Tree(dirs_->root());
  after.erase(dirs_->MetadataPath() + "-shm");
  EXPECT_EQ(after, before);
}

// The generation recorded in the database (0: none).
int64_t DbGeneration(const SnapshotDirs& dirs) {
  int64_t generation = -1;
  auto reader = MetaStore::Open(dirs.MetadataPath(), MetaStore::Mode::kReadOnly);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return -1;
  EXPECT_TRUE((*reader)
                  ->View([&](Transaction& tx) -> absl::Status {
                    EXPECT_EQ(*ReadSchemaVersion(tx), 2);
                    auto g = ReadGeneration(tx);
                    if (!g.ok()) return g.status();
                    generation = *g;
                    return absl::OkStatus();
                  })
                  .ok());
  return generation;
}

// store-id without its newline.
std::string StoreIdOf(const SnapshotDirs& dirs) {
  std::string id = Read(dirs.StoreIdPath());
  return id.substr(0, id.find('\n'));
}

// Each clean stop advances the store's generation, in the database (the
// schema version stays 2: older releases open it) and then in
// store-generation; store-id keeps its format (the id alone). A close
// whose start-up writes never ran (nothing written) changes neither.
TEST_F(StoreRecoveryTest, CleanStopsAdvanceTheGeneration) {
  MakeStore(1);
  std::string id = StoreIdOf(*dirs_);
  EXPECT_EQ(Read(dirs_->StoreIdPath()), id + "\n");
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 1\n");
  EXPECT_EQ(DbGeneration(*dirs_), 1);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 1\n");
  EXPECT_EQ(DbGeneration(*dirs_), 1);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 2\n");
  EXPECT_EQ(DbGeneration(*dirs_), 2);
  EXPECT_EQ(Read(dirs_->StoreIdPath()), id + "\n");
}

// The reviewer's case at the store level: a copy of metadata.db taken
// after a clean stop, put back after the next one. It passes every other
// check (the snapshot created since is an empty directory within a batch
// of the copy's last id, taken for a creation a crash interrupted).
TEST_F(StoreRecoveryTest, CopyFromBeforeTheLastCleanStopIsRefused) {
  MakeStore(1);
  std::string copy = Read(dirs_->MetadataPath());
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    AddSnapshot(*opened->store, 2, Kind::kActive, 0, 1);
  }
  std::string current = Read(dirs_->MetadataPath());
  Write(dirs_->MetadataPath(), copy);
  ExpectRefused({"metadata.db is at generation 1 but",
                 "store-generation shows the store was stopped cleanly at "
                 "generation 2",
                 "an old copy, taken before the store's last clean stop",
                 "put the matching metadata.db"});
  // The database of the last stop opens.
  Write(dirs_->MetadataPath(), current);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->records, (std::set<int64_t>{1, 2}));
}

// A copy taken while the store was open (the database and its -wal), put
// back after the store was stopped cleanly: it misses the writes after
// it, and is refused as well.
TEST_F(StoreRecoveryTest, CopyTakenWhileOpenIsRefusedAfterACleanStop) {
  MakeStore(1);
  std::string db, wal;
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    AddSnapshot(*opened->store, 2, Kind::kActive, 0, 1);
    db = Read(dirs_->MetadataPath());
    wal = Read(dirs_->MetadataPath() + "-wal");
    AddSnapshot(*opened->store, 3, Kind::kActive, 0, 1);
  }
  Write(dirs_->MetadataPath(), db);
  Write(dirs_->MetadataPath() + "-wal", wal);
  // Not ExpectRefused: reading a database with a -wal makes its -shm.
  auto opened = Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(IsRefusal(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("is at generation 1 but"));
  EXPECT_THAT(opened.status().message(), HasSubstr("at generation 2"));
  EXPECT_EQ(Read(dirs_->MetadataPath()), db);
  EXPECT_EQ(Read(dirs_->MetadataPath() + "-wal"), wal);
}

// A crash leaves the generation where the last clean stop put it: the
// start after it is accepted (CrashWithItsWalReopens), and so is one
// after a stop cut between the database's advance and store-generation's
// (the database ahead). The next clean stop goes on from the database's.
TEST_F(StoreRecoveryTest, DatabaseAheadOfStoreGenerationOpens) {
  MakeStore(1);
  std::string id = StoreIdOf(*dirs_);
  std::string first = Read(dirs_->GenerationPath());
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  Write(dirs_->GenerationPath(), first);  // its rename lost
  EXPECT_EQ(DbGeneration(*dirs_), 2);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 3\n");
  EXPECT_EQ(DbGeneration(*dirs_), 3);
}

// A store from a release without generations (no store_generation table,
// no store-generation) opens, and gets its generation at its next clean
// stop; so does one whose store-generation was deleted.
TEST_F(StoreRecoveryTest, StoreWithoutAGenerationOpensAndGetsOne) {
  MakeStore(1);
  std::string id = StoreIdOf(*dirs_);
  Sql(dirs_->MetadataPath(), "DROP TABLE store_generation");
  ASSERT_EQ(unlink(dirs_->GenerationPath().c_str()), 0);
  EXPECT_EQ(DbGeneration(*dirs_), 0);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->records, (std::set<int64_t>{1}));
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 1\n");
  EXPECT_EQ(DbGeneration(*dirs_), 1);
  ASSERT_EQ(unlink(dirs_->GenerationPath().c_str()), 0);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 2\n");
}

// A store-generation naming another store (a --reset-store of a release
// that does not know the file leaves it) is ignored and rewritten at the
// next clean stop; one that does not read "<id> <generation>" is refused.
TEST_F(StoreRecoveryTest, StoreGenerationOfAnotherStoreIsIgnored) {
  MakeStore(1);
  std::string id = StoreIdOf(*dirs_);
  Write(dirs_->GenerationPath(), "0123456789abcdef0123456789abcdef 9\n");
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  EXPECT_EQ(Read(dirs_->GenerationPath()), id + " 2\n");
  Write(dirs_->GenerationPath(), id + "\n");
  ExpectRefused({"store-generation does not read \"<store id> <generation>\""});
  Write(dirs_->GenerationPath(), id + " two\n");
  ExpectRefused({"store-generation does not read"});
  // Anything after the first line is left for a later release.
  Write(dirs_->GenerationPath(), id + " 2 more\nnext line\n");
  EXPECT_TRUE(Open().ok());
}

// A store-generation that cannot be read is refused with the reason, not
// taken for "not a regular file": here a symlink (never followed).
TEST_F(StoreRecoveryTest, UnreadableStoreGenerationIsRefusedWithTheReason) {
  MakeStore(1);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  const std::string path = dirs_->GenerationPath();
  ASSERT_EQ(rename(path.c_str(), (path + ".real").c_str()), 0);
  ASSERT_EQ(symlink("store-generation.real", path.c_str()), 0);
  ExpectRefused({"open " + path, strerror(ELOOP)});
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  ExpectRefused({path + " is not a regular file"});
  ASSERT_EQ(rmdir(path.c_str()), 0);
  ASSERT_EQ(rename((path + ".real").c_str(), path.c_str()), 0);
  EXPECT_TRUE(Open().ok());
}

// A store-id or store-generation that cannot be read (the database being
// this root's latest) is recovered by removing the file, which the start
// or the next clean stop writes again: the refusal says so, rather than
// only to put back another metadata.db or to reset the store (which would
// make every image be pulled again). docs/operations.md.
TEST_F(StoreRecoveryTest, UnreadableMarkerFileRefusalSaysToRemoveIt) {
  MakeStore(1);
  {
    auto opened = Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->store->FinishOpen().ok());
  }
  const std::string generation = dirs_->GenerationPath();
  const std::string kept = Read(generation);
  Write(generation, "garbage\n");
  ExpectRefused({"store-generation does not read",
                 "remove " + generation + " and start again"});
  Write(generation, kept);
  const std::string store_id = dirs_->StoreIdPath();
  const std::string id = Read(store_id);
  Write(store_id, "");
  ExpectRefused({store_id + " is empty",
                 "remove " + store_id + " and start again"});
  Write(store_id, id);
  EXPECT_TRUE(Open().ok());
}

std::string V1Fixture() { return Read("snapshotter/testdata/metadata_v1.sql"); }

TEST_F(StoreRecoveryTest, SchemaOneIsMigrated) {
  std::string sql = V1Fixture();
  ASSERT_FALSE(sql.empty());
  Sql(dirs_->MetadataPath(), sql);
  for (int id : {1, 2}) {
    ASSERT_EQ(mkdir(dirs_->SnapshotPath(id).c_str(), 0700), 0);
  }
  ASSERT_EQ(mkdir(dirs_->FsPath(1).c_str(), 0755), 0);  // layer-1's content
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->migrated_from_v1);
  ASSERT_TRUE(opened->store
                  ->View([&](Transaction& tx) -> absl::Status {
                    EXPECT_EQ(*ReadSchemaVersion(tx), 2);
                    EXPECT_EQ(*ReadStoreId(tx) + "\n",
                              Read(dirs_->StoreIdPath()));
                    EXPECT_EQ(*IdCounter(tx), 3);
                    EXPECT_THAT(*RecordIds(tx), testing::ElementsAre(1, 2));
                    EXPECT_TRUE(JournalledIds(tx)->empty());
                    auto st = tx.Prepare(
                        "SELECT value FROM labels WHERE snapshot_id = 1");
                    if (!st.ok()) return st.status();
                    EXPECT_TRUE(*st->Step());
                    EXPECT_EQ(st->ColumnText(0), "sha256:abc");
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_F(StoreRecoveryTest, SchemaOneUnderAMarkedRootIsAnOldCopy) {
  MakeStore(0);
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  Sql(dirs_->MetadataPath(), V1Fixture());
  for (int id : {1, 2}) {
    ASSERT_EQ(mkdir(dirs_->SnapshotPath(id).c_str(), 0700), 0);
  }
  ExpectRefused({"carries no store id", "old copy"});
}

TEST_F(StoreRecoveryTest, ResetStoreQuarantinesEverythingAndStartsFresh) {
  MakeStore(2);
  std::string marker = Read(dirs_->StoreIdPath());
  ASSERT_EQ(unlink(dirs_->MetadataPath().c_str()), 0);
  Write(dirs_->OpenMarkerPath(), "");  // as a crash leaves it
  ASSERT_FALSE(Open().ok());
  auto moved = ResetStore(*dirs_);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(access((*moved + "/snapshots/1").c_str(), F_OK), 0);
  EXPECT_EQ(access((*moved + "/snapshots/2").c_str(), F_OK), 0);
  EXPECT_EQ(Read(*moved + "/store-id"), marker);
  EXPECT_EQ(access((*moved + "/store-open").c_str(), F_OK), 0);
  EXPECT_EQ(access((*moved + "/store-generation").c_str(), F_OK), 0);
  EXPECT_NE(access(dirs_->GenerationPath().c_str(), F_OK), 0);
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_NE(Read(dirs_->StoreIdPath()), marker);
  EXPECT_TRUE(dirs_->List()->ids.empty());
}

// The reset's directory in quarantine/ is flushed before the root, whose
// flush makes the store's files leave it: a power cut in between must not
// leave them named nowhere.
TEST_F(StoreRecoveryTest, ResetStoreFlushesItsQuarantineEntryBeforeTheRoot) {
  MakeStore(1);
  TakeFsynced();
  auto moved = ResetStore(*dirs_);
  ASSERT_TRUE(moved.ok()) << moved.status();
  std::vector<std::string> synced = TakeFsynced();
  auto quarantine =
      std::find(synced.begin(), synced.end(), dirs_->QuarantineDir());
  // The root's flush after the moves follows the reset directory's (an
  // earlier one names a new quarantine/, a later one Init's snapshots/).
  auto dest = std::find(synced.begin(), synced.end(), *moved);
  ASSERT_NE(dest, synced.end()) << ::testing::PrintToString(synced);
  auto root = std::find(dest, synced.end(), dirs_->root());
  ASSERT_NE(quarantine, synced.end()) << ::testing::PrintToString(synced);
  ASSERT_NE(root, synced.end()) << ::testing::PrintToString(synced);
  EXPECT_LT(quarantine, root) << ::testing::PrintToString(synced);
}

// An operator's file beside the store: the reset's root still starts (its
// quarantine shows whose root it is).
TEST_F(StoreRecoveryTest, ResetStoreOfARootWithAnOperatorsFileStillStarts) {
  MakeStore(1);
  Write(dirs_->root() + "/README.operator", "x");
  auto moved = ResetStore(*dirs_);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_NE(*moved, "");
  EXPECT_TRUE(dirs_->Init().ok());
  EXPECT_TRUE(Open().ok());
}

// A file in the place of snapshots/ is refused (not a start failing on
// opendir's ENOTDIR every time systemd restarts it), and --reset-store
// moves it to quarantine like a snapshots/ directory.
TEST_F(StoreRecoveryTest, SnapshotsThatIsNotADirectoryIsRefusedAndReset) {
  MakeStore(1);
  ASSERT_TRUE(RemoveAll(dirs_->SnapshotsDir()).ok());
  Write(dirs_->SnapshotsDir(), "not the snapshots");
  ExpectRefused({dirs_->SnapshotsDir() + " is not a directory",
                 "put it back in the place of " + dirs_->SnapshotsDir()});
  auto moved = ResetStore(*dirs_);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(Read(*moved + "/snapshots"), "not the snapshots");
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->records.empty());
}

TEST_F(StoreRecoveryTest, ResetStoreOfAMissingOrEmptyRootMovesNothing) {
  SnapshotDirs missing(dirs_->root() + "-missing");
  auto moved = ResetStore(missing);
  EXPECT_TRUE(absl::IsNotFound(moved.status())) << moved.status();
  EXPECT_NE(moved.status().message().find("does not exist"), std::string::npos);
  EXPECT_NE(access(missing.root().c_str(), F_OK), 0);  // not created
  moved = ResetStore(*dirs_);  // Init made it, nothing in it
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, "");
  EXPECT_NE(access(dirs_->QuarantineDir().c_str(), F_OK), 0);
  EXPECT_TRUE(Open().ok());
}

// A root that holds nothing to reset (an empty directory, as mkdir makes
// it) is left exactly as it was: the reset made snapshots/ and the lock
// and chmodded it 0700, a store's layout where there was none.
TEST_F(StoreRecoveryTest, ResetStoreOfAnEmptyDirectoryMakesNothing) {
  SnapshotDirs empty(dirs_->root() + "-empty");
  ASSERT_EQ(mkdir(empty.root().c_str(), 0755), 0);
  ASSERT_EQ(chmod(empty.root().c_str(), 0755), 0);  // whatever the umask
  auto moved = ResetStore(empty);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, "");
  std::vector<std::string> entries;
  for (const auto& entry : std::filesystem::directory_iterator(empty.root())) {
    entries.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(entries, ::testing::IsEmpty());
  struct stat st;
  ASSERT_EQ(stat(empty.root().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // Still a root a daemon takes.
  EXPECT_TRUE(empty.Init().ok());
}

}  // namespace
}  // namespace snapshotter
