#include "logic/delivery/coalescing_stage.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace im::logic {
namespace {

// Records the batches it is given; the first one waits until released.
struct RecordingProcess {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::vector<int>> batches;
  std::vector<std::thread::id> threads;
  bool released = false;
  int running = 0;
  int most_running = 0;

  void operator()(std::vector<int>& batch) {
    std::unique_lock<std::mutex> lock(mutex);
    most_running = std::max(most_running, ++running);
    batches.push_back(batch);
    threads.push_back(std::this_thread::get_id());
    changed.notify_all();
    changed.wait(lock, [this] { return released; });
    --running;
  }
  bool WaitForBatches(size_t count) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(5), [&] { return batches.size() >= count; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mutex);
    released = true;
    changed.notify_all();
  }
};

TEST(CoalescingStageTest, ItemsAddedWhileABatchIsProcessedGoTogetherInTheNextInOrder) {
  common::BoundedExecutor executor("test", 4, 100);
  RecordingProcess process;
  CoalescingStage<int> stage(&executor, 100, [&](std::vector<int>& batch) { process(batch); });
  EXPECT_TRUE(stage.TryAdd(0));
  ASSERT_TRUE(process.WaitForBatches(1));
  for (int i = 1; i <= 10; ++i) EXPECT_TRUE(stage.TryAdd(int{i}));  // while [0] is processed
  process.Release();
  ASSERT_TRUE(process.WaitForBatches(2));
  executor.Shutdown();
  ASSERT_EQ(process.batches.size(), 2u);
  EXPECT_EQ(process.batches[0], std::vector<int>{0});
  EXPECT_EQ(process.batches[1], (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(process.most_running, 1) << "two batches were processed at once";
}

TEST(CoalescingStageTest, PastItsBoundItRefusesAndLeavesTheItemToTheCaller) {
  common::BoundedExecutor executor("test", 2, 100);
  RecordingProcess process;
  CoalescingStage<std::string> stage(&executor, 2, [&](std::vector<std::string>& batch) {
    std::vector<int> sizes{static_cast<int>(batch.size())};
    process(sizes);
  });
  EXPECT_TRUE(stage.TryAdd("first"));
  ASSERT_TRUE(process.WaitForBatches(1));  // held in processing; the next two wait
  EXPECT_TRUE(stage.TryAdd("second"));
  EXPECT_TRUE(stage.TryAdd("third"));
  std::string refused = "fourth";
  EXPECT_FALSE(stage.TryAdd(std::move(refused)));
  EXPECT_EQ(refused, "fourth") << "a refused item must stay with the caller";
  process.Release();
  ASSERT_TRUE(process.WaitForBatches(2));
  executor.Shutdown();
  EXPECT_EQ(process.batches[1], std::vector<int>{2});
}

TEST(CoalescingStageTest, WhenTheExecutorRefusesTheAddingThreadProcessesTheBatch) {
  common::BoundedExecutor executor("test", 1, 1);
  executor.Shutdown();  // refuses every task from now on
  RecordingProcess process;
  process.Release();
  CoalescingStage<int> stage(&executor, 100, [&](std::vector<int>& batch) { process(batch); });
  EXPECT_TRUE(stage.TryAdd(7));
  EXPECT_TRUE(stage.TryAdd(8));
  ASSERT_EQ(process.batches.size(), 2u);
  EXPECT_EQ(process.batches[0], std::vector<int>{7});
  EXPECT_EQ(process.batches[1], std::vector<int>{8});
  EXPECT_EQ(process.threads[0], std::this_thread::get_id());
}

TEST(CoalescingStageTest, ItemsAddedInABurstScopeGoOnAsOneBatchWhenItCloses) {
  common::BoundedExecutor executor("test", 4, 100);
  RecordingProcess process;
  process.Release();
  CoalescingStage<int> stage(&executor, 100, [&](std::vector<int>& batch) { process(batch); });
  {
    common::BurstScope burst;
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(stage.TryAdd(int{i}));
      // An idle executor would have taken the first item alone by now.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(process.batches.empty()) << "nothing goes on before the scope closes";
  }
  ASSERT_TRUE(process.WaitForBatches(1));
  executor.Shutdown();
  ASSERT_EQ(process.batches.size(), 1u);
  EXPECT_EQ(process.batches[0], (std::vector<int>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace im::logic
