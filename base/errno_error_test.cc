// Tests for ErrnoError.
#include "base/errno_error.h"

#include <errno.h>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(ErrnoErrorTest, NamesTheCallThePathAndTheError) {
  absl::Status s = ErrnoError("mkdir", "/x/y", ENOENT);
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_EQ(s.message(), "mkdir /x/y: No such file or directory");
  EXPECT_TRUE(absl::IsPermissionDenied(ErrnoError("open", "/x", EACCES)));
  EXPECT_TRUE(absl::IsPermissionDenied(ErrnoError("open", "/x", EPERM)));
  EXPECT_TRUE(absl::IsInternal(ErrnoError("fsync", "/x", EIO)));
  EXPECT_TRUE(absl::IsResourceExhausted(ErrnoError("mkdir", "/x", ENOSPC)));
  EXPECT_TRUE(absl::IsResourceExhausted(ErrnoError("write", "/x", EDQUOT)));
}

}  // namespace
}  // namespace base
