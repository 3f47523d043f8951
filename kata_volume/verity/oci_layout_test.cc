// OCI layout reader tests on layouts built with umoci.
#include "kata_volume/verity/oci_layout.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "kata_volume/verity/sha256.h"
#include "kata_volume/verity/test_util.h"

namespace guest_pull::verity {
namespace {

using ::guest_pull::verity::testing::MakeTempDir;
using ::guest_pull::verity::testing::ReadFileOrDie;
using ::guest_pull::verity::testing::RunCommand;
using ::guest_pull::verity::testing::WriteFileOrDie;

std::string MakeLayout(int layers) {
  std::string dir = MakeTempDir();
  std::string cmd = absl::StrCat("set -e; cd ", dir,
                                 "; umoci init --layout oci; umoci new --image oci:t; "
                                 "umoci unpack --image oci:t b >/dev/null 2>&1; ");
  for (int i = 0; i < layers; ++i) {
    absl::StrAppend(&cmd, "echo ", i, " > b/rootfs/f", i, "; umoci repack --refresh-bundle --image oci:t b; ");
  }
  EXPECT_TRUE(RunCommand(cmd).ok());
  return dir + "/oci";
}

TEST(OciLayoutTest, ResolvesLayersInOrder) {
  std::string layout = MakeLayout(2);
  absl::StatusOr<OciImage> img = ReadOciImage(layout, "t");
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->layers.size(), 2u);
  EXPECT_EQ(img->diff_ids.size(), 2u);
  for (const OciLayerBlob& l : img->layers) {
    EXPECT_EQ("sha256:" + Sha256Hex(ReadFileOrDie(l.path)), l.digest);
    EXPECT_EQ(l.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  }
  // The only image is also found without a ref.
  EXPECT_EQ(ReadOciImage(layout, "")->manifest_digest, img->manifest_digest);
  absl::Status nope = ReadOciImage(layout, "nope").status();
  EXPECT_TRUE(absl::IsNotFound(nope));
  // The names it takes are listed (a registry reference is not one).
  EXPECT_EQ(nope.message(), absl::StrCat("no image \"nope\" in ", layout, "; --image takes one of: t"));
}

// index.json naming one image once per platform (an image index itself):
// the entry of this platform is read, not the first with the name.
TEST(OciLayoutTest, ANameGivenPerPlatformPicksThisPlatform) {
  std::string layout = MakeLayout(2);
  ASSERT_TRUE(RunCommand(absl::StrCat("set -e; cd ", layout,
                                      "/..; umoci unpack --image oci:t u >/dev/null 2>&1; "
                                      "echo x > u/rootfs/g; umoci repack --image oci:t2 u"))
                  .ok());
  absl::StatusOr<OciImage> host = ReadOciImage(layout, "t2");  // 3 layers
  absl::StatusOr<OciImage> other = ReadOciImage(layout, "t");  // 2 layers
  ASSERT_TRUE(host.ok() && other.ok());
  ASSERT_TRUE(RunCommand(absl::StrCat(
                             "set -e; cd ", layout, "; jq -c --arg arch ", BuildArchitecture(),
                             " '.manifests |= map(.platform = {os: \"linux\", architecture: "
                             "(if .annotations[\"org.opencontainers.image.ref.name\"] == \"t2\" "
                             "then $arch else \"s390x-none\" end)} | "
                             ".annotations[\"org.opencontainers.image.ref.name\"] = \"img\") "
                             "| .manifests |= sort_by(.platform.architecture != \"s390x-none\")' "
                             "index.json > i && mv i index.json && jq -r '.manifests[].platform."
                             "architecture' index.json | head -1 | grep -qx s390x-none"))
                  .ok());
  absl::StatusOr<OciImage> picked = ReadOciImage(layout, "img");
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_EQ(picked->manifest_digest, host->manifest_digest);
  EXPECT_EQ(picked->layers.size(), 3u);
  // None for this platform: said so, naming index.json.
  ASSERT_TRUE(RunCommand(absl::StrCat("set -e; cd ", layout,
                                      "; jq -c '.manifests |= map(.platform.architecture = "
                                      "\"s390x-none\")' index.json > i && mv i index.json"))
                  .ok());
  absl::Status none = ReadOciImage(layout, "img").status();
  EXPECT_EQ(none.code(), absl::StatusCode::kNotFound) << none;
  EXPECT_NE(std::string(none.message())
                .find("2 entries of " + layout + "/index.json are named \"img\", none for linux/"),
            std::string::npos)
      << none;
  // Entries of one name without any platform: the first, as before.
  ASSERT_TRUE(RunCommand(absl::StrCat("set -e; cd ", layout,
                                      "; jq -c '.manifests |= map(del(.platform))' index.json > i "
                                      "&& mv i index.json"))
                  .ok());
  absl::StatusOr<OciImage> first = ReadOciImage(layout, "img");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->manifest_digest, other->manifest_digest);
}

TEST(OciLayoutTest, RejectsCorruptOrMissingLayouts) {
  EXPECT_FALSE(ReadOciImage(MakeTempDir(), "").ok());
  std::string layout = MakeLayout(1);
  absl::StatusOr<OciImage> img = ReadOciImage(layout, "t");
  ASSERT_TRUE(img.ok());
  std::string manifest = *OciBlobPath(layout, img->manifest_digest);
  WriteFileOrDie(manifest, ReadFileOrDie(manifest) + " ");
  EXPECT_EQ(ReadOciImage(layout, "t").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(OciBlobPath(layout, "sha256:../../etc/passwd").ok());
  // A file given for the layout (its index.json, say) is named as such: it
  // read "open <file>/index.json: Not a directory".
  absl::StatusOr<OciImage> file = ReadOciImage(layout + "/index.json", "t");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  EXPECT_EQ(file.status().message(),
            absl::StrCat(layout, "/index.json is not a directory: an OCI image layout is one"));
  const std::string missing = MakeTempDir() + "/none";
  EXPECT_EQ(ReadOciImage(missing, "").status().message(),
            absl::StrCat(missing, " is not an OCI image layout (no index.json)"));
}

TEST(OciLayoutTest, RefusesAFifoOrAnOversizedIndexWithoutWaiting) {
  std::string layout = MakeLayout(1);
  ASSERT_EQ(std::remove((layout + "/index.json").c_str()), 0);
  ASSERT_EQ(mkfifo((layout + "/index.json").c_str(), 0600), 0);
  absl::Status fifo = ReadOciImage(layout, "t").status();  // no writer: would block
  EXPECT_EQ(fifo.code(), absl::StatusCode::kInvalidArgument) << fifo;
  EXPECT_NE(fifo.message().find("not a regular file"), std::string::npos) << fifo;
  ASSERT_EQ(std::remove((layout + "/index.json").c_str()), 0);
  WriteFileOrDie(layout + "/index.json", std::string(16 * 1024 * 1024 + 1, ' '));
  absl::Status large = ReadOciImage(layout, "t").status();
  EXPECT_EQ(large.code(), absl::StatusCode::kInvalidArgument) << large;
  EXPECT_NE(large.message().find("too large"), std::string::npos) << large;
  ASSERT_EQ(std::remove((layout + "/index.json").c_str()), 0);
  ASSERT_EQ(symlink("index.json", (layout + "/index.json").c_str()), 0);
  absl::Status loop = ReadOciImage(layout, "t").status();  // says why, not "no index.json"
  EXPECT_NE(loop.message().find("symbolic links"), std::string::npos) << loop;
}

}  // namespace
}  // namespace guest_pull::verity
