// Tests for RunGuestPullOverlayfs that need no privileges: usage, exit codes
// and the -f (fake) path with compaction.
#include "mount_helper/helper.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mount_helper/command_line.h"

namespace mount_helper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunHelper(const std::vector<std::string>& args,
                 const std::string& program = kProgram) {
  std::ostringstream out, err;
  const int code = RunGuestPullOverlayfs(program, args, out, err);
  return {code, out.str(), err.str()};
}

TEST(HelperTest, HelpAndVersion) {
  Result help = RunHelper({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, StartsWith("usage: guest-pull-overlayfs"));
  Result version = RunHelper({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_EQ(version.out, absl::StrCat("guest-pull-overlayfs ", kHelperVersion, "\n"));
}

// Run under another name (the stock-kata one), every text gives that name.
TEST(HelperTest, MessagesGiveTheNameItRunsBy) {
  const std::string name = "nydus-overlayfs-guest-pull";
  Result help = RunHelper({"--help"}, name);
  EXPECT_THAT(help.out, StartsWith("usage: " + name + " [<source>]"));
  EXPECT_THAT(help.out, HasSubstr("for a fuse." + name + " mount"));
  EXPECT_EQ(RunHelper({"--version"}, name).out,
            absl::StrCat(name, " ", kHelperVersion, "\n"));
  Result usage = RunHelper({"overlay", "/t", "-o", "upperdir=/u"}, name);
  EXPECT_EQ(usage.code, 1);
  EXPECT_THAT(usage.err, StartsWith(name + ": "));
  Result bad_flag = RunHelper({"/t", "--bogus"}, name);
  EXPECT_THAT(bad_flag.err, StartsWith(name + ": unknown flag"));
  EXPECT_THAT(bad_flag.err, HasSubstr("usage: " + name + " "));
  Result verbose = RunHelper({"/t", "-f", "-v", "-o", "lowerdir=/a:/b"}, name);
  EXPECT_EQ(verbose.code, 0);
  EXPECT_THAT(verbose.err, StartsWith(name + ": mount(\"overlay\""));
  for (const Result& r : {help, usage, bad_flag, verbose}) {
    EXPECT_THAT(r.out + r.err, Not(HasSubstr("guest-pull-overlayfs")));
  }
}

// mount(8)'s statuses: 1 for an incorrect invocation, 32 for a mount failure.
TEST(HelperTest, UsageErrorsExitOne) {
  EXPECT_EQ(RunHelper({}).code, 1);
  EXPECT_EQ(RunHelper({"overlay", "/t", "--bogus"}).code, 1);
  Result no_lower = RunHelper({"overlay", "/t", "-o", "upperdir=/u"});
  EXPECT_EQ(no_lower.code, 1);
  EXPECT_THAT(no_lower.err, HasSubstr("no lowerdir"));
  // -f checks it too: the kernel would refuse it ("missing 'lowerdir'").
  Result empty_lower = RunHelper({"overlay", "/t", "-f", "-o", "lowerdir=,upperdir=/u,workdir=/w"});
  EXPECT_EQ(empty_lower.code, 1);
  EXPECT_THAT(empty_lower.err, HasSubstr("the last lowerdir= option is empty"));
  EXPECT_EQ(RunHelper({"overlay", "/t", "-o", "lowerdir=/a,bind"}).code, 1);
  EXPECT_EQ(RunHelper({"overlay", "/t", "-f", "-o", "lowerdir=/a:/b,remount,ro"}).code, 1);
}

TEST(HelperTest, FakeRunIsSilentUnlessVerbose) {
  Result quiet = RunHelper({"overlay", "/t", "-f", "-o",
                            "lowerdir=/a:/b,io.katacontainers.volume=e30=,dev,suid"});
  EXPECT_EQ(quiet.code, 0);
  EXPECT_EQ(quiet.out, "");
  EXPECT_EQ(quiet.err, "");

  Result verbose = RunHelper({"overlay", "/t", "-f", "-v", "-o",
                              "lowerdir=/a:/b,nodev,io.katacontainers.volume=e30="});
  EXPECT_EQ(verbose.code, 0);
  EXPECT_EQ(verbose.err,
            "guest-pull-overlayfs: mount(\"overlay\", \"/t\", \"overlay\", 0x4, "
            "\"lowerdir=/a:/b\")\n");
}

// mount.fuse3 (util/mount.fuse.c) passes the source only when it is not
// empty: a fuse.guest-pull-overlayfs mount whose source is "" (containerd
// passes Mount.Source as it is), or `mount -t fuse guest-pull-overlayfs
// /mnt` (type without '#'), runs `guest-pull-overlayfs <target> -o ...`;
// the "guest-pull-overlayfs#" form passes an empty source ''.
TEST(HelperTest, MountFuseFormsWithoutASource) {
  Result no_source = RunHelper({"/t", "-f", "-v", "-o", "lowerdir=/a:/b,dev,suid"});
  EXPECT_EQ(no_source.code, 0) << no_source.err;
  EXPECT_EQ(no_source.err,
            "guest-pull-overlayfs: mount(\"overlay\", \"/t\", \"overlay\", 0x0, "
            "\"lowerdir=/a:/b\")\n");
  Result empty_source = RunHelper({"", "/t", "-f", "-v", "-o", "lowerdir=/a:/b"});
  EXPECT_EQ(empty_source.code, 0) << empty_source.err;
  EXPECT_EQ(empty_source.err, no_source.err);
  // The target is still required.
  EXPECT_EQ(RunHelper({"-o", "lowerdir=/a:/b"}).code, 1);
  EXPECT_EQ(RunHelper({"overlay", "", "-o", "lowerdir=/a:/b"}).code, 1);
}

TEST(HelperTest, FakeRunCompactsDeepImages) {
  std::vector<std::string> lowerdirs;
  for (int i = 0; i < 128; ++i) {
    lowerdirs.push_back(absl::StrCat("/var/lib/guest-pull/snapshots/", i, "/fs-with-a-long-name"));
  }
  Result result = RunHelper({"overlay", "/t", "-f", "-v", "-o",
                             "lowerdir=" + absl::StrJoin(lowerdirs, ":")});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr(" in /var/lib/guest-pull/snapshots\n"));
}

TEST(HelperTest, DataThatNeverFitsIsAMountFailure) {
  std::vector<std::string> lowerdirs;
  for (int i = 0; i < 2000; ++i) lowerdirs.push_back(absl::StrCat("/b/", i));
  Result result = RunHelper(
      {"overlay", "/t", "-f", "-o", "lowerdir=" + absl::StrJoin(lowerdirs, ":")});
  EXPECT_EQ(result.code, 32);
  EXPECT_THAT(result.err, HasSubstr("more than the mount(2) limit"));
}

}  // namespace
}  // namespace mount_helper
