#include "base/file_type.h"

#include <sys/stat.h>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(FileTypeNameTest, NamesEachKind) {
  EXPECT_STREQ(FileTypeName(S_IFREG | 0644), "a regular file");
  EXPECT_STREQ(FileTypeName(S_IFDIR | 0755), "a directory");
  EXPECT_STREQ(FileTypeName(S_IFLNK | 0777), "a symlink");
  EXPECT_STREQ(FileTypeName(S_IFIFO | 0600), "a FIFO");
  EXPECT_STREQ(FileTypeName(S_IFCHR | 0600), "a device");
  EXPECT_STREQ(FileTypeName(S_IFBLK | 0600), "a device");
  EXPECT_STREQ(FileTypeName(S_IFSOCK | 0600), "a socket");
  EXPECT_STREQ(FileTypeName(0), "another kind of file");
}

}  // namespace
}  // namespace base
