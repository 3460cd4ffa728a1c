#include "common/status_macros.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace im::common {
namespace {

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return n / 2;
}

absl::Status CheckEven(int n) { return Half(n).status(); }

absl::StatusOr<int> Quarter(int n) {
  IM_ASSIGN_OR_RETURN(int half, Half(n));
  IM_ASSIGN_OR_RETURN(half, Half(half));  // assigns an existing variable too
  return half;
}

absl::Status BothEven(int a, int b, int* steps) {
  IM_RETURN_IF_ERROR(CheckEven(a));
  ++*steps;
  IM_RETURN_IF_ERROR(Half(b));  // a StatusOr works too
  ++*steps;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> Boxed(int n) { return std::make_unique<int>(n); }

absl::StatusOr<int> Unboxed(int n) {
  IM_ASSIGN_OR_RETURN(std::unique_ptr<int> box, Boxed(n));  // move-only values
  return *box;
}

TEST(StatusMacrosTest, AssignOrReturnGivesTheValueOrTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(7).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).status().message(), "odd");  // 6 -> 3, odd
  EXPECT_EQ(*Unboxed(5), 5);
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int steps = 0;
  EXPECT_TRUE(BothEven(2, 4, &steps).ok());
  EXPECT_EQ(steps, 2);
  steps = 0;
  EXPECT_EQ(BothEven(2, 3, &steps).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(steps, 1);
  steps = 0;
  EXPECT_EQ(BothEven(1, 4, &steps).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(steps, 0);
}

}  // namespace
}  // namespace im::common
