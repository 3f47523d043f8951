// Tests for the mount(8) flag option table.
#include "mount_helper/mount_flags.h"

#include <sys/mount.h>

#include "gtest/gtest.h"

namespace mount_helper {
namespace {

void ExpectEffect(const char* option, bool clear, unsigned long flag) {
  std::optional<MountFlagEffect> effect = LookupMountFlag(option);
  ASSERT_TRUE(effect.has_value()) << option;
  EXPECT_EQ(effect->clear, clear) << option;
  EXPECT_EQ(effect->flag, flag) << option;
}

TEST(MountFlagsTest, OptionsMountFuse3AppendsClearFlags) {
  ExpectEffect("dev", true, MS_NODEV);
  ExpectEffect("suid", true, MS_NOSUID);
  ExpectEffect("rw", true, MS_RDONLY);
  ExpectEffect("exec", true, MS_NOEXEC);
}

TEST(MountFlagsTest, SettingFlags) {
  ExpectEffect("ro", false, MS_RDONLY);
  ExpectEffect("nodev", false, MS_NODEV);
  ExpectEffect("nosuid", false, MS_NOSUID);
  ExpectEffect("noexec", false, MS_NOEXEC);
  ExpectEffect("sync", false, MS_SYNCHRONOUS);
  ExpectEffect("async", true, MS_SYNCHRONOUS);
  ExpectEffect("dirsync", false, MS_DIRSYNC);
  ExpectEffect("remount", false, MS_REMOUNT);
  ExpectEffect("mand", false, MS_MANDLOCK);
  ExpectEffect("nomand", true, MS_MANDLOCK);
  ExpectEffect("noatime", false, MS_NOATIME);
  ExpectEffect("atime", true, MS_NOATIME);
  ExpectEffect("nodiratime", false, MS_NODIRATIME);
  ExpectEffect("diratime", true, MS_NODIRATIME);
  ExpectEffect("bind", false, MS_BIND);
  ExpectEffect("rbind", false, MS_BIND | MS_REC);
  ExpectEffect("relatime", false, MS_RELATIME);
  ExpectEffect("norelatime", true, MS_RELATIME);
  ExpectEffect("strictatime", false, MS_STRICTATIME);
  ExpectEffect("nostrictatime", true, MS_STRICTATIME);
  ExpectEffect("defaults", false, 0);
}

TEST(MountFlagsTest, DataOptionsAreNotFlags) {
  EXPECT_FALSE(LookupMountFlag("lowerdir=/a").has_value());
  EXPECT_FALSE(LookupMountFlag("index=off").has_value());
  EXPECT_FALSE(LookupMountFlag("RO").has_value());
}

TEST(MountFlagsTest, Propagation) {
  EXPECT_EQ(LookupPropagationFlag("rshared"), MS_SHARED | MS_REC);
  EXPECT_EQ(LookupPropagationFlag("private"), MS_PRIVATE);
  EXPECT_FALSE(LookupPropagationFlag("ro").has_value());
}

TEST(MountFlagsTest, UserspaceOnlyOptions) {
  EXPECT_TRUE(IsUserspaceOnlyOption("noauto"));
  EXPECT_TRUE(IsUserspaceOnlyOption("_netdev"));
  EXPECT_TRUE(IsUserspaceOnlyOption("x-systemd.automount"));
  EXPECT_TRUE(IsUserspaceOnlyOption("X-mount.mkdir"));
  EXPECT_TRUE(IsUserspaceOnlyOption("X-mount.mode=0755"));
  EXPECT_FALSE(IsUserspaceOnlyOption("xino=off"));
  EXPECT_FALSE(IsUserspaceOnlyOption("userxattr"));
}

}  // namespace
}  // namespace mount_helper
