// SheddingTaskQueue: every task runs (httplib's tasks close their sockets), but one that waited
// past the bound, or came while the queue was full, runs told to refuse.
#include "common/http_task_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

namespace im::common {
namespace {

TEST(SheddingTaskQueueTest, TasksThatWaitedTooLongOrFoundItFullRunToldToShed) {
  // The bound is wide, so that a loaded machine's late thread start does not shed the first task.
  SheddingTaskQueue queue(/*threads=*/1, /*max_queued=*/2, std::chrono::milliseconds(500));
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::mutex mutex;
  std::vector<bool> shed(4);
  std::vector<std::promise<void>> ran(4);
  auto task = [&](size_t i, bool block) {
    return [&, i, block] {
      if (block) released.wait();
      {
        std::lock_guard lock(mutex);
        shed[i] = SheddingTaskQueue::ShouldShed();
      }
      ran[i].set_value();
    };
  };
  queue.enqueue(task(0, true));  // takes the thread until released
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  queue.enqueue(task(1, false));  // waits past 500 ms
  queue.enqueue(task(2, false));  // waits past 500 ms too
  queue.enqueue(task(3, false));  // finds two waiting: the queue is full
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  release.set_value();
  for (std::promise<void>& done : ran) done.get_future().wait();
  std::lock_guard lock(mutex);
  EXPECT_FALSE(shed[0]) << "it took the thread at once";
  EXPECT_TRUE(shed[1]);
  EXPECT_TRUE(shed[2]);
  EXPECT_TRUE(shed[3]);
  EXPECT_FALSE(SheddingTaskQueue::ShouldShed()) << "only on the task's own thread, while it runs";
}

TEST(SheddingTaskQueueTest, TasksServedInTimeAreNotShedAndShutdownRunsWhatIsQueued) {
  std::atomic<int> served{0};
  std::atomic<int> shed{0};
  {
    SheddingTaskQueue queue(/*threads=*/2, /*max_queued=*/100, std::chrono::seconds(10));
    for (int i = 0; i < 20; ++i) {
      queue.enqueue([&] { (SheddingTaskQueue::ShouldShed() ? shed : served)++; });
    }
    queue.shutdown();
  }
  EXPECT_EQ(served.load(), 20);
  EXPECT_EQ(shed.load(), 0);
}

}  // namespace
}  // namespace im::common
