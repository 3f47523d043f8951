// Tests for gRPC status code names.
#include "snapshotter/metrics/grpc_code_name.h"

#include "gtest/gtest.h"

namespace snapshotter {
namespace {

TEST(GrpcCodeNameTest, NamesEveryCanonicalCode) {
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kOk), "OK");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kCancelled), "Canceled");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kNotFound), "NotFound");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kFailedPrecondition),
            "FailedPrecondition");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kUnauthenticated),
            "Unauthenticated");
  for (int c = 1; c <= 16; ++c) {
    std::string name = GrpcCodeName(static_cast<absl::StatusCode>(c));
    EXPECT_EQ(name.find("Code("), std::string::npos) << c;
  }
}

TEST(GrpcCodeNameTest, UnknownNumbersAreSpelledOut) {
  EXPECT_EQ(GrpcCodeName(static_cast<absl::StatusCode>(42)), "Code(42)");
}

}  // namespace
}  // namespace snapshotter
