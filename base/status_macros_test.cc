#include "base/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace base {
namespace {

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return n / 2;
}

absl::Status CheckEven(int n, int* calls) {
  ++*calls;
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return absl::OkStatus();
}

absl::Status Quarter(int n, int* out) {
  ASSIGN_OR_RETURN(int half, Half(n));
  ASSIGN_OR_RETURN(*out, Half(half));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Describe(int n, int* calls) {
  RETURN_IF_ERROR(CheckEven(n, calls));
  return std::string("even");
}

absl::StatusOr<std::unique_ptr<int>> Boxed(int n) {
  if (n < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(n);
}

absl::StatusOr<int> Unbox(int n) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> box, Boxed(n));  // move-only value
  return *box;
}

TEST(StatusMacrosTest, AssignOrReturnPassesValuesAndErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(3, &out).message(), "odd");
  EXPECT_EQ(*Unbox(5), 5);
  EXPECT_EQ(Unbox(-1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(StatusMacrosTest, ReturnIfErrorEvaluatesOnce) {
  int calls = 0;
  EXPECT_EQ(*Describe(4, &calls), "even");
  EXPECT_EQ(Describe(5, &calls).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace base
