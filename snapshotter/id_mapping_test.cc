#include "snapshotter/id_mapping.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(IdMapsOfTest, NoLabelsNoMaps) {
  auto maps = IdMapsOf({{"containerd.io/snapshot/other", "x"}});
  ASSERT_TRUE(maps.ok()) << maps.status();
  EXPECT_FALSE(maps->has_value());
}

TEST(IdMapsOfTest, RootPairAndOptionsAsContainerdWritesThem) {
  auto maps = IdMapsOf({{kLabelUidMapping, "0:65536:65536"},
                        {kLabelGidMapping, "1:5:10,0:131072:1"}});
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_TRUE(maps->has_value());
  EXPECT_EQ((*maps)->root_uid, 65536u);
  EXPECT_EQ((*maps)->root_gid, 131072u);
  EXPECT_THAT(IdMapOptions(**maps),
              ElementsAre("uidmap=0:65536:65536", "gidmap=1:5:10,0:131072:1"));
}

// One label alone: its option alone; the other id maps to itself.
TEST(IdMapsOfTest, OneLabel) {
  auto maps = IdMapsOf({{kLabelUidMapping, "0:1000:1"}});
  ASSERT_TRUE(maps.ok()) << maps.status();
  EXPECT_EQ((*maps)->root_uid, 1000u);
  EXPECT_EQ((*maps)->root_gid, 0u);
  EXPECT_THAT(IdMapOptions(**maps), ElementsAre("uidmap=0:1000:1"));
}

TEST(IdMapsOfTest, ToHostAsContainerd) {
  auto maps = IdMapsOf({{kLabelUidMapping, "0:65536:10,10:1000:5"}});
  ASSERT_TRUE(maps.ok()) << maps.status();
  EXPECT_EQ(ToHost((*maps)->uids, 0), 65536u);
  EXPECT_EQ(ToHost((*maps)->uids, 9), 65545u);
  EXPECT_EQ(ToHost((*maps)->uids, 12), 1002u);
  EXPECT_EQ(ToHost((*maps)->uids, 15), std::nullopt);
  EXPECT_EQ(ToHost((*maps)->gids, 15), 15u);  // no gid label: itself
}

// An empty value is no label: containerd drops it, and so does the store.
TEST(IdMapsOfTest, EmptyLabelsAreAbsent) {
  auto none = IdMapsOf({{kLabelUidMapping, ""}, {kLabelGidMapping, ""}});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  auto uid_only = IdMapsOf({{kLabelUidMapping, "0:1000:1"}, {kLabelGidMapping, ""}});
  ASSERT_TRUE(uid_only.ok() && uid_only->has_value()) << uid_only.status();
  EXPECT_FALSE((*uid_only)->gid_label.has_value());
  EXPECT_EQ((*uid_only)->root_gid, 0u);
}

TEST(IdMapsOfTest, MalformedOrRootlessMapsAreInvalidArgument) {
  for (const char* bad : {"0:65536", "a:1:2", "0:1:2,", "-1:0:1", "0:4294967295:1",
                          "0:4294967294:2", "1:65536:65536", "0:1:0", " 0:1:1",
                          "0:1:1:1", "99999999999:1:1"}) {
    auto maps = IdMapsOf({{kLabelUidMapping, bad}, {kLabelGidMapping, "0:1:1"}});
    EXPECT_EQ(maps.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(maps.status().message()),
                HasSubstr("label containerd.io/snapshot/uidmapping is \"")) << bad;
  }
  auto gid = IdMapsOf({{kLabelGidMapping, "x"}});
  EXPECT_THAT(std::string(gid.status().message()), HasSubstr("gidmapping"));
}

// The names containerd's client commits its chowned copy under (without the
// remap-ids capability); the 2.x digests are those Go's encoding/json and
// go-digest give for remappedSnapshot{Parent, IDMap} (checked with Go).
TEST(IsRemapCopyNameTest, ContainerdsNames) {
  auto maps = IdMapsOf({{kLabelUidMapping, "0:100000:65536"},
                        {kLabelGidMapping, "0:200000:65536"}});
  ASSERT_TRUE(maps.ok()) << maps.status();
  const IdMaps& m = **maps;
  EXPECT_TRUE(IsRemapCopyName(
      "sha256:c56f364b5f2afb3c60a3d95f967bb104876f1b77ceb0f956a9e01bc4188f263c", "l2", m));
  EXPECT_TRUE(IsRemapCopyName("l2-100000-200000", "l2", m));  // 1.7
  // Another parent, other ids, or an ordinary chain ID: not a copy.
  EXPECT_FALSE(IsRemapCopyName(
      "sha256:c56f364b5f2afb3c60a3d95f967bb104876f1b77ceb0f956a9e01bc4188f263c", "l3", m));
  EXPECT_FALSE(IsRemapCopyName("l2-100000-200001", "l2", m));
  EXPECT_FALSE(IsRemapCopyName("sha256:" + std::string(64, 'a'), "l2", m));
  EXPECT_FALSE(IsRemapCopyName("l2", "l2", m));
  EXPECT_FALSE(IsRemapCopyName("", "", m));
  // 2.2+: every range, sorted by container id; no gid label: null.
  auto multi = IdMapsOf({{kLabelUidMapping, "1:300001:10,0:300000:1"}});
  ASSERT_TRUE(multi.ok()) << multi.status();
  EXPECT_TRUE(IsRemapCopyName(
      "sha256:558a47b3fb43bf267e36f5fab27dcf377c84b1390e65916fce1fb0a6a231014c",
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", **multi));
}

}  // namespace
}  // namespace snapshotter
