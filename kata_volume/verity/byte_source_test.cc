// Byte source tests: gzip decoding against the gzip CLI, concatenated
// members, corrupt/truncated streams, magic detection.
#include "kata_volume/verity/byte_source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PseudoRandomBytes;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::WriteFileOrDie;

absl::StatusOr<std::string> Gunzip(const std::string& path) {
  auto file = FileByteSource::Open(path);
  if (!file.ok()) return file.status();
  GzipByteSource gz(*std::move(file));
  std::string out;
  char buf[3000];
  for (int guard = 0; guard < 1000000; ++guard) {
    auto n = gz.Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.append(buf, *n);
  }
  return absl::InternalError("no end");
}

TEST(ByteSourceTest, GzipMatchesCliIncludingConcatenatedMembers) {
  std::string dir = MakeTempDir();
  std::string a = PseudoRandomBytes(300000, 1), b = "second member";
  WriteFileOrDie(dir + "/a", a);
  WriteFileOrDie(dir + "/b", b);
  ASSERT_TRUE(RunCommand(absl::StrCat("cd ", dir, " && gzip -c a > ab.gz && gzip -c b >> ab.gz")).ok());
  EXPECT_EQ(*DetectBlobCompression(dir + "/ab.gz"), BlobCompression::kGzip);
  EXPECT_EQ(*DetectBlobCompression(dir + "/a"), BlobCompression::kNone);
  absl::StatusOr<std::string> out = Gunzip(dir + "/ab.gz");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, a + b);
}

TEST(ByteSourceTest, CorruptTruncatedAndTrailingGarbageFail) {
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/a", PseudoRandomBytes(100000, 2));
  ASSERT_TRUE(RunCommand(absl::StrCat("cd ", dir, " && gzip -k a")).ok());
  std::string gz = ReadFileOrDie(dir + "/a.gz");
  WriteFileOrDie(dir + "/trunc.gz", gz.substr(0, gz.size() / 2));
  EXPECT_NE(Gunzip(dir + "/trunc.gz").status().message().find("truncated"), std::string::npos);
  WriteFileOrDie(dir + "/garbage.gz", gz + "garbage");
  EXPECT_FALSE(Gunzip(dir + "/garbage.gz").ok());
  std::string corrupt = gz;
  corrupt[gz.size() / 2] ^= 0x55;
  corrupt[gz.size() / 2 + 1] ^= 0x55;
  WriteFileOrDie(dir + "/corrupt.gz", corrupt);
  EXPECT_FALSE(Gunzip(dir + "/corrupt.gz").ok());
  EXPECT_TRUE(absl::IsNotFound(FileByteSource::Open(dir + "/none").status()));
}

// Decodes the file at `path` as `compression` in reads of `chunk` bytes.
absl::StatusOr<std::string> Decode(const std::string& path, BlobCompression compression,
                                   size_t chunk = 3000) {
  auto file = FileByteSource::Open(path);
  if (!file.ok()) return file.status();
  std::unique_ptr<ByteSource> source = Decompressing(compression, *std::move(file));
  std::string out;
  std::string buf(chunk, '\0');
  for (int guard = 0; guard < 10000000; ++guard) {
    auto n = source->Read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.append(buf.data(), *n);
  }
  return absl::InternalError("no end");
}

// A zstd skippable frame (magic 0x184D2A53) holding `payload`.
std::string SkippableFrame(const std::string& payload) {
  std::string frame("\x53\x2a\x4d\x18", 4);
  for (int i = 0; i < 4; ++i)
    frame.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  return frame + payload;
}

TEST(ByteSourceTest, ZstdMatchesCliIncludingConcatenatedAndSkippableFrames) {
  std::string dir = MakeTempDir();
  std::string a = PseudoRandomBytes(300000, 3), b = "second frame";
  WriteFileOrDie(dir + "/a", a);
  WriteFileOrDie(dir + "/b", b);
  ASSERT_TRUE(
      RunCommand(absl::StrCat("cd ", dir, " && zstd -q -c a > ab.zst && zstd -q -c b >> ab.zst"))
          .ok());
  EXPECT_EQ(*DetectBlobCompression(dir + "/ab.zst"), BlobCompression::kZstd);
  for (size_t chunk : {size_t{1}, size_t{3000}, size_t{1} << 20}) {
    absl::StatusOr<std::string> out = Decode(dir + "/ab.zst", BlobCompression::kZstd, chunk);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(*out == a + b) << "reads of " << chunk;
  }
  // Skippable frames (before, between and after) carry no content.
  std::string zst = ReadFileOrDie(dir + "/ab.zst");
  ASSERT_TRUE(RunCommand(absl::StrCat("cd ", dir, " && zstd -q -c b > b.zst")).ok());
  WriteFileOrDie(dir + "/skips.zst", SkippableFrame("meta") + zst + SkippableFrame("") +
                                         ReadFileOrDie(dir + "/b.zst") + SkippableFrame("x"));
  EXPECT_EQ(*DetectBlobCompression(dir + "/skips.zst"), BlobCompression::kZstd);
  absl::StatusOr<std::string> out = Decode(dir + "/skips.zst", BlobCompression::kZstd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(*out == a + b + b);
}

TEST(ByteSourceTest, ZstdCorruptTruncatedEmptyAndTrailingGarbageFail) {
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/a", PseudoRandomBytes(100000, 4));
  // --check: a checksum, so flipped bytes are found even where they still
  // decode.
  ASSERT_TRUE(RunCommand(absl::StrCat("cd ", dir, " && zstd -q --check -k a")).ok());
  std::string zst = ReadFileOrDie(dir + "/a.zst");
  for (size_t cut : {size_t{4}, size_t{10}, zst.size() / 2, zst.size() - 1}) {
    WriteFileOrDie(dir + "/trunc.zst", zst.substr(0, cut));
    absl::StatusOr<std::string> out = Decode(dir + "/trunc.zst", BlobCompression::kZstd);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << cut;
    EXPECT_NE(out.status().message().find("zstd"), std::string::npos) << out.status();
  }
  WriteFileOrDie(dir + "/garbage.zst", zst + "garbage");
  absl::StatusOr<std::string> garbage = Decode(dir + "/garbage.zst", BlobCompression::kZstd);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.status().message().find("trailing garbage"), std::string::npos)
      << garbage.status();
  // The error sticks: a Read after it fails alike (never a clean end).
  {
    auto file = FileByteSource::Open(dir + "/garbage.zst");
    ASSERT_TRUE(file.ok());
    ZstdByteSource zs(*std::move(file));
    std::string buf(1 << 20, '\0');
    absl::StatusOr<size_t> n = zs.Read(buf.data(), buf.size());
    for (int i = 0; i < 100 && n.ok() && *n > 0; ++i) n = zs.Read(buf.data(), buf.size());
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(zs.Read(buf.data(), buf.size()).status(), n.status());
  }
  std::string corrupt = zst;
  corrupt[zst.size() / 2] ^= 0x55;
  corrupt[zst.size() / 2 + 1] ^= 0x55;
  WriteFileOrDie(dir + "/corrupt.zst", corrupt);
  EXPECT_EQ(Decode(dir + "/corrupt.zst", BlobCompression::kZstd).status().code(),
            absl::StatusCode::kInvalidArgument);
  WriteFileOrDie(dir + "/empty", "");
  EXPECT_EQ(Decode(dir + "/empty", BlobCompression::kZstd).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A frame with a 256 MiB window (--long=28, its size unknown to the
  // compressor): refused with the reason, not as corrupt.
  ASSERT_TRUE(RunCommand(absl::StrCat("cd ", dir, " && zstd -q --long=28 -c < a > long.zst")).ok());
  absl::StatusOr<std::string> long_window = Decode(dir + "/long.zst", BlobCompression::kZstd);
  EXPECT_EQ(long_window.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(long_window.status().message().find("window larger than 128 MiB"), std::string::npos)
      << long_window.status();
  // Not zstd at all: the magic is wrong.
  EXPECT_EQ(Decode(dir + "/a", BlobCompression::kZstd).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ByteSourceTest, BufferedServesSmallAndLargeReadsInOrder) {
  std::string dir = MakeTempDir();
  std::string data = PseudoRandomBytes(100000, 3);
  WriteFileOrDie(dir + "/d", data);
  std::vector<size_t> observed;
  auto file = FileByteSource::Open(dir + "/d");
  ASSERT_TRUE(file.ok());
  BufferedByteSource buffered(
      std::make_unique<ObservedByteSource>(*std::move(file),
                                           [&](const char*, size_t n) {
                                             observed.push_back(n);
                                             return absl::OkStatus();
                                           }),
      8192);
  std::string out;
  char buf[20000];
  const size_t sizes[] = {512, 1, 8192, 20000, 3000};
  for (int i = 0; i < 1000; ++i) {
    auto n = buffered.Read(buf, sizes[i % 5]);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    out.append(buf, *n);
  }
  EXPECT_EQ(out, data);
  // Small reads were served from 8192-byte refills, not one read each.
  EXPECT_LT(observed.size(), 40u);
}

TEST(ByteSourceTest, BufferedSkipConsumesWithoutHandingOut) {
  std::string dir = MakeTempDir();
  std::string data = PseudoRandomBytes(50000, 4);
  WriteFileOrDie(dir + "/d", data);
  size_t observed = 0;
  auto file = FileByteSource::Open(dir + "/d");
  ASSERT_TRUE(file.ok());
  BufferedByteSource buffered(
      std::make_unique<ObservedByteSource>(*std::move(file),
                                           [&](const char*, size_t n) {
                                             observed += n;
                                             return absl::OkStatus();
                                           }),
      4096);
  char buf[100];
  ASSERT_EQ(*buffered.Read(buf, 100), 100u);
  size_t skipped = 0;
  for (int i = 0; i < 100 && skipped < 30000; ++i) {
    auto n = buffered.Skip(30000 - skipped);
    ASSERT_TRUE(n.ok());
    ASSERT_GT(*n, 0u);
    skipped += *n;
  }
  ASSERT_EQ(*buffered.Read(buf, 100), 100u);
  EXPECT_EQ(std::string(buf, 100), data.substr(30100, 100));
  while (*buffered.Skip(1 << 20) > 0) {
  }
  EXPECT_EQ(observed, data.size());  // skipped bytes were observed too
}

// skip_through over a file: large skips seek (nothing read past the
// buffer), small ones stay in the buffer, and the end of the file is exact.
TEST(ByteSourceTest, SkipThroughSeeksOverAFile) {
  std::string dir = MakeTempDir();
  std::string data = PseudoRandomBytes(100000, 5);
  WriteFileOrDie(dir + "/d", data);
  auto file = FileByteSource::Open(dir + "/d");
  ASSERT_TRUE(file.ok());
  BufferedByteSource buffered(*std::move(file), 4096, /*skip_through=*/true);
  char buf[100];
  ASSERT_EQ(*buffered.Read(buf, 100), 100u);
  ASSERT_EQ(*buffered.Skip(50000), 3996u);  // the rest of the buffer first
  ASSERT_EQ(*buffered.Skip(46004 - 100), 45904u);  // then a seek
  ASSERT_EQ(*buffered.Read(buf, 100), 100u);
  EXPECT_EQ(std::string(buf, 100), data.substr(50000, 100));
  uint64_t rest = 0;
  for (int i = 0; i < 100; ++i) {
    auto n = buffered.Skip(1 << 20);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    rest += *n;
  }
  EXPECT_EQ(rest, data.size() - 50100);
  EXPECT_EQ(*buffered.Read(buf, 100), 0u);
}

TEST(ByteSourceTest, OpenSameFileRefusesAnotherFileOrAFifoWithoutWaiting) {
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/d", "layer");
  struct stat st;
  ASSERT_EQ(::stat((dir + "/d").c_str(), &st), 0);
  auto same = FileByteSource::OpenSameFile(dir + "/d", st.st_dev, st.st_ino);
  ASSERT_TRUE(same.ok()) << same.status();
  char buf[16];
  EXPECT_EQ(*(*same)->Read(buf, sizeof(buf)), 5u);

  // Replaced by another file, then by a FIFO (no writer: a blocking open
  // would wait forever).
  WriteFileOrDie(dir + "/e", "other");
  ASSERT_EQ(::rename((dir + "/e").c_str(), (dir + "/d").c_str()), 0);
  EXPECT_EQ(FileByteSource::OpenSameFile(dir + "/d", st.st_dev, st.st_ino).status().code(),
            absl::StatusCode::kAborted);
  ASSERT_EQ(::unlink((dir + "/d").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/d").c_str(), 0600), 0);
  EXPECT_EQ(FileByteSource::OpenSameFile(dir + "/d", st.st_dev, st.st_ino).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_FALSE(DetectBlobCompression(dir + "/d").ok());
}

}  // namespace
}  // namespace guest_pull::verity
