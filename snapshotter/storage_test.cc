// Tests for snapshot record storage: containerd's semantics and error codes.
#include "snapshotter/storage.h"

#include <unistd.h>

#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* test =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string path = std::string(getenv("TEST_TMPDIR") ?: "/tmp") +
                       "/storage." + std::to_string(getpid()) + "." + test +
                       ".db";
    unlink(path.c_str());
    auto store = MetaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::Status Update(const std::function<absl::Status(Transaction&)>& fn) {
    return store_->Update(fn);
  }

  // Prepare + commit a layer named `name` on `parent`.
  void Layer(const std::string& name, const std::string& parent) {
    ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                  auto s = CreateSnapshot(tx, Kind::kActive, "tmp-" + name,
                                          parent, {}, now_);
                  if (!s.ok()) return s.status();
                  return CommitActive(tx, "tmp-" + name, name, {10, 2}, {},
                                      now_)
                      .status();
                }).ok());
  }

  // Names in WalkInfo order.
  static absl::StatusOr<std::vector<std::string>> WalkNames(Transaction& tx) {
    std::vector<std::string> names;
    RETURN_IF_ERROR(WalkInfo(tx, [&](const Info& info) {
      names.push_back(info.name);
      return absl::OkStatus();
    }));
    return names;
  }

  std::unique_ptr<MetaStore> store_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(StorageTest, CreateCommitChain) {
  Layer("l1", "");
  Layer("l2", "l1");
  SnapshotRecord rec;
  ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                auto r = CreateSnapshot(tx, Kind::kActive, "c", "l2",
                                        {{"a", "b"}}, now_);
                if (!r.ok()) return r.status();
                rec = *r;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(rec.kind, Kind::kActive);
  ASSERT_EQ(rec.parent_ids.size(), 2u);
  EXPECT_GT(rec.parent_ids[0], rec.parent_ids[1]);
  ASSERT_TRUE(store_->View([&](Transaction& tx) -> absl::Status {
                auto info = GetInfo(tx, "c");
                if (!info.ok()) return info.status();
                EXPECT_EQ(info->info.parent, "l2");
                EXPECT_EQ(info->info.labels.at("a"), "b");
                auto l1 = GetInfo(tx, "l1");
                EXPECT_EQ(l1->usage.size, 10);
                EXPECT_EQ(l1->info.kind, Kind::kCommitted);
                return absl::OkStatus();
              }).ok());
}

TEST_F(StorageTest, ErrorCodes) {
  Layer("base", "");
  auto code = [&](const std::function<absl::Status(Transaction&)>& fn) {
    return Update(fn).code();
  };
  EXPECT_EQ(code([&](Transaction& tx) {
              return CreateSnapshot(tx, Kind::kActive, "base", "", {}, now_)
                  .status();
            }),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(code([&](Transaction& tx) {
              return CreateSnapshot(tx, Kind::kActive, "x", "nope", {}, now_)
                  .status();
            }),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Update([&](Transaction& tx) {
                return CreateSnapshot(tx, Kind::kActive, "act", "base", {},
                                      now_)
                    .status();
              }).ok());
  EXPECT_EQ(code([&](Transaction& tx) {
              return CreateSnapshot(tx, Kind::kView, "v", "act", {}, now_)
                  .status();
            }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code([&](Transaction& tx) {
              return CommitActive(tx, "base", "other", {}, {}, now_).status();
            }),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(code([&](Transaction& tx) {
              return CommitActive(tx, "act", "base", {}, {}, now_).status();
            }),
            absl::StatusCode::kAlreadyExists);
  absl::Status rm = Update(
      [&](Transaction& tx) { return RemoveSnapshot(tx, "base").status(); });
  EXPECT_EQ(rm.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(rm.message(), HasSubstr("with child"));
  EXPECT_EQ(code([&](Transaction& tx) {
              return RemoveSnapshot(tx, "missing").status();
            }),
            absl::StatusCode::kNotFound);
}

// containerd's storage (bolt.go CommitActive): a rebase onto a missing
// parent (the snapshot being committed among them) is NotFound, onto one
// that is not committed FailedPrecondition, a change of an existing parent
// InvalidArgument.
TEST_F(StorageTest, RebaseAtCommitErrorCodes) {
  Layer("base", "");
  Layer("other", "");
  ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                for (const char* key : {"free", "act"}) {
                  RETURN_IF_ERROR(
                      CreateSnapshot(tx, Kind::kActive, key, "", {}, now_)
                          .status());
                }
                RETURN_IF_ERROR(
                    CreateSnapshot(tx, Kind::kView, "view", "base", {}, now_)
                        .status());
                return CreateSnapshot(tx, Kind::kActive, "on-base", "base", {},
                                      now_)
                    .status();
              }).ok());
  auto rebase = [&](const char* key, const char* parent) {
    return Update([&](Transaction& tx) {
             return CommitActive(tx, key, "new", {1, 1}, {}, now_, parent)
                 .status();
           })
        .code();
  };
  EXPECT_EQ(rebase("free", "missing"), absl::StatusCode::kNotFound);
  // Onto itself: containerd deletes the active snapshot before it looks
  // the parent up, so the parent is missing (with a parent already, the
  // change is refused first).
  EXPECT_EQ(rebase("free", "free"), absl::StatusCode::kNotFound);
  EXPECT_EQ(rebase("on-base", "on-base"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rebase("free", "act"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rebase("free", "view"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rebase("on-base", "other"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rebase("on-base", "missing"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rebase("on-base", "base"), absl::StatusCode::kOk);
  EXPECT_EQ(Update([&](Transaction& tx) {
              return CommitActive(tx, "free", "free-c", {1, 1}, {}, now_,
                                  "new")
                  .status();
            }).code(),
            absl::StatusCode::kOk);
  ASSERT_TRUE(store_->View([&](Transaction& tx) -> absl::Status {
                ASSIGN_OR_RETURN(SnapshotRecord rec, GetSnapshot(tx, "free-c"));
                EXPECT_EQ(rec.parent_ids.size(), 2u);
                ASSIGN_OR_RETURN(InfoRecord info, GetInfo(tx, "free-c"));
                EXPECT_EQ(info.info.parent, "new");
                return absl::OkStatus();
              }).ok());
}

TEST_F(StorageTest, UpdateLabelsWithFieldPaths) {
  ASSERT_TRUE(Update([&](Transaction& tx) {
                return CreateSnapshot(tx, Kind::kActive, "a", "",
                                      {{"keep", "1"}, {"drop", "2"}}, now_)
                    .status();
              }).ok());
  Info in;
  in.name = "a";
  in.labels = {{"new", "3"}};
  Info out;
  ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                auto r = UpdateInfo(tx, in, {"labels.new", "labels.drop"},
                                    now_ + absl::Seconds(5));
                if (!r.ok()) return r.status();
                out = *r;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(out.labels, (Labels{{"keep", "1"}, {"new", "3"}}));
  EXPECT_EQ(out.updated, now_ + absl::Seconds(5));
  EXPECT_EQ(out.created, now_);
  absl::Status bad = Update([&](Transaction& tx) {
    return UpdateInfo(tx, in, {"parent"}, now_).status();
  });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("parent"));
}

// Labels set by name only: an update of all labels keeps them, in any
// order of the field paths; a "labels.<key>" path sets them.
TEST_F(StorageTest, LabelsSetByNameOnlyKeepTheirValueInAllLabelUpdates) {
  ASSERT_TRUE(Update([&](Transaction& tx) {
                return CreateSnapshot(tx, Kind::kActive, "a", "", {{"hash", "old"}, {"x", "1"}},
                                      now_)
                    .status();
              }).ok());
  auto update = [&](const Labels& labels, const std::vector<std::string>& paths) {
    Info in;
    in.name = "a";
    in.labels = labels;
    Info out;
    EXPECT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                  auto r = UpdateInfo(tx, in, paths, now_, {}, {"hash"});
                  if (!r.ok()) return r.status();
                  out = *r;
                  return absl::OkStatus();
                }).ok());
    return out.labels;
  };
  EXPECT_EQ(update({{"hash", "forged"}, {"y", "2"}}, {}), (Labels{{"hash", "old"}, {"y", "2"}}));
  EXPECT_EQ(update({{"hash", "forged"}}, {"labels"}), (Labels{{"hash", "old"}}));
  EXPECT_EQ(update({{"hash", "new"}, {"z", "3"}}, {"labels.hash", "labels"}),
            (Labels{{"hash", "new"}, {"z", "3"}}));
  EXPECT_EQ(update({{"hash", "newer"}}, {"labels", "labels.hash"}), (Labels{{"hash", "newer"}}));
  EXPECT_EQ(update({}, {"labels.hash"}), (Labels{}));
}

TEST_F(StorageTest, CountsByKindAndRemoteLabel) {
  Layer("l1", "");
  ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                if (auto s = CreateSnapshot(tx, Kind::kActive, "a", "l1", {},
                                            now_);
                    !s.ok()) {
                  return s.status();
                }
                return CreateCommitted(tx, "r", "l1", {{"remote", "true"}},
                                       now_)
                    .status();
              }).ok());
  std::map<std::string, int64_t> counts;
  ASSERT_TRUE(store_->View([&](Transaction& tx) -> absl::Status {
                auto c = CountSnapshots(tx, "remote");
                if (!c.ok()) return c.status();
                counts = *c;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(counts["committed"], 2);
  EXPECT_EQ(counts["active"], 1);
  EXPECT_EQ(counts["view"], 0);
  EXPECT_EQ(counts["guest_pulled"], 1);
}

TEST_F(StorageTest, RemoveDeletesLabelsAndWalkOrders) {
  Layer("b", "");
  ASSERT_TRUE(Update([&](Transaction& tx) -> absl::Status {
                auto s = CreateSnapshot(tx, Kind::kActive, "tmp-a", "",
                                        {{"x", "1"}}, now_);
                if (!s.ok()) return s.status();
                return CommitActive(tx, "tmp-a", "a", {10, 2},
                                    {{"x", "1"}, {"y", "2"}}, now_)
                    .status();
              }).ok());
  std::vector<std::string> names;
  ASSERT_TRUE(store_->View([&](Transaction& tx) -> absl::Status {
                ASSIGN_OR_RETURN(names, WalkNames(tx));
                return absl::OkStatus();
              }).ok());
  EXPECT_THAT(names, ElementsAre("a", "b"));
  ASSERT_TRUE(Update([&](Transaction& tx) {
                return RemoveSnapshot(tx, "a").status();
              }).ok());
  int64_t label_rows = -1;
  absl::Status read = store_->View([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(names, WalkNames(tx));
    ASSIGN_OR_RETURN(Statement st, tx.Prepare("SELECT COUNT(*) FROM labels"));
    RETURN_IF_ERROR(st.Step().status());
    label_rows = st.ColumnInt64(0);
    return absl::OkStatus();
  });
  ASSERT_TRUE(read.ok()) << read;
  EXPECT_THAT(names, ElementsAre("b"));
  EXPECT_EQ(label_rows, 0);
}

}  // namespace
}  // namespace snapshotter
