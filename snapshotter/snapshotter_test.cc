// Tests for the snapshotter core: mounts, lifecycle, error codes, remote
// layer hooks and crash recovery. containerd's own conformance suite runs
// against the daemon separately (tests/conformance).
#include "snapshotter/snapshotter.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kata_volume/verity/layer_cache.h"
#include "snapshotter/call_check.h"
#include "snapshotter/failing_io_vfs.h"
#include "snapshotter/filters.h"
#include "snapshotter/metastore.h"
#include "snapshotter/parallel_unpack.h"
#include "snapshotter/snapshot_index.h"
#include "snapshotter/store_recovery.h"

namespace snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string NewRoot() {
  std::string root = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/snap-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                     "-" + std::to_string(getpid());
  RemoveAll(root).IgnoreError();
  return root;
}

std::vector<std::string> ListNames(Snapshotter& sn) {
  std::vector<std::string> names;
  EXPECT_TRUE(sn.Walk(SnapshotFilter(), [&](const Info& info) {
                  names.push_back(absl::StrCat(info.name, "|", info.parent, "|",
                                               KindName(info.kind), "|",
                                               info.labels.size()));
                  return absl::OkStatus();
                }).ok());
  return names;
}

// Fills `root` with `dirs` directories d<i> of `files` one-byte files f<j>.
void FillTree(const std::string& root, int dirs, int files) {
  for (int d = 0; d < dirs; ++d) {
    std::string dir = absl::StrCat(root, "/d", d);
    std::filesystem::create_directories(dir);
    for (int f = 0; f < files; ++f) {
      std::ofstream(absl::StrCat(dir, "/f", f)) << "x";
    }
  }
}

class SnapshotterTest : public ::testing::Test {
 protected:
  void Open(RemoteLayers* remote = nullptr) {
    sn_.reset();
    opts_.root = root_;
    opts_.remote = remote;
    auto sn = Snapshotter::Open(opts_);
    ASSERT_TRUE(sn.ok()) << sn.status();
    sn_ = *std::move(sn);
  }
  void SetUp() override {
    root_ = NewRoot();
    Open();
  }
  // With one committed snapshot (id 1), the daemon stopped and `damage`
  // done to the database at `db`: the next open is refused and snapshot 1's
  // directory stays.
  void ExpectRefusedAfter(
      const std::string& db,
      const std::function<void(const std::string& db)>& damage) {
    ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
    ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
    sn_.reset();
    damage(db);
    auto sn = Snapshotter::Open(opts_);
    ASSERT_FALSE(sn.ok());
    EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
    EXPECT_EQ(access((root_ + "/snapshots/1/fs").c_str(), F_OK), 0);
  }

  std::string root_;
  Snapshotter::Options opts_;
  std::unique_ptr<Snapshotter> sn_;
};

TEST_F(SnapshotterTest, MountShapesFollowContainerdOverlay) {
  auto base = sn_->Prepare("k/1/base", "", {});
  ASSERT_TRUE(base.ok()) << base.status();
  ASSERT_EQ(base->size(), 1u);
  EXPECT_EQ((*base)[0].type, "bind");
  EXPECT_THAT((*base)[0].options, ElementsAre("rw", "rbind"));
  ASSERT_TRUE(sn_->Commit("l1", "k/1/base", {}).ok());

  auto view1 = sn_->View("v1", "l1", {});
  ASSERT_TRUE(view1.ok());
  EXPECT_EQ((*view1)[0].type, "bind");
  EXPECT_THAT((*view1)[0].options, ElementsAre("ro", "rbind"));

  ASSERT_TRUE(sn_->Prepare("k/2", "l1", {}).ok());
  ASSERT_TRUE(sn_->Commit("l2", "k/2", {}).ok());
  auto active = sn_->Prepare("k/3 sha256:ab", "l2", {});
  ASSERT_TRUE(active.ok());
  const Mount& m = (*active)[0];
  EXPECT_EQ(m.type, "overlay");
  EXPECT_EQ(m.source, "overlay");
  EXPECT_THAT(m.options.back(), StartsWith("lowerdir="));
  EXPECT_THAT(m.options.back(), HasSubstr(":"));
  auto view2 = sn_->View("v2", "l2", {});
  ASSERT_TRUE(view2.ok());
  EXPECT_EQ((*view2)[0].type, "overlay");
  for (const auto& opt : (*view2)[0].options) {
    EXPECT_THAT(opt, testing::Not(StartsWith("upperdir=")));
  }
  auto again = sn_->Mounts("k/3 sha256:ab");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].options, m.options);
}

// Id-map labels with empty values are dropped like any empty label (as
// containerd's storage does): no uidmap=/gidmap= options, and fs/ keeps the
// parent's owner rather than being chowned to the ids of an empty map (0:0).
TEST_F(SnapshotterTest, EmptyIdMapLabelsAreNoMap) {
  ASSERT_TRUE(sn_->Prepare("k/1", "", {}).ok());
  const std::string base_fs = sn_->Mounts("k/1")->at(0).source;
  const bool can_chown = chown(base_fs.c_str(), 4321, 4322) == 0;
  ASSERT_TRUE(sn_->Commit("l1", "k/1", {}).ok());
  auto ctr = sn_->Prepare("k/e", "l1",
                          {{"containerd.io/snapshot/uidmapping", ""},
                           {"containerd.io/snapshot/gidmapping", ""}});
  ASSERT_TRUE(ctr.ok()) << ctr.status();
  std::string upper;
  for (const std::string& o : (*ctr)[0].options) {
    EXPECT_FALSE(absl::StartsWith(o, "uidmap=") || absl::StartsWith(o, "gidmap=")) << o;
    if (absl::StartsWith(o, "upperdir=")) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  EXPECT_TRUE(sn_->Stat("k/e")->labels.empty());
  struct stat st;
  ASSERT_EQ(stat(upper.c_str(), &st), 0) << upper;
  if (can_chown) {  // not inside a sandbox that maps root alone
    EXPECT_EQ(std::make_pair(st.st_uid, st.st_gid), std::make_pair(4321u, 4322u));
  } else {
    EXPECT_EQ(st.st_uid, getuid());
  }
}

// A container in a user namespace (labels containerd.io/snapshot/uidmapping
// and gidmapping, as containerd's client sets them for a snapshotter with
// the remap-ids capability): as containerd's overlayfs, its upper directory
// belongs to the container's root and its mounts carry uidmap=/gidmap=
// (first, before the overlay's own options), from which containerd's mount
// code idmaps the layers; Mounts repeats them. On a chain already chowned
// for the namespace (containerd's "-remap" copy, made when the capability
// is missing) they are left out: the owners would be shifted twice.
// Malformed maps are InvalidArgument and change nothing.
TEST_F(SnapshotterTest, UserNamespaceIdMapsAsContainerdOverlay) {
  const Labels userns = {{"containerd.io/snapshot/uidmapping", "0:100000:65536"},
                         {"containerd.io/snapshot/gidmapping", "0:200000:65536"}};
  // Inside Bazel's sandbox root is mapped and chowns to unmapped ids fail.
  const std::string probe = root_ + "/probe";
  ASSERT_EQ(mkdir(probe.c_str(), 0755), 0);
  const bool can_chown = chown(probe.c_str(), 100000, 200000) == 0;
  ASSERT_TRUE(sn_->Prepare("k/1", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("l1", "k/1", {}).ok());
  ASSERT_TRUE(sn_->Prepare("k/2", "l1", {}).ok());
  ASSERT_TRUE(sn_->Commit("l2", "k/2", {}).ok());
  auto owner = [&](const std::string& key) {
    struct stat st;
    auto mounts = sn_->Mounts(key);
    std::string upper;
    for (const std::string& o : (*mounts)[0].options) {
      if (absl::StartsWith(o, "upperdir=")) upper = o.substr(9);
    }
    if (upper.empty()) upper = (*mounts)[0].source;
    EXPECT_EQ(stat(upper.c_str(), &st), 0) << upper;
    return std::make_pair(st.st_uid, st.st_gid);
  };
  if (!can_chown) {
    auto refused = sn_->Prepare("k/ctr", "l2", userns);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal) << refused.status();
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("chown"));
    EXPECT_EQ(sn_->Stat("k/ctr").status().code(), absl::StatusCode::kNotFound);
    GTEST_SKIP() << "cannot chown to unmapped ids here (a user namespace "
                    "that maps root alone, such as Bazel's sandbox, which "
                    "this target's no-sandbox tag avoids); "
                    "tests/e2e/deployments.sh scenario U runs it for real";
  }
  auto ctr = sn_->Prepare("k/ctr", "l2", userns);
  ASSERT_TRUE(ctr.ok()) << ctr.status();
  EXPECT_EQ((*ctr)[0].type, "overlay");
  ASSERT_GE((*ctr)[0].options.size(), 2u);
  EXPECT_EQ((*ctr)[0].options[0], "uidmap=0:100000:65536");
  EXPECT_EQ((*ctr)[0].options[1], "gidmap=0:200000:65536");
  EXPECT_EQ(sn_->Mounts("k/ctr")->at(0).options, (*ctr)[0].options);
  EXPECT_EQ(owner("k/ctr"), std::make_pair(100000u, 200000u));
  // Without parents: an idmapped bind mount of its own directory.
  auto base = sn_->Prepare("k/base", "", userns);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ((*base)[0].type, "bind");
  EXPECT_THAT((*base)[0].options,
              ElementsAre("uidmap=0:100000:65536", "gidmap=0:200000:65536", "rw", "rbind"));
  EXPECT_EQ(owner("k/base"), std::make_pair(100000u, 200000u));
  // A view on one layer: the layer's bind mount, idmapped.
  auto view = sn_->View("v/1", "l1", userns);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_THAT((*view)[0].options,
              ElementsAre("uidmap=0:100000:65536", "gidmap=0:200000:65536", "ro", "rbind"));
  // containerd 2.x's copy chowned for the namespace ("<ID>-remap", no
  // labels, committed as <ID>: the digest of its parent and maps), then the
  // rootfs on it with the labels: no idmap, the upper is root's.
  const std::string copy_id =
      "sha256:c56f364b5f2afb3c60a3d95f967bb104876f1b77ceb0f956a9e01bc4188f263c";
  auto copy = sn_->Prepare("k/" + copy_id + "-remap", "l2", {});
  ASSERT_TRUE(copy.ok()) << copy.status();
  for (const std::string& o : (*copy)[0].options) EXPECT_THAT(o, testing::Not(HasSubstr("idmap")));
  std::string copy_fs;
  for (const std::string& o : (*copy)[0].options) {
    if (absl::StartsWith(o, "upperdir=")) copy_fs = o.substr(9);
  }
  ASSERT_EQ(chown(copy_fs.c_str(), 100000, 200000), 0);
  ASSERT_TRUE(sn_->Commit(copy_id, "k/" + copy_id + "-remap", {}).ok());
  auto on_copy = sn_->Prepare("k/ctr2", copy_id, userns);
  ASSERT_TRUE(on_copy.ok()) << on_copy.status();
  for (const std::string& o : (*on_copy)[0].options) {
    EXPECT_THAT(o, testing::Not(StartsWith("uidmap=")));
    EXPECT_THAT(o, testing::Not(StartsWith("gidmap=")));
  }
  EXPECT_EQ(owner("k/ctr2"), std::make_pair(100000u, 200000u));
  // An image whose root belongs to uid/gid 1000, copied by containerd 1.7
  // ("<parent>-<uid>-<gid>-remap"): still a copy.
  ASSERT_TRUE(sn_->Prepare("k/3", "l2", {}).ok());
  std::string l3_fs;
  auto k3 = sn_->Mounts("k/3");
  ASSERT_TRUE(k3.ok()) << k3.status();
  for (const std::string& o : (*k3)[0].options) {
    if (absl::StartsWith(o, "upperdir=")) l3_fs = o.substr(9);
  }
  ASSERT_EQ(chown(l3_fs.c_str(), 1000, 1000), 0);
  ASSERT_TRUE(sn_->Commit("l3", "k/3", {}).ok());
  const std::string remap3 = "k/l3-100000-200000-remap";
  auto copy3 = sn_->Prepare(remap3, "l3", {});
  ASSERT_TRUE(copy3.ok()) << copy3.status();
  std::string copy3_fs;
  for (const std::string& o : (*copy3)[0].options) {
    if (absl::StartsWith(o, "upperdir=")) copy3_fs = o.substr(9);
  }
  ASSERT_EQ(chown(copy3_fs.c_str(), 101000, 201000), 0);
  ASSERT_TRUE(sn_->Commit("l3-100000-200000", remap3, {}).ok());
  auto on_copy3 = sn_->Prepare("k/ctr3", "l3-100000-200000", userns);
  ASSERT_TRUE(on_copy3.ok()) << on_copy3.status();
  for (const std::string& o : (*on_copy3)[0].options) {
    EXPECT_THAT(o, testing::Not(StartsWith("uidmap=")));
  }
  // The image itself (its root 1000's) is not a copy: idmapped.
  auto on_l3 = sn_->Prepare("k/ctr4", "l3", userns);
  ASSERT_TRUE(on_l3.ok()) << on_l3.status();
  EXPECT_EQ((*on_l3)[0].options[0], "uidmap=0:100000:65536");
  // A committed upper of a container in the namespace (its root the
  // container root's, as a copy's would be): not a copy, the layers under
  // it are the image's own; idmapped as by containerd's overlayfs.
  ASSERT_TRUE(sn_->Prepare("k/ctr5", "l2", userns).ok());
  ASSERT_TRUE(sn_->Commit("ctr5-committed", "k/ctr5", {}).ok());
  auto on_committed = sn_->Prepare("k/ctr6", "ctr5-committed", userns);
  ASSERT_TRUE(on_committed.ok()) << on_committed.status();
  EXPECT_EQ((*on_committed)[0].options[0], "uidmap=0:100000:65536");
  EXPECT_EQ((*on_committed)[0].options[1], "gidmap=0:200000:65536");
}

TEST_F(SnapshotterTest, MalformedIdMapsAreInvalidArgumentAndChangeNothing) {
  ASSERT_TRUE(sn_->Prepare("k/1", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("l1", "k/1", {}).ok());
  for (const Labels& bad : std::vector<Labels>{
           {{"containerd.io/snapshot/uidmapping", "0:100000"}},
           {{"containerd.io/snapshot/uidmapping", "1:100000:10"},
            {"containerd.io/snapshot/gidmapping", "0:1:1"}},
           {{"containerd.io/snapshot/gidmapping", "0:x:1"}}}) {
    auto prepare = sn_->Prepare("k/ctr", "l1", bad);
    EXPECT_EQ(prepare.status().code(), absl::StatusCode::kInvalidArgument) << prepare.status();
    EXPECT_THAT(std::string(prepare.status().message()), HasSubstr("containerd.io/snapshot/"));
    auto view = sn_->View("v/ctr", "l1", bad);
    EXPECT_EQ(view.status().code(), absl::StatusCode::kInvalidArgument) << view.status();
  }
  EXPECT_EQ(sn_->Stat("k/ctr").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Stat("v/ctr").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ListNames(*sn_), ElementsAre("l1||committed|0"));
}

// An Update is bad input like a Prepare with malformed maps: refused, the
// labels unchanged, the snapshot's Mounts still answered (they are read
// from its labels). Valid maps set later are taken, as containerd's
// overlayfs reads them at each Mounts.
TEST_F(SnapshotterTest, UpdateWithMalformedIdMapsIsInvalidArgument) {
  ASSERT_TRUE(sn_->Prepare("k/1", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("l1", "k/1", {}).ok());
  ASSERT_TRUE(sn_->Prepare("k/ctr", "l1", {{"x", "y"}}).ok());
  auto before = sn_->Mounts("k/ctr");
  ASSERT_TRUE(before.ok()) << before.status();
  for (const char* path : {"labels.containerd.io/snapshot/uidmapping", "labels", ""}) {
    Info bad{"k/ctr", "", Kind::kActive};
    bad.labels = {{"containerd.io/snapshot/uidmapping", "0:100000"}, {"x", "y"}};
    std::vector<std::string> paths;
    if (*path != '\0') paths.push_back(path);
    auto updated = sn_->Update(bad, paths);
    EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument)
        << path << ": " << updated.status();
    EXPECT_THAT(std::string(updated.status().message()),
                HasSubstr("containerd.io/snapshot/uidmapping"));
  }
  EXPECT_THAT(sn_->Stat("k/ctr")->labels, ElementsAre(testing::Pair("x", "y")));
  auto after = sn_->Mounts("k/ctr");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)[0].options, (*before)[0].options);
  Info good{"k/ctr", "", Kind::kActive};
  good.labels = {{"containerd.io/snapshot/uidmapping", "0:0:65536"}};
  ASSERT_TRUE(sn_->Update(good, {"labels.containerd.io/snapshot/uidmapping"}).ok());
  EXPECT_EQ(sn_->Mounts("k/ctr")->at(0).options[0], "uidmap=0:0:65536");
}

TEST_F(SnapshotterTest, BadInputChangesNothing) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  ASSERT_TRUE(sn_->View("v", "c", {}).ok());
  ASSERT_TRUE(sn_->Prepare("child", "c", {}).ok());
  std::vector<std::string> before = ListNames(*sn_);
  struct Case {
    absl::Status status;
    absl::StatusCode code;
  };
  std::vector<Case> cases = {
      {sn_->Prepare("", "", {}).status(), absl::StatusCode::kInvalidArgument},
      {sn_->Prepare("x/../y", "", {}).status(),
       absl::StatusCode::kInvalidArgument},
      {sn_->Prepare(std::string("x\0y", 3), "", {}).status(),
       absl::StatusCode::kInvalidArgument},
      {sn_->Prepare("x", "", {{"k", std::string(5000, 'v')}}).status(),
       absl::StatusCode::kInvalidArgument},
      {sn_->Prepare("x", "missing", {}).status(), absl::StatusCode::kNotFound},
      {sn_->Prepare("x", "child", {}).status(),
       absl::StatusCode::kInvalidArgument},
      {sn_->Prepare("child", "c", {}).status(),
       absl::StatusCode::kAlreadyExists},
      {sn_->Commit("c2", "v", {}), absl::StatusCode::kFailedPrecondition},
      {sn_->Commit("c3", "c", {}), absl::StatusCode::kFailedPrecondition},
      {sn_->Commit("c", "child", {}), absl::StatusCode::kAlreadyExists},
      {sn_->Commit("c4", "nope", {}), absl::StatusCode::kNotFound},
      {sn_->Remove("c"), absl::StatusCode::kFailedPrecondition},
      {sn_->Remove("nope"), absl::StatusCode::kNotFound},
      {sn_->Update(Info{"c", "", Kind::kCommitted}, {"parent"}).status(),
       absl::StatusCode::kInvalidArgument},
      {sn_->Update(Info{"nope"}, {}).status(), absl::StatusCode::kNotFound},
      {sn_->Stat("nope").status(), absl::StatusCode::kNotFound},
      {sn_->Mounts("nope").status(), absl::StatusCode::kNotFound},
      {sn_->Mounts("c").status(), absl::StatusCode::kFailedPrecondition},
      {sn_->GetUsage("nope").status(), absl::StatusCode::kNotFound},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].status.code(), cases[i].code)
        << "case " << i << ": " << cases[i].status;
    EXPECT_FALSE(cases[i].status.message().empty()) << "case " << i;
  }
  EXPECT_EQ(ListNames(*sn_), before);
  auto cleaned = sn_->Cleanup();
  ASSERT_TRUE(cleaned.ok());
  EXPECT_EQ(*cleaned, 0);
}

// As containerd's snapshotters (and its metadata store, which a user goes
// through): a lookup of the empty key is NotFound; creating one stays
// refused (BadInputChangesNothing).
TEST_F(SnapshotterTest, LookupOfTheEmptyKeyIsNotFound) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  EXPECT_EQ(sn_->Stat("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Mounts("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->GetUsage("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Remove("").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Commit("c", "", {}).code(), absl::StatusCode::kNotFound);
  Info unnamed;
  unnamed.labels = {{"l", "v"}};
  EXPECT_EQ(sn_->Update(unnamed, {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Update(unnamed, {"bogus"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->Commit("", "a", {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ListNames(*sn_), ElementsAre("a||active|0"));
}

TEST_F(SnapshotterTest, UsageOfActiveIsLiveAndStoredAtCommit) {
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok());
  std::ofstream((*m)[0].source + "/file") << std::string(20000, 'x');
  auto live = sn_->GetUsage("a");
  ASSERT_TRUE(live.ok());
  EXPECT_GE(live->size, 20000);
  EXPECT_EQ(live->inodes, 2);
  ASSERT_TRUE(sn_->Commit("c", "a", {{"l", "v"}}).ok());
  auto stored = sn_->GetUsage("c");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size, live->size);
  auto info = sn_->Stat("c");
  EXPECT_EQ(info->labels.at("l"), "v");
  EXPECT_EQ(info->kind, Kind::kCommitted);
}

// containerd reads NotFound as "no such snapshot": a snapshot whose
// directory is broken under it is the daemon's failure, and changes nothing.
TEST_F(SnapshotterTest, FileSystemFailureOfAnExistingSnapshotIsInternal) {
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(sn_->Commit("base", "a", {}).ok());
  auto top = sn_->Prepare("top", "base", {});
  ASSERT_TRUE(top.ok());
  std::string upper;
  for (const std::string& o : (*top)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  ASSERT_TRUE(RemoveAll(upper).ok());  // deleted by hand
  EXPECT_EQ(sn_->Commit("c", "top", {}).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sn_->Stat("top")->kind, Kind::kActive);
  // The parent's fs/ gone: a child cannot take its owner.
  std::string lower;
  for (const std::string& o : (*top)[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  ASSERT_FALSE(lower.empty());
  ASSERT_TRUE(RemoveAll(lower).ok());
  EXPECT_EQ(sn_->Prepare("child", "base", {}).status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(sn_->Stat("child").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SnapshotterTest, RemoveDeletesDirectoryAndCleanupQuarantinesUnknown) {
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok());
  std::string fs = (*m)[0].source;
  ASSERT_TRUE(sn_->Remove("a").ok());
  EXPECT_NE(access(fs.c_str(), F_OK), 0);
  // Entries no record owns and the journal does not release: kept.
  std::string snaps = sn_->dirs().SnapshotsDir();
  ASSERT_EQ(mkdir((snaps + "/999").c_str(), 0700), 0);
  std::ofstream(snaps + "/999/data") << "precious";
  ASSERT_EQ(mkdir((snaps + "/garbage").c_str(), 0700), 0);
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_NE(access((snaps + "/999").c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 2);
  EXPECT_EQ(sn_->UndeletableCount(), 0);
  bool kept = false;
  for (const auto& e :
       std::filesystem::directory_iterator(sn_->dirs().QuarantineDir())) {
    kept |= access((e.path().string() + "/data").c_str(), F_OK) == 0;
  }
  EXPECT_TRUE(kept);
}

TEST_F(SnapshotterTest, JournalledDirectoryIsDeletedByCleanupEvenAfterRestart) {
  int failures = 1;
  opts_.remove_all = [&](const std::string& path,
                         const std::atomic<bool>*) -> absl::Status {
    if (failures > 0) {
      --failures;
      return absl::InternalError("remove " + path + ": Device or resource busy");
    }
    return RemoveAll(path);
  };
  Open();
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok());
  std::string fs = (*m)[0].source;
  // The record goes; the directory stays (deletion failed) but is released.
  ASSERT_TRUE(sn_->Remove("a").ok());
  EXPECT_EQ(access(fs.c_str(), F_OK), 0);
  Open();  // the journal survives a restart
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_NE(access(fs.c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 0);
  EXPECT_TRUE(sn_->dirs().List()->trash.empty());
}

TEST_F(SnapshotterTest, UndeletableLeftoverFailsNeitherOpenNorCleanup) {
  bool busy = true;
  opts_.remove_all = [&](const std::string& path,
                         const std::atomic<bool>*) -> absl::Status {
    if (busy) return absl::InternalError("remove " + path + ": busy");
    return RemoveAll(path);
  };
  std::string trash = sn_->dirs().SnapshotsDir() + "/trash-stuck1";
  ASSERT_EQ(mkdir(trash.c_str(), 0700), 0);
  Open();
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  for (int i = 0; i < 2; ++i) {
    auto n = sn_->Cleanup();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0);
    EXPECT_EQ(sn_->UndeletableCount(), 1);
    EXPECT_EQ(access(trash.c_str(), F_OK), 0);
  }
  busy = false;
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(sn_->UndeletableCount(), 0);
  EXPECT_NE(access(trash.c_str(), F_OK), 0);
  EXPECT_TRUE(sn_->Stat("a").ok());
}

// A Remove whose directory cannot be deleted (an immutable file, a busy
// mount) answers OK and leaves the released directory; it is counted in
// guest_pull_undeletable_entries at once, so that the daemon's retry every
// 5 minutes (which runs only while that count is above 0) deletes it once
// the obstacle is gone, as docs/operations.md says. It was counted only by
// a later Cleanup: after `ctr snapshots rm` (no Cleanup) the gauge stayed
// at 0 and nothing retried it until the next Cleanup or restart.
TEST_F(SnapshotterTest, RemoveWhoseDirectoryStaysIsCountedUndeletable) {
  bool busy = true;
  opts_.remove_all = [&](const std::string& path,
                         const std::atomic<bool>*) -> absl::Status {
    if (busy) {
      return absl::PermissionDeniedError("remove " + path +
                                         "/f: Operation not permitted");
    }
    return RemoveAll(path);
  };
  Open();
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok()) << m.status();
  std::string fs = (*m)[0].source;
  ASSERT_TRUE(sn_->Remove("a").ok());
  EXPECT_EQ(access(fs.c_str(), F_OK), 0);
  EXPECT_EQ(sn_->UndeletableCount(), 1);
  busy = false;
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(sn_->UndeletableCount(), 0);
  EXPECT_NE(access(fs.c_str(), F_OK), 0);
}

// A stop (the daemon's SIGTERM) while Cleanup deletes a large trash: the
// entry being deleted stops part-way, the next is not started, Cleanup
// returns at once without an error, and the next start deletes the rest.
TEST_F(SnapshotterTest, StopLongWorkLeavesTheRestOfTheTrashForTheNextStart) {
  constexpr int kDirs = 20, kFiles = 50;
  for (const char* name : {"/trash-big1", "/trash-big2"}) {
    FillTree(sn_->dirs().SnapshotsDir() + name, kDirs, kFiles);
  }
  int calls = 0;
  bool stop_next = true;
  opts_.remove_all = [&](const std::string& path,
                         const std::atomic<bool>* stop) -> absl::Status {
    ++calls;
    if (stop_next) {  // the stop comes once this entry is part deleted
      stop_next = false;
      EXPECT_TRUE(RemoveAll(path + "/d0", stop).ok());
      sn_->StopLongWork();
    }
    return RemoveAll(path, stop);
  };
  Open();
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  auto entries = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             sn_->dirs().SnapshotsDir())) {
      n += absl::StrContains(e.path().string(), "/trash-");
    }
    return n;
  };

  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sn_->UndeletableCount(), 0);  // left, not undeletable
  EXPECT_EQ(sn_->dirs().List()->trash.size(), 2u);
  // Both trash entries, less the first one's d0.
  EXPECT_EQ(entries(), 2 + (2 * kDirs - 1) * (1 + kFiles));
  n = sn_->Cleanup();  // stopped for good: deletes nothing
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(calls, 1);

  Open();  // the next start
  EXPECT_TRUE(sn_->TrashAfterOpen());
  n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(entries(), 0);
  EXPECT_TRUE(sn_->Stat("a").ok());
}

// A stop while a Remove deletes a large snapshot directory: the deletion
// stops part-way as the trash's does (the stop must not wait for it past
// systemd's TimeoutStopSec), the Remove still succeeds (its record is gone),
// and the next start deletes what is left.
TEST_F(SnapshotterTest, StopLongWorkCutsARemovesDeletionShort) {
  constexpr int kDirs = 20, kFiles = 50;
  bool armed = false;
  opts_.remove_all = [&](const std::string& path,
                         const std::atomic<bool>* stop) -> absl::Status {
    if (armed) {  // the stop comes once the directory is part deleted
      armed = false;
      EXPECT_TRUE(RemoveAll(path + "/fs/d0", stop).ok());
      sn_->StopLongWork();
    }
    return RemoveAll(path, stop);
  };
  Open();
  ASSERT_TRUE(sn_->Prepare("big", "", {}).ok());
  std::string fs = sn_->dirs().FsPath(*sn_->dirs().List()->ids.begin());
  FillTree(fs, kDirs, kFiles);
  armed = true;
  ASSERT_TRUE(sn_->Remove("big").ok());
  EXPECT_EQ(sn_->Stat("big").status().code(), absl::StatusCode::kNotFound);
  // Left with all but d0, for the next start.
  EXPECT_TRUE(std::filesystem::exists(absl::StrCat(fs, "/d1/f0")));

  Open();  // the next start
  EXPECT_TRUE(sn_->TrashAfterOpen());
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(sn_->dirs().List()->ids.empty());
  EXPECT_TRUE(sn_->dirs().List()->trash.empty());
}

// A stop cuts a Commit's flush and an active Usage's walk short:
// Unavailable, nothing recorded; after a restart the Commit succeeds.
TEST_F(SnapshotterTest, StopLongWorkCutsACommitsFlushAndAUsageWalk) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  std::string fs = sn_->dirs().FsPath(*sn_->dirs().List()->ids.begin());
  std::ofstream(fs + "/f") << "x";
  sn_->StopLongWork();
  absl::Status s = sn_->Commit("c", "a", {});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(sn_->Stat("a")->kind, Kind::kActive);
  EXPECT_EQ(sn_->Stat("c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sn_->GetUsage("a").status().code(), absl::StatusCode::kUnavailable);
  Open();
  EXPECT_TRUE(sn_->Commit("c", "a", {}).ok());
  EXPECT_EQ(sn_->GetUsage("c")->inodes, 2);
}

TEST_F(SnapshotterTest, ReopenKeepsStateAndDropsInterruptedCreations) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  std::string temp = sn_->dirs().SnapshotsDir() + "/new-abc123";
  ASSERT_EQ(mkdir(temp.c_str(), 0700), 0);
  // A spare a crash left (spare_dirs.h).
  std::string spare = sn_->dirs().SnapshotsDir() + "/spare-abc123";
  ASSERT_EQ(mkdir(spare.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((spare + "/fs").c_str(), 0755), 0);
  // A creation cut between its rename into place and COMMIT: the next id.
  std::string cut = sn_->dirs().SnapshotPath(2);
  ASSERT_EQ(mkdir(cut.c_str(), 0700), 0);
  std::vector<std::string> before = ListNames(*sn_);
  EXPECT_FALSE(sn_->TrashAfterOpen());  // a fresh root
  Open();
  EXPECT_TRUE(sn_->TrashAfterOpen());
  EXPECT_EQ(ListNames(*sn_), before);
  EXPECT_NE(access(temp.c_str(), F_OK), 0);
  EXPECT_NE(access(spare.c_str(), F_OK), 0);
  EXPECT_NE(access(cut.c_str(), F_OK), 0);
  // The cut creation held nothing (an empty fs/): removed, not quarantined.
  EXPECT_EQ(*sn_->QuarantineCount(), 0);
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(sn_->Prepare("b", "c", {}).ok());
  EXPECT_EQ(access(sn_->dirs().FsPath(2).c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 0);
  // The Prepare had spares made; closing removes them (bounded wait: a nice-10
  // thread on a loaded machine).
  auto spares = [&] {
    int n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator(sn_->dirs().SnapshotsDir())) {
      n += e.path().filename().string().rfind("spare-", 0) == 0;
    }
    return n;
  };
  for (int i = 0; i < 4000 && spares() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GT(spares(), 0);
  Open();  // nothing left over: no Cleanup needed after this start
  EXPECT_FALSE(sn_->TrashAfterOpen());
  EXPECT_EQ(spares(), 0);
  EXPECT_EQ(ListNames(*sn_).size(), before.size() + 1);
}

TEST_F(SnapshotterTest, SparesACrashLeftAreRemovedWithoutDelayingTheStart) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  Open();  // a clean stop: nothing for a Cleanup
  ASSERT_FALSE(sn_->TrashAfterOpen());
  // As a kill leaves them: empty spares, one half made.
  const std::string snapshots = sn_->dirs().SnapshotsDir();
  for (const char* name : {"/spare-aaaaaa", "/spare-bbbbbb"}) {
    ASSERT_EQ(mkdir((snapshots + name).c_str(), 0700), 0);
    ASSERT_EQ(mkdir((snapshots + name + "/fs").c_str(), 0755), 0);
  }
  ASSERT_EQ(mkdir((snapshots + "/spare-aaaaaa/work").c_str(), 0711), 0);
  Open();
  EXPECT_FALSE(sn_->TrashAfterOpen());  // the start's quick path
  EXPECT_NE(access((snapshots + "/spare-aaaaaa").c_str(), F_OK), 0);
  EXPECT_NE(access((snapshots + "/spare-bbbbbb").c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 0);
  // One holding a file was not made by the daemon; nor is a name of
  // another shape: both are kept, in quarantine.
  sn_.reset();
  ASSERT_EQ(mkdir((snapshots + "/spare-cccccc").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((snapshots + "/spare-cccccc/fs").c_str(), 0755), 0);
  std::ofstream(snapshots + "/spare-cccccc/fs/data") << "x";
  ASSERT_EQ(mkdir((snapshots + "/spare-old-one").c_str(), 0700), 0);
  // A symlink to an empty directory elsewhere: neither followed nor
  // removed.
  const std::string elsewhere = root_ + "/elsewhere";
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(symlink(elsewhere.c_str(), (snapshots + "/spare-llllll").c_str()),
            0);
  Open();
  EXPECT_TRUE(sn_->TrashAfterOpen());
  EXPECT_NE(access((snapshots + "/spare-cccccc").c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 3);
  EXPECT_EQ(access(elsewhere.c_str(), F_OK), 0);
  int kept = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(
           sn_->dirs().QuarantineDir())) {
    kept += e.path().filename() == "data";
  }
  EXPECT_EQ(kept, 1);
  EXPECT_THAT(ListNames(*sn_), ElementsAre("c||committed|0"));
}

TEST_F(SnapshotterTest, UnrecordedDirectoryWithDataIsQuarantined) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  std::string cut = sn_->dirs().SnapshotPath(2);
  ASSERT_EQ(mkdir(cut.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((cut + "/fs").c_str(), 0755), 0);
  std::ofstream(cut + "/fs/data") << "x";
  Open();
  EXPECT_NE(access(cut.c_str(), F_OK), 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 1);  // holds data nothing owns: kept
  EXPECT_TRUE(sn_->Prepare("b", "c", {}).ok());
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
}

// Every entry below `root` and the root itself: its type, mode and, for a
// file, its content.
std::map<std::string, std::string> TreeOf(const std::string& root) {
  auto describe = [](const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return std::string("gone");
    std::ostringstream what;
    what << (S_ISDIR(st.st_mode) ? "dir " : "file ") << std::oct
         << (st.st_mode & 07777);
    if (S_ISREG(st.st_mode)) what << " " << std::ifstream(path).rdbuf();
    return what.str();
  };
  std::map<std::string, std::string> tree = {{root, describe(root)}};
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    tree[e.path().string()] = describe(e.path().string());
  }
  return tree;
}

// A refused open changes nothing under the root, as the refusal says: not
// the root's mode, no snapshots/ made. <root>/lock, held through the
// checks, is the one file it may add; with it there, nothing at all.
TEST_F(SnapshotterTest, RefusedOpenChangesNothingButTheLock) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  sn_.reset();
  std::string store_id;
  std::getline(std::ifstream(root_ + "/store-id"), store_id);
  ASSERT_FALSE(store_id.empty());
  ASSERT_EQ(unlink((root_ + "/metadata.db").c_str()), 0);
  ASSERT_EQ(chmod(root_.c_str(), 0750), 0);
  ASSERT_EQ(unlink((root_ + "/lock").c_str()), 0);
  // Its records lost, snapshots/ there: refused. Then store-id alone (a
  // store whose layers were all guest-pulled): refused without snapshots/.
  for (bool with_snapshots : {true, false}) {
    SCOPED_TRACE(with_snapshots ? "snapshots/ there" : "store-id alone");
    if (!with_snapshots) {
      ASSERT_TRUE(RemoveAll(root_).ok());
      ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
      ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
      std::ofstream(root_ + "/store-id") << store_id << "\n";
    }
    std::map<std::string, std::string> before = TreeOf(root_);
    auto sn = Snapshotter::Open(opts_);
    ASSERT_FALSE(sn.ok());
    EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
    EXPECT_THAT(sn.status().message(), HasSubstr("Nothing was changed"));
    before[root_ + "/lock"] = "file 600 ";
    EXPECT_EQ(TreeOf(root_), before);
    sn = Snapshotter::Open(opts_);
    EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
    EXPECT_EQ(TreeOf(root_), before);
  }
}

TEST_F(SnapshotterTest, LostDatabaseIsRefusedAndNothingDeleted) {
  std::string db = root_ + "/metadata.db";
  ExpectRefusedAfter(db, [](const std::string& db) {
    ASSERT_EQ(unlink(db.c_str()), 0);
  });
  EXPECT_NE(access(db.c_str(), F_OK), 0);
}

// SQLite deletes the -wal beside an empty database even for a reader: the
// index read at start must not open one (the refusal changes nothing).
TEST_F(SnapshotterTest, EmptyDatabaseWithWalIsRefusedAndTheWalKept) {
  std::string db = root_ + "/metadata.db";
  ExpectRefusedAfter(db, [](const std::string& db) {
    ASSERT_EQ(truncate(db.c_str(), 0), 0);
    std::ofstream(db + "-wal") << "frames a recovery may still need";
  });
  EXPECT_EQ(access((db + "-wal").c_str(), F_OK), 0);
}

// An old copy of metadata.db put back after a clean stop (same store-id,
// no store-open), that still lists as active "a" the snapshot a later
// Commit turned into layer "layer" (same id, same directory): every
// directory it names exists and none is beyond its id counter, so only
// the store's generation shows it stale. Accepted, containerd's garbage
// collector would remove "a" (unknown to containerd) and the layer's data
// with it.
TEST_F(SnapshotterTest, StaleDatabaseThatStillHasALayerAsActiveIsRefused) {
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok()) << m.status();
  sn_.reset();  // clean stop: the -wal folded into metadata.db
  std::string db = root_ + "/metadata.db";
  std::string copy = root_ + "-old-metadata.db";
  std::filesystem::copy_file(db, copy,
                             std::filesystem::copy_options::overwrite_existing);
  Open();
  std::ofstream((*m)[0].source + "/file") << "layer data";
  ASSERT_TRUE(sn_->Commit("layer", "a", {}).ok());
  sn_.reset();
  std::string current = root_ + "-current-metadata.db";
  std::filesystem::copy_file(db, current,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(copy, db,
                             std::filesystem::copy_options::overwrite_existing);
  auto sn = Snapshotter::Open(opts_);
  ASSERT_FALSE(sn.ok())
      << "the stale copy was accepted; it shows the layer as active \"a\"";
  EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
  EXPECT_THAT(sn.status().message(),
              HasSubstr("an old copy, taken before the store's last clean "
                        "stop"));
  EXPECT_EQ(access((root_ + "/snapshots/1/fs/file").c_str(), F_OK), 0);
  // The database of the last stop, put back, opens with the layer.
  std::filesystem::copy_file(current, db,
                             std::filesystem::copy_options::overwrite_existing);
  Open();
  auto layer = sn_->Stat("layer");
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_EQ(layer->kind, Kind::kCommitted);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("a").status()));
  EXPECT_EQ(access((root_ + "/snapshots/1/fs/file").c_str(), F_OK), 0);
}

// An old copy that misses one committed layer with data created after it
// (within a batch of its last id) would be taken for a batch a crash
// interrupted: the layer quarantined, containerd still believing it
// exists. Refused by the generation.
TEST_F(SnapshotterTest, StaleDatabaseMissingOneLayerWithDataIsRefused) {
  sn_.reset();
  std::string db = root_ + "/metadata.db";
  std::string copy = root_ + "-old-metadata.db";
  std::filesystem::copy_file(db, copy,
                             std::filesystem::copy_options::overwrite_existing);
  Open();
  auto m = sn_->Prepare("a", "", {});
  ASSERT_TRUE(m.ok()) << m.status();
  std::ofstream((*m)[0].source + "/file") << "layer data";
  ASSERT_TRUE(sn_->Commit("layer", "a", {}).ok());
  sn_.reset();
  std::filesystem::copy_file(copy, db,
                             std::filesystem::copy_options::overwrite_existing);
  auto sn = Snapshotter::Open(opts_);
  ASSERT_FALSE(sn.ok()) << "the stale copy was accepted; quarantined: "
                        << *(*sn)->QuarantineCount();
  EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
  EXPECT_THAT(sn.status().message(), HasSubstr("is at generation 1 but"));
  EXPECT_EQ(access((root_ + "/snapshots/1/fs/file").c_str(), F_OK), 0);
  EXPECT_NE(access((root_ + "/quarantine").c_str(), F_OK), 0);
}

// A stop without a close (a crash: the store is left open) leaves the
// generation as it was: the next start serves everything acknowledged.
TEST_F(SnapshotterTest, CrashAfterCleanStopsStillOpens) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("layer", "a", {}).ok());
  Open();  // clean stop, then start
  ASSERT_TRUE(sn_->Prepare("b", "layer", {}).ok());
  // The crash: the files as they are while the daemon runs.
  std::map<std::string, std::string> files;
  for (const char* name : {"/metadata.db", "/metadata.db-wal", "/store-open",
                           "/store-generation"}) {
    std::stringstream text;
    text << std::ifstream(root_ + name, std::ios::binary).rdbuf();
    files[name] = text.str();
  }
  sn_.reset();
  for (const auto& [name, text] : files) {
    std::ofstream(root_ + name, std::ios::binary | std::ios::trunc) << text;
  }
  Open();
  EXPECT_TRUE(sn_->Stat("layer").ok());
  EXPECT_TRUE(sn_->Stat("b").ok());
}

// The index read beside the start's checks is the database's: every field
// of every snapshot equals a fresh read after the open.
TEST_F(SnapshotterTest, IndexReadAtOpenEqualsTheDatabase) {
  ASSERT_TRUE(sn_->Prepare("a", "", {{"x", "1"}}).ok());
  ASSERT_TRUE(sn_->Commit("base", "a", {{"y", "2"}, {"z", "3"}}).ok());
  ASSERT_TRUE(sn_->Prepare("b", "base", {{"x", "1"}}).ok());
  ASSERT_TRUE(sn_->Commit("top", "b", {}).ok());
  ASSERT_TRUE(sn_->Prepare("active", "top", {{"w", "4"}}).ok());
  ASSERT_TRUE(sn_->View("view", "base", {}).ok());
  Open();
  auto describe = [](const std::vector<Info>& infos) {
    std::vector<std::string> out;
    for (const Info& i : infos) {
      std::string d = absl::StrCat(i.name, "|", i.parent, "|",
                                   static_cast<int>(i.kind), "|",
                                   absl::ToUnixNanos(i.created), "|",
                                   absl::ToUnixNanos(i.updated));
      for (const auto& [k, v] : i.labels) absl::StrAppend(&d, "|", k, "=", v);
      out.push_back(d);
    }
    return out;
  };
  auto all = SnapshotFilter::Parse({});
  ASSERT_TRUE(all.ok());
  std::vector<Info> held = sn_->Select(*all, "", 0);
  SnapshotIndex fresh;
  auto reader =
      MetaStore::Open(root_ + "/metadata.db", MetaStore::Mode::kReadOnly);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(
      (*reader)->View([&](Transaction& tx) { return fresh.Load(tx); }).ok());
  EXPECT_EQ(held.size(), 4u);
  EXPECT_EQ(describe(held),
            describe(fresh.Select([](const InfoView&) { return true; })));
  EXPECT_EQ(fresh.Ids(), (std::set<int64_t>{1, 2, 3, 4}));
  // A label index is built by the load as by the writes.
  SnapshotIndex labelled({"z"});
  ASSERT_TRUE(
      (*reader)->View([&](Transaction& tx) { return labelled.Load(tx); }).ok());
  std::vector<std::string> keys;
  labelled.VisitLabelled("z", "3", [&](const InfoView& view) {
    keys.emplace_back(view.name);
    return true;
  });
  EXPECT_EQ(keys, (std::vector<std::string>{"base"}));
}

TEST_F(SnapshotterTest, PreviousReleaseRootIsMigrated) {
  sn_.reset();
  RemoveAll(root_).IgnoreError();
  SnapshotDirs dirs(root_);
  ASSERT_TRUE(dirs.Init().ok());
  std::ifstream in("snapshotter/testdata/metadata_v1.sql");
  std::stringstream sql;
  sql << in.rdbuf();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dirs.MetadataPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.str().c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  for (int id : {1, 2, 3}) {
    ASSERT_EQ(mkdir(dirs.SnapshotPath(id).c_str(), 0700), 0);
    ASSERT_EQ(mkdir(dirs.FsPath(id).c_str(), 0755), 0);
  }
  // The previous release's Remove deleted record 3 and crashed before its
  // directory; its Cleanup had moved an unproven orphan to trash.
  std::string old_trash = dirs.SnapshotsDir() + "/trash-v1orph";
  ASSERT_EQ(mkdir(old_trash.c_str(), 0700), 0);
  Open();
  EXPECT_THAT(ListNames(*sn_),
              ElementsAre("active-2|layer-1|active|1", "layer-1||committed|1"));
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);  // directory 3, moved to trash when the store opened
  // Directory 3 (its record removed, an empty fs/) held nothing and is
  // removed; the old release's trash proves nothing and is kept.
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
  EXPECT_NE(access(dirs.FsPath(3).c_str(), F_OK), 0);
  EXPECT_EQ(access(dirs.FsPath(1).c_str(), F_OK), 0);
  ASSERT_TRUE(sn_->Remove("active-2").ok());
  EXPECT_NE(access(dirs.FsPath(2).c_str(), F_OK), 0);
  ASSERT_TRUE(sn_->Prepare("new", "layer-1", {}).ok());
  EXPECT_EQ(access(dirs.FsPath(4).c_str(), F_OK), 0);
}

// A previous release's root whose metadata.db was lost has no store-id
// either, so its start is not refused when no snapshot directory is left:
// a trash-* there (that release's Cleanup moved unproven orphans to trash)
// is proven released by no database, and is quarantined, not deleted.
TEST_F(SnapshotterTest, TrashOfARootWithoutDatabaseIsQuarantined) {
  sn_.reset();
  RemoveAll(root_).IgnoreError();
  SnapshotDirs dirs(root_);
  ASSERT_TRUE(dirs.Init().ok());
  std::string old_trash = dirs.SnapshotsDir() + "/trash-v1orph";
  ASSERT_EQ(mkdir(old_trash.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((old_trash + "/fs").c_str(), 0755), 0);
  std::ofstream(old_trash + "/fs/data") << "x";
  Open();
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
  EXPECT_NE(access(old_trash.c_str(), F_OK), 0);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());  // a store that works
}

TEST_F(SnapshotterTest, UpdateLabels) {
  ASSERT_TRUE(sn_->Prepare("a", "", {{"x", "1"}}).ok());
  Info in{"a"};
  in.labels = {{"y", "2"}};
  auto out = sn_->Update(in, {"labels.y"});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->labels, (Labels{{"x", "1"}, {"y", "2"}}));
  out = sn_->Update(in, {});
  EXPECT_EQ(out->labels, (Labels{{"y", "2"}}));
}

// As containerd: an Update checks the labels it writes, after finding the
// snapshot; a label the request carries but no path names is not looked at.
TEST_F(SnapshotterTest, UpdateChecksOnlyTheLabelsItWrites) {
  ASSERT_TRUE(sn_->Prepare("a", "", {{"x", "1"}}).ok());
  Info in{"a"};
  in.labels = {{"y", "2"}, {"big", std::string(5000, 'v')}, {"", "e"}};
  auto out = sn_->Update(in, {"labels.y"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->labels, (Labels{{"x", "1"}, {"y", "2"}}));
  for (const std::vector<std::string>& paths :
       std::vector<std::vector<std::string>>{
           {"labels.big"}, {"labels."}, {"labels"}, {}, {"labels.y", "labels.big"}}) {
    EXPECT_EQ(sn_->Update(in, paths).status().code(),
              absl::StatusCode::kInvalidArgument)
        << absl::StrJoin(paths, ",");
  }
  EXPECT_EQ(sn_->Stat("a")->labels, (Labels{{"x", "1"}, {"y", "2"}}));
  Info missing = in;
  missing.name = "nope";
  EXPECT_EQ(sn_->Update(missing, {"labels.big"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SnapshotterTest, WalkFilters) {
  ASSERT_TRUE(sn_->Prepare("a", "", {{"containerd.io/snapshot.ref", "r"}}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {{"containerd.io/snapshot.ref", "r"}}).ok());
  ASSERT_TRUE(sn_->Prepare("b", "c", {}).ok());
  auto filter = SnapshotFilter::Parse(
      {"labels.\"containerd.io/snapshot.ref\"==r,parent==\"\""});
  ASSERT_TRUE(filter.ok());
  std::vector<std::string> names;
  ASSERT_TRUE(sn_->Walk(*filter, [&](const Info& i) {
                  names.push_back(i.name);
                  return absl::OkStatus();
                }).ok());
  EXPECT_THAT(names, ElementsAre("c"));
  auto kind = SnapshotFilter::Parse({"kind==active"});
  names.clear();
  ASSERT_TRUE(sn_->Walk(*kind, [&](const Info& i) {
                  names.push_back(i.name);
                  return absl::OkStatus();
                }).ok());
  EXPECT_THAT(names, ElementsAre("b"));
}

// A fake remote: layers labelled "remote" are committed with a marker file
// holding the layer's name, or with no file at all (write_marker false).
// Creating clients may not set "remote.layer" (owned) nor "hash".
class FakeRemote : public RemoteLayers {
 public:
  absl::StatusOr<std::optional<RemoteLayer>> Intercept(
      absl::string_view key, absl::string_view parent, ParentInfo parent_info,
      Records, const Labels& labels) override {
    intercepted = labels;
    auto it = labels.find("remote");
    if (it == labels.end()) return std::nullopt;
    return RemoteLayer{it->second, {{"remote.layer", "yes"}}};
  }
  absl::StatusOr<bool> Populate(const FsDirMaker& fs_dir,
                                absl::string_view parent,
                                const RemoteLayer& layer) override {
    if (make_dir_only) {
      absl::StatusOr<std::string> fs = fs_dir();
      if (!fs.ok()) return fs.status();
      return false;
    }
    if (!write_marker) return false;
    absl::StatusOr<std::string> fs = fs_dir();
    if (!fs.ok()) return fs.status();
    std::ofstream(*fs + "/marker") << layer.name;
    return true;
  }
  // Records the call; writes "upper" into the snapshot's fs/ (or fails).
  absl::Status PopulateActive(absl::string_view, const std::string& fs_dir,
                              const std::vector<Info>& parents,
                              const std::vector<std::string>& parent_fs) override {
    populated.push_back({fs_dir, parents.size(), parent_fs});
    if (fail_populate_active) return absl::InternalError("no space");
    std::ofstream(fs_dir + "/upper") << "from PopulateActive";
    return absl::OkStatus();
  }
  void Refresh() override { ++refreshes; }
  bool Decorates(const std::vector<Info>& parents) const override {
    return !parents.empty() && parents[0].labels.count("remote.layer") > 0;
  }
  struct ActiveCall {
    std::string fs_dir;
    size_t parents;
    std::vector<std::string> parent_fs;
  };
  std::vector<ActiveCall> populated;
  bool fail_populate_active = false;
  std::vector<std::string> OwnedLabels() const override {
    return {"remote.layer"};
  }
  std::vector<ReservedLabel> LabelsDroppedAtCreation() const override {
    return {{"remote.layer", "marker"}, {"hash", "forgeable"}};
  }
  absl::StatusOr<std::vector<Mount>> Decorate(
      const Info& snapshot, const std::vector<Info>& parents, Records,
      std::vector<Mount> mounts) override {
    if (refuse_rootfs) return absl::FailedPreconditionError("refused");
    parents_seen = parents.size();
    if (!parents.empty() && parents[0].labels.count("remote.layer")) {
      mounts[0].type = "fuse.fake";
    }
    return mounts;
  }
  size_t parents_seen = 0;
  Labels intercepted;  // the labels of the last Intercept
  bool write_marker = true;
  bool make_dir_only = false;  // asks for the directory, writes nothing
  bool refuse_rootfs = false;
  int refreshes = 0;
};

TEST_F(SnapshotterTest, RemoteLayersAreCommittedAndDecorated) {
  FakeRemote remote;
  Open(&remote);
  auto r = sn_->Prepare("extract-1", "", {{"remote", "chain1"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("chain1"));
  auto again = sn_->Prepare("extract-2", "", {{"remote", "chain1"}});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  auto info = sn_->Stat("chain1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels.at("remote.layer"), "yes");
  EXPECT_EQ(sn_->Stat("extract-1").status().code(), absl::StatusCode::kNotFound);
  r = sn_->Prepare("extract-3", "chain1", {{"remote", "chain2"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sn_->Stat("chain2")->parent, "chain1");
  auto rootfs = sn_->Prepare("container", "chain2", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ((*rootfs)[0].type, "fuse.fake");
  EXPECT_EQ(remote.parents_seen, 2u);
  EXPECT_GT(remote.refreshes, 0);
  // The marker written by Populate sits in the layer directory.
  std::string lower = (*rootfs)[0].options.back();
  EXPECT_THAT(lower, StartsWith("lowerdir="));
  std::string first = lower.substr(9, lower.find(':') - 9);
  std::ifstream marker(first + "/marker");
  std::string content;
  marker >> content;
  EXPECT_EQ(content, "chain2");
}

// A parent removed and made again under its name (another client, a pull
// racing a GC) between a Prepare's look-up of it and the making of its
// directory is used as the parent, as containerd's overlay looks it up in
// its own transaction. Before, the Prepare answered INTERNAL "stat
// .../snapshots/<old id>/fs: No such file or directory" (seen over gRPC
// with clients pulling one image while a GC removed its layers).
TEST_F(SnapshotterTest, ParentReplacedWhilePreparedIsUsed) {
  ASSERT_TRUE(sn_->Prepare("pa", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("P", "pa", {}).ok());
  bool replaced = false;
  opts_.after_parent_lookup = [&](absl::string_view key) {
    if (key != "container" || replaced) return;
    replaced = true;
    ASSERT_TRUE(sn_->Remove("P").ok());
    ASSERT_TRUE(sn_->Prepare("pa2", "", {}).ok());
    ASSERT_TRUE(sn_->Commit("P", "pa2", {}).ok());
  };
  Open();
  auto mounts = sn_->Prepare("container", "P", {});
  ASSERT_TRUE(replaced);
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  EXPECT_EQ(sn_->Stat("container")->parent, "P");
  // On the new P's directory (pa2's, id 2), not the removed one's (1).
  std::string lower;
  for (const std::string& o : (*mounts)[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  EXPECT_EQ(lower, root_ + "/snapshots/2/fs");
}

// A target removed (containerd's GC) between the transaction in which a
// Prepare found it and the look-up of it is made again, not refused:
// containerd fails the pull on FailedPrecondition, where its own overlay
// would commit the layer. Before, the Prepare answered "target snapshot
// ... exists, but no longer". The Prepare and the Remove are made to meet
// in one group commit batch, the Prepare first: a leader whose call check
// waits holds the batch before while both queue.
TEST_F(SnapshotterTest, RemoteLayerRemovedWhilePreparedIsMadeAgain) {
  FakeRemote remote;
  remote.write_marker = false;
  Open(&remote);
  ASSERT_EQ(sn_->Prepare("extract-0", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::Notification release;
  std::thread leader([&] {
    ScopedCallCheck wait([&] {
      release.WaitForNotification();
      return absl::OkStatus();
    });
    EXPECT_TRUE(sn_->Prepare("other", "", {}).ok());
  });
  absl::SleepFor(absl::Milliseconds(200));  // the leader waits in its batch
  absl::Status prepared;
  std::thread preparer([&] {
    prepared =
        sn_->Prepare("extract-1", "", {{"remote", "chain1"}}).status();
  });
  absl::SleepFor(absl::Milliseconds(200));  // queued first
  absl::Status removed;
  std::thread remover([&] { removed = sn_->Remove("chain1"); });
  absl::SleepFor(absl::Milliseconds(200));  // queued second
  release.Notify();
  leader.join();
  preparer.join();
  remover.join();
  EXPECT_TRUE(removed.ok()) << removed;
  EXPECT_EQ(prepared.code(), absl::StatusCode::kAlreadyExists) << prepared;
  // Made again after the Remove: the layer the answer names is there.
  auto info = sn_->Stat("chain1");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels.at("remote.layer"), "yes");
}

// An active snapshot on remote layers (not a view, not one on plain
// layers) gets the remote's host-side files in its own fs/, after it is
// recorded; a failure there is logged and the snapshot stays.
TEST_F(SnapshotterTest, ActiveSnapshotOnRemoteLayersIsPopulated) {
  FakeRemote remote;
  remote.write_marker = false;
  Open(&remote);
  ASSERT_EQ(sn_->Prepare("x1", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_EQ(sn_->Prepare("x2", "chain1", {{"remote", "chain2"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto rootfs = sn_->Prepare("container", "chain2", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  ASSERT_EQ(remote.populated.size(), 1u);
  std::string upper;
  for (const std::string& o : (*rootfs)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  EXPECT_EQ(remote.populated[0].fs_dir, upper);
  EXPECT_EQ(remote.populated[0].parents, 2u);
  ASSERT_EQ(remote.populated[0].parent_fs.size(), 2u);
  std::string lower;
  for (const std::string& o : (*rootfs)[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  EXPECT_EQ(lower, absl::StrCat(remote.populated[0].parent_fs[0], ":",
                                remote.populated[0].parent_fs[1]));
  EXPECT_TRUE(std::filesystem::exists(upper + "/upper"));

  ASSERT_TRUE(sn_->View("view", "chain2", {}).ok());
  ASSERT_TRUE(sn_->Prepare("plain", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("plain-layer", "plain", {}).ok());
  ASSERT_TRUE(sn_->Prepare("on-plain", "plain-layer", {}).ok());
  EXPECT_EQ(remote.populated.size(), 1u);

  remote.fail_populate_active = true;
  auto second = sn_->Prepare("container2", "chain2", {});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(remote.populated.size(), 2u);
  EXPECT_EQ(sn_->Stat("container2")->kind, Kind::kActive);
}

// A remote layer left without files has a record and no directory; a
// snapshot created on it, or its Mounts after a start that lost them, make
// the directories of the layers below it (the overlay's lower dirs).
TEST_F(SnapshotterTest, EmptyRemoteLayerGetsItsDirectoryWhenNeeded) {
  FakeRemote remote;
  remote.write_marker = false;
  Open(&remote);
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e :
         std::filesystem::directory_iterator(sn_->dirs().SnapshotsDir())) {
      names.push_back(e.path().filename().string());
    }
    return names;
  };
  ASSERT_EQ(sn_->Prepare("x1", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_EQ(
      sn_->Prepare("x2", "chain1", {{"remote", "chain2"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  // A directory asked for but left empty is not kept either.
  remote.make_dir_only = true;
  ASSERT_EQ(sn_->Prepare("x0", "", {{"remote", "chain0"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  remote.make_dir_only = false;
  EXPECT_THAT(entries(), ::testing::IsEmpty());
  EXPECT_EQ(sn_->GetUsage("chain2")->inodes, 0);
  auto lower_dirs = [](const std::vector<Mount>& mounts) {
    std::string lower;
    for (const std::string& o : mounts[0].options) {
      if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
    }
    return std::vector<std::string>(absl::StrSplit(lower, ':'));
  };
  auto rootfs = sn_->Prepare("container", "chain2", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  std::vector<std::string> lower = lower_dirs(*rootfs);
  ASSERT_EQ(lower.size(), 2u);
  for (const std::string& dir : lower) {
    EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
    EXPECT_TRUE(std::filesystem::is_empty(dir)) << dir;
  }
  // A start does not make them; Mounts does.
  sn_.reset();
  for (const std::string& dir : lower) {
    ASSERT_TRUE(RemoveAll(dir.substr(0, dir.rfind('/'))).ok());
  }
  Open(&remote);
  for (const std::string& dir : lower) {
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  }
  auto again = sn_->Mounts("container");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(lower_dirs(*again), lower);
  for (const std::string& dir : lower) {
    EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
  }
  // A layer removed without ever having had a directory leaves nothing.
  ASSERT_EQ(
      sn_->Prepare("x3", "chain2", {{"remote", "chain3"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(sn_->Remove("chain3").ok());
  EXPECT_TRUE(sn_->Remove("container").ok());
  EXPECT_TRUE(sn_->Remove("chain2").ok());
  EXPECT_TRUE(sn_->Remove("chain1").ok());
  EXPECT_TRUE(sn_->Cleanup().ok());
  EXPECT_THAT(entries(), ::testing::IsEmpty());
}

// One Visit looks at no more than a page of records, matching or not, and
// says where it stopped; the next one goes on from there.
TEST_F(SnapshotterTest, VisitLooksAtOnePageOfRecordsAtMost) {
  const size_t n = Snapshotter::kWalkBatch + 44;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(sn_->Prepare(absl::StrCat("k", 1000 + i), "", {}).ok());
  }
  auto none = SnapshotFilter::Parse({"name==nothing"});
  ASSERT_TRUE(none.ok());
  int matched = 0;
  auto count = [&](const InfoView&) { return ++matched > 0; };
  VisitEnd end = sn_->Visit(*none, "", count);
  EXPECT_FALSE(end.exhausted);
  EXPECT_EQ(end.last_key,
            absl::StrCat("k", 1000 + Snapshotter::kWalkBatch - 1));
  end = sn_->Visit(*none, end.last_key, count);
  EXPECT_TRUE(end.exhausted);
  EXPECT_EQ(end.last_key, absl::StrCat("k", 1000 + n - 1));
  EXPECT_EQ(matched, 0);
  auto all = SnapshotFilter::Parse({});
  ASSERT_TRUE(all.ok());
  end = sn_->Visit(*all, "", count);
  EXPECT_EQ(matched, static_cast<int>(Snapshotter::kWalkBatch));
  EXPECT_FALSE(end.exhausted);
}

// With ~= regexps (matched on copies, outside the index's lock) a Visit
// pages as without: the matches in key order, a stop where the callback
// said so, at most a page of records, and the next Visit goes on from there.
TEST_F(SnapshotterTest, VisitWithRegexpsPagesAsWithout) {
  const size_t n = Snapshotter::kWalkBatch + 44;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(sn_->Prepare(absl::StrCat("k", 1000 + i), "", {{"i", absl::StrCat(i)}}).ok());
  }
  for (const char* text : {"labels.i~=^1?[0-9]$", "labels.i==1,name~=k"}) {
    SCOPED_TRACE(text);
    auto filter = SnapshotFilter::Parse({text});
    ASSERT_TRUE(filter.ok());
    EXPECT_TRUE(filter->HasRegexps());
  }
  auto some = SnapshotFilter::Parse({"labels.i~=^1?[0-9]$"});  // i = 0..19
  std::vector<std::string> seen;
  auto take3 = [&](const InfoView& v) {
    seen.emplace_back(v.name);
    EXPECT_NE(v.Label("i"), nullptr);
    return seen.size() % 3 != 0;
  };
  VisitEnd end = sn_->Visit(*some, "", take3);
  EXPECT_EQ(seen, (std::vector<std::string>{"k1000", "k1001", "k1002"}));
  EXPECT_FALSE(end.exhausted);
  EXPECT_EQ(end.last_key, "k1002");
  std::string after = end.last_key;
  while (!end.exhausted) {
    end = sn_->Visit(*some, after, take3);
    after = end.last_key;
  }
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_EQ(seen.back(), "k1019");
  EXPECT_EQ(after, absl::StrCat("k", 1000 + n - 1));
  // A page of records at most, matching or not.
  auto none = SnapshotFilter::Parse({"name~=nothing"});
  int matched = 0;
  end = sn_->Visit(*none, "", [&](const InfoView&) { return ++matched > 0; });
  EXPECT_EQ(matched, 0);
  EXPECT_FALSE(end.exhausted);
  EXPECT_EQ(end.last_key, absl::StrCat("k", 1000 + Snapshotter::kWalkBatch - 1));
  EXPECT_FALSE(SnapshotFilter::Parse({"name==k1000"})->HasRegexps());
}

// Mounts refreshes the remote source only for a snapshot on remote layers;
// the service serves the others on its queue thread, as pure reads.
TEST_F(SnapshotterTest, MountsRefreshesOnlyOnRemoteLayers) {
  FakeRemote remote;
  Open(&remote);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("plain", "a", {}).ok());
  ASSERT_TRUE(sn_->Prepare("on-plain", "plain", {}).ok());
  ASSERT_EQ(sn_->Prepare("x", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(sn_->Prepare("on-remote", "chain1", {}).ok());

  EXPECT_FALSE(sn_->MountsRefreshes("on-plain"));
  EXPECT_FALSE(sn_->MountsRefreshes("missing"));
  EXPECT_TRUE(sn_->MountsRefreshes("on-remote"));
  int before = remote.refreshes;
  auto plain = sn_->Mounts("on-plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)[0].type, "overlay");
  EXPECT_EQ(remote.refreshes, before);
  auto decorated = sn_->Mounts("on-remote");
  ASSERT_TRUE(decorated.ok()) << decorated.status();
  EXPECT_EQ((*decorated)[0].type, "fuse.fake");
  EXPECT_EQ(remote.refreshes, before + 1);
}

// A remote layer Populate wrote files into records them: if its directory
// vanishes, the start refuses instead of making it again empty.
TEST_F(SnapshotterTest, LostRemoteLayerHoldingFilesIsRefusedNotRecreated) {
  FakeRemote remote;
  Open(&remote);
  EXPECT_EQ(sn_->Prepare("extract", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto usage = sn_->GetUsage("chain1");
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GE(usage->inodes, 2);  // fs/ and the marker
  sn_.reset();
  ASSERT_TRUE(RemoveAll(root_ + "/snapshots/1").ok());
  auto sn = Snapshotter::Open(opts_);
  ASSERT_FALSE(sn.ok());
  EXPECT_TRUE(IsRefusal(sn.status())) << sn.status();
  EXPECT_NE(access((root_ + "/snapshots/1").c_str(), F_OK), 0);
}

// The directories under snapshots/ holding a file `name` in fs/.
std::vector<std::string> DirsHolding(const std::string& root,
                                     const std::string& name) {
  std::vector<std::string> found;
  for (const auto& e :
       std::filesystem::directory_iterator(root + "/snapshots")) {
    if (access((e.path().string() + "/fs/" + name).c_str(), F_OK) == 0) {
      found.push_back(e.path().filename().string());
    }
  }
  return found;
}

// The directory of a layer recorded without content must hold nothing: one
// that holds files (a rolled-back creation whose removal failed, under an
// id SQLite handed out again; or writes into a lower layer) is moved to
// quarantine when the layer's directories are next made, never used as
// the layer.
TEST_F(SnapshotterTest, LeftoverDataUnderAContentlessLayerIsQuarantined) {
  FakeRemote remote;
  remote.write_marker = false;
  Open(&remote);
  ASSERT_EQ(sn_->Prepare("x1", "", {{"remote", "chain1"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto rootfs = sn_->Prepare("container", "chain1", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  std::string lower;
  for (const std::string& o : (*rootfs)[0].options) {
    if (o.rfind("lowerdir=", 0) == 0) lower = o.substr(9);
  }
  ASSERT_TRUE(std::filesystem::is_directory(lower)) << lower;
  sn_.reset();
  std::ofstream(lower + "/stale") << "not this layer's";
  Open(&remote);
  ASSERT_TRUE(sn_->Mounts("container").ok());
  EXPECT_TRUE(std::filesystem::is_directory(lower));
  EXPECT_TRUE(std::filesystem::is_empty(lower));
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
  int kept = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(
           sn_->dirs().QuarantineDir())) {
    if (e.path().filename() == "stale") ++kept;
  }
  EXPECT_EQ(kept, 1);
  // An empty one is the layer's own and stays.
  sn_.reset();
  Open(&remote);
  ASSERT_TRUE(sn_->Mounts("container").ok());
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
}

// A guest-pulled layer holding files whose commit is in doubt (its WAL
// fsync failed) keeps its directory, nothing more changes, and the next
// open settles the commit from the WAL with the layer's files, where
// undoing it made that open refuse a record without its directory.
TEST_F(SnapshotterTest, CommitInDoubtKeepsItsWorkAndTheNextOpenSettlesIt) {
  sn_.reset();
  FailingIoVfs vfs(SQLITE_OPEN_WAL);
  std::vector<std::string> handled;
  opts_.on_commit_in_doubt = [&](const absl::Status& s) {
    handled.emplace_back(s.message());
  };
  FakeRemote remote;
  // Closed before the VFS and the remote go, even when an assertion fails.
  absl::Cleanup close = [&] { sn_.reset(); };
  Open(&remote);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  vfs.FailSyncs(true);
  absl::Status s = sn_->Prepare("extract", "", {{"remote", "chain1"}}).status();
  vfs.FailSyncs(false);
  EXPECT_TRUE(IsCommitInDoubt(s)) << s;
  EXPECT_EQ(handled.size(), 1u);
  std::vector<std::string> layer_dirs = DirsHolding(root_, "marker");
  EXPECT_EQ(layer_dirs.size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("chain1").status()));
  // Refused, the handler not called again: nothing more changes.
  EXPECT_TRUE(IsCommitInDoubt(sn_->Remove("a")));
  EXPECT_TRUE(sn_->Stat("a").ok());
  EXPECT_TRUE(IsCommitInDoubt(sn_->Prepare("b", "", {}).status()));
  EXPECT_EQ(handled.size(), 1u);
  sn_.reset();
  opts_.on_commit_in_doubt = nullptr;
  Open(&remote);
  auto usage = sn_->GetUsage("chain1");
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GE(usage->inodes, 2);
  EXPECT_EQ(DirsHolding(root_, "marker"), layer_dirs);
  EXPECT_TRUE(sn_->Stat("a").ok());
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("b").status()));
}

// The other outcome of a commit in doubt: its frames never reached the
// disk (a power cut after the failed fsync loses them), so the next open
// has no record of the layer. Its directory, holding files, lies beyond
// the id counter: moved to quarantine, never deleted, and the layer can be
// pulled again.
TEST_F(SnapshotterTest, CommitInDoubtLostByAPowerCutIsQuarantined) {
  sn_.reset();
  FailingIoVfs vfs(SQLITE_OPEN_WAL);
  opts_.on_commit_in_doubt = [](const absl::Status&) {};
  FakeRemote remote;
  absl::Cleanup close = [&] { sn_.reset(); };
  Open(&remote);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  // The WAL as the last good commit's fsync left it on disk.
  const std::string wal_path = sn_->dirs().MetadataPath() + "-wal";
  std::stringstream synced;
  synced << std::ifstream(wal_path, std::ios::binary).rdbuf();
  vfs.FailSyncs(true);
  absl::Status s = sn_->Prepare("extract", "", {{"remote", "chain1"}}).status();
  vfs.FailSyncs(false);
  ASSERT_TRUE(IsCommitInDoubt(s)) << s;
  ASSERT_EQ(DirsHolding(root_, "marker").size(), 1u);
  sn_.reset();
  // The power cut: what the failed fsync did not write is gone.
  std::ofstream(wal_path, std::ios::binary | std::ios::trunc) << synced.str();
  opts_.on_commit_in_doubt = nullptr;
  Open(&remote);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("chain1").status()));
  EXPECT_TRUE(sn_->Stat("a").ok());
  EXPECT_TRUE(DirsHolding(root_, "marker").empty());
  EXPECT_EQ(*sn_->QuarantineCount(), 1);
  int kept = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(
           sn_->dirs().QuarantineDir())) {
    if (e.path().filename() == "marker") ++kept;
  }
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(
      sn_->Prepare("extract2", "", {{"remote", "chain1"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(sn_->Stat("chain1").ok());
  EXPECT_EQ(DirsHolding(root_, "marker").size(), 1u);
}

TEST_F(SnapshotterTest, RefusedPrepareLeavesNoDirectoryAndIdReuseIsSafe) {
  FakeRemote remote;
  Open(&remote);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("base", "a", {}).ok());
  // The snapshot directories and creations (spares, made ahead and taken
  // by Prepares, come and go: spare_dirs_test).
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e :
         std::filesystem::directory_iterator(sn_->dirs().SnapshotsDir())) {
      std::string name = e.path().filename().string();
      if (name.rfind("spare-", 0) != 0) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  std::vector<std::string> before = entries();
  EXPECT_EQ(before, std::vector<std::string>{"1"});
  remote.refuse_rootfs = true;
  EXPECT_EQ(sn_->Prepare("bad", "base", {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(entries(), before);
  remote.refuse_rootfs = false;
  // SQLite hands the rolled-back id out again: the new snapshot must keep
  // its directory.
  auto good = sn_->Prepare("good", "base", {});
  ASSERT_TRUE(good.ok()) << good.status();
  std::string upper;
  for (const std::string& o : (*good)[0].options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  EXPECT_EQ(access(upper.c_str(), F_OK), 0);
  EXPECT_TRUE(sn_->Commit("good-c", "good", {}).ok());
}

// containerd's parallel unpack: a layer prepared without its parent, with
// the label naming it, is applied through an overlay on an empty lower
// directory and committed onto its parent (parallel_unpack.h).
TEST_F(SnapshotterTest, ParallelUnpackLayerIsRebasedAtCommit) {
  ASSERT_TRUE(sn_->Prepare("k8s.io/1/extract-1 sha256:a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("k8s.io/2/sha256:a", "k8s.io/1/extract-1 sha256:a", {}).ok());
  // Layer b (diff ID sha256:d) on a, as containerd 2.3+ prepares it.
  const std::string chain = ::guest_pull::verity::ChainId("sha256:a", "sha256:d");
  const std::string key = "k8s.io/3/extract-2 " + chain;
  auto m = sn_->Prepare(key, "", {{kLabelParentChainId, "sha256:a"}, {kLabelDiffId, "sha256:d"}});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].type, "overlay");
  EXPECT_EQ((*m)[0].options.back(), "lowerdir=" + root_ + "/empty-lower");
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/empty-lower"));
  auto again = sn_->Mounts(key);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].options, (*m)[0].options);
  std::string upper;
  for (const std::string& o : (*m)[0].options) {
    if (absl::StartsWith(o, "upperdir=")) upper = o.substr(9);
  }
  std::ofstream(upper + "/b") << "b";

  ASSERT_TRUE(sn_->Commit("k8s.io/4/sha256:b", key, {}, "k8s.io/2/sha256:a").ok());
  EXPECT_EQ(sn_->Stat("k8s.io/4/sha256:b")->parent, "k8s.io/2/sha256:a");
  auto view = sn_->View("v", "k8s.io/4/sha256:b", {});
  ASSERT_TRUE(view.ok());
  EXPECT_EQ((*view)[0].options.back(),
            "lowerdir=" + upper + ":" + root_ + "/snapshots/1/fs");
  // The parent now has a child, and the new parent is durable.
  EXPECT_EQ(sn_->Remove("k8s.io/2/sha256:a").code(),
            absl::StatusCode::kFailedPrecondition);
  Open();
  EXPECT_EQ(sn_->Stat("k8s.io/4/sha256:b")->parent, "k8s.io/2/sha256:a");
  // Giving the parent it has already changes nothing.
  ASSERT_TRUE(sn_->Prepare("c", "k8s.io/4/sha256:b", {}).ok());
  EXPECT_TRUE(sn_->Commit("c-c", "c", {}, "k8s.io/4/sha256:b").ok());
  EXPECT_EQ(sn_->Stat("c-c")->parent, "k8s.io/4/sha256:b");
}

TEST_F(SnapshotterTest, RefusedRebaseLeavesTheSnapshotActive) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("base", "a", {}).ok());
  ASSERT_TRUE(sn_->Prepare("other", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("other-c", "other", {}).ok());
  ASSERT_TRUE(sn_->Prepare("on-base", "base", {}).ok());
  ASSERT_TRUE(sn_->Prepare("k8s.io/5/extract-5 sha256:x", "", {}).ok());
  ASSERT_TRUE(sn_->Prepare("free", "", {}).ok());
  ASSERT_TRUE(sn_->Prepare("act", "", {}).ok());
  struct Case {
    const char* key;
    const char* parent;
    absl::StatusCode code;
  };
  for (const Case& c : {
           Case{"on-base", "other-c", absl::StatusCode::kInvalidArgument},
           // Applied through a bind mount (containerd 2.2): whiteouts lost.
           Case{"k8s.io/5/extract-5 sha256:x", "base",
                absl::StatusCode::kFailedPrecondition},
           Case{"free", "missing", absl::StatusCode::kNotFound},
           // Onto itself: missing too, as containerd's storage answers (it
           // deletes the active snapshot before it looks the parent up);
           // with a parent already, the change is refused first.
           Case{"free", "free", absl::StatusCode::kNotFound},
           Case{"on-base", "on-base", absl::StatusCode::kInvalidArgument},
           // Not committed: FailedPrecondition, as containerd's storage.
           Case{"free", "act", absl::StatusCode::kFailedPrecondition},
           Case{"free", "x/../y", absl::StatusCode::kInvalidArgument},
       }) {
    absl::Status s = sn_->Commit("new", c.key, {}, c.parent);
    EXPECT_EQ(s.code(), c.code) << c.key << " onto " << c.parent << ": " << s;
    auto info = sn_->Stat(c.key);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->kind, Kind::kActive) << c.key;
    EXPECT_EQ(sn_->Stat("new").status().code(), absl::StatusCode::kNotFound);
  }
  // A snapshot that is not an unpack may be given a parent, as containerd
  // allows.
  ASSERT_TRUE(sn_->Commit("free-c", "free", {}, "base").ok());
  EXPECT_EQ(sn_->Stat("free-c")->parent, "base");
}

// containerd's overlay answers a Commit to a name already taken with
// AlreadyExists before it looks at what `key` is or at a new parent: its
// unpack takes AlreadyExists for "the layer is there already".
TEST_F(SnapshotterTest, CommitToATakenNameIsAlreadyExistsWhateverTheKey) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("base", "a", {}).ok());
  ASSERT_TRUE(sn_->Prepare("b", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("other", "b", {}).ok());
  ASSERT_TRUE(sn_->View("view", "base", {}).ok());
  ASSERT_TRUE(sn_->Prepare("on-base", "base", {}).ok());
  ASSERT_TRUE(sn_->Prepare("k8s.io/5/extract-5 sha256:x", "", {}).ok());
  std::vector<std::string> before = ListNames(*sn_);
  struct Case {
    const char* key;
    const char* parent;
  };
  for (const Case& c : {
           Case{"view", ""},
           Case{"base", ""},
           Case{"other", ""},
           // A parent change refused (InvalidArgument), and an unpack
           // without the rebase label (FailedPrecondition), otherwise.
           Case{"on-base", "other"},
           Case{"k8s.io/5/extract-5 sha256:x", "base"},
       }) {
    absl::Status s = sn_->Commit("other", c.key, {}, c.parent);
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists)
        << c.key << " onto \"" << c.parent << "\": " << s;
  }
  // A missing key is still NotFound first, as in containerd's overlay.
  EXPECT_EQ(sn_->Commit("other", "nope", {}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ListNames(*sn_), before);
}

TEST_F(SnapshotterTest, UpdateKeepsOwnedLabelsAndDropsEmptyValues) {
  FakeRemote remote;
  Open(&remote);
  ASSERT_EQ(sn_->Prepare("x", "", {{"remote", "chain"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  Info in{"chain"};
  in.labels = {{"containerd.io/snapshot/other", "v"}, {"empty", ""}};
  auto out = sn_->Update(in, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->labels, (Labels{{"containerd.io/snapshot/other", "v"},
                                 {"remote.layer", "yes"}}));
  EXPECT_EQ(sn_->Stat("chain")->labels, out->labels);
  in.labels = {{"remote.layer", "no"}};
  out = sn_->Update(in, {"labels.remote.layer"});
  EXPECT_EQ(out->labels.at("remote.layer"), "yes");
}

// Labels a creating client may not set are dropped from Prepare, View and
// Commit (Intercept never sees them); the others are kept.
TEST_F(SnapshotterTest, LabelsReservedAtCreationAreDropped) {
  FakeRemote remote;
  Open(&remote);
  const Labels spoofed = {
      {"remote.layer", "yes"}, {"hash", "forged"}, {"kept", "v"}};
  ASSERT_TRUE(sn_->Prepare("a", "", spoofed).ok());
  EXPECT_EQ(remote.intercepted, (Labels{{"kept", "v"}}));
  EXPECT_EQ(sn_->Stat("a")->labels, (Labels{{"kept", "v"}}));
  // A host-unpacked layer committed with the marker is a plain layer: a
  // rootfs on it gets plain overlay mounts.
  ASSERT_TRUE(sn_->Commit("plain", "a", spoofed).ok());
  EXPECT_EQ(sn_->Stat("plain")->labels, (Labels{{"kept", "v"}}));
  auto rootfs = sn_->Prepare("rootfs", "plain", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ((*rootfs)[0].type, "overlay");
  EXPECT_FALSE(sn_->MountsRefreshes("rootfs"));
  auto view = sn_->View("view", "plain", spoofed);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(sn_->Stat("view")->labels, (Labels{{"kept", "v"}}));
  // A remote layer's Prepare: only the remote's own labels are recorded.
  ASSERT_EQ(sn_->Prepare("x", "", {{"remote", "chain"}, {"hash", "forged"}})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(remote.intercepted, (Labels{{"remote", "chain"}}));
  EXPECT_EQ(sn_->Stat("chain")->labels, (Labels{{"remote.layer", "yes"}}));
}

// An Update still sets a label dropped at creation unless it is owned: the
// marker cannot be added to a layer that lacks it.
TEST_F(SnapshotterTest, UpdateSetsReservedLabelsButCannotAddOwnedOnes) {
  FakeRemote remote;
  Open(&remote);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("plain", "a", {}).ok());
  Info in{"plain"};
  in.labels = {{"hash", "operator"}, {"remote.layer", "yes"}};
  auto out = sn_->Update(in, {"labels.hash", "labels.remote.layer"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->labels, (Labels{{"hash", "operator"}}));
  out = sn_->Update(in, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->labels, (Labels{{"hash", "operator"}}));
  EXPECT_EQ(sn_->Stat("plain")->labels, out->labels);
  auto rootfs = sn_->Prepare("rootfs", "plain", {});
  ASSERT_TRUE(rootfs.ok()) << rootfs.status();
  EXPECT_EQ((*rootfs)[0].type, "overlay");
}

TEST_F(SnapshotterTest, SecondSnapshotterOnTheSameRootIsRefused) {
  Snapshotter::Options opts;
  opts.root = root_;
  auto second = Snapshotter::Open(opts);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  EXPECT_TRUE(sn_->Prepare("still-works", "", {}).ok());
}

TEST_F(SnapshotterTest, CheckStoreAnswersAndChangesNothing) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  std::vector<std::string> before = ListNames(*sn_);
  EXPECT_TRUE(sn_->CheckStore().ok());
  EXPECT_EQ(ListNames(*sn_), before);
}

}  // namespace
}  // namespace snapshotter
