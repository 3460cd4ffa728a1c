#include "common/after_all.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace im::common {
namespace {

TEST(AfterAllTest, TheLastOfTheCallsRunsThenOnce) {
  int ran = 0;
  std::function<void()> done = AfterAll(3, [&ran] { ++ran; });
  done();
  std::function<void()> copy = done;  // copies share the count
  copy();
  EXPECT_EQ(ran, 0);
  done();
  EXPECT_EQ(ran, 1);
}

TEST(AfterAllTest, CallsFromManyThreadsRunThenOnce) {
  std::atomic<int> ran{0};
  constexpr int kCalls = 64;
  std::function<void()> done = AfterAll(kCalls, [&ran] { ++ran; });
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) threads.emplace_back(done);
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace im::common
