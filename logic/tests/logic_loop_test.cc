// The send loop on the test Redis (IM_TEST_REDIS): work posted to it runs on its thread, and
// stopping it waits for Redis's answers to what it asked instead of failing them.
#include "logic/loop/logic_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>

#include "store/redis_send_ledger.h"
#include "store/redis_session_registry.h"
#include "store/redis_ttl_map.h"
#include "store/tests/test_redis.h"

namespace im::logic {
namespace {

LoopStores RedisLoopStores(store::RedisAsyncClient* client, const std::string& prefix) {
  return LoopStores{std::make_unique<store::RedisAsyncSendLedger>(client, prefix),
                    std::make_unique<store::RedisAsyncTtlMap>(client, prefix),
                    std::make_unique<store::RedisAsyncSessionLookup>(client)};
}

TEST(LogicLoopTest, PostedWorkRunsOnTheLoopThread) {
  const std::string prefix = store::testing::UniquePrefix();
  LogicLoop loop(
      "test-loop", store::testing::TestRedisOptions(),
      [&](store::RedisAsyncClient* client) { return RedisLoopStores(client, prefix); }, 100);
  loop.Start();
  EXPECT_FALSE(loop.InLoopThread());
  std::promise<bool> on_loop;
  ASSERT_TRUE(loop.Post([&] { on_loop.set_value(loop.InLoopThread()); }));
  EXPECT_TRUE(on_loop.get_future().get());
  loop.Stop();
  EXPECT_FALSE(loop.Post([] {})) << "a stopped loop refuses work";
}

TEST(LogicLoopTest, StoppingWaitsForTheAnswersToWhatItAsked) {
  const std::string prefix = store::testing::UniquePrefix();
  LogicLoop loop(
      "test-loop", store::testing::TestRedisOptions(),
      [&](store::RedisAsyncClient* client) { return RedisLoopStores(client, prefix); }, 100);
  loop.Start();
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

}  // namespace
}  // namespace im::logic
