// Tests for image reference parsing and pinning by digest.
#include "kata_volume/image_ref.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kata_volume {
namespace {

using ::testing::HasSubstr;

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

// Go's reference.Parse validates the digest with go-digest v1.0.0.
// distribution/reference v0.6.0 (containerd 2.x) limits the repository
// path, without its domain, to 255 characters (aaca75e "Exclude domain from
// name length check"); oci-client's Reference (the guest's image-rs) the
// same. Go's anchoredNameRegexp takes any first component that is a domain
// name component for the domain ("a" below), one with '_' it cannot.
TEST(ImageRefTest, NameLengthLimitExcludesTheDomain) {
  for (const std::string& reference :
       {"registry.example.com:5000/" + std::string(255, 'a'),
        "registry.example.com/" + std::string(255, 'a') + "@" + kDigest,
        "a/" + std::string(254, 'b'), "[::1]:5000/" + std::string(255, 'a')}) {
    absl::StatusOr<ImageReference> parsed = ParseImageReference(reference);
    EXPECT_TRUE(parsed.ok()) << reference << ": " << parsed.status();
  }
  for (const std::string& reference :
       {"registry.example.com/" + std::string(256, 'a'),
        "a_b/" + std::string(252, 'c'), std::string(256, 'a')}) {
    absl::StatusOr<ImageReference> parsed = ParseImageReference(reference);
    EXPECT_FALSE(parsed.ok()) << reference;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("more than 255")) << reference;
  }
}

TEST(ImageRefTest, AcceptsDigestsGoAccepts) {
  for (const std::string& digest :
       {kDigest, "sha384:" + std::string(96, '0'),
        "sha512:" + std::string(128, 'f'),
        "sha256:0123456789abcdef" + std::string(48, '9')}) {
    const std::string reference = "reg.example.com:5000/ns/app:v1@" + digest;
    absl::StatusOr<ImageReference> parsed = ParseImageReference(reference);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->name, "reg.example.com:5000/ns/app");
    EXPECT_EQ(parsed->tag, "v1");
    EXPECT_EQ(parsed->digest, digest);
  }
}

TEST(ImageRefTest, RefusesDigestsGoRefuses) {
  struct Case {
    std::string digest;
    std::string reason;
  };
  const Case cases[] = {
      {"sha256:" + std::string(64, 'A'), "sha256 digest has upper-case hex"},
      {"sha256:" + std::string(63, 'a') + "B", "sha256 digest has upper-case"},
      {"sha256:" + std::string(63, 'a'), "sha256 digest has 63 hex digits, not 64"},
      {"sha256:" + std::string(65, 'a'), "sha256 digest has 65 hex digits, not 64"},
      {"sha256:" + std::string(128, 'a'), "has 128 hex digits, not 64"},
      {"sha384:" + std::string(64, 'a'), "sha384 digest has 64 hex digits, not 96"},
      {"sha512:" + std::string(64, 'a'), "sha512 digest has 64 hex digits, not 128"},
      {"sha512:" + std::string(128, 'F'), "sha512 digest has upper-case hex"},
      {"md5:" + std::string(32, 'a'), "unsupported digest algorithm \"md5\""},
      {"sha256+b64:" + std::string(64, 'a'), "unsupported digest algorithm"},
      {"sha256.x:" + std::string(64, 'a'), "unsupported digest algorithm"},
      {"blake3:" + std::string(64, 'a'), "unsupported digest algorithm"},
      {"SHA256:" + std::string(64, 'a'), "algorithm \"SHA256\" is not lower case"},
      {"Sha512:" + std::string(128, 'a'), "is not lower case"},
  };
  for (const Case& c : cases) {
    const std::string reference = "busybox:1@" + c.digest;
    absl::StatusOr<ImageReference> parsed = ParseImageReference(reference);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << c.digest;
    EXPECT_THAT(parsed.status().message(), HasSubstr(reference)) << c.digest;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.reason)) << c.digest;
    EXPECT_FALSE(PinImageReference(reference, kDigest).ok()) << c.digest;
  }
}

TEST(ImageRefTest, RejectsBadDigests) {
  EXPECT_FALSE(PinImageReference("busybox", "sha256:" + std::string(64, 'A')).ok());
  EXPECT_FALSE(PinImageReference("busybox", "sha512:" + std::string(64, 'a')).ok());
  EXPECT_FALSE(PinImageReference("busybox", std::string(64, 'a')).ok());
  EXPECT_FALSE(PinImageReference("busybox", "sha256:" + std::string(63, 'a')).ok());
}

// ValidateImageReference gives ParseImageReference's status, message
// included: on the references above, and on every one-character
// replacement or prefix of three more (about 3,800).
TEST(ImageRefTest, ValidateAgreesWithParse) {
  std::vector<std::string> references = {
      "", "Busybox", "ns/UPPER", "a b", "repo:", "repo@", "repo:tag:tag",
      "/repo", "repo/", "repo@sha256:short", "repo,x", "busybox",
      "localhost:5000/a/b", "[::1]:5000/img:tag", "a/" + std::string(254, 'b'),
      "a_b/" + std::string(252, 'c'), std::string(255, 'a'),
      std::string(256, 'a'), "registry.example.com/" + std::string(256, 'a'),
      "busybox:1@SHA256:" + std::string(64, 'a'),
      "busybox:1@md5:" + std::string(32, 'a'),
      "busybox:1@sha512:" + std::string(128, 'F'),
      "reg.example.com:5000/ns/app:v1@sha384:" + std::string(96, '0')};
  const std::string seeds[] = {
      "127.0.0.1:5000/ns/app_x:v1.2-rc@" + kDigest,
      "docker.io/library/busybox:latest", "[::1]:5000/img@" + kOtherDigest};
  for (const std::string& seed : seeds) {
    for (size_t i = 0; i < seed.size(); ++i) {
      for (char c : std::string("aZ09._-:/@[]+ \\\0", 16)) {
        std::string mutated = seed;
        mutated[i] = c;
        references.push_back(mutated);
      }
      references.push_back(seed.substr(0, i));
    }
  }
  for (const std::string& reference : references) {
    EXPECT_EQ(ValidateImageReference(reference),
              ParseImageReference(reference).status())
        << reference;
  }
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
