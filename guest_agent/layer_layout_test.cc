// LayOutLayer: in place for a plain tar, decompressed for gzip and zstd, nothing left
// behind on failure; the image is byte for byte what `guest-pull-verity
// index` writes.
#include "guest_agent/layer_layout.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/layer_verity.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::guest_agent {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::PseudoRandomBytes;
using ::guest_pull::verity::testing::RawHeader;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::TarMember;
using ::guest_pull::verity::testing::TarTrailer;
using ::guest_pull::verity::testing::WriteFileOrDie;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string SampleTar() {
  RawHeader dir;
  dir.name = "etc/";
  dir.type = '5';
  dir.mode = 0755;
  std::string data = PseudoRandomBytes(70000, 3);
  RawHeader file;
  file.name = "etc/data";
  file.size = data.size();
  return TarMember(dir) + TarMember(file, data) + TarTrailer();
}

// What the copying mode writes for the same tar, from a file of its own.
std::string IndexedCopy(const std::string& dir, const std::string& tar) {
  WriteFileOrDie(dir + "/reference.tar", tar);
  auto v = verity::WriteIndexedLayer(dir + "/reference.tar", dir + "/reference.img");
  EXPECT_TRUE(v.ok()) << v.status();
  return ReadFileOrDie(dir + "/reference.img");
}

TEST(LayerLayoutTest, PlainTarBecomesTheImageInPlace) {
  std::string dir = MakeTempDir();
  std::string tar = SampleTar();
  WriteFileOrDie(dir + "/blob", tar);
  struct stat blob_st;
  ASSERT_EQ(::stat((dir + "/blob").c_str(), &blob_st), 0);

  absl::StatusOr<LaidOutLayer> out = LayOutLayer(dir + "/blob", dir + "/image");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->in_place);
  EXPECT_FALSE(Exists(dir + "/blob"));
  struct stat image_st;
  ASSERT_EQ(::stat((dir + "/image").c_str(), &image_st), 0);
  EXPECT_EQ(image_st.st_ino, blob_st.st_ino);  // the same file: no copy was made
  std::string image = ReadFileOrDie(dir + "/image");
  EXPECT_EQ(out->layout.tar_size, tar.size());
  EXPECT_EQ(out->layout.indexed_size, image.size());
  EXPECT_EQ(image, IndexedCopy(dir, tar));
}

TEST(LayerLayoutTest, GzipAndZstdBlobsAreDecompressedIntoTheImage) {
  for (const char* compress : {"gzip -c", "zstd -q -c"}) {
    std::string dir = MakeTempDir();
    std::string tar = SampleTar();
    WriteFileOrDie(dir + "/layer.tar", tar);
    ASSERT_TRUE(RunCommand(absl::StrCat(compress, " ", dir, "/layer.tar > ", dir, "/blob")).ok());

    absl::StatusOr<LaidOutLayer> out = LayOutLayer(dir + "/blob", dir + "/image");
    ASSERT_TRUE(out.ok()) << compress << ": " << out.status();
    EXPECT_FALSE(out->in_place);
    EXPECT_FALSE(Exists(dir + "/blob"));
    EXPECT_EQ(ReadFileOrDie(dir + "/image"), IndexedCopy(dir, tar)) << compress;
  }
}

TEST(LayerLayoutTest, FailuresLeaveNeitherBlobNorImage) {
  std::string dir = MakeTempDir();
  std::string tar = SampleTar();
  // A tar cut inside a member, a gzip stream cut short, and a tar behind
  // zstd's magic (no zstd frame).
  WriteFileOrDie(dir + "/layer.tar", tar);
  ASSERT_TRUE(RunCommand(absl::StrCat("gzip -c ", dir, "/layer.tar > ", dir, "/gz")).ok());
  std::string gz = ReadFileOrDie(dir + "/gz");
  const std::string blobs[] = {tar.substr(0, 2000), gz.substr(0, gz.size() / 2),
                               std::string("\x28\xb5\x2f\xfd", 4) + tar};
  for (const std::string& blob : blobs) {
    WriteFileOrDie(dir + "/blob", blob);
    EXPECT_FALSE(LayOutLayer(dir + "/blob", dir + "/image").ok());
    EXPECT_FALSE(Exists(dir + "/blob"));
    EXPECT_FALSE(Exists(dir + "/image"));
  }
  // A missing blob is an error too, and an image left there before goes.
  WriteFileOrDie(dir + "/image", "stale");
  EXPECT_FALSE(LayOutLayer(dir + "/blob", dir + "/image").ok());
  EXPECT_FALSE(Exists(dir + "/image"));
}

TEST(LayerLayoutTest, FailedRenameOfAnIndexedBlobLeavesNothing) {
  std::string dir = MakeTempDir();
  WriteFileOrDie(dir + "/blob", SampleTar());
  absl::StatusOr<LaidOutLayer> out = LayOutLayer(dir + "/blob", dir + "/missing/image");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound) << out.status();
  EXPECT_FALSE(Exists(dir + "/blob"));
}

}  // namespace
}  // namespace guest_pull::guest_agent
