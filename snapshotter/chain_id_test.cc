// Tests for chain ID extraction.
#include "snapshotter/chain_id.h"

#include <string>

#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(ChainIdTest, StripsNamespaceAndSequence) {
  EXPECT_EQ(ChainIdOf("k8s.io/12/sha256:abc"), "sha256:abc");
  EXPECT_EQ(ChainIdOf("default/3/sha256:abc"), "sha256:abc");
}

TEST(ChainIdTest, UnpackKeys) {
  EXPECT_TRUE(IsUnpackKey("k8s.io/12/extract-34-x sha256:ab"));
  EXPECT_TRUE(IsUnpackKey("extract-1 sha256:ab"));
  EXPECT_FALSE(IsUnpackKey("k8s.io/12/sha256:ab"));
  EXPECT_FALSE(IsUnpackKey("k8s.io/12/container-extract-1"));
}

TEST(ChainIdTest, NamespaceOfContainerdKeysOnly) {
  EXPECT_EQ(NamespaceOf("k8s.io/12/extract-1 sha256:ab"), "k8s.io");
  EXPECT_EQ(NamespaceOf("default/3/sha256:ab"), "default");
  EXPECT_EQ(NamespaceOf("extract-1 sha256:ab"), "");
  EXPECT_EQ(NamespaceOf("k8s.io/x/name"), "");
  EXPECT_EQ(NamespaceOf("/1/name"), "");
}

TEST(ChainIdTest, CriImageVolumeKeys) {
  const std::string pod(64, 'a'), image = std::string(63, '0') + "f";
  EXPECT_TRUE(IsCriImageVolumeKey(
      "k8s.io/12//run/containerd/io.containerd.grpc.v1.cri/image-volumes/" + pod + "/" + image));
  EXPECT_TRUE(IsCriImageVolumeKey("k8s.io/12//state/image-volumes/" + pod + "/" + image));
  EXPECT_TRUE(IsCriImageVolumeKey("k8s.io/12//state/image-volumes/" + pod + "/" +
                                  std::string(128, 'c')));  // a sha512 manifest
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12//state/image-volumes/" + pod + "/" +
                                   std::string(100, 'c')));
  // containerd started with a relative state dir (`state = "run/c"`).
  EXPECT_TRUE(IsCriImageVolumeKey("k8s.io/12/run/c/io.containerd.grpc.v1.cri/image-volumes/" +
                                  pod + "/" + image));
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12/" + image));  // a container's rootfs
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12/image-volumes/" + pod + "/" + image));
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12//run/image-volume/" + pod + "/" + image));
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12//run/image-volumes/" + pod + "/" + image + "/x"));
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12//run/image-volumes/pod/" + image));
  EXPECT_FALSE(IsCriImageVolumeKey("k8s.io/12//run/image-volumes/" + pod + "/" +
                                   std::string(64, 'A')));
}

TEST(ChainIdTest, LeavesOtherKeysAlone) {
  EXPECT_EQ(ChainIdOf("sha256:abc"), "sha256:abc");
  EXPECT_EQ(ChainIdOf("k8s.io/x1/sha256:abc"), "k8s.io/x1/sha256:abc");
  EXPECT_EQ(ChainIdOf("k8s.io//sha256:abc"), "k8s.io//sha256:abc");
  EXPECT_EQ(ChainIdOf("/1/a"), "/1/a");
  EXPECT_EQ(ChainIdOf(""), "");
}

}  // namespace
}  // namespace snapshotter
