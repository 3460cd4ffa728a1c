#include "common/queue_wait_policy.h"

#include <gtest/gtest.h>

namespace im::common {
namespace {

using std::chrono::milliseconds;
using Time = QueueWaitPolicy::Clock::time_point;

constexpr QueueWaitPolicy::Options kOptions{milliseconds(10), milliseconds(100)};
const Time kStart{};  // a fake clock: times are offsets from here

Time At(int ms) { return kStart + milliseconds(ms); }

TEST(QueueWaitPolicyTest, AQueueThatEmptiesAbsorbsBurstsUpToTheInterval) {
  QueueWaitPolicy policy(kOptions, At(0));
  policy.OnEmpty(At(50));
  // At 120 ms the queue was empty 70 ms ago: not standing; waits up to the interval pass.
  EXPECT_FALSE(policy.ShouldShed(At(60), At(120)));
  EXPECT_FALSE(policy.ShouldShed(At(20), At(120))) << "waited exactly the interval";
  EXPECT_TRUE(policy.ShouldShed(At(19), At(120))) << "waited longer than the interval";
}

TEST(QueueWaitPolicyTest, AStandingQueueShedsWhatWaitedLongerThanTheTarget) {
  QueueWaitPolicy policy(kOptions, At(0));
  // Not empty since 0: at 100 ms it has stood a whole interval.
  EXPECT_FALSE(policy.ShouldShed(At(95), At(100)));
  EXPECT_FALSE(policy.ShouldShed(At(90), At(100))) << "waited exactly the target";
  EXPECT_TRUE(policy.ShouldShed(At(89), At(100)));
  EXPECT_TRUE(policy.ShouldShed(At(60), At(100)));
  // Before the interval passed the same wait is served.
  EXPECT_FALSE(policy.ShouldShed(At(39), At(99)));
}

TEST(QueueWaitPolicyTest, EmptyingTheQueueEndsTheStandingState) {
  QueueWaitPolicy policy(kOptions, At(0));
  EXPECT_TRUE(policy.ShouldShed(At(150), At(200)));
  policy.OnEmpty(At(200));
  EXPECT_FALSE(policy.ShouldShed(At(210), At(250)));
  EXPECT_TRUE(policy.ShouldShed(At(290), At(301))) << "stood again from 200 to 301";
}

TEST(QueueWaitPolicyTest, AZeroIntervalNeverSheds) {
  QueueWaitPolicy policy({milliseconds(0), milliseconds(0)}, At(0));
  EXPECT_FALSE(policy.ShouldShed(At(0), At(1'000'000)));
}

}  // namespace
}  // namespace im::common
