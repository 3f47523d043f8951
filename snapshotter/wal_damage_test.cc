// Tests for finding damage in a SQLite WAL, on logs SQLite writes.
#include "snapshotter/wal_damage.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

uint32_t Get32(const std::string& d, size_t at) {
  auto b = [&](size_t i) { return uint32_t{static_cast<unsigned char>(d[i])}; };
  return (b(at) << 24) | (b(at + 1) << 16) | (b(at + 2) << 8) | b(at + 3);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "");
}

class WalDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(getenv("TEST_TMPDIR") ?: "/tmp", "/wal-damage-",
                        ::testing::UnitTest::GetInstance()
                            ->current_test_info()
                            ->name(),
                        "-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  // A database whose -wal holds `n` transactions (a table, then one row
  // each), copied to db_ / wal_ as a crash leaves them: never folded.
  void MakeLog(int n) {
    std::string live = dir_ + "/live.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(live.c_str(), &db), SQLITE_OK);
    Exec(db, "PRAGMA journal_mode=WAL");
    Exec(db, "PRAGMA wal_autocheckpoint=0");
    Exec(db, "CREATE TABLE t(x TEXT)");
    for (int i = 1; i < n; ++i) {
      Exec(db, absl::StrCat("INSERT INTO t VALUES('", std::string(300, 'a'),
                            i, "')"));
    }
    db_ = dir_ + "/copy.db";
    wal_ = db_ + "-wal";
    Write(db_, Read(live));
    Write(wal_, Read(live + "-wal"));
    sqlite3_close(db);
  }

  // Offsets of the frames, and which end a transaction.
  struct Frame {
    size_t offset;
    bool commit;
  };
  std::vector<Frame> Frames() {
    std::string d = Read(wal_);
    size_t page = Get32(d, 8);
    std::vector<Frame> frames;
    for (size_t at = 32; at + 24 + page <= d.size(); at += 24 + page) {
      frames.push_back({at, Get32(d, at + 4) != 0});
    }
    return frames;
  }

  void FlipByte(size_t at) {
    std::string d = Read(wal_);
    d[at] = static_cast<char>(d[at] ^ 0x5a);
    Write(wal_, d);
  }

  // Rows SQLite's own recovery keeps (-1 before the table exists).
  int Rows() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    int rows = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      rows = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
  }

  std::string dir_, db_, wal_;
};

TEST_F(WalDamageTest, IntactLogHasNone) {
  MakeLog(6);
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(Rows(), 5);
}

// A frame of the third transaction changed after the fourth began: SQLite
// keeps two transactions and drops the rest without a word; it is found.
TEST_F(WalDamageTest, DamageBeforeLaterTransactionsIsFound) {
  MakeLog(6);
  std::vector<Frame> frames = Frames();
  int commits = 0;
  size_t victim = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].commit && ++commits == 2) {
      victim = i + 1;  // the third transaction's first frame
      break;
    }
  }
  ASSERT_LT(victim, frames.size());
  FlipByte(frames[victim].offset + 24 + 100);  // in its page
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->frame, static_cast<int64_t>(victim) + 1);
  EXPECT_EQ((*found)->offset, static_cast<int64_t>(frames[victim].offset));
  EXPECT_EQ((*found)->kept_commits, 2);
  int64_t after = 0;  // commit frames after the damaged one
  for (size_t i = victim + 1; i < frames.size(); ++i) after += frames[i].commit;
  EXPECT_EQ((*found)->dropped_commits, after);
  EXPECT_GE(after, 3);
  EXPECT_THAT((*found)->Describe(wal_),
              HasSubstr(absl::StrCat("frame ", victim + 1)));
  EXPECT_EQ(Rows(), 1);  // what SQLite keeps: the table and one row
}

// The last transaction torn (a crash or a power cut while it was written,
// so never acknowledged): what recovery drops is not damage.
TEST_F(WalDamageTest, TornLastTransactionIsNotDamage) {
  MakeLog(6);
  std::vector<Frame> frames = Frames();
  size_t first_of_last = 0;
  for (size_t i = 0; i + 1 < frames.size(); ++i) {
    if (frames[i].commit) first_of_last = i + 1;
  }
  FlipByte(frames[first_of_last].offset + 24 + 10);
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  // Cut in the middle of its last frame too.
  std::string d = Read(wal_);
  Write(wal_, d.substr(0, d.size() - 100));
  found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

// Zeros after the end (the preallocated -wal) and frames of an older log
// (other salts, as after a checkpoint restarted the log) are not damage.
TEST_F(WalDamageTest, ZerosAndAnOlderLogAfterTheEndAreNotDamage) {
  MakeLog(6);
  std::string d = Read(wal_);
  Write(wal_, d + std::string(3 * 4120, '\0'));
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  // Every frame after the second transaction carries other salts.
  Write(wal_, d);
  std::vector<Frame> frames = Frames();
  int commits = 0;
  for (const Frame& f : frames) {
    if (commits >= 2) {
      FlipByte(f.offset + 12);  // salt-2
    }
    if (f.commit) ++commits;
  }
  found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

// A damaged header: SQLite replays no frame at all.
TEST_F(WalDamageTest, DamagedHeaderIsFound) {
  MakeLog(4);
  FlipByte(12);  // the checkpoint sequence, under the header's checksum
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->frame, 0);
  EXPECT_EQ((*found)->kept_commits, 0);
  EXPECT_EQ((*found)->dropped_commits, 4);
  EXPECT_THAT((*found)->Describe(wal_), HasSubstr("the header of"));
  EXPECT_EQ(Rows(), -1);
}

TEST_F(WalDamageTest, NoWalIsNotJudged) {
  wal_ = dir_ + "/none-wal";
  auto found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  Write(wal_, std::string(5 << 20, '\0'));  // preallocated, never written
  found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  Write(wal_, "not a wal at all, but longer than a header is");
  found = FindWalDamage(wal_);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

}  // namespace
}  // namespace snapshotter
