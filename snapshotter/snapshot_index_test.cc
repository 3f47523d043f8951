#include "snapshotter/snapshot_index.h"

#include <time.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

IndexedSnapshot Snap(int64_t id, std::string key, std::string parent,
                     Kind kind, Labels labels = {}) {
  IndexedSnapshot s;
  s.id = id;
  s.info.name = std::move(key);
  s.info.parent = std::move(parent);
  s.info.kind = kind;
  s.info.labels = std::move(labels);
  return s;
}

TEST(SnapshotIndexTest, GetChainAndErase) {
  SnapshotIndex index;
  index.Put(Snap(1, "base", "", Kind::kCommitted));
  index.Put(Snap(2, "mid", "base", Kind::kCommitted));
  index.Put(Snap(3, "top", "mid", Kind::kActive, {{"a", "1"}, {"e", ""}}));
  auto top = index.Get("top");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->id, 3);
  EXPECT_EQ(top->info.labels, (Labels{{"a", "1"}}));  // empty value dropped
  auto chain = index.GetChain("top");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(chain->parent_ids, (std::vector<int64_t>{2, 1}));
  ASSERT_EQ(chain->parents.size(), 2u);
  EXPECT_EQ(chain->parents[0].name, "mid");
  auto of = index.ChainOf("mid");
  ASSERT_TRUE(of.ok());
  EXPECT_EQ(of->parent_ids, (std::vector<int64_t>{2, 1}));
  EXPECT_TRUE(index.ChainOf("")->parents.empty());
  EXPECT_TRUE(index.Contains("top"));
  index.Erase("top");
  EXPECT_FALSE(index.Contains("top"));
  EXPECT_TRUE(absl::IsNotFound(index.Get("top").status()));
  EXPECT_EQ(index.size(), 2u);
}

TEST(SnapshotIndexTest, MissingParentIsDataLoss) {
  SnapshotIndex index;
  index.Put(Snap(2, "orphan", "gone", Kind::kActive));
  EXPECT_EQ(index.GetChain("orphan").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SnapshotIndexTest, ReplaceInfoKeepsIdAndUsage) {
  SnapshotIndex index;
  IndexedSnapshot s = Snap(7, "c", "", Kind::kCommitted);
  s.usage.size = 4096;
  index.Put(s);
  Info info = s.info;
  info.labels = {{"x", "y"}};
  index.ReplaceInfo(info);
  auto got = index.Get("c");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, 7);
  EXPECT_EQ(got->usage.size, 4096);
  EXPECT_EQ(got->info.labels, (Labels{{"x", "y"}}));
}

TEST(SnapshotIndexTest, SelectInKeyOrderAndCounts) {
  SnapshotIndex index;
  index.Put(Snap(1, "b", "", Kind::kCommitted, {{"remote", "true"}}));
  index.Put(Snap(2, "a", "", Kind::kActive));
  index.Put(Snap(3, "c", "b", Kind::kView));
  std::vector<Info> all = index.Select([](const InfoView&) { return true; });
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[2].name, "c");
  auto counts = index.CountByKind("remote");
  EXPECT_EQ(counts["active"], 1);
  EXPECT_EQ(counts["view"], 1);
  EXPECT_EQ(counts["committed"], 1);
  EXPECT_EQ(counts["guest_pulled"], 1);
}

TEST(SnapshotIndexTest, SelectInBatchesAfterAKey) {
  SnapshotIndex index;
  for (int i = 0; i < 7; ++i) {
    index.Put(Snap(i + 1, absl::StrCat("k", i), "", Kind::kCommitted,
                   {{"odd", i % 2 ? "yes" : "no"}}));
  }
  auto odd = [](const InfoView& info) { return *info.Label("odd") == "yes"; };
  std::vector<Info> first = index.Select(odd, "", 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].name, "k1");
  EXPECT_EQ(first[1].name, "k3");
  std::vector<Info> rest = index.Select(odd, first.back().name, 2);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].name, "k5");
}

TEST(SnapshotIndexTest, VisitStopsAndResumesAfterTheLastKey) {
  SnapshotIndex index;
  for (int i = 0; i < 5; ++i) {
    index.Put(Snap(i + 1, absl::StrCat("k", i),
                   i ? absl::StrCat("k", i - 1) : "", Kind::kCommitted,
                   {{"n", absl::StrCat(i)}, {"a", "x"}}));
  }
  std::vector<std::string> seen;
  auto take_two = [&](const InfoView& v) {
    seen.push_back(std::string(v.name));
    return seen.size() % 2 != 0;
  };
  VisitEnd end = index.Visit("", take_two);
  EXPECT_EQ(end.last_key, "k1");
  EXPECT_FALSE(end.exhausted);
  end = index.Visit(end.last_key, take_two);
  EXPECT_EQ(end.last_key, "k3");
  EXPECT_FALSE(end.exhausted);
  end = index.Visit(end.last_key, take_two);
  EXPECT_EQ(end.last_key, "k4");
  EXPECT_TRUE(end.exhausted);
  EXPECT_EQ(seen, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  end = index.Visit("k4", take_two);
  EXPECT_EQ(end.last_key, "");
  EXPECT_TRUE(end.exhausted);

  // A view holds what a copy holds.
  Info info;
  index.Visit("k2", [&](const InfoView& v) {
    info = v.ToInfo();
    return false;
  });
  EXPECT_EQ(info.name, "k3");
  EXPECT_EQ(info.parent, "k2");
  EXPECT_EQ(info.kind, Kind::kCommitted);
  EXPECT_EQ(info.labels, (Labels{{"a", "x"}, {"n", "3"}}));
  Info copy = index.Get("k3")->info;
  EXPECT_EQ(info.labels, copy.labels);
  EXPECT_EQ(info.created, copy.created);
  EXPECT_EQ(info.updated, copy.updated);
}

TEST(SnapshotIndexTest, SharedLabelsSurviveTheirOtherHolders) {
  SnapshotIndex index;
  Labels cri = {{"containerd.io/snapshot/cri.image-ref", "registry/image:1"},
                {"containerd.io/snapshot.ref", "sha256:a"}};
  index.Put(Snap(1, "a", "", Kind::kCommitted, cri));
  cri["containerd.io/snapshot.ref"] = "sha256:b";
  index.Put(Snap(2, "b", "a", Kind::kCommitted, cri));
  index.Erase("b");
  Info replaced = index.Get("a")->info;
  replaced.labels["extra"] = "1";
  index.ReplaceInfo(replaced);
  auto a = index.Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->info.labels.at("containerd.io/snapshot/cri.image-ref"),
            "registry/image:1");
  EXPECT_EQ(a->info.labels.at("containerd.io/snapshot.ref"), "sha256:a");
  EXPECT_EQ(a->info.labels.at("extra"), "1");
  index.Put(Snap(3, "c", "a", Kind::kActive));
  EXPECT_EQ(index.GetChain("c")->parents[0].labels, a->info.labels);
}

std::vector<std::string> KeysLabelled(const SnapshotIndex& index,
                                      absl::string_view label,
                                      absl::string_view value) {
  std::vector<std::string> keys;
  index.VisitLabelled(label, value, [&](const InfoView& view) {
    keys.emplace_back(view.name);
    return true;
  });
  return keys;
}

// An indexed label and a scanned one give the same records, in key order,
// through every change of a record's labels.
TEST(SnapshotIndexTest, VisitLabelledFollowsEveryChange) {
  SnapshotIndex index({"image"});
  index.Put(Snap(1, "c", "", Kind::kCommitted, {{"image", "m"}, {"other", "m"}}));
  index.Put(Snap(2, "a", "", Kind::kCommitted, {{"image", "m"}, {"other", "m"}}));
  index.Put(Snap(3, "b", "", Kind::kCommitted, {{"image", "n"}, {"other", "n"}}));
  index.Put(Snap(4, "d", "", Kind::kActive));
  for (const char* label : {"image", "other"}) {
    SCOPED_TRACE(label);
    EXPECT_EQ(KeysLabelled(index, label, "m"), (std::vector<std::string>{"a", "c"}));
    EXPECT_EQ(KeysLabelled(index, label, "n"), (std::vector<std::string>{"b"}));
    EXPECT_TRUE(KeysLabelled(index, label, "").empty());
  }
  Info moved = index.Get("a")->info;  // another value
  moved.labels = {{"image", "n"}, {"other", "n"}};
  index.ReplaceInfo(moved);
  index.Put(Snap(5, "c", "", Kind::kCommitted));  // replaced without the label
  index.Erase("b");
  index.Put(Snap(6, "e", "", Kind::kCommitted, {{"image", "n"}, {"other", "n"}}));
  for (const char* label : {"image", "other"}) {
    SCOPED_TRACE(label);
    EXPECT_TRUE(KeysLabelled(index, label, "m").empty());
    EXPECT_EQ(KeysLabelled(index, label, "n"), (std::vector<std::string>{"a", "e"}));
  }
  std::vector<std::string> first;
  index.VisitLabelled("image", "n", [&](const InfoView& view) {
    first.emplace_back(view.name);
    return false;
  });
  EXPECT_EQ(first, (std::vector<std::string>{"a"}));
  SnapshotIndex other({"image"});
  other.Swap(index);
  EXPECT_EQ(KeysLabelled(other, "image", "n"), (std::vector<std::string>{"a", "e"}));
  EXPECT_TRUE(KeysLabelled(index, "image", "n").empty());
}

// Stored times are the kernel's wall clock, which clients read around a
// call: never before a read taken earlier, never after one taken later.
TEST(SnapshotIndexTest, RealtimeNowIsTheKernelsWallClock) {
  auto kernel = [] {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return absl::TimeFromTimespec(ts);
  };
  for (int i = 0; i < 1000; ++i) {
    absl::Time before = kernel();
    absl::Time now = RealtimeNow();
    absl::Time after = kernel();
    ASSERT_LE(before, now);
    ASSERT_LE(now, after);
  }
}

}  // namespace
}  // namespace snapshotter
