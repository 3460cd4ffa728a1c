// One contract for TtlMap: the in-process map with a fake clock, the Redis one against the real
// server that IM_TEST_REDIS names.
#include <gtest/gtest.h>

#include <atomic>

#include "store/in_memory_ttl_map.h"
#include "store/redis_ttl_map.h"
#include "store/tests/test_loop.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

class InMemoryBackend {
 public:
  explicit InMemoryBackend(const std::string&) : map_([this] { return now_ms_.load(); }) {}
  TtlMap& map() { return map_; }
  void Expire(const std::string&, int64_t ttl_ms) { now_ms_ += ttl_ms; }

 private:
  std::atomic<int64_t> now_ms_{1'000'000};
  InMemoryTtlMap map_;
};

class RedisBackend {
 public:
  explicit RedisBackend(const std::string& prefix)
      : prefix_(prefix), map_(testing::TestRedis(), prefix) {}
  TtlMap& map() { return map_; }
  void Expire(const std::string& key, int64_t) { admin_.Integer({"DEL", prefix_ + key}); }

 private:
  std::string prefix_;
  RedisTtlMap map_;
  testing::RedisAdmin admin_;
};

template <typename Backend>
class TtlMapContractTest : public ::testing::Test {
 protected:
  TtlMapContractTest() : backend_(testing::UniquePrefix()) {}
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, RedisBackend>;
TYPED_TEST_SUITE(TtlMapContractTest, Backends);

TYPED_TEST(TtlMapContractTest, GetReturnsValuesInKeyOrderWithAbsentOnesEmpty) {
  TtlMap& map = this->backend_.map();
  ASSERT_TRUE(map.Put("a", "1", 60'000).ok());
  ASSERT_TRUE(map.Put("c", std::string("bytes\0x", 7), 60'000).ok());
  auto values = map.Get({"c", "b", "a"});
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 3u);
  EXPECT_EQ((*values)[0], std::string("bytes\0x", 7));
  EXPECT_FALSE((*values)[1].has_value());
  EXPECT_EQ((*values)[2], "1");
}

TYPED_TEST(TtlMapContractTest, PutOverwritesAndExpiredValuesAreGone) {
  TtlMap& map = this->backend_.map();
  ASSERT_TRUE(map.Put("k", "old", 60'000).ok());
  ASSERT_TRUE(map.Put("k", "new", 60'000).ok());
  EXPECT_EQ((*map.Get({"k"}))[0], "new");
  this->backend_.Expire("k", 60'000);
  EXPECT_FALSE((*map.Get({"k"}))[0].has_value());
}

TYPED_TEST(TtlMapContractTest, PutIfAbsentSetsOnceAndReturnsWhatIsThere) {
  TtlMap& map = this->backend_.map();
  auto first = map.PutIfAbsent("k", "mine", 60'000);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  auto second = map.PutIfAbsent("k", "theirs", 60'000);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "mine");
  EXPECT_EQ((*map.Get({"k"}))[0], "mine");
  ASSERT_TRUE(map.Delete("k").ok());
  EXPECT_FALSE((*map.Get({"k"}))[0].has_value());
  EXPECT_FALSE(map.PutIfAbsent("k", "again", 60'000)->has_value());
  this->backend_.Expire("k", 60'000);
  EXPECT_FALSE(map.PutIfAbsent("k", "after expiry", 60'000)->has_value());
  EXPECT_EQ((*map.Get({"k"}))[0], "after expiry");
}

TYPED_TEST(TtlMapContractTest, PutManySetsEveryEntryWithTheTtl) {
  TtlMap& map = this->backend_.map();
  ASSERT_TRUE(map.Put("b", "old", 60'000).ok());
  ASSERT_TRUE(map.PutMany({{"a", "1"}, {"b", "2"}, {"c", "3"}}, 60'000).ok());
  EXPECT_TRUE(map.PutMany({}, 60'000).ok());
  auto values = map.Get({"a", "b", "c"});
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(*values, (std::vector<std::optional<std::string>>{"1", "2", "3"}));
  this->backend_.Expire("b", 60'000);
  EXPECT_FALSE((*map.Get({"b"}))[0].has_value());
}

TYPED_TEST(TtlMapContractTest, GetOfNoKeysIsEmpty) {
  auto values = this->backend_.map().Get({});
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(values->empty());
}

TEST(RedisTtlMapTest, RedisKeysCarryTheTtl) {
  const std::string prefix = testing::UniquePrefix();
  RedisTtlMap map(testing::TestRedis(), prefix);
  ASSERT_TRUE(map.Put("k", "v", 5'000).ok());
  testing::RedisAdmin admin;
  const int64_t ttl = admin.Integer({"PTTL", prefix + "k"});
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5'000);
}

// The map's writes on an event loop: the same keys, read back through the blocking map, each
// with the TTL; a client that is not connected fails the batch.
TEST(RedisAsyncTtlMapTest, PutManyWritesWhatTheBlockingMapReads) {
  const std::string prefix = testing::UniquePrefix();
  testing::AsyncRedisOnLoop redis(testing::TestRedisOptions());
  RedisAsyncTtlMap async_map(&redis.client(), prefix);
  std::optional<absl::Status> written;
  async_map.PutMany({{"a", "1"}, {"b", "2"}}, 5'000,
                    [&](absl::Status status) { written = std::move(status); });
  ASSERT_TRUE(redis.RunUntil([&] { return written.has_value(); }));
  EXPECT_TRUE(written->ok()) << *written;
  RedisTtlMap map(testing::TestRedis(), prefix);
  EXPECT_EQ(*map.Get({"a", "b", "c"}),
            (std::vector<std::optional<std::string>>{"1", "2", std::nullopt}));
  testing::RedisAdmin admin;
  const int64_t ttl = admin.Integer({"PTTL", prefix + "b"});
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5'000);
}

TEST(RedisAsyncTtlMapTest, DeleteRemovesWhatTheBlockingMapWrote) {
  const std::string prefix = testing::UniquePrefix();
  RedisTtlMap map(testing::TestRedis(), prefix);
  ASSERT_TRUE(map.PutMany({{"a", "1"}, {"b", "2"}}, 5'000).ok());
  testing::AsyncRedisOnLoop redis(testing::TestRedisOptions());
  RedisAsyncTtlMap async_map(&redis.client(), prefix);
  std::optional<absl::Status> deleted;
  async_map.Delete("a", [&](absl::Status status) { deleted = std::move(status); });
  ASSERT_TRUE(redis.RunUntil([&] { return deleted.has_value(); }));
  EXPECT_TRUE(deleted->ok()) << *deleted;
  EXPECT_EQ(*map.Get({"a", "b"}), (std::vector<std::optional<std::string>>{std::nullopt, "2"}));
}

TEST(RedisAsyncTtlMapTest, UnreachableRedisFailsTheBatchUnavailable) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = std::chrono::milliseconds(200);
  testing::AsyncRedisOnLoop redis(options);
  ASSERT_TRUE(redis.RunUntil([&] { return !redis.client().connected(); }));
  RedisAsyncTtlMap map(&redis.client(), "x:");
  std::optional<absl::Status> written;
  map.PutMany({{"a", "1"}}, 1'000, [&](absl::Status status) { written = std::move(status); });
  ASSERT_TRUE(redis.RunUntil([&] { return written.has_value(); }));
  EXPECT_EQ(written->code(), absl::StatusCode::kUnavailable);
}

TEST(RedisTtlMapTest, UnreachableRedisIsUnavailable) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = std::chrono::milliseconds(200);
  RedisTtlMap map(std::make_shared<RedisConnection>(options), "x:");
  EXPECT_EQ(map.Put("k", "v", 1000).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(map.Get({"k"}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace im::store
