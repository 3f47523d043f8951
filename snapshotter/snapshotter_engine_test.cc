// Tests of the engine under the snapshotter core: the in-memory index
// follows the database exactly (a reload from disk agrees with it after
// every kind of mutation), and a call whose client gave up changes nothing.
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "snapshotter/call_check.h"
#include "snapshotter/snapshotter.h"

namespace snapshotter {
namespace {

// Everything a reader can see of the store, in one string per snapshot.
std::vector<std::string> Dump(Snapshotter& sn) {
  std::vector<std::string> out;
  EXPECT_TRUE(sn.Walk(SnapshotFilter(), [&](const Info& info) {
                  std::string line = absl::StrCat(
                      info.name, "|", info.parent, "|", KindName(info.kind),
                      "|", absl::ToUnixNanos(info.created), "|",
                      absl::ToUnixNanos(info.updated));
                  for (const auto& [k, v] : info.labels) {
                    absl::StrAppend(&line, "|", k, "=", v);
                  }
                  if (info.kind == Kind::kCommitted) {
                    auto usage = sn.GetUsage(info.name);
                    EXPECT_TRUE(usage.ok()) << usage.status();
                    if (usage.ok()) {
                      absl::StrAppend(&line, "|", usage->size, "/",
                                      usage->inodes);
                    }
                  }
                  out.push_back(line);
                  return absl::OkStatus();
                }).ok());
  return out;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/engine-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            "-" + std::to_string(getpid());
    RemoveAll(root_).IgnoreError();
    Reopen();
  }
  void Reopen() {
    sn_.reset();
    Snapshotter::Options opts;
    opts.root = root_;
    auto sn = Snapshotter::Open(opts);
    ASSERT_TRUE(sn.ok()) << sn.status();
    sn_ = *std::move(sn);
  }
  std::string root_;
  std::unique_ptr<Snapshotter> sn_;
};

TEST_F(EngineTest, IndexEqualsTheDatabaseAfterEveryMutation) {
  ASSERT_TRUE(sn_->Prepare("a", "", {{"l", "1"}, {"empty", ""}}).ok());
  std::ofstream(root_ + "/snapshots/1/fs/file") << "layer data";
  ASSERT_TRUE(sn_->Commit("A", "a", {{"c", "2"}}).ok());
  ASSERT_TRUE(sn_->Prepare("b", "A", {}).ok());
  ASSERT_TRUE(sn_->Commit("B", "b", {}).ok());
  ASSERT_TRUE(sn_->View("v", "B", {{"v", "3"}}).ok());
  ASSERT_TRUE(sn_->Prepare("gone", "A", {}).ok());
  ASSERT_TRUE(sn_->Remove("gone").ok());
  Info update;
  update.name = "A";
  update.labels = {{"c", ""}, {"n", "new"}};
  ASSERT_TRUE(sn_->Update(update, {"labels.c", "labels.n"}).ok());
  // Refused mutations leave the index alone as well.
  EXPECT_FALSE(sn_->Remove("A").ok());             // has a child
  EXPECT_FALSE(sn_->Prepare("a2", "missing", {}).ok());
  EXPECT_FALSE(sn_->Commit("A", "v", {}).ok());    // not active
  std::vector<std::string> live = Dump(*sn_);
  ASSERT_EQ(live.size(), 3u);
  Reopen();
  EXPECT_EQ(Dump(*sn_), live);
  auto mounts = sn_->Mounts("v");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].type, "overlay");
}

TEST_F(EngineTest, CallWhoseClientGaveUpChangesNothing) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  std::vector<std::string> before = Dump(*sn_);
  {
    ScopedCallCheck gone(
        [] { return absl::DeadlineExceededError("client deadline passed"); });
    EXPECT_EQ(sn_->Prepare("b", "", {}).status().code(),
              absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(sn_->Commit("A", "a", {}).code(),
              absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(sn_->Remove("a").code(), absl::StatusCode::kDeadlineExceeded);
    // Reads still answer.
    EXPECT_TRUE(sn_->Stat("a").ok());
  }
  EXPECT_EQ(Dump(*sn_), before);
  Reopen();
  EXPECT_EQ(Dump(*sn_), before);
  // Nothing was left behind on disk for the refused creation.
  EXPECT_EQ(access((root_ + "/snapshots/2").c_str(), F_OK), -1);
}

TEST_F(EngineTest, ConcurrentChainsShareBatchesAndMatchTheDatabase) {
  // Each thread builds a chain of committed layers and a view on it while
  // the others do the same: their mutations meet in group commits.
  constexpr int kThreads = 6;
  constexpr int kDepth = 5;
  std::vector<std::thread> threads;
  std::vector<absl::Status> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string parent;
      for (int d = 0; d < kDepth && errors[t].ok(); ++d) {
        std::string active = absl::StrCat("t", t, "-active-", d);
        std::string layer = absl::StrCat("t", t, "-layer-", d);
        absl::Status s = sn_->Prepare(active, parent, {}).status();
        if (s.ok()) s = sn_->Commit(layer, active, {{"d", std::to_string(d)}});
        if (!s.ok()) errors[t] = s;
        parent = layer;
      }
      if (errors[t].ok()) {
        errors[t] = sn_->View(absl::StrCat("t", t, "-view"), parent, {}).status();
      }
      if (errors[t].ok() && t % 2 == 0) {
        errors[t] = sn_->Remove(absl::StrCat("t", t, "-view"));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const absl::Status& s : errors) EXPECT_TRUE(s.ok()) << s;
  std::vector<std::string> live = Dump(*sn_);
  EXPECT_EQ(live.size(), static_cast<size_t>(kThreads * kDepth + kThreads / 2));
  Reopen();
  EXPECT_EQ(Dump(*sn_), live);
  auto mounts = sn_->Mounts("t1-view");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
}

}  // namespace
}  // namespace snapshotter
