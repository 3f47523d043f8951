// OCI layout reader tests on layouts built with umoci.
#include "kata_volume/verity/oci_layout.h"

#include <gtest/gtest.h>

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
  EXPECT_TRUE(absl::IsNotFound(ReadOciImage(layout, "nope").status()));
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
}

}  // namespace
}  // namespace guest_pull::verity
