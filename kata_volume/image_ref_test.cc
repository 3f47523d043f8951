// Tests for image reference parsing and pinning by digest.
#include "kata_volume/image_ref.h"

#include <string>

#include "gtest/gtest.h"

namespace kata_volume {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');
const std::string kOtherDigest = "sha256:" + std::string(64, 'b');

TEST(ImageRefTest, ParsesHostPortRepoAndTag) {
  absl::StatusOr<ImageReference> parsed =
      ParseImageReference("127.0.0.1:5000/busybox:1");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name, "127.0.0.1:5000/busybox");
  EXPECT_EQ(parsed->tag, "1");
  EXPECT_EQ(parsed->digest, "");
}

TEST(ImageRefTest, PortWithoutTagIsNotATag) {
  absl::StatusOr<ImageReference> parsed =
      ParseImageReference("localhost:5000/a/b");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name, "localhost:5000/a/b");
  EXPECT_EQ(parsed->tag, "");
}

TEST(ImageRefTest, PinCases) {
  struct Case {
    std::string reference;
    std::string pinned;
  };
  const Case cases[] = {
      {"127.0.0.1:5000/busybox:1", "127.0.0.1:5000/busybox@" + kDigest},
      {"127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox@" + kDigest},
      {"docker.io/library/busybox:latest",
       "docker.io/library/busybox@" + kDigest},
      {"docker.io/library/x@" + kOtherDigest, "docker.io/library/x@" + kDigest},
      {"reg.example.com:443/ns/app:v1.2@" + kOtherDigest,
       "reg.example.com:443/ns/app@" + kDigest},
      {"busybox", "busybox@" + kDigest},
      {"[::1]:5000/img:tag", "[::1]:5000/img@" + kDigest},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> pinned = PinImageReference(c.reference, kDigest);
    ASSERT_TRUE(pinned.ok()) << c.reference << ": " << pinned.status();
    EXPECT_EQ(*pinned, c.pinned) << c.reference;
  }
}

TEST(ImageRefTest, RejectsBadReferences) {
  for (const std::string bad :
       {"", "Busybox", "ns/UPPER", "a b", "repo:", "repo@", "repo:tag:tag", "/repo",
        "repo/", "repo@sha256:short", "repo,x"}) {
    EXPECT_FALSE(ParseImageReference(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseImageReference(std::string(256, 'a')).ok());
}

TEST(ImageRefTest, RejectsBadDigests) {
  EXPECT_FALSE(PinImageReference("busybox", "sha256:" + std::string(64, 'A')).ok());
  EXPECT_FALSE(PinImageReference("busybox", "sha512:" + std::string(64, 'a')).ok());
  EXPECT_FALSE(PinImageReference("busybox", std::string(64, 'a')).ok());
  EXPECT_FALSE(PinImageReference("busybox", "sha256:" + std::string(63, 'a')).ok());
}

TEST(ImageRefTest, NormalizesDockerHubNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"busybox", "docker.io/library/busybox"},
      {"library/busybox", "docker.io/library/busybox"},
      {"docker.io/busybox", "docker.io/library/busybox"},
      {"index.docker.io/library/busybox", "docker.io/library/busybox"},
      {"bitnami/redis", "docker.io/bitnami/redis"},
      {"quay.io/coreos/etcd", "quay.io/coreos/etcd"},
      {"localhost/app", "localhost/app"},
      {"127.0.0.1:5000/app", "127.0.0.1:5000/app"},
      {"Registry/app", "Registry/app"},  // upper case: a host
  };
  for (const auto& [name, want] : cases) {
    EXPECT_EQ(NormalizedImageName(name), want) << name;
  }
}

TEST(ImageRefTest, DigestPredicates) {
  EXPECT_TRUE(IsSha256Digest(kDigest));
  EXPECT_FALSE(IsSha256Digest(kDigest + "0"));
  EXPECT_TRUE(IsLowerHexSha256(std::string(64, 'f')));
  EXPECT_FALSE(IsLowerHexSha256(std::string(64, 'F')));
}

}  // namespace
}  // namespace kata_volume
