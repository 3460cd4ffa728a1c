// One contract, every backend: the in-process registry always, the Redis one against the real
// server whose address IM_TEST_REDIS gives (scripts/test.sh starts it). A missing server is a
// failure, never a skip.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "store/in_memory_session_registry.h"
#include "store/redis_session_registry.h"
#include "store/tests/test_loop.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

constexpr int64_t kTtlMs = 60'000;

class InMemoryBackend {
 public:
  InMemoryBackend() : registry_(kTtlMs, [this] { return now_ms_.load(); }) {}
  SessionRegistry& registry() { return registry_; }
  // The registry does not expose expiry times; the test notes when it (re)armed one.
  int64_t RemainingTtlMs(const std::string&) { return last_armed_ms_ + kTtlMs - now_ms_.load(); }
  void ShortenTtl(const std::string&, int64_t left_ms) { now_ms_ += kTtlMs - left_ms; }
  void NoteArmed() { last_armed_ms_ = now_ms_.load(); }
  void Expire(const std::string&) { now_ms_ += kTtlMs + 1; }

 private:
  std::atomic<int64_t> now_ms_{1'000'000};
  int64_t last_armed_ms_ = 0;
  InMemorySessionRegistry registry_;
};

class RedisBackend {
 public:
  RedisBackend() : registry_(testing::TestRedis(), kTtlMs) {}
  SessionRegistry& registry() { return registry_; }
  int64_t RemainingTtlMs(const std::string& uid) {
    return admin_.Integer({"PTTL", RedisSessionRegistry::KeyOf(uid)});
  }
  void ShortenTtl(const std::string& uid, int64_t left_ms) {
    admin_.Integer({"PEXPIRE", RedisSessionRegistry::KeyOf(uid), std::to_string(left_ms)});
  }
  void NoteArmed() {}
  void Expire(const std::string& uid) { admin_.Integer({"DEL", RedisSessionRegistry::KeyOf(uid)}); }

 private:
  RedisSessionRegistry registry_;
  testing::RedisAdmin admin_;
};

template <typename Backend>
class SessionRegistryContractTest : public ::testing::Test {
 protected:
  SessionRegistryContractTest() : prefix_(testing::UniquePrefix()) {}
  std::string Uid(const std::string& name) { return prefix_ + name; }
  SessionRegistry& registry() { return backend_.registry(); }

  static Session At(const std::string& device, const std::string& gateway, uint64_t conn) {
    return Session{device, gateway, conn, 1234, ""};
  }

  std::string prefix_;
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, RedisBackend>;
TYPED_TEST_SUITE(SessionRegistryContractTest, Backends);

TYPED_TEST(SessionRegistryContractTest, RegisterThenLookupInDeviceOrder) {
  const std::string uid = this->Uid("alice");
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-1", 7)).ok());
  ASSERT_TRUE(this->registry().Register(uid, this->At("laptop", "gw-2", 9)).ok());
  absl::StatusOr<std::vector<Session>> sessions = this->registry().Lookup(uid);
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[0].device, "laptop");
  EXPECT_EQ((*sessions)[0].gateway_id, "gw-2");
  EXPECT_EQ((*sessions)[0].conn_id, 9u);
  EXPECT_EQ((*sessions)[0].login_ms, 1234);
  EXPECT_EQ((*sessions)[1].device, "phone");
  EXPECT_TRUE(this->registry().Lookup(this->Uid("nobody"))->empty());
}

TYPED_TEST(SessionRegistryContractTest, ASessionKeepsThePlatformItLoggedInWith) {
  const std::string uid = this->Uid("platform-alice");
  Session phone = this->At("phone", "gw-1", 7);
  phone.platform = "ios 17";
  ASSERT_TRUE(this->registry().Register(uid, phone).ok());
  ASSERT_TRUE(this->registry().Register(uid, this->At("laptop", "gw-2", 9)).ok());  // none said
  absl::StatusOr<std::vector<Session>> sessions = this->registry().Lookup(uid);
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[0].platform, "");
  EXPECT_EQ((*sessions)[1].platform, "ios 17");
  EXPECT_EQ((*sessions)[1].login_ms, 1234);
}

// A session a logic node wrote before platforms were kept ("<gateway>|<conn>|<login_ms>") reads
// as it was, with no platform: a rolling upgrade loses no session.
TEST(RedisSessionRegistryTest, ASessionWrittenBeforePlatformsReadsWithNone) {
  RedisSessionRegistry registry(testing::TestRedis(), kTtlMs);
  testing::RedisAdmin admin;
  const std::string uid = testing::UniquePrefix() + "legacy";
  ASSERT_TRUE(admin.Run({"HSET", RedisSessionRegistry::KeyOf(uid), "phone", "gw-1|7|1234"}).ok());
  absl::StatusOr<std::vector<Session>> sessions = registry.Lookup(uid);
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_TRUE((*sessions)[0].IsAt("gw-1", 7));
  EXPECT_EQ((*sessions)[0].login_ms, 1234);
  EXPECT_EQ((*sessions)[0].platform, "");
  EXPECT_TRUE(registry.Unregister(uid, "phone", "gw-1", 7).ok());
  EXPECT_TRUE(registry.Lookup(uid)->empty());
}

TYPED_TEST(SessionRegistryContractTest, LookupManyAnswersEachUserInRequestOrder) {
  const std::string alice = this->Uid("many-alice");
  const std::string bob = this->Uid("many-bob");
  ASSERT_TRUE(this->registry().Register(alice, this->At("phone", "gw-1", 3)).ok());
  ASSERT_TRUE(this->registry().Register(bob, this->At("tablet", "gw-2", 5)).ok());
  ASSERT_TRUE(this->registry().Register(bob, this->At("laptop", "gw-1", 4)).ok());
  absl::StatusOr<std::vector<std::vector<Session>>> all =
      this->registry().LookupMany({bob, this->Uid("many-nobody"), alice});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  ASSERT_EQ((*all)[0].size(), 2u);
  EXPECT_EQ((*all)[0][0].device, "laptop");
  EXPECT_EQ((*all)[0][1].conn_id, 5u);
  EXPECT_TRUE((*all)[1].empty());
  ASSERT_EQ((*all)[2].size(), 1u);
  EXPECT_EQ((*all)[2][0].gateway_id, "gw-1");
  EXPECT_TRUE(this->registry().LookupMany({})->empty());
}

TYPED_TEST(SessionRegistryContractTest, SecondLoginOnSameDeviceReturnsTheOneToKick) {
  const std::string uid = this->Uid("bob");
  auto first = this->registry().Register(uid, this->At("phone", "gw-1", 1));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  auto second = this->registry().Register(uid, this->At("phone", "gw-2", 2));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->gateway_id, "gw-1");
  EXPECT_EQ((*second)->conn_id, 1u);
  // The same connection registering again replaces nothing worth kicking.
  auto again = this->registry().Register(uid, this->At("phone", "gw-2", 2));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  ASSERT_EQ(this->registry().Lookup(uid)->size(), 1u);
}

TYPED_TEST(SessionRegistryContractTest, RegisterAndListAnswersEachLoginInOrder) {
  const std::string carol = this->Uid("carol");
  const std::string dave = this->Uid("dave");
  ASSERT_TRUE(this->registry().Register(carol, this->At("phone", "gw-1", 1)).ok());
  auto outcomes = this->registry().RegisterAndList({
      {carol, this->At("phone", "gw-2", 2)},   // replaces the phone's older connection
      {dave, this->At("laptop", "gw-1", 3)},   // nothing to replace
      {dave, this->At("laptop", "gw-1", 3)},   // the same connection again
      {carol, this->At("tablet", "gw-2", 4)},  // another device of carol: sees the first login
  });
  ASSERT_EQ(outcomes.size(), 4u);
  for (const auto& outcome : outcomes) ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_TRUE(outcomes[0]->replaced.has_value());
  EXPECT_EQ(outcomes[0]->replaced->conn_id, 1u);
  ASSERT_EQ(outcomes[0]->all.size(), 1u);
  EXPECT_TRUE(outcomes[0]->all[0].IsAt("gw-2", 2));
  EXPECT_FALSE(outcomes[1]->replaced.has_value());
  EXPECT_EQ(outcomes[1]->all.size(), 1u);
  EXPECT_FALSE(outcomes[2]->replaced.has_value());
  EXPECT_EQ(outcomes[2]->all.size(), 1u);
  EXPECT_FALSE(outcomes[3]->replaced.has_value());
  ASSERT_EQ(outcomes[3]->all.size(), 2u);
  EXPECT_EQ(outcomes[3]->all[0].device, "phone") << "device order";
  EXPECT_EQ(outcomes[3]->all[1].device, "tablet");
  EXPECT_EQ(this->registry().Lookup(carol)->size(), 2u);
  EXPECT_EQ(this->registry().Lookup(dave)->size(), 1u);
  EXPECT_TRUE(this->registry().RegisterAndList({}).empty());
}

TYPED_TEST(SessionRegistryContractTest, StaleUnregisterDoesNotRemoveNewerLogin) {
  const std::string uid = this->Uid("carol");
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-1", 1)).ok());
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-2", 2)).ok());
  EXPECT_FALSE(*this->registry().Unregister(uid, "phone", "gw-1", 1));
  // Same conn id on another gateway is another connection.
  EXPECT_FALSE(*this->registry().Unregister(uid, "phone", "gw-1", 2));
  ASSERT_EQ(this->registry().Lookup(uid)->size(), 1u);
  EXPECT_TRUE(*this->registry().Unregister(uid, "phone", "gw-2", 2));
  EXPECT_TRUE(this->registry().Lookup(uid)->empty());
  EXPECT_FALSE(*this->registry().Unregister(uid, "phone", "gw-2", 2));
}

TYPED_TEST(SessionRegistryContractTest, UnregisterManyRemovesOnlySessionsStillOnThoseConnections) {
  const std::string amy = this->Uid("amy");
  const std::string ben = this->Uid("ben");
  ASSERT_TRUE(this->registry().Register(amy, this->At("phone", "gw-1", 1)).ok());
  ASSERT_TRUE(this->registry().Register(amy, this->At("tablet", "gw-1", 2)).ok());
  ASSERT_TRUE(this->registry().Register(ben, this->At("phone", "gw-2", 3)).ok());  // elsewhere
  absl::StatusOr<size_t> removed = this->registry().UnregisterMany(
      "gw-1", {{amy, "phone", 1}, {amy, "tablet", 2}, {ben, "phone", 3}, {amy, "watch", 4}});
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2u);
  EXPECT_TRUE(this->registry().Lookup(amy)->empty());
  EXPECT_EQ(this->registry().Lookup(ben)->size(), 1u) << "ben is on gw-2, not gw-1";
  EXPECT_EQ(*this->registry().UnregisterMany("gw-1", {}), 0u);
}

TYPED_TEST(SessionRegistryContractTest, RefreshReportsStaleAndRearmsLive) {
  const std::string uid = this->Uid("dave");
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-1", 1)).ok());
  this->backend_.NoteArmed();
  this->backend_.ShortenTtl(uid, 1000);
  absl::StatusOr<std::vector<uint64_t>> stale = this->registry().Refresh(
      "gw-1", {{uid, "phone", 1}, {uid, "tablet", 5}, {this->Uid("ghost"), "phone", 6}});
  this->backend_.NoteArmed();
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(*stale, (std::vector<uint64_t>{5, 6}));
  EXPECT_GT(this->backend_.RemainingTtlMs(uid), 1000);
  // The same session reported by another gateway is stale there.
  EXPECT_EQ(*this->registry().Refresh("gw-9", {{uid, "phone", 1}}), (std::vector<uint64_t>{1}));
}

TYPED_TEST(SessionRegistryContractTest, RegisterArmsExpiryAndExpiredSessionsAreGone) {
  const std::string uid = this->Uid("erin");
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-1", 1)).ok());
  this->backend_.NoteArmed();
  const int64_t left = this->backend_.RemainingTtlMs(uid);
  EXPECT_GT(left, 0);
  EXPECT_LE(left, kTtlMs);
  this->backend_.Expire(uid);
  EXPECT_TRUE(this->registry().Lookup(uid)->empty());
  EXPECT_EQ(*this->registry().Refresh("gw-1", {{uid, "phone", 1}}), (std::vector<uint64_t>{1}));
}

// LapseInMs: how long a user's sessions last unless refreshed; 0 once they are gone.
TYPED_TEST(SessionRegistryContractTest, LapseInMsIsTheTimeLeftAndZeroWithoutSessions) {
  const std::string uid = this->Uid("lapsing");
  ASSERT_TRUE(this->registry().Register(uid, this->At("phone", "gw-1", 1)).ok());
  this->backend_.NoteArmed();
  this->backend_.ShortenTtl(uid, 5'000);
  absl::StatusOr<std::vector<int64_t>> lapse =
      this->registry().LapseInMs({uid, this->Uid("never-logged-in")});
  ASSERT_TRUE(lapse.ok()) << lapse.status();
  ASSERT_EQ(lapse->size(), 2u);
  EXPECT_GT((*lapse)[0], 4'000);
  EXPECT_LE((*lapse)[0], 5'000);
  EXPECT_EQ((*lapse)[1], 0);
  this->backend_.Expire(uid);
  EXPECT_EQ(*this->registry().LapseInMs({uid}), (std::vector<int64_t>{0}));
}

// The batch lookup on an event loop answers what the blocking registry answers.
TEST(RedisAsyncSessionRegistryTest, LooksUpWhatTheRegistryAnswersWithoutBlocking) {
  const std::string prefix = testing::UniquePrefix();
  RedisSessionRegistry registry(testing::TestRedis(), kTtlMs);
  const std::string alice = prefix + "alice", bob = prefix + "bob";
  ASSERT_TRUE(registry.Register(alice, Session{"phone", "gw-1", 1, 1234, ""}).ok());
  ASSERT_TRUE(registry.Register(alice, Session{"desk", "gw-2", 2, 1235, ""}).ok());
  ASSERT_TRUE(registry.Register(bob, Session{"phone", "gw-1", 3, 1236, ""}).ok());
  const std::vector<std::string> uids = {bob, prefix + "nobody", alice};
  absl::StatusOr<std::vector<std::vector<Session>>> expected = registry.LookupMany(uids);
  ASSERT_TRUE(expected.ok());

  testing::AsyncRedisOnLoop redis(testing::TestRedisOptions());
  RedisAsyncSessionRegistry lookup(&redis.client(), kTtlMs);
  std::optional<absl::StatusOr<std::vector<std::vector<Session>>>> found;
  lookup.LookupMany(uids, [&](absl::StatusOr<std::vector<std::vector<Session>>> sessions) {
    found = std::move(sessions);
  });
  ASSERT_TRUE(redis.RunUntil([&] { return found.has_value(); }));
  ASSERT_TRUE(found->ok()) << found->status();
  ASSERT_EQ((*found)->size(), 3u);
  for (size_t u = 0; u < uids.size(); ++u) {
    const std::vector<Session>& got = (**found)[u];
    const std::vector<Session>& want = (*expected)[u];
    ASSERT_EQ(got.size(), want.size()) << uids[u];
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].device, want[i].device);
      EXPECT_TRUE(got[i].SameConnection(want[i]));
      EXPECT_EQ(got[i].login_ms, want[i].login_ms);
    }
  }
  EXPECT_EQ((**found)[2].size(), 2u) << "both of alice's devices";
  EXPECT_TRUE((**found)[1].empty());
}

// A batch of logins registered on an event loop lands as the blocking registry would land it,
// and the device cap's removals take out only sessions still on their connections.
TEST(RedisAsyncSessionRegistryTest, RegistersAndUnregistersWithoutBlocking) {
  const std::string prefix = testing::UniquePrefix();
  RedisSessionRegistry registry(testing::TestRedis(), kTtlMs);
  const std::string amy = prefix + "amy", ben = prefix + "ben";
  ASSERT_TRUE(registry.Register(amy, Session{"phone", "gw-1", 1, 1000, ""}).ok());

  testing::AsyncRedisOnLoop redis(testing::TestRedisOptions());
  RedisAsyncSessionRegistry sessions(&redis.client(), kTtlMs);
  std::optional<std::vector<absl::StatusOr<SessionRegistry::Registered>>> outcomes;
  sessions.RegisterAndList({{amy, Session{"phone", "gw-2", 2, 2000, ""}},
                            {amy, Session{"desk", "gw-2", 3, 2001, ""}},
                            {ben, Session{"phone", "gw-1", 4, 2002, ""}}},
                           [&](std::vector<absl::StatusOr<SessionRegistry::Registered>> answered) {
                             outcomes = std::move(answered);
                           });
  ASSERT_TRUE(redis.RunUntil([&] { return outcomes.has_value(); }));
  ASSERT_EQ(outcomes->size(), 3u);
  for (const auto& outcome : *outcomes) ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_TRUE((*outcomes)[0]->replaced.has_value()) << "amy's phone moved from gw-1 to gw-2";
  EXPECT_TRUE((*outcomes)[0]->replaced->IsAt("gw-1", 1));
  EXPECT_EQ((*outcomes)[0]->all.size(), 1u);
  EXPECT_EQ((*outcomes)[1]->all.size(), 2u) << "the desk sees the phone registered before it";
  EXPECT_FALSE((*outcomes)[2]->replaced.has_value());
  EXPECT_EQ(registry.Lookup(amy)->size(), 2u);
  EXPECT_GT(testing::RedisAdmin().Integer({"PTTL", RedisSessionRegistry::KeyOf(ben)}), 0)
      << "expiry armed";

  std::optional<absl::Status> unregistered;
  sessions.UnregisterAll(
      {{amy, Session{"phone", "gw-1", 1, 1000, ""}},  // stale: the phone is on gw-2 now
       {amy, Session{"desk", "gw-2", 3, 2001, ""}}},  // still there
      [&](absl::Status status) { unregistered = status; });
  ASSERT_TRUE(redis.RunUntil([&] { return unregistered.has_value(); }));
  ASSERT_TRUE(unregistered->ok()) << *unregistered;
  absl::StatusOr<std::vector<Session>> left = registry.Lookup(amy);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_TRUE((*left)[0].IsAt("gw-2", 2));
}

TEST(RedisSessionRegistryTest, UnreachableRedisIsUnavailableNotACrash) {
  RedisOptions options;
  options.port = 1;
  options.timeout = std::chrono::milliseconds(200);
  RedisSessionRegistry registry(std::make_shared<RedisConnection>(options), kTtlMs);
  absl::StatusOr<std::vector<Session>> sessions = registry.Lookup("x");
  ASSERT_FALSE(sessions.ok());
  EXPECT_EQ(sessions.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(registry.Register("x", Session{"d", "g", 1, 1, ""}).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace im::store
