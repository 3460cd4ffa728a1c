// One contract for MemberListCache: the in-process cache and the Redis one against the real server
// that IM_TEST_REDIS names. Group ids carry a unique prefix: the test Redis is shared.
#include <gtest/gtest.h>

#include "store/in_memory_member_list_cache.h"
#include "store/redis_member_list_cache.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

class InMemoryBackend {
 public:
  MemberListCache& cache() { return cache_; }

 private:
  InMemoryMemberListCache cache_;
};

class RedisBackend {
 public:
  RedisBackend() : cache_(testing::TestRedis(), 60'000) {}
  MemberListCache& cache() { return cache_; }

 private:
  RedisMemberListCache cache_;
};

template <typename Backend>
class MemberListCacheContractTest : public ::testing::Test {
 protected:
  MemberListCache& cache() { return backend_.cache(); }
  std::string Group(std::string_view name) { return prefix_ + std::string(name); }

  static std::vector<GroupMember> SomeMembers() {
    return {{"alice", im::v1::OWNER, 0, 1000},
            {"bob", im::v1::ADMIN, 7, 2000},
            {"carol", im::v1::MEMBER, 12345678901ULL, 3000}};
  }

  std::string prefix_ = testing::UniquePrefix();
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, RedisBackend>;
TYPED_TEST_SUITE(MemberListCacheContractTest, Backends);

void ExpectSameMembers(const std::vector<GroupMember>& got, const std::vector<GroupMember>& want) {
  ASSERT_EQ(got.size(), want.size());
  std::vector<GroupMember> sorted = got;
  std::sort(sorted.begin(), sorted.end(),
            [](const GroupMember& a, const GroupMember& b) { return a.uid < b.uid; });
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(sorted[i].uid, want[i].uid);
    EXPECT_EQ(sorted[i].role, want[i].role);
    EXPECT_EQ(sorted[i].joined_seq, want[i].joined_seq);
    EXPECT_EQ(sorted[i].joined_ms, want[i].joined_ms);
  }
}

TYPED_TEST(MemberListCacheContractTest, VersionIsStableUntilInvalidated) {
  const std::string group = this->Group("stable");
  absl::StatusOr<std::string> first = this->cache().Version(group);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->empty());
  EXPECT_EQ(*this->cache().Version(group), *first);
  ASSERT_TRUE(this->cache().Invalidate(group).ok());
  EXPECT_NE(*this->cache().Version(group), *first);
  EXPECT_NE(*this->cache().Version(this->Group("other")), *this->cache().Version(group));
}

TYPED_TEST(MemberListCacheContractTest, PutThenGetUnderTheSameVersion) {
  const std::string group = this->Group("put");
  const std::string version = *this->cache().Version(group);
  auto before = this->cache().Get(group, version);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->has_value());
  ASSERT_TRUE(this->cache().Put(group, version, this->SomeMembers()).ok());
  auto after = this->cache().Get(group, version);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE(after->has_value());
  ExpectSameMembers(**after, this->SomeMembers());
  EXPECT_FALSE(this->cache().Get(group, "some-other-version")->has_value());
}

TYPED_TEST(MemberListCacheContractTest, AnEmptyListIsCachedToo) {
  const std::string group = this->Group("empty");
  const std::string version = *this->cache().Version(group);
  ASSERT_TRUE(this->cache().Put(group, version, {}).ok());
  auto cached = this->cache().Get(group, version);
  ASSERT_TRUE(cached.ok());
  ASSERT_TRUE(cached->has_value());
  EXPECT_TRUE((*cached)->empty());
}

// The race the version exists for: a list loaded before a change must not be saved after it.
TYPED_TEST(MemberListCacheContractTest, AListLoadedBeforeAChangeIsNeverSavedAfterIt) {
  const std::string group = this->Group("race");
  const std::string loaded_under = *this->cache().Version(group);
  ASSERT_TRUE(this->cache().Invalidate(group).ok());  // the change lands meanwhile
  ASSERT_TRUE(this->cache().Put(group, loaded_under, this->SomeMembers()).ok());
  const std::string current = *this->cache().Version(group);
  EXPECT_FALSE(this->cache().Get(group, current)->has_value());
  EXPECT_FALSE(this->cache().Get(group, loaded_under)->has_value());
}

TYPED_TEST(MemberListCacheContractTest, InvalidateDropsTheSavedList) {
  const std::string group = this->Group("drop");
  const std::string version = *this->cache().Version(group);
  ASSERT_TRUE(this->cache().Put(group, version, this->SomeMembers()).ok());
  ASSERT_TRUE(this->cache().Invalidate(group).ok());
  EXPECT_FALSE(this->cache().Get(group, *this->cache().Version(group))->has_value());
}

TEST(RedisMemberListCacheTest, UnreachableRedisIsUnavailable) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = std::chrono::milliseconds(200);
  RedisMemberListCache cache(std::make_shared<RedisConnection>(options), 60'000);
  EXPECT_EQ(cache.Version("g").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache.Invalidate("g").code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace im::store
