#include "snapshotter/dangling_link.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace snapshotter {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/dangling-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

TEST(DanglingLinkTest, FindsTheLinkAtThePathOrAboveIt) {
  const std::string d = TempDir();
  ASSERT_EQ(symlink((d + "/nowhere/x").c_str(), (d + "/link").c_str()), 0);
  for (const std::string& path : {d + "/link", d + "/link/a/b"}) {
    std::optional<DanglingLink> found = FindDanglingLink(path);
    ASSERT_TRUE(found.has_value()) << path;
    EXPECT_EQ(found->link, d + "/link");
    EXPECT_EQ(found->target, d + "/nowhere/x");
    EXPECT_EQ(found->Describe(), d + "/link is a symbolic link to " + d +
                                     "/nowhere/x, which does not exist");
  }
  std::filesystem::remove_all(d);
}

TEST(DanglingLinkTest, NoneWhereThePathExistsOrOnlyDirectoriesAreMissing) {
  const std::string d = TempDir();
  std::filesystem::create_directories(d + "/target");
  ASSERT_EQ(symlink((d + "/target").c_str(), (d + "/link").c_str()), 0);
  EXPECT_FALSE(FindDanglingLink(d).has_value());
  EXPECT_FALSE(FindDanglingLink(d + "/missing/a/b").has_value());
  EXPECT_FALSE(FindDanglingLink(d + "/link").has_value());
  EXPECT_FALSE(FindDanglingLink(d + "/link/missing/a").has_value());
  EXPECT_FALSE(FindDanglingLink("/").has_value());
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace snapshotter
