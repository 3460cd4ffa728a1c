#include "common/allocator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace im::common {
namespace {

using std::chrono::milliseconds;

TEST(AllocatorTest, AThreadIdleLongerThanTheLimitStillWakesForWork) {
  std::mutex mutex;
  std::condition_variable wake;
  bool ready = false;
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mutex);
    WaitReleasingCacheWhenIdle(
        wake, lock, [&] { return ready; }, milliseconds(10));
    EXPECT_TRUE(ready);  // returns with the lock held and the condition true
    woke = true;
  });
  std::this_thread::sleep_for(milliseconds(100));  // past the idle limit: the cache was released
  EXPECT_FALSE(woke.load());
  {
    std::lock_guard<std::mutex> lock(mutex);
    ready = true;
  }
  wake.notify_one();
  waiter.join();
  EXPECT_TRUE(woke.load());
}

TEST(AllocatorTest, WorkAlreadyThereIsTakenWithoutWaiting) {
  std::mutex mutex;
  std::condition_variable wake;
  std::unique_lock<std::mutex> lock(mutex);
  const auto start = std::chrono::steady_clock::now();
  WaitReleasingCacheWhenIdle(
      wake, lock, [] { return true; }, std::chrono::hours(1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::minutes(1));
  EXPECT_TRUE(lock.owns_lock());
}

TEST(AllocatorTest, HeapMetricsAreAddedOnlyWhenTheProcessRunsOnJemalloc) {
  std::vector<prometheus::MetricFamily> families(1);
  families[0].name = "im_existing";
  AppendHeapMetrics(families);
  ReleaseThreadCache();  // harmless either way
  ASSERT_EQ(families[0].name, "im_existing");
  if (!RunsOnJemalloc()) {  // sanitizer builds bring their own allocator
    EXPECT_EQ(families.size(), 1u);
    return;
  }
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[1].name, "im_process_heap_bytes");
  EXPECT_EQ(families[1].metric.size(), 6u);
}

}  // namespace
}  // namespace im::common
