// Tests for the mounts that expose a snapshot (containerd overlayfs shapes).
#include "snapshotter/overlay_mounts.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::ElementsAre;

const SnapshotDirs kDirs("/r");

TEST(OverlayMountsTest, BaseSnapshotsAreBindMounts) {
  EXPECT_THAT(OverlayMounts(kDirs, {1, Kind::kActive, {}}, true)[0].options,
              ElementsAre("rw", "rbind"));
  std::vector<Mount> view = OverlayMounts(kDirs, {2, Kind::kView, {}}, true);
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view[0].type, "bind");
  EXPECT_EQ(view[0].source, "/r/snapshots/2/fs");
  EXPECT_THAT(view[0].options, ElementsAre("ro", "rbind"));
}

TEST(OverlayMountsTest, ViewOnOneLayerBindsTheParentReadOnly) {
  std::vector<Mount> m = OverlayMounts(kDirs, {5, Kind::kView, {3}}, true);
  EXPECT_EQ(m[0].type, "bind");
  EXPECT_EQ(m[0].source, "/r/snapshots/3/fs");
  EXPECT_THAT(m[0].options, ElementsAre("ro", "rbind"));
}

TEST(OverlayMountsTest, ActiveOverlayListsLowersClosestFirst) {
  std::vector<Mount> m =
      OverlayMounts(kDirs, {9, Kind::kActive, {7, 4, 1}}, true);
  EXPECT_EQ(m[0].type, "overlay");
  EXPECT_EQ(m[0].source, "overlay");
  EXPECT_THAT(m[0].options,
              ElementsAre("index=off", "workdir=/r/snapshots/9/work",
                          "upperdir=/r/snapshots/9/fs",
                          "lowerdir=/r/snapshots/7/fs:/r/snapshots/4/fs:"
                          "/r/snapshots/1/fs"));
  EXPECT_EQ(OverlayMounts(kDirs, {9, Kind::kActive, {7}}, false)[0].options[0],
            "workdir=/r/snapshots/9/work");
}

TEST(OverlayMountsTest, ViewOnSeveralLayersIsReadOnlyOverlay) {
  std::vector<Mount> m = OverlayMounts(kDirs, {9, Kind::kView, {7, 4}}, false);
  EXPECT_EQ(m[0].type, "overlay");
  EXPECT_THAT(m[0].options,
              ElementsAre("lowerdir=/r/snapshots/7/fs:/r/snapshots/4/fs"));
}

TEST(OverlayMountsTest, LayerAwaitingRebaseIsOverlayOnEmptyLower) {
  std::vector<Mount> m = OverlayMounts(kDirs, {3, Kind::kActive, {}}, true,
                                       /*awaits_rebase=*/true);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].type, "overlay");
  EXPECT_THAT(m[0].options,
              ElementsAre("index=off", "workdir=/r/snapshots/3/work",
                          "upperdir=/r/snapshots/3/fs", "lowerdir=/r/empty-lower"));
  // Only an active snapshot without parents is applied in place.
  EXPECT_EQ(OverlayMounts(kDirs, {3, Kind::kView, {}}, true, true)[0].type, "bind");
  EXPECT_THAT(OverlayMounts(kDirs, {3, Kind::kActive, {2}}, false, true)[0].options,
              ElementsAre("workdir=/r/snapshots/3/work", "upperdir=/r/snapshots/3/fs",
                          "lowerdir=/r/snapshots/2/fs"));
}

}  // namespace
}  // namespace snapshotter
