#include "common/bounded_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

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

// A task that waited past the queue-wait policy takes its shed path (a refusal) instead of
// running; a task without one runs however long it waited; every wait is observed.
TEST(BoundedExecutorTest, TasksThatWaitedTooLongTakeTheirShedPath) {
  std::atomic<int> observed{0};
  BoundedExecutor::QueueWait wait;
  wait.shed = {std::chrono::milliseconds(5), std::chrono::milliseconds(20)};
  wait.observe = [&observed](double) { observed.fetch_add(1); };
  std::atomic<int> ran{0};
  std::atomic<int> shed{0};
  {
    BoundedExecutor executor("test", 1, 100, wait);
    std::promise<void> started;
    ASSERT_TRUE(executor.TrySubmit([&started] {
      started.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the queue stands
    }));
    started.get_future().wait();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(executor.TrySubmit([&ran] { ran.fetch_add(1); }, [&shed] { shed.fetch_add(1); }));
    }
    ASSERT_TRUE(executor.TrySubmit([&ran] { ran.fetch_add(1); }));  // no shed path
  }
  EXPECT_EQ(shed.load(), 3);
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(observed.load(), 5);
}

TEST(BoundedExecutorTest, AQuickQueueShedsNothing) {
  BoundedExecutor::QueueWait wait;
  wait.shed = {std::chrono::milliseconds(5), std::chrono::milliseconds(1'000)};
  std::atomic<int> ran{0};
  std::atomic<int> shed{0};
  {
    BoundedExecutor executor("test", 2, 1'000, wait);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(executor.TrySubmit([&ran] { ran.fetch_add(1); }, [&shed] { shed.fetch_add(1); }));
    }
  }
  EXPECT_EQ(ran.load(), 200);
  EXPECT_EQ(shed.load(), 0);
}

}  // namespace
}  // namespace im::common
