// RedisConnection against the test Redis (IM_TEST_REDIS): a pooled connection the server closed
// while it sat idle (as a Redis restart does) is replaced at its next use, and that call succeeds.
#include "store/redis_connection.h"

#include <gtest/gtest.h>

#include <chrono>

#include "store/tests/test_redis.h"

namespace im::store {
namespace {

TEST(RedisConnectionTest, AConnectionTheServerClosedWhileIdleIsReplacedAndTheCallRunsOnce) {
  RedisOptions options = testing::TestRedisOptions();
  options.connections = 1;
  RedisConnection redis(options);
  absl::StatusOr<RedisConnection::Reply> id = redis.Command({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok()) << id.status();
  testing::RedisAdmin admin;
  ASSERT_EQ(admin.Integer({"CLIENT", "KILL", "ID", std::to_string((*id)->integer)}), 1);

  const std::string key = testing::UniquePrefix() + "counter";
  absl::StatusOr<RedisConnection::Reply> incremented = redis.Command({"INCR", key});
  ASSERT_TRUE(incremented.ok()) << incremented.status();
  EXPECT_EQ((*incremented)->integer, 1);
  EXPECT_EQ(admin.Integer({"INCR", key}), 2) << "the command ran once";
  absl::StatusOr<RedisConnection::Reply> new_id = redis.Command({"CLIENT", "ID"});
  ASSERT_TRUE(new_id.ok());
  EXPECT_NE((*new_id)->integer, (*id)->integer) << "a fresh connection";
}

// A stalled server (a timeout, not a closed connection) may still run the command: it is not
// sent again, and the call fails once, after one timeout.
TEST(RedisConnectionTest, ATimeoutIsNotSentAgain) {
  RedisOptions options = testing::TestRedisOptions();
  options.connections = 1;
  options.timeout = std::chrono::milliseconds(300);
  RedisConnection redis(options);
  ASSERT_TRUE(redis.Command({"PING"}).ok());
  testing::RedisAdmin admin;
  const std::string key = testing::UniquePrefix() + "paused";
  ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "1000", "WRITE"}).ok());
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<RedisConnection::Reply> stalled = redis.Command({"INCR", key});
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(stalled.status().code(), absl::StatusCode::kUnavailable) << stalled.status();
  EXPECT_LT(waited, std::chrono::milliseconds(550)) << "one timeout, not two";
  ASSERT_TRUE(admin.Run({"CLIENT", "UNPAUSE"}).ok());
  // The stalled INCR ran at most once (Redis may drop it with its closed connection).
  EXPECT_LE(admin.Integer({"INCR", key}), 2) << "the stalled INCR was sent twice";
}

TEST(RedisConnectionTest, AServerThatIsGoneStillFailsUnavailable) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = std::chrono::milliseconds(200);
  RedisConnection redis(options);
  EXPECT_EQ(redis.Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(redis.Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace im::store
