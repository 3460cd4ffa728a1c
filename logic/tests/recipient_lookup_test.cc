// RecipientLookup on the test Redis (IM_TEST_REDIS): with a running loop the lookup is the loop's
// (answered on its thread); without one, or once the loop stopped, the blocking registry answers
// on the caller's thread. Either way the sessions are the registry's.
#include "logic/delivery/recipient_lookup.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <future>
#include <thread>

#include "logic/backends/cluster_stores.h"
#include "store/redis_session_registry.h"
#include "store/tests/test_redis.h"

namespace im::logic {
namespace {

class RecipientLookupTest : public ::testing::Test {
 protected:
  RecipientLookupTest()
      : prefix_(store::testing::UniquePrefix()),
        registry_(store::testing::TestRedis(), /*ttl_ms=*/60'000),
        metrics_(metrics_registry_),
        loop_("test-loop", store::testing::TestRedisOptions(),
              [this](store::RedisAsyncClient* client) {
                return RedisLoopStores(client, prefix_, /*group_cache_ttl_ms=*/60'000,
                                       /*session_ttl_ms=*/60'000);
              },
              100, {1000, std::chrono::milliseconds(0)}) {
    loop_.Start();
    // Session keys are per uid: uids unique to this test keep runs apart.
    alice_ = prefix_ + "alice";
    bob_ = prefix_ + "bob";
    carol_ = prefix_ + "carol";
    EXPECT_TRUE(registry_.Register(alice_, {"phone", "gw-1", 11, 1, ""}).ok());
    EXPECT_TRUE(registry_.Register(alice_, {"web", "gw-2", 12, 2, ""}).ok());
    EXPECT_TRUE(registry_.Register(carol_, {"phone", "gw-1", 31, 3, ""}).ok());
  }

  struct Answer {
    std::vector<std::string> uids;
    RecipientLookup::Sessions sessions;
    std::thread::id thread;
  };
  // Looks up alice, bob (offline) and carol from this thread; waits for the answer.
  Answer LookUp(RecipientLookup& lookup) {
    std::promise<Answer> answered;
    lookup.LookupMany({alice_, bob_, carol_}, [&](const std::vector<std::string>& uids,
                                                  RecipientLookup::Sessions sessions) {
      answered.set_value(Answer{uids, std::move(sessions), std::this_thread::get_id()});
    });
    std::future<Answer> answer = answered.get_future();
    EXPECT_EQ(answer.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return answer.get();
  }

  void ExpectRegisteredSessions(const Answer& answer) {
    EXPECT_EQ(answer.uids, (std::vector<std::string>{alice_, bob_, carol_}));
    ASSERT_TRUE(answer.sessions.ok()) << answer.sessions.status();
    const std::vector<std::vector<store::Session>>& sessions = *answer.sessions;
    ASSERT_EQ(sessions.size(), 3u);
    ASSERT_EQ(sessions[0].size(), 2u);
    EXPECT_TRUE(sessions[0][0].IsAt("gw-1", 11));
    EXPECT_TRUE(sessions[0][1].IsAt("gw-2", 12));
    EXPECT_TRUE(sessions[1].empty());
    ASSERT_EQ(sessions[2].size(), 1u);
    EXPECT_TRUE(sessions[2][0].IsAt("gw-1", 31));
  }

  const std::string prefix_;
  store::RedisSessionRegistry registry_;
  prometheus::Registry metrics_registry_;
  LogicMetrics metrics_;
  LogicLoop loop_;
  std::string alice_, bob_, carol_;
};

TEST_F(RecipientLookupTest, WithALoopTheLoopLooksUpAndAnswersOnItsThread) {
  RecipientLookup lookup(&loop_, &registry_, &metrics_);
  std::promise<std::thread::id> loop_thread;
  ASSERT_TRUE(loop_.Post([&] { loop_thread.set_value(std::this_thread::get_id()); }));
  const Answer answer = LookUp(lookup);
  EXPECT_EQ(answer.thread, loop_thread.get_future().get());
  ExpectRegisteredSessions(answer);
}

TEST_F(RecipientLookupTest, WithoutALoopTheRegistryAnswersOnTheCallersThread) {
  RecipientLookup lookup(/*loop=*/nullptr, &registry_, &metrics_);
  const Answer answer = LookUp(lookup);
  EXPECT_EQ(answer.thread, std::this_thread::get_id());
  ExpectRegisteredSessions(answer);
}

TEST_F(RecipientLookupTest, AStoppedLoopLeavesTheLookupToTheRegistry) {
  RecipientLookup lookup(&loop_, &registry_, &metrics_);
  loop_.Stop();
  const Answer answer = LookUp(lookup);
  EXPECT_EQ(answer.thread, std::this_thread::get_id()) << "the refused lookup ran here";
  ExpectRegisteredSessions(answer);
}

}  // namespace
}  // namespace im::logic
