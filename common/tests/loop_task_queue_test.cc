#include "common/loop_task_queue.h"

#include <uv.h>

#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace im::common {
namespace {

using ::testing::ElementsAre;

// Every test owns a real loop; TearDown closes the watchdog and checks that nothing else was
// left open.
class LoopTaskQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &watchdog_), 0);
    watchdog_.data = this;
    // Unreferenced: it ends a hung uv_run but never keeps a finished loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog_));
  }

  void TearDown() override {
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs until uv_stop() or until no referenced handle is left, for at most ten seconds.
  void RunLoop() {
    uv_timer_start(
        &watchdog_,
        [](uv_timer_t* timer) {
          static_cast<LoopTaskQueueTest*>(timer->data)->timed_out_ = true;
          uv_stop(timer->loop);
        },
        10'000, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_timer_stop(&watchdog_);
    EXPECT_FALSE(timed_out_) << "the loop did not finish in time";
  }

  // Closes `queue` and runs the loop until its handle is closed.
  void CloseQueue(LoopTaskQueue& queue) {
    bool closed = false;
    queue.Close([&closed] { closed = true; });
    RunLoop();
    EXPECT_TRUE(closed);
  }

  uv_loop_t loop_;
  uv_timer_t watchdog_;
  bool timed_out_ = false;
};

TEST_F(LoopTaskQueueTest, TasksFromAnotherThreadRunOnTheLoopThreadInOrder) {
  constexpr int kTasks = 5000;
  LoopTaskQueue queue(&loop_, kTasks + 1);
  queue.Start();
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<int> order;  // touched only on the loop thread
  int off_loop = 0;
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) {
      EXPECT_TRUE(queue.Post([&, i] {
        if (std::this_thread::get_id() != loop_thread) ++off_loop;
        order.push_back(i);
      }));
    }
    EXPECT_TRUE(queue.Post([this] { uv_stop(&loop_); }));
  });
  RunLoop();
  poster.join();

  EXPECT_EQ(off_loop, 0);
  ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) ASSERT_EQ(order[i], i);
  CloseQueue(queue);
}

TEST_F(LoopTaskQueueTest, EachProducerKeepsItsOrder) {
  constexpr int kProducers = 4;
  constexpr int kTasksEach = 1000;
  LoopTaskQueue queue(&loop_, kProducers * kTasksEach + 1);
  queue.Start();
  std::vector<std::vector<int>> seen(kProducers);  // touched only on the loop thread
  int ran = 0;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kTasksEach; ++i) {
        EXPECT_TRUE(queue.Post([&, p, i] {
          seen[p].push_back(i);
          if (++ran == kProducers * kTasksEach) uv_stop(&loop_);
        }));
      }
    });
  }
  RunLoop();
  for (std::thread& producer : producers) producer.join();

  for (int p = 0; p < kProducers; ++p) {
    ASSERT_EQ(seen[p].size(), static_cast<size_t>(kTasksEach)) << p;
    for (int i = 0; i < kTasksEach; ++i) ASSERT_EQ(seen[p][i], i) << p;
  }
  CloseQueue(queue);
}

TEST_F(LoopTaskQueueTest, OneWakeUpDrainsEverythingQueued) {
  LoopTaskQueue queue(&loop_, 100);
  queue.Start();
  int ran = 0;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(queue.Post([&ran] { ++ran; }));
  EXPECT_EQ(queue.depth(), 100u);
  // The 100 uv_async_send calls coalesce; a single non-blocking iteration runs them all.
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(ran, 100);
  EXPECT_EQ(queue.depth(), 0u);
  CloseQueue(queue);
}

// Records the thread that destroys it.
class DestructionWitness {
 public:
  explicit DestructionWitness(std::thread::id* destroyed_on) : destroyed_on_(destroyed_on) {}
  ~DestructionWitness() { *destroyed_on_ = std::this_thread::get_id(); }
  DestructionWitness(const DestructionWitness&) = delete;
  DestructionWitness& operator=(const DestructionWitness&) = delete;

 private:
  std::thread::id* destroyed_on_;
};

TEST_F(LoopTaskQueueTest, RefusesBeyondCapacity) {
  LoopTaskQueue queue(&loop_, 2);
  queue.Start();
  EXPECT_EQ(queue.capacity(), 2u);
  int ran = 0;
  bool refused = false;
  std::thread::id poster_thread;
  std::thread::id destroyed_on;
  // The loop is not running, as if it were stalled.
  std::thread poster([&] {
    poster_thread = std::this_thread::get_id();
    EXPECT_TRUE(queue.Post([&ran] { ++ran; }));
    EXPECT_TRUE(queue.Post([&ran] { ++ran; }));
    auto witness = std::make_unique<DestructionWitness>(&destroyed_on);
    refused = !queue.Post([&ran, witness = std::move(witness)] { ++ran; });
  });
  poster.join();

  EXPECT_TRUE(refused);
  EXPECT_EQ(destroyed_on, poster_thread);  // the refused task died where it was posted
  EXPECT_EQ(queue.depth(), 2u);
  EXPECT_EQ(ran, 0);

  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_TRUE(queue.Post([&ran] { ++ran; }));  // room again once drained
  CloseQueue(queue);
  EXPECT_EQ(ran, 3);
}

TEST_F(LoopTaskQueueTest, CloseRunsQueuedTasksThenRefusesPosts) {
  LoopTaskQueue queue(&loop_, 16);
  queue.Start();
  std::vector<int> order;
  std::thread poster([&] {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(queue.Post([&order, i] { order.push_back(i); }));
  });
  poster.join();

  bool closed = false;
  queue.Close([&closed] { closed = true; });
  // Queued work ran inside Close(); the handle itself closes on the next loop iteration.
  EXPECT_THAT(order, ElementsAre(0, 1, 2));
  EXPECT_FALSE(closed);

  bool late_ran = false;
  std::thread late_poster([&] { EXPECT_FALSE(queue.Post([&late_ran] { late_ran = true; })); });
  late_poster.join();
  EXPECT_FALSE(queue.Post([&late_ran] { late_ran = true; }));

  RunLoop();
  EXPECT_TRUE(closed);
  EXPECT_FALSE(late_ran);
  EXPECT_EQ(queue.depth(), 0u);
  // TearDown checks uv_loop_close() == 0: the queue left nothing behind.
}

TEST_F(LoopTaskQueueTest, CloseBeforeStartCallsBackAtOnce) {
  LoopTaskQueue queue(&loop_, 4);
  bool closed = false;
  queue.Close([&closed] { closed = true; });
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace im::common
