// DirectWriter: the bytes come out in order whatever the alignment; aligned
// blocks bypass the page cache; a pipe is written as a stream.
#include "kata_volume/verity/direct_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::DirectWritesBypassPageCache;
using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PagesInPageCache;
using ::guest_pull::verity::testing::ReadFileOrDie;

constexpr size_t kBlock = DirectWriter::kAlignment;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

// `size` bytes of a repeating pattern at a kBlock-aligned address.
std::unique_ptr<char, FreeDeleter> AlignedPattern(size_t size) {
  std::unique_ptr<char, FreeDeleter> buffer(
      static_cast<char*>(std::aligned_alloc(kBlock, (size + kBlock - 1) / kBlock * kBlock)));
  for (size_t i = 0; i < size; ++i) buffer.get()[i] = static_cast<char>('a' + i % 23);
  return buffer;
}

int OpenNew(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

TEST(DirectWriterTest, AlignedBlocksAroundThePageCacheThenATail) {
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/out";
  const size_t whole = 64 * kBlock;
  auto data = AlignedPattern(whole + 100);
  int fd = OpenNew(path);
  ASSERT_GE(fd, 0);
  DirectWriter writer(fd, path);
  if (!writer.direct()) {
    ::close(fd);
    GTEST_SKIP() << "the test directory's file system refuses O_DIRECT";
  }
  // tmpfs (Linux 6.6+), and overlayfs on it, take O_DIRECT but their
  // pages are the file: a block written with plain O_DIRECT tells.
  if (!DirectWritesBypassPageCache(dir)) {
    ::close(fd);
    GTEST_SKIP() << "direct writes stay in the page cache here (tmpfs?)";
  }
  ASSERT_TRUE(writer.Write(data.get(), whole / 2).ok());
  ASSERT_TRUE(writer.Write(data.get() + whole / 2, whole / 2).ok());
  EXPECT_TRUE(writer.direct());
  EXPECT_EQ(PagesInPageCache(path), 0);
  // An unaligned length: its whole blocks direct, the rest buffered, and
  // buffered from then on.
  ASSERT_TRUE(writer.Write(data.get() + whole, 100).ok());
  EXPECT_FALSE(writer.direct());
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFileOrDie(path), std::string(data.get(), whole + 100));
}

TEST(DirectWriterTest, ALongUnalignedWriteKeepsItsOrder) {
  const std::string path = MakeTempDir() + "/out";
  auto data = AlignedPattern(10 * kBlock + 1);
  int fd = OpenNew(path);
  ASSERT_GE(fd, 0);
  DirectWriter writer(fd, path);
  // Whole blocks then 1 byte, then an unaligned address: all in order.
  ASSERT_TRUE(writer.Write(data.get(), 3 * kBlock + 1).ok());
  ASSERT_TRUE(writer.Write(data.get() + 3 * kBlock + 1, 7 * kBlock).ok());
  EXPECT_FALSE(writer.direct());
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFileOrDie(path), std::string(data.get(), 10 * kBlock + 1));
}

// A direct write the kernel refuses with EINVAL (here: the file offset is
// not aligned, as on a device whose blocks are larger than kAlignment) is
// written again through the page cache, and so is the rest.
TEST(DirectWriterTest, ARefusedDirectWriteIsBuffered) {
  const std::string path = MakeTempDir() + "/out";
  auto data = AlignedPattern(4 * kBlock);
  int fd = OpenNew(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "0123456789", 10), 10);  // behind the writer's back
  DirectWriter writer(fd, path);
  if (!writer.direct()) {
    ::close(fd);
    GTEST_SKIP() << "the test directory's file system refuses O_DIRECT";
  }
  ASSERT_TRUE(writer.Write(data.get(), 2 * kBlock).ok());
  ASSERT_TRUE(writer.Write(data.get() + 2 * kBlock, 2 * kBlock).ok());
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFileOrDie(path), "0123456789" + std::string(data.get(), 4 * kBlock));
}

TEST(DirectWriterTest, APipeIsAStreamNotPackets) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto data = AlignedPattern(2 * kBlock);
  DirectWriter writer(fds[1], "pipe");
  EXPECT_FALSE(writer.direct());
  ASSERT_TRUE(writer.Write(data.get(), kBlock).ok());
  ASSERT_TRUE(writer.Write(data.get() + kBlock, kBlock).ok());
  ::close(fds[1]);
  // One read takes both writes: no packet boundary between them.
  std::string got(2 * kBlock, '\0');
  ASSERT_EQ(::read(fds[0], got.data(), got.size()), static_cast<ssize_t>(got.size()));
  ::close(fds[0]);
  EXPECT_EQ(got, std::string(data.get(), 2 * kBlock));
}

TEST(DirectWriterTest, AWriteErrorNamesTheFile) {
  const std::string path = MakeTempDir() + "/out";
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  DirectWriter writer(fd, path);
  auto data = AlignedPattern(kBlock);
  absl::Status s = writer.Write(data.get(), kBlock);
  ::close(fd);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;  // EBADF
  EXPECT_NE(s.message().find(path), std::string::npos) << s;
}

}  // namespace
}  // namespace guest_pull::verity
