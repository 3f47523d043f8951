// Tests for the guest-pull-overlayfs command line.
#include "mount_helper/command_line.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mount_helper {
namespace {

using ::testing::ElementsAre;

TEST(CommandLineTest, ProgramNameIsTheBaseNameRunBy) {
  EXPECT_EQ(ProgramName("/usr/local/bin/nydus-overlayfs-guest-pull"),
            "nydus-overlayfs-guest-pull");
  EXPECT_EQ(ProgramName("guest-pull-overlayfs"), "guest-pull-overlayfs");
  EXPECT_EQ(ProgramName(""), kProgram);
  EXPECT_EQ(ProgramName("/odd/"), kProgram);
  EXPECT_EQ(ProgramName(nullptr), kProgram);
}

TEST(CommandLineTest, MountFuse3Form) {
  absl::StatusOr<HelperArgs> args = ParseHelperArgs(
      {"overlay", "/mnt/t", "-o", "lowerdir=/a:/b,io.katacontainers.volume=e30=,dev,suid"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->source, "overlay");
  EXPECT_EQ(args->target, "/mnt/t");
  EXPECT_THAT(args->option_lists,
              ElementsAre("lowerdir=/a:/b,io.katacontainers.volume=e30=,dev,suid"));
  EXPECT_FALSE(args->fake);
}

TEST(CommandLineTest, SeveralOptionsAttachedValuesAndFlags) {
  absl::StatusOr<HelperArgs> args = ParseHelperArgs(
      {"-n", "-oro", "overlay", "-s", "-o", "lowerdir=/a", "/t", "-v", "-f"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->option_lists, ElementsAre("ro", "lowerdir=/a"));
  EXPECT_EQ(args->target, "/t");
  EXPECT_TRUE(args->fake);
  EXPECT_TRUE(args->verbose);
}

TEST(CommandLineTest, HelpAndVersionNeedNoPositionals) {
  EXPECT_TRUE(ParseHelperArgs({"--help"})->help);
  EXPECT_TRUE(ParseHelperArgs({"-h"})->help);
  EXPECT_TRUE(ParseHelperArgs({"--version"})->version);
}

TEST(CommandLineTest, DoubleDashEndsFlags) {
  absl::StatusOr<HelperArgs> args = ParseHelperArgs({"--", "-src", "/-dst"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->source, "-src");
  EXPECT_EQ(args->target, "/-dst");
}

// mount.fuse3 leaves out an empty source: `<target> -o ...`; its "type#"
// form passes an empty one.
TEST(CommandLineTest, SourceIsOptional) {
  absl::StatusOr<HelperArgs> args = ParseHelperArgs({"/mnt/t", "-o", "lowerdir=/a"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->source, "overlay");
  EXPECT_EQ(args->target, "/mnt/t");
  EXPECT_THAT(args->option_lists, ElementsAre("lowerdir=/a"));
  args = ParseHelperArgs({"", "/mnt/t"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->source, "overlay");
  EXPECT_EQ(args->target, "/mnt/t");
}

TEST(CommandLineTest, UsageErrors) {
  EXPECT_FALSE(ParseHelperArgs({}).ok());
  EXPECT_FALSE(ParseHelperArgs({"-o", "lowerdir=/a"}).ok());
  EXPECT_FALSE(ParseHelperArgs({"a", "b", "c"}).ok());
  EXPECT_FALSE(ParseHelperArgs({"a", "b", "-o"}).ok());
  EXPECT_FALSE(ParseHelperArgs({"a", "b", "--bogus"}).ok());
  EXPECT_FALSE(ParseHelperArgs({"a", ""}).ok());
  EXPECT_FALSE(ParseHelperArgs({""}).ok());
}

// The target is absolute, as every caller passes it: with one left out by
// hand, the source is not taken for a relative mount point.
TEST(CommandLineTest, RelativeTargetIsAUsageError) {
  absl::StatusOr<HelperArgs> args =
      ParseHelperArgs({"overlay", "-o", "lowerdir=/a"});
  ASSERT_FALSE(args.ok());
  EXPECT_THAT(std::string(args.status().message()),
              ::testing::HasSubstr("target must be an absolute path"));
  EXPECT_FALSE(ParseHelperArgs({"overlay", "mnt"}).ok());
  EXPECT_TRUE(ParseHelperArgs({"overlay", "/mnt"}).ok());
}

}  // namespace
}  // namespace mount_helper
