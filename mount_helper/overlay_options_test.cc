// Tests for option filtering and translation of the overlay mount helper.
#include "mount_helper/overlay_options.h"

#include <sys/mount.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mount_helper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(OverlayOptionsTest, WhatMountFuse3PassesGivesNoFlags) {
  // mount.fuse3 joins every -o and appends "dev,suid".
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"lowerdir=/l/2:/l/1,upperdir=/u,workdir=/w,"
       "io.katacontainers.volume=eyJ2+/ab==,guest-pull.x=1,dev,suid"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->flags, 0u);
  EXPECT_THAT(request->data,
              ElementsAre("lowerdir=/l/2:/l/1", "upperdir=/u", "workdir=/w"));
  EXPECT_THAT(request->dropped,
              ElementsAre("io.katacontainers.volume=eyJ2+/ab==",
                          "guest-pull.x=1"));
}

TEST(OverlayOptionsTest, FlagsApplyInOrder) {
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"nodev,nosuid,ro,lowerdir=/a:/b", "suid", "noexec,exec,noatime"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->flags,
            static_cast<unsigned long>(MS_NODEV | MS_RDONLY | MS_NOATIME));
  request = TranslateOverlayOptions({"ro,lowerdir=/a:/b,rw,nodev,dev"});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->flags, 0u);
}

TEST(OverlayOptionsTest, SeveralListsEmptyItemsAndUserspaceOptions) {
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"lowerdir=/a:/b,,", "", "index=off,noauto,x-foo=1,rshared"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=/a:/b", "index=off"));
  EXPECT_THAT(request->dropped, ElementsAre("noauto", "x-foo=1"));
  EXPECT_THAT(request->propagation, ElementsAre(static_cast<unsigned long>(MS_SHARED | MS_REC)));
}

// mount(2) takes one propagation type at a time (two at once: EINVAL);
// mount(8) sets each in turn, in the given order.
TEST(OverlayOptionsTest, PropagationOptionsApplyOneByOneInOrder) {
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({"shared,lowerdir=/a:/b", "private,rslave"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->propagation,
              ElementsAre(static_cast<unsigned long>(MS_SHARED), static_cast<unsigned long>(MS_PRIVATE),
                          static_cast<unsigned long>(MS_SLAVE | MS_REC)));
}

// Options are joined with commas for overlayfs, which reads "\," as an
// escaped comma: an option ending in a lone backslash would swallow the
// next one. An escaped backslash at the end is a backslash.
TEST(OverlayOptionsTest, ALoneTrailingBackslashIsRefused) {
  for (const std::vector<std::string>& lists :
       {std::vector<std::string>{"lowerdir=/a:/b,upperdir=/u\\", "workdir=/w"},
        std::vector<std::string>{"lowerdir=/a:/b\\\\\\"}}) {
    absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(lists);
    ASSERT_FALSE(request.ok()) << lists[0];
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(request.status().message(), HasSubstr("lone backslash"));
  }
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({"lowerdir=/a:/b\\\\,upperdir=/u\\\\", "workdir=/w"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=/a:/b\\\\", "upperdir=/u\\\\", "workdir=/w"));
}

// mount(8): X-* options are "not sent to the mount.<type> helpers nor to the
// mount(2) system call". containerd (mountWithHelper) and mount.fuse3 pass
// every option on, so the helper is the last place to drop them; overlayfs
// refuses an unknown option with EINVAL.
TEST(OverlayOptionsTest, FstabOnlyXOptionsNeverReachTheKernel) {
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"lowerdir=/a:/b,X-mount.mkdir=0755,upperdir=/u,X-containerd.mkdir.path=/u"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=/a:/b", "upperdir=/u"));
  EXPECT_THAT(request->dropped,
              ElementsAre("X-mount.mkdir=0755", "X-containerd.mkdir.path=/u"));
}

// The userspace options libmount's map hands to helpers (no MNT_NOHLPS) and
// mount.fuse3 does not drop itself (it drops only user, nouser, users, auto,
// noauto, _netdev and nofail): with them in fstab, mount(8) -> mount.fuse3
// -> the helper must not give them to overlayfs.
TEST(OverlayOptionsTest, UserspaceOptionsMountPassesToHelpersAreDropped) {
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"lowerdir=/a:/b,nousers,user=alice,uhelper=udisks2,helper=guest-pull-overlayfs,"
       "owner,nogroup"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=/a:/b"));
  EXPECT_THAT(request->dropped,
              ElementsAre("nousers", "user=alice", "uhelper=udisks2",
                          "helper=guest-pull-overlayfs", "owner", "nogroup"));
}

TEST(OverlayOptionsTest, OwnOptionPrefixes) {
  EXPECT_TRUE(IsOwnOption("io.katacontainers.volume=abc"));
  EXPECT_TRUE(IsOwnOption("io.katacontainers.other"));
  EXPECT_TRUE(IsOwnOption("guest-pull.anything=1"));
  EXPECT_FALSE(IsOwnOption("lowerdir=/io.katacontainers."));
}

TEST(OverlayOptionsTest, EscapedCommasStayInTheirItem) {
  EXPECT_THAT(SplitOptionList("lowerdir=/a\\,b:/c,upperdir=/u\\\\,,workdir=/w\\"),
              ElementsAre("lowerdir=/a\\,b:/c", "upperdir=/u\\\\", "workdir=/w\\"));
  absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions(
      {"lowerdir=/l\\,1,io.katacontainers.volume=x\\,y,nodev"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=/l\\,1"));
  EXPECT_THAT(request->dropped, ElementsAre("io.katacontainers.volume=x\\,y"));
  EXPECT_EQ(request->flags, static_cast<unsigned long>(MS_NODEV));
}

TEST(OverlayOptionsTest, Errors) {
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({"upperdir=/u,workdir=/w"});
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(std::string(request.status().message()), HasSubstr("no lowerdir"));
  // The fsconfig-only append form is refused by name, not as a missing lowerdir.
  request = TranslateOverlayOptions({"lowerdir+=/a,lowerdir+=/b,upperdir=/u,workdir=/w"});
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(request.status().message()),
              HasSubstr("option \"lowerdir+=/a\" is not supported"));
  request = TranslateOverlayOptions({"lowerdir=/a:/b,rbind"});
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(std::string(request.status().message()),
              HasSubstr("cannot be a bind mount"));
}

// overlayfs keeps the last lowerdir= (a later one replaces an earlier one):
// an empty last one leaves it none, and the kernel refuses the mount
// ("missing 'lowerdir'", EINVAL, exit 32) where a missing one is the
// helper's usage error. An empty one replaced by a later one is fine.
TEST(OverlayOptionsTest, AnEmptyLastLowerdirIsRefused) {
  for (const char* options : {"lowerdir=,upperdir=/u,workdir=/w", "lowerdir=/a:/b,lowerdir=",
                              "lowerdir=/a:/b,ro,lowerdir=,dev,suid"}) {
    absl::StatusOr<OverlayMountRequest> request = TranslateOverlayOptions({options});
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << options;
    EXPECT_THAT(std::string(request.status().message()),
                HasSubstr("the last lowerdir= option is empty"))
        << options;
  }
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({"lowerdir=", "lowerdir=/a:/b"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->data, ElementsAre("lowerdir=", "lowerdir=/a:/b"));
}

// A remount makes no overlay: the kernel changes the flags of whatever is
// mounted at the target and overlayfs ignores lowerdir/upperdir/workdir
// there, so the helper would report the requested layers as mounted.
TEST(OverlayOptionsTest, RemountIsRefused) {
  absl::StatusOr<OverlayMountRequest> request =
      TranslateOverlayOptions({"remount,ro,lowerdir=/a:/b"});
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(request.status().message()),
              HasSubstr("option \"remount\" is not supported"));
}

}  // namespace
}  // namespace mount_helper
