// Real overlay mounts of many layers (root only; skipped otherwise).
#include "guest_agent/rootfs_overlay.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace guest_pull::guest_agent {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RootfsOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "overlay mounts need root";
    base_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", ::getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (const char* dir : {"", "/layers", "/upper", "/work", "/rootfs"}) {
      ASSERT_EQ(::mkdir((base_ + dir).c_str(), 0755), 0) << base_ << dir;
    }
  }
  void TearDown() override {
    if (!base_.empty()) ::umount2((base_ + "/rootfs").c_str(), MNT_DETACH);
  }

  // `count` layer directories, as the agent makes them, top first; layer i
  // holds the file layer<i>.
  std::vector<std::string> MakeLayers(int count) {
    std::vector<std::string> lower;
    for (int i = 0; i < count; ++i) {
      const std::string dir = absl::StrCat(base_, "/layers/", i);
      EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
      std::ofstream(absl::StrCat(dir, "/layer", i)) << i;
      lower.insert(lower.begin(), dir);
    }
    return lower;
  }

  std::string base_;
};

// Options beyond a page were cut by the kernel: the agent's rootfs of 196
// layers under /run/agent mounted without the bottom layers and without
// its upper directory (read-only), from the layers directory itself.
TEST_F(RootfsOverlayTest, LayersBeyondOnePageOfOptionsAreAllMounted) {
  const std::vector<std::string> lower = MakeLayers(300);
  ASSERT_GT(absl::StrJoin(lower, ":").size(), static_cast<size_t>(getpagesize()));
  const std::string rootfs = base_ + "/rootfs";
  char before[4096];
  ASSERT_NE(::getcwd(before, sizeof(before)), nullptr);
  ASSERT_TRUE(MountRootfsOverlay(lower, base_ + "/upper", base_ + "/work", rootfs).ok());
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(ReadFile(absl::StrCat(rootfs, "/layer", i)), absl::StrCat(i)) << "layer " << i;
  }
  std::ofstream(rootfs + "/written") << "upper";
  EXPECT_EQ(ReadFile(base_ + "/upper/written"), "upper");
  // The working directory is restored (the mount ran in the paths' common
  // parent, base_ itself: upper and work are beside layers/).
  char after[4096];
  ASSERT_NE(::getcwd(after, sizeof(after)), nullptr);
  EXPECT_EQ(std::string(after), std::string(before));
}

TEST_F(RootfsOverlayTest, OptionsThatNeverFitAreRefused) {
  std::vector<std::string> lower;
  for (int i = 0; i < 2000; ++i) lower.push_back(absl::StrCat(base_, "/layers/", i));
  absl::Status status = MountRootfsOverlay(lower, base_ + "/upper", base_ + "/work", base_ + "/rootfs");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("more than the mount(2) limit"), std::string::npos) << status;
}

}  // namespace
}  // namespace guest_pull::guest_agent
