#include "common/bounded_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

namespace im::common {
namespace {

TEST(BoundedExecutorTest, RunsEverySubmittedTask) {
  std::atomic<int> ran{0};
  {
    BoundedExecutor executor("test", 3, 1000);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(executor.TrySubmit([&ran] { ran.fetch_add(1); }));
    }
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 500);
}

TEST(BoundedExecutorTest, RefusesBeyondCapacityInsteadOfGrowing) {
  BoundedExecutor executor("test", 1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(executor.TrySubmit([&started, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // the only thread is busy; the queue is empty
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_TRUE(executor.TrySubmit([] {}));
  EXPECT_EQ(executor.depth(), 2u);
  bool destroyed_without_running = false;
  std::shared_ptr<bool> guard(&destroyed_without_running, [](bool* flag) { *flag = true; });
  EXPECT_FALSE(executor.TrySubmit([guard] {}));
  guard.reset();
  EXPECT_TRUE(destroyed_without_running);
  release.set_value();
}

TEST(BoundedExecutorTest, RefusesAfterShutdown) {
  BoundedExecutor executor("test", 2, 10);
  executor.Shutdown();
  EXPECT_FALSE(executor.TrySubmit([] {}));
  executor.Shutdown();  // idempotent
}

}  // namespace
}  // namespace im::common
