#include "snapshotter/group_commit.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "/group_commit-XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    auto store = MetaStore::Open(dir + "/metadata.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_
                    ->Update([](Transaction& tx) {
                      return tx.Exec("CREATE TABLE t(x INTEGER PRIMARY KEY)");
                    })
                    .ok());
  }

  std::vector<int64_t> Rows() {
    std::vector<int64_t> rows;
    EXPECT_TRUE(store_
                    ->View([&](Transaction& tx) -> absl::Status {
                      auto st = tx.Prepare("SELECT x FROM t ORDER BY x");
                      if (!st.ok()) return st.status();
                      while (true) {
                        auto row = st->Step();
                        if (!row.ok()) return row.status();
                        if (!*row) return absl::OkStatus();
                        rows.push_back(st->ColumnInt64(0));
                      }
                    })
                    .ok());
    return rows;
  }

  static Mutation Insert(int64_t x, std::atomic<int>* committed = nullptr,
                         std::atomic<int>* rolled_back = nullptr) {
    Mutation m;
    m.apply = [x](Transaction& tx) {
      return tx.Exec(absl::StrCat("INSERT INTO t(x) VALUES(", x, ")"));
    };
    m.on_commit = [committed] {
      if (committed != nullptr) ++*committed;
    };
    m.on_rollback = [rolled_back] {
      if (rolled_back != nullptr) ++*rolled_back;
    };
    m.flush = true;
    return m;
  }

  // Runs make(0..n-1) from n threads at once; how many succeeded.
  static int RunConcurrently(GroupCommitter& committer, int n,
                             const std::function<Mutation(int)>& make) {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        if (committer.Run(make(i)).ok()) ++ok;
      });
    }
    for (auto& t : threads) t.join();
    return ok.load();
  }

  std::unique_ptr<MetaStore> store_;
};

TEST_F(GroupCommitTest, ConcurrentMutationsAllCommitWithTheirOwnResults) {
  std::atomic<int> flushes{0}, committed{0}, rolled_back{0};
  GroupCommitter committer(store_.get(), [&] {
    ++flushes;
    return absl::OkStatus();
  });
  constexpr int kThreads = 16;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Thread 0 and 1 insert the same row: exactly one of them is refused.
      results[i] =
          committer.Run(Insert(i <= 1 ? 100 : i, &committed, &rolled_back));
    });
  }
  for (auto& t : threads) t.join();
  int failed = 0;
  for (const absl::Status& s : results) failed += s.ok() ? 0 : 1;
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(committed.load(), kThreads - 1);
  EXPECT_EQ(rolled_back.load(), 1);
  EXPECT_EQ(Rows().size(), static_cast<size_t>(kThreads - 1));
  // Members that need the flush share it: at most one per batch.
  EXPECT_GE(flushes.load(), 1);
  EXPECT_LE(flushes.load(), kThreads);
}

TEST_F(GroupCommitTest, AtMostOneDataInstallPerBatch) {
  std::atomic<int> flushes{0}, data_in_batch{0}, worst{0};
  GroupCommitter committer(store_.get(), [&] {
    ++flushes;
    worst = std::max(worst.load(), data_in_batch.exchange(0));
    return absl::OkStatus();
  });
  constexpr int kThreads = 16;
  EXPECT_EQ(RunConcurrently(committer, kThreads,
                            [&](int i) {
                              Mutation m = Insert(i);
                              m.installs_data = i % 2 == 0;
                              auto apply = m.apply;
                              bool data = m.installs_data;
                              m.apply = [&, apply, data](Transaction& tx) {
                                if (data) ++data_in_batch;
                                return apply(tx);
                              };
                              return m;
                            }),
            kThreads);
  EXPECT_EQ(worst.load(), 1);
  // Every data install is in a batch of its own data install.
  EXPECT_GE(flushes.load(), kThreads / 2);
  EXPECT_EQ(Rows().size(), static_cast<size_t>(kThreads));
}

TEST_F(GroupCommitTest, NonInstallingMutationsShareBatches) {
  std::atomic<int> flushes{0};
  GroupCommitter committer(store_.get(), [&] {
    ++flushes;
    return absl::OkStatus();
  });
  constexpr int kThreads = 16;
  EXPECT_EQ(RunConcurrently(committer, kThreads,
                            [](int i) {
                              Mutation m = Insert(i);
                              m.flush = false;
                              return m;
                            }),
            kThreads);
  EXPECT_EQ(flushes.load(), 0);
  EXPECT_EQ(Rows().size(), static_cast<size_t>(kThreads));
}

TEST_F(GroupCommitTest, RefusedMemberIsRolledBackAlone) {
  GroupCommitter committer(store_.get(), nullptr);
  Mutation half;  // writes, then fails: its write must not survive
  half.apply = [](Transaction& tx) -> absl::Status {
    absl::Status s = tx.Exec("INSERT INTO t(x) VALUES(7)");
    if (!s.ok()) return s;
    return absl::FailedPreconditionError("refused after writing");
  };
  EXPECT_EQ(committer.Run(half).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(committer.Run(Insert(8)).ok());
  EXPECT_EQ(Rows(), (std::vector<int64_t>{8}));
}

TEST_F(GroupCommitTest, FailedFlushFailsTheBatchWithItsErrorAndKeepsNothing) {
  std::atomic<int> committed{0}, rolled_back{0};
  GroupCommitter committer(store_.get(), [] {
    return absl::DataLossError("fsync snapshots/: EIO");
  });
  absl::Status s = committer.Run(Insert(1, &committed, &rolled_back));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "fsync snapshots/: EIO");
  EXPECT_EQ(committed.load(), 0);
  EXPECT_EQ(rolled_back.load(), 1);
  EXPECT_TRUE(Rows().empty());
  // A mutation that needs no flush is unaffected.
  Mutation plain = Insert(2);
  plain.flush = false;
  EXPECT_TRUE(committer.Run(plain).ok());
  EXPECT_EQ(Rows(), (std::vector<int64_t>{2}));
}

TEST_F(GroupCommitTest, FailedCheckRefusesWithoutApplying) {
  GroupCommitter committer(store_.get(), nullptr);
  Mutation m = Insert(3);
  m.check = [] { return absl::DeadlineExceededError("client gone"); };
  EXPECT_EQ(committer.Run(m).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Rows().empty());
}

}  // namespace
}  // namespace snapshotter
