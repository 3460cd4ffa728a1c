// The send loop on the test Redis (IM_TEST_REDIS): work posted to it runs on its thread, and
// stopping it waits for Redis's answers to what it asked instead of failing them.
#include "logic/loop/logic_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "logic/backends/cluster_stores.h"
#include "store/redis_connection.h"
#include "store/redis_ttl_map.h"
#include "store/tests/test_redis.h"

namespace im::logic {
namespace {

// A loop on the test Redis whose stores use keys under `prefix`.
std::unique_ptr<LogicLoop> StartLoop(const std::string& prefix,
                                     LogicLoop::RedisLimits limits = {
                                         1000, std::chrono::milliseconds(0)}) {
  auto loop = std::make_unique<LogicLoop>(
      "test-loop", store::testing::TestRedisOptions(),
      [prefix](store::RedisAsyncClient* client) {
        return RedisLoopStores(client, prefix, /*group_cache_ttl_ms=*/60'000,
                               /*session_ttl_ms=*/60'000);
      },
      100, limits);
  loop->Start();
  return loop;
}

TEST(LogicLoopTest, PostedWorkRunsOnTheLoopThread) {
  std::unique_ptr<LogicLoop> started = StartLoop(store::testing::UniquePrefix());
  LogicLoop& loop = *started;
  EXPECT_FALSE(loop.InLoopThread());
  std::promise<bool> on_loop;
  ASSERT_TRUE(loop.Post([&] { on_loop.set_value(loop.InLoopThread()); }));
  EXPECT_TRUE(on_loop.get_future().get());
  loop.Stop();
  EXPECT_FALSE(loop.Post([] {})) << "a stopped loop refuses work";
}

TEST(LogicLoopTest, StoppingWaitsForTheAnswersToWhatItAsked) {
  const std::string prefix = store::testing::UniquePrefix();
  std::unique_ptr<LogicLoop> started = StartLoop(prefix);
  LogicLoop& loop = *started;
  constexpr int kBatches = 20;
  std::atomic<int> written{0}, failed{0};
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_TRUE(loop.Post([&, i] {
      loop.dedup()->PutMany({{"k" + std::to_string(i), "v"}}, 60'000,
                            [&](absl::Status status) { (status.ok() ? written : failed)++; });
    }));
  }
  loop.Stop();  // at once: most of the writes are still on their way
  EXPECT_EQ(written.load(), kBatches);
  EXPECT_EQ(failed.load(), 0);
  store::RedisTtlMap map(store::testing::TestRedis(), prefix);
  EXPECT_EQ((*map.Get({"k0", "k19"}))[1], "v");
}

// Redis is "behind" while the loop's connection has its limit of commands unanswered, and no
// longer once they are answered.
TEST(LogicLoopTest, RedisIsBehindWhileItsLimitOfCommandsIsUnanswered) {
  std::unique_ptr<LogicLoop> loop =
      StartLoop(store::testing::UniquePrefix(), {5, std::chrono::milliseconds(0)});
  std::promise<std::pair<bool, bool>> behind;  // before issuing 5 commands, right after
  std::promise<void> answered;
  ASSERT_TRUE(loop->Post([&] {
    const bool before = loop->RedisBehind();
    loop->dedup()->PutMany({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}, 60'000,
                           [&](absl::Status) { answered.set_value(); });
    behind.set_value({before, loop->RedisBehind()});
  }));
  EXPECT_EQ(behind.get_future().get(), std::make_pair(false, true));
  answered.get_future().get();
  std::promise<bool> after;
  ASSERT_TRUE(loop->Post([&] { after.set_value(loop->RedisBehind()); }));
  EXPECT_FALSE(after.get_future().get());
}

// Redis is also "behind" once the oldest unanswered command has waited `max_wait`, however few
// are unanswered: a slow Redis (here one whose writes are paused for a second) is found before its
// backlog reaches the connection's timeout.
TEST(LogicLoopTest, RedisIsBehindOnceItsOldestCommandWaitedTooLong) {
  std::unique_ptr<LogicLoop> loop =
      StartLoop(store::testing::UniquePrefix(), {1000, std::chrono::milliseconds(100)});
  auto behind = [&] {
    std::promise<bool> answer;
    EXPECT_TRUE(loop->Post([&] { answer.set_value(loop->RedisBehind()); }));
    return answer.get_future().get();
  };
  // Polls `holds` until it is true or `within` passed; returns its last value.
  auto eventually = [](const std::function<bool()>& holds, std::chrono::milliseconds within) {
    const auto give_up = std::chrono::steady_clock::now() + within;
    bool held = holds();
    while (!held && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      held = holds();
    }
    return held;
  };
  ASSERT_FALSE(behind());
  // In effect once it is answered: the loop's write below waits for the pause to end.
  ASSERT_TRUE(store::testing::TestRedis(1)->Command({"CLIENT", "PAUSE", "1000", "WRITE"}).ok());
  std::promise<void> answered;
  std::promise<bool> at_issue;
  ASSERT_TRUE(loop->Post([&] {
    loop->dedup()->PutMany({{"a", "1"}}, 60'000, [&](absl::Status) { answered.set_value(); });
    at_issue.set_value(loop->RedisBehind());
  }));
  EXPECT_FALSE(at_issue.get_future().get()) << "one command, just issued";
  EXPECT_TRUE(eventually(behind, std::chrono::milliseconds(800)))
      << "its one command waited over 100 ms";
  // Other threads see it within the watch period, without asking the loop.
  EXPECT_TRUE(
      eventually([&] { return loop->RedisBehindLately(); }, std::chrono::milliseconds(200)));
  answered.get_future().get();
  EXPECT_FALSE(behind());
  EXPECT_TRUE(
      eventually([&] { return !loop->RedisBehindLately(); }, std::chrono::milliseconds(200)))
      << "Redis answered: no longer behind";
}

// Work posted with a shed path that waited for a busy loop longer than the queue-wait policy
// allows takes that path; work posted without one runs however long it waited.
TEST(LogicLoopTest, SheddableWorkThatWaitedTooLongForTheLoopIsShed) {
  std::mutex waits_mutex;
  std::vector<double> waits;  // seconds, as the loop reports them
  auto loop = std::make_unique<LogicLoop>(
      "test-loop", store::testing::TestRedisOptions(),
      [prefix = store::testing::UniquePrefix()](store::RedisAsyncClient* client) {
        return RedisLoopStores(client, prefix, /*group_cache_ttl_ms=*/60'000,
                               /*session_ttl_ms=*/60'000);
      },
      100, LogicLoop::RedisLimits{1000, std::chrono::milliseconds(0)},
      common::QueueWait{common::QueueWaitPolicy::Options{std::chrono::milliseconds(10),
                                                         std::chrono::milliseconds(50)},
                        [&](double seconds) {
                          std::lock_guard<std::mutex> lock(waits_mutex);
                          waits.push_back(seconds);
                        }});
  loop->Start();
  std::promise<void> busy;
  ASSERT_TRUE(loop->Post([&] {
    busy.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the loop is held
  }));
  busy.get_future().wait();
  std::atomic<int> ran{0};
  std::atomic<int> shed{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(loop->PostSheddable([&] { ran.fetch_add(1); }, [&] { shed.fetch_add(1); }));
  }
  std::promise<void> done;
  ASSERT_TRUE(loop->Post([&] { done.set_value(); }));  // no shed path: runs
  done.get_future().wait();
  EXPECT_EQ(shed.load(), 3);
  EXPECT_EQ(ran.load(), 0);
  // A quick loop serves what is posted.
  std::promise<void> served;
  ASSERT_TRUE(loop->PostSheddable([&] { served.set_value(); }, [&] { shed.fetch_add(1); }));
  EXPECT_EQ(served.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(shed.load(), 3);
  // Every sheddable task's wait is reported, shed or run: the three held ones waited long.
  std::lock_guard<std::mutex> lock(waits_mutex);
  ASSERT_EQ(waits.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_GT(waits[i], 0.05) << "task " << i;
}

}  // namespace
}  // namespace im::logic
