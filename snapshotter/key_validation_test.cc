// Tests for key and label validation.
#include "snapshotter/key_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;

TEST(ValidateKeyTest, AcceptsRealContainerdKeys) {
  EXPECT_TRUE(ValidateKey("k8s.io/12/extract-34 sha256:abcdef", "key").ok());
  EXPECT_TRUE(ValidateKey("default/3/my container..x", "key").ok());
  EXPECT_TRUE(ValidateKey("sha256:0123", "key").ok());
  EXPECT_TRUE(ValidateKey("a..b/c.d", "key").ok());
}

TEST(ValidateKeyTest, RejectsEmpty) {
  absl::Status s = ValidateKey("", "parent");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("parent must not be empty"));
}

// containerd cannot hold an empty key either: looking one up finds nothing.
// Keys refused for what they contain stay InvalidArgument.
TEST(ValidateLookupKeyTest, EmptyIsNotFoundOthersAsValidateKey) {
  absl::Status s = ValidateLookupKey("", "key");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("not found"));
  EXPECT_TRUE(ValidateLookupKey("k8s.io/12/extract-34 sha256:ab", "key").ok());
  EXPECT_EQ(ValidateLookupKey("a/../b", "key").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLookupKey(std::string("a\0b", 3), "key").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateKeyTest, RejectsDotDotAndDotElements) {
  for (const char* key : {"..", "../x", "a/../b", "a/..", ".", "a/./b"}) {
    absl::Status s = ValidateKey(key, "key");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr("path element")) << key;
  }
}

TEST(ValidateKeyTest, RejectsNul) {
  std::string key("ab\0cd", 5);
  absl::Status s = ValidateKey(key, "key");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("NUL"));
}

TEST(ValidateKeyTest, RejectsOversize) {
  EXPECT_TRUE(ValidateKey(std::string(kMaxKeyBytes, 'k'), "key").ok());
  absl::Status s = ValidateKey(std::string(kMaxKeyBytes + 1, 'k'), "key");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("over the limit"));
}

TEST(ValidateLabelsTest, LimitIsKeyPlusValue) {
  Labels ok{{"k", std::string(kMaxLabelBytes - 1, 'v')}};
  EXPECT_TRUE(ValidateLabels(ok).ok());
  Labels big{{"key", std::string(kMaxLabelBytes - 2, 'v')}};
  absl::Status s = ValidateLabels(big);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("label \"key\""));
}

TEST(ValidateLabelsTest, RejectsEmptyKeyAndNul) {
  EXPECT_EQ(ValidateLabels({{"", "v"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabels({{std::string("a\0b", 3), "v"}}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace snapshotter
