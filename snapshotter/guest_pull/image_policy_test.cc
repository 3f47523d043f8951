// Tests for guest-pull include/exclude matching on realistic image refs.
#include "snapshotter/guest_pull/image_policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace guest_pull {
namespace {

using ::testing::HasSubstr;

constexpr char kPause[] = "registry.k8s.io/pause:3.9";
constexpr char kLocalBusybox[] = "127.0.0.1:5000/busybox:1";
constexpr char kNginxDigest[] =
    "docker.io/library/nginx@sha256:"
    "4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac";

ImagePolicy MakePolicy(const GuestPullOptions& options) {
  absl::StatusOr<ImagePolicy> policy = ImagePolicy::Create(options);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return *std::move(policy);
}

TEST(ImagePolicyTest, DefaultPolicyGuestPullsEveryCriImage) {
  const ImagePolicy policy = MakePolicy(GuestPullOptions());
  EXPECT_TRUE(policy.enabled());
  EXPECT_TRUE(policy.AllowsGuestPull(kPause));
  EXPECT_TRUE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_TRUE(policy.AllowsGuestPull(kNginxDigest));
}

TEST(ImagePolicyTest, EmptyReferenceStaysOnTheHost) {
  const ImagePolicy policy = MakePolicy(GuestPullOptions());
  EXPECT_FALSE(policy.AllowsGuestPull(""));
  EXPECT_THAT(policy.Evaluate("").reason, HasSubstr("no CRI image reference"));
}

TEST(ImagePolicyTest, DisabledPolicyNeverGuestPulls) {
  GuestPullOptions options;
  options.enable = false;
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_FALSE(policy.enabled());
  EXPECT_FALSE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_FALSE(policy.AllowsGuestPull(kNginxDigest));
  EXPECT_THAT(policy.Evaluate(kNginxDigest).reason, HasSubstr("disabled"));
}

TEST(ImagePolicyTest, ExcludeKeepsThePauseImageOnTheHost) {
  GuestPullOptions options;
  options.exclude = {R"(registry\.k8s\.io/pause:.*)"};
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_FALSE(policy.AllowsGuestPull(kPause));
  EXPECT_THAT(policy.Evaluate(kPause).reason,
              HasSubstr("guest_pull.exclude pattern"));
  EXPECT_TRUE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_TRUE(policy.AllowsGuestPull(kNginxDigest));
}

TEST(ImagePolicyTest, IncludeIsAFullMatch) {
  GuestPullOptions options;
  // Would match kLocalBusybox as a partial match; must not as a full one.
  options.include = {R"(127\.0\.0\.1:5000/busy)"};
  EXPECT_FALSE(MakePolicy(options).AllowsGuestPull(kLocalBusybox));

  options.include = {R"(127\.0\.0\.1:5000/.*)"};
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_TRUE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_FALSE(policy.AllowsGuestPull(kPause));
  EXPECT_FALSE(policy.AllowsGuestPull(kNginxDigest));
  EXPECT_THAT(policy.Evaluate(kPause).reason,
              HasSubstr("no guest_pull.include pattern"));
  // A registry that merely starts with the same text does not match.
  EXPECT_FALSE(policy.AllowsGuestPull("127.0.0.10:5000/busybox:1"));
}

TEST(ImagePolicyTest, DigestReferencesMatchDigestPatterns) {
  GuestPullOptions options;
  options.include = {R"(docker\.io/library/nginx@sha256:[0-9a-f]{64})",
                    R"(127\.0\.0\.1:5000/.*)"};
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_TRUE(policy.AllowsGuestPull(kNginxDigest));
  EXPECT_TRUE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_FALSE(policy.AllowsGuestPull("docker.io/library/nginx:1.25"));
  EXPECT_FALSE(policy.AllowsGuestPull(kPause));
  EXPECT_THAT(policy.Evaluate(kLocalBusybox).reason,
              HasSubstr("127\\.0\\.0\\.1:5000/.*"));
}

TEST(ImagePolicyTest, ExcludeWinsOverInclude) {
  GuestPullOptions options;
  options.include = {R"(docker\.io/.*)"};
  options.exclude = {R"(.*@sha256:.*)"};
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_FALSE(policy.AllowsGuestPull(kNginxDigest));
  EXPECT_TRUE(policy.AllowsGuestPull("docker.io/library/nginx:1.25"));
}

TEST(ImagePolicyTest, EmptyIncludeListKeepsEverythingOnTheHost) {
  GuestPullOptions options;
  options.include.clear();
  const ImagePolicy policy = MakePolicy(options);
  EXPECT_FALSE(policy.AllowsGuestPull(kLocalBusybox));
  EXPECT_FALSE(policy.AllowsGuestPull(kNginxDigest));
}

TEST(ImagePolicyTest, InvalidPatternIsAnErrorNamingIt) {
  GuestPullOptions options;
  options.exclude = {"ok", "registry.k8s.io/(pause"};
  absl::StatusOr<ImagePolicy> policy = ImagePolicy::Create(options);
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(policy.status().message()),
              HasSubstr("guest_pull.exclude[1]"));
  EXPECT_THAT(std::string(policy.status().message()),
              HasSubstr("registry.k8s.io/(pause"));
}

TEST(ImagePolicyTest, CopiesShareTheCompiledPatterns) {
  GuestPullOptions options;
  options.exclude = {R"(registry\.k8s\.io/pause:.*)"};
  const ImagePolicy original = MakePolicy(options);
  const ImagePolicy copy = original;  // NOLINT(performance-unnecessary-copy)
  EXPECT_FALSE(copy.AllowsGuestPull(kPause));
  EXPECT_TRUE(copy.AllowsGuestPull(kLocalBusybox));
}

}  // namespace
}  // namespace guest_pull
