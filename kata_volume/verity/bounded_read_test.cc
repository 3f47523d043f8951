// Tests of ReadBounded on real files, a FIFO and a /proc file.
#include "kata_volume/verity/bounded_read.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::WriteFileOrDie;
using Refused = BoundedText::Refused;

// ReadBounded of `path` opened read-only and non-blocking.
absl::StatusOr<BoundedText> ReadPath(const std::string& path, size_t max) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  EXPECT_GE(fd, 0) << path;
  absl::StatusOr<BoundedText> read = ReadBounded(fd, path, max);
  close(fd);
  return read;
}

TEST(BoundedReadTest, ReadsAFileUpToTheLimitWhole) {
  const std::string path = MakeTempDir() + "/f";
  WriteFileOrDie(path, std::string(100, 'x'));
  absl::StatusOr<BoundedText> read = ReadPath(path, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kNone);
  EXPECT_EQ(read->text, std::string(100, 'x'));

  WriteFileOrDie(path, "");
  read = ReadPath(path, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kNone);
  EXPECT_EQ(read->text, "");
}

TEST(BoundedReadTest, RefusesALargerFileWithItsSize) {
  const std::string path = MakeTempDir() + "/f";
  WriteFileOrDie(path, std::string(101, 'x'));
  absl::StatusOr<BoundedText> read = ReadPath(path, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kTooLarge);
  EXPECT_EQ(read->size, "101");
  EXPECT_EQ(read->text, "");
}

// A /proc file says size 0 and has more: read no further than the limit.
TEST(BoundedReadTest, StopsOneBytePastTheLimitWhenTheFileGrows) {
  absl::StatusOr<BoundedText> read = ReadPath("/proc/self/status", 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kTooLarge);
  EXPECT_EQ(read->size, "more than 10");
  EXPECT_EQ(read->text, "");
}

TEST(BoundedReadTest, RefusesAFifoAndADirectoryWithoutWaiting) {
  const std::string dir = MakeTempDir();
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<BoundedText> read = ReadPath(fifo, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kNotRegular);

  read = ReadPath(dir, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->refused, Refused::kNotRegular);
}

TEST(BoundedReadTest, AFailedStatIsAnErrorNamingThePath) {
  absl::StatusOr<BoundedText> read = ReadBounded(-1, "/no/fd", 100);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("fstat /no/fd"), std::string::npos)
      << read.status();
}

}  // namespace
}  // namespace guest_pull::verity
