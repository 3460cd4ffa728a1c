// RedisConnection against the test Redis (IM_TEST_REDIS): a pooled connection the server closed
// while it sat idle (as a Redis restart does) is replaced at its next use, and that call succeeds.
#include "store/redis_connection.h"

#include <gtest/gtest.h>

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
