// One contract for RestrictionStore: the in-process store, the SQLite one on a fresh database file
// per test, the Redis one against the real server that IM_TEST_REDIS names, under a prefix of its
// own per test (the server is shared and never wiped). A missing server is a failure, never a skip.
#include "store/restriction_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <thread>
#include <tuple>

#include "fmt/format.h"
#include "store/in_memory_restriction_store.h"
#include "store/message_rules.h"
#include "store/redis_restriction_store.h"
#include "store/sqlite_restriction_store.h"
#include "store/tests/backend_name.h"
#include "store/tests/test_redis.h"
#include "store/tests/test_sqlite.h"

namespace im::store {
namespace {

// Each backend reads the test's clock (`now_ms`) where it prunes lapsed restrictions.
class InMemoryBackend {
 public:
  static constexpr char kName[] = "InMemory";
  explicit InMemoryBackend(std::atomic<int64_t>&) {}
  RestrictionStore& store() { return store_; }

 private:
  InMemoryRestrictionStore store_;
};

class RedisBackend {
 public:
  static constexpr char kName[] = "Redis";
  explicit RedisBackend(std::atomic<int64_t>& now_ms)
      : store_(testing::TestRedis(), testing::UniquePrefix(), [&now_ms] { return now_ms.load(); }) {
  }
  RestrictionStore& store() { return store_; }

 private:
  RedisRestrictionStore store_;
};

class SqliteBackend {
 public:
  static constexpr char kName[] = "Sqlite";
  explicit SqliteBackend(std::atomic<int64_t>& now_ms)
      : store_(database_.database(), [&now_ms] { return now_ms.load(); }) {}
  RestrictionStore& store() { return store_; }

 private:
  testing::TestSqliteDatabase database_;
  SqliteRestrictionStore store_;
};

Restriction Make(RestrictionKind kind, std::string subject, int64_t since_ms, int64_t until_ms) {
  Restriction restriction;
  restriction.kind = kind;
  restriction.subject = std::move(subject);
  restriction.since_ms = since_ms;
  restriction.until_ms = until_ms;
  return restriction;
}

using Row = std::tuple<int, std::string, int64_t, int64_t>;

// In (kind, subject) order, comparable: LoadLive promises no order.
std::vector<Row> Rows(const std::vector<Restriction>& restrictions) {
  std::vector<Row> rows;
  for (const Restriction& r : restrictions) {
    rows.emplace_back(static_cast<int>(r.kind), r.subject, r.since_ms, r.until_ms);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}
std::vector<Row> Rows(std::initializer_list<Restriction> restrictions) {
  return Rows(std::vector<Restriction>(restrictions));
}

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kHour = 3'600'000;

template <typename Backend>
class RestrictionStoreContractTest : public ::testing::Test {
 protected:
  RestrictionStoreContractTest() : backend_(now_ms_) {}

  RestrictionStore& store() { return backend_.store(); }

  void PutOk(const Restriction& restriction) {
    const absl::Status status = store().Put(restriction);
    EXPECT_TRUE(status.ok()) << status;
  }
  std::vector<Row> Live(int64_t now_ms = kNow) {
    absl::StatusOr<std::vector<Restriction>> live = store().LoadLive(now_ms);
    EXPECT_TRUE(live.ok()) << live.status();
    return Rows(live.value_or(std::vector<Restriction>()));
  }
  uint64_t VersionNow() {
    absl::StatusOr<uint64_t> version = store().Version();
    EXPECT_TRUE(version.ok()) << version.status();
    return version.value_or(0);
  }
  bool RemoveOk(RestrictionKind kind, std::string_view subject) {
    absl::StatusOr<bool> removed = store().Remove(kind, subject);
    EXPECT_TRUE(removed.ok()) << removed.status();
    return removed.value_or(false);
  }

  // The stores' own clock, which they prune by: the contract allows pruning but does not require
  // it, so here it stands at 0 and never hides what a test loads; the backends' own tests below
  // check their pruning.
  std::atomic<int64_t> now_ms_{0};
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, SqliteBackend, RedisBackend>;
TYPED_TEST_SUITE(RestrictionStoreContractTest, Backends, testing::BackendName);

TYPED_TEST(RestrictionStoreContractTest, AFreshStoreHoldsNothing) {
  EXPECT_TRUE(this->Live(0).empty());
  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kUserMute, "alice"));
}

TYPED_TEST(RestrictionStoreContractTest, PutThenLoadLive) {
  // One subject under each kind: three restrictions, not one.
  const Restriction mute = Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour);
  const Restriction group_mute = Make(RestrictionKind::kGroupMute, "alice", kNow - 5, kNow + 1);
  const Restriction revocation =
      Make(RestrictionKind::kTokenRevocation, "alice", kNow - kHour, kNow + 24 * kHour);
  const Restriction bob =
      Make(RestrictionKind::kUserMute, "bob", 0, std::numeric_limits<int64_t>::max());
  for (const Restriction& r : {mute, group_mute, revocation, bob}) this->PutOk(r);
  EXPECT_EQ(this->Live(), Rows({mute, group_mute, revocation, bob}));
}

TYPED_TEST(RestrictionStoreContractTest, PutReplacesWhatWasThere) {
  this->PutOk(Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour));
  const Restriction longer = Make(RestrictionKind::kUserMute, "alice", kNow + 10, kNow + 2 * kHour);
  this->PutOk(longer);
  EXPECT_EQ(this->Live(), Rows({longer}));
  // Replacing with a shorter one shortens it: the last Put wins, not the longest.
  const Restriction shorter = Make(RestrictionKind::kUserMute, "alice", kNow + 20, kNow + 1);
  this->PutOk(shorter);
  EXPECT_EQ(this->Live(), Rows({shorter}));
  EXPECT_TRUE(this->Live(kNow + 1).empty());
}

TYPED_TEST(RestrictionStoreContractTest, RemoveSaysWhetherThereWasOne) {
  const Restriction bob = Make(RestrictionKind::kUserMute, "bob", kNow, kNow + kHour);
  this->PutOk(Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour));
  this->PutOk(bob);
  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kGroupMute, "alice"));  // another kind
  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kUserMute, "alic"));
  EXPECT_TRUE(this->RemoveOk(RestrictionKind::kUserMute, "alice"));
  EXPECT_EQ(this->Live(), Rows({bob}));
  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kUserMute, "alice"));
}

TYPED_TEST(RestrictionStoreContractTest, LapsedOnesAreNotLoaded) {
  const Restriction live = Make(RestrictionKind::kUserMute, "live", kNow - kHour, kNow + 1);
  const Restriction at_now = Make(RestrictionKind::kUserMute, "at-now", kNow - kHour, kNow);
  const Restriction past = Make(RestrictionKind::kGroupMute, "past", kNow - kHour, kNow - 1);
  for (const Restriction& r : {live, at_now, past}) this->PutOk(r);
  EXPECT_EQ(this->Live(kNow), Rows({live}));  // until_ms > now_ms: one that ends now has ended
  EXPECT_EQ(this->Live(kNow - 1), Rows({live, at_now}));
  EXPECT_TRUE(this->Live(kNow + 1).empty());
}

TYPED_TEST(RestrictionStoreContractTest, VersionMovesWhenSomethingChanged) {
  const uint64_t start = this->VersionNow();
  const Restriction mute = Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour);
  this->PutOk(mute);
  const uint64_t after_put = this->VersionNow();
  EXPECT_NE(after_put, start);

  this->PutOk(mute);  // the same again changes nothing
  EXPECT_EQ(this->VersionNow(), after_put);

  this->PutOk(Make(RestrictionKind::kUserMute, "alice", kNow, kNow + 2 * kHour));
  const uint64_t after_replace = this->VersionNow();
  EXPECT_NE(after_replace, after_put);

  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kUserMute, "nobody"));
  EXPECT_EQ(this->VersionNow(), after_replace);  // a remove of nothing changes nothing

  EXPECT_TRUE(this->RemoveOk(RestrictionKind::kUserMute, "alice"));
  const uint64_t after_remove = this->VersionNow();
  EXPECT_NE(after_remove, after_replace);
  EXPECT_NE(after_remove, start);
  EXPECT_EQ(this->VersionNow(), after_remove);  // reading it moves nothing
}

TYPED_TEST(RestrictionStoreContractTest, SubjectsWithOddBytesRoundTrip) {
  const std::vector<std::string> subjects = {
      "a:b",
      "a",  // a prefix of the one above: a separate subject
      ":",
      "1:2:3",
      "with space",
      " ",
      "caf\xC3\xA9 \xF0\x9F\x98\x80",
      std::string("nul\0byte", 8),
      "\xFF\xFE",  // not UTF-8: subjects are bytes
      std::string(kMaxUidBytes, 'u'),
  };
  std::vector<Restriction> all;
  for (size_t i = 0; i < subjects.size(); ++i) {
    for (RestrictionKind kind : {RestrictionKind::kUserMute, RestrictionKind::kTokenRevocation}) {
      all.push_back(Make(kind, subjects[i], kNow + static_cast<int64_t>(i), kNow + kHour));
      this->PutOk(all.back());
    }
  }
  EXPECT_EQ(this->Live(), Rows(all));
  EXPECT_TRUE(this->RemoveOk(RestrictionKind::kUserMute, "a:b"));
  EXPECT_TRUE(this->RemoveOk(RestrictionKind::kTokenRevocation, std::string("nul\0byte", 8)));
  EXPECT_FALSE(this->RemoveOk(RestrictionKind::kUserMute, "nul"));
  all.erase(std::remove_if(all.begin(), all.end(),
                           [](const Restriction& r) {
                             return (r.kind == RestrictionKind::kUserMute && r.subject == "a:b") ||
                                    (r.kind == RestrictionKind::kTokenRevocation &&
                                     r.subject == std::string("nul\0byte", 8));
                           }),
            all.end());
  EXPECT_EQ(this->Live(), Rows(all));
}

TYPED_TEST(RestrictionStoreContractTest, RefusesKeysNoBackendCanHold) {
  const uint64_t start = this->VersionNow();
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const RestrictionKind unknown = static_cast<RestrictionKind>(9);
  const std::vector<std::pair<RestrictionKind, std::string>> bad = {
      {unknown, "alice"},
      {static_cast<RestrictionKind>(0), "alice"},
      {RestrictionKind::kUserMute, ""},
      {RestrictionKind::kUserMute, std::string(kMaxUidBytes + 1, 'u')},
  };
  for (const auto& [kind, subject] : bad) {
    EXPECT_EQ(this->store().Put(Make(kind, subject, kNow, kNow + kHour)).code(), invalid)
        << subject.size();
    EXPECT_EQ(this->store().Remove(kind, subject).status().code(), invalid) << subject.size();
  }
  EXPECT_EQ(this->VersionNow(), start);
  EXPECT_TRUE(this->Live(0).empty());
}

TYPED_TEST(RestrictionStoreContractTest, ConcurrentPutsEachMoveTheVersion) {
  // The version counts changes, so no two writers' changes collapse into one move unseen.
  const uint64_t start = this->VersionNow();
  constexpr int kThreads = 4;
  constexpr int kPuts = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int p = 0; p < kPuts; ++p) {
        this->PutOk(
            Make(RestrictionKind::kUserMute, fmt::format("u{}-{}", t, p), kNow, kNow + kHour));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(this->VersionNow(), start + kThreads * kPuts);
  EXPECT_EQ(this->Live().size(), static_cast<size_t>(kThreads * kPuts));
}

// Redis: every node of a cluster holds a store on the same keys.
TEST(RedisRestrictionStoreTest, AnotherNodeSeesTheChangeAndTheVersionMove) {
  const std::string prefix = testing::UniquePrefix();
  RedisRestrictionStore writer(testing::TestRedis(), prefix);
  RedisRestrictionStore reader(testing::TestRedis(), prefix);
  EXPECT_EQ(*reader.Version(), 0u);  // never changed: the counter is absent
  const Restriction mute = Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour);
  ASSERT_TRUE(writer.Put(mute).ok());
  EXPECT_EQ(*reader.Version(), *writer.Version());
  EXPECT_NE(*reader.Version(), 0u);
  EXPECT_EQ(Rows(*reader.LoadLive(kNow)), Rows({mute}));
  EXPECT_TRUE(*reader.Remove(RestrictionKind::kUserMute, "alice"));
  EXPECT_TRUE(writer.LoadLive(kNow)->empty());
  EXPECT_EQ(*writer.Version(), 2u);
}

TEST(RedisRestrictionStoreTest, KeysAreThePrefixedHashAndCounter) {
  const std::string prefix = testing::UniquePrefix();
  RedisRestrictionStore store(testing::TestRedis(), prefix);
  EXPECT_EQ(store.hash_key(), prefix + "restrictions");
  EXPECT_EQ(store.version_key(), prefix + "restrictions:version");
  ASSERT_TRUE(store.Put(Make(RestrictionKind::kGroupMute, "g:1", 5, kNow + kHour)).ok());
  testing::RedisAdmin admin;
  EXPECT_EQ(admin.Integer({"HLEN", store.hash_key()}), 1);
  EXPECT_EQ(admin.Integer({"HSTRLEN", store.hash_key(), "2:g:1"}),
            static_cast<int64_t>(fmt::format("5:{}", kNow + kHour).size()));
  EXPECT_EQ(admin.Integer({"INCRBY", store.version_key(), "0"}), 1);
}

TEST(RedisRestrictionStoreTest, UnreadableFieldsAreSkippedAndCounted) {
  const std::string prefix = testing::UniquePrefix();
  RedisRestrictionStore store(testing::TestRedis(), prefix, [] { return kNow; });
  const Restriction mute = Make(RestrictionKind::kUserMute, "alice", kNow, kNow + kHour);
  ASSERT_TRUE(store.Put(mute).ok());
  testing::RedisAdmin admin;
  const std::vector<std::pair<std::string, std::string>> junk = {
      {"no-colon", "1:2"},
      {"x:alice", "1:2"},                              // kind not a number
      {"9:alice", fmt::format("1:{}", kNow + kHour)},  // a kind this build does not know
      {"1:", fmt::format("1:{}", kNow + kHour)},       // no subject
      {"1:bob", "garbage"},
      {"1:carol", fmt::format("{}", kNow + kHour)},  // one number only
      {"1:dave", "1:2:3"},
      {"1:erin", "1:99999999999999999999999"},  // beyond int64
  };
  for (const auto& [field, value] : junk) {
    ASSERT_TRUE(admin.Run({"HSET", store.hash_key(), field, value}).ok());
  }
  absl::StatusOr<std::vector<Restriction>> live = store.LoadLive(kNow);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(Rows(*live), Rows({mute}));
  EXPECT_EQ(store.skipped_fields(), junk.size());
  // A Put still works beside them (its pruning leaves what it cannot read alone).
  ASSERT_TRUE(store.Put(Make(RestrictionKind::kUserMute, "frank", kNow, kNow + kHour)).ok());
  EXPECT_EQ(store.LoadLive(kNow)->size(), 2u);
}

TEST(RedisRestrictionStoreTest, AVersionThatIsNoCounterIsInternal) {
  const std::string prefix = testing::UniquePrefix();
  RedisRestrictionStore store(testing::TestRedis(), prefix);
  testing::RedisAdmin admin;
  ASSERT_TRUE(admin.Run({"SET", store.version_key(), "not a number"}).ok());
  EXPECT_EQ(store.Version().status().code(), absl::StatusCode::kInternal);
}

TEST(RedisRestrictionStoreTest, PutDropsWhatLapsedLongAgo) {
  const std::string prefix = testing::UniquePrefix();
  std::atomic<int64_t> now_ms{kNow};
  RedisRestrictionStore store(testing::TestRedis(), prefix, [&] { return now_ms.load(); });
  const int64_t grace = RedisRestrictionStore::kPruneGraceMs;
  const Restriction old = Make(RestrictionKind::kUserMute, "old", 0, kNow - grace - 1);
  const Restriction recent = Make(RestrictionKind::kUserMute, "recent", 0, kNow - grace + 1);
  const Restriction live = Make(RestrictionKind::kUserMute, "live", 0, kNow + kHour);
  ASSERT_TRUE(store.Put(old).ok());  // the one put is kept, lapsed or not
  ASSERT_TRUE(store.Put(recent).ok());
  EXPECT_EQ(Rows(*store.LoadLive(0)), Rows({recent}));
  const uint64_t version = *store.Version();
  // Pruning changes nothing live: the version moves for the new one only.
  ASSERT_TRUE(store.Put(live).ok());
  EXPECT_EQ(*store.Version(), version + 1);
  // Within the grace a node whose clock runs behind still counts it as live: it stays.
  EXPECT_EQ(Rows(*store.LoadLive(0)), Rows({recent, live}));
  now_ms = kNow + 2;
  ASSERT_TRUE(store.Put(live).ok());
  EXPECT_EQ(Rows(*store.LoadLive(0)), Rows({live}));
}

TEST(RedisRestrictionStoreTest, UnreachableRedisIsUnavailable) {
  RedisOptions options = testing::TestRedisOptions();
  options.port = 1;  // nothing listens there
  RedisRestrictionStore store(std::make_shared<RedisConnection>(options), "im:");
  const auto unavailable = absl::StatusCode::kUnavailable;
  EXPECT_EQ(store.Put(Make(RestrictionKind::kUserMute, "a", 0, kNow)).code(), unavailable);
  EXPECT_EQ(store.Remove(RestrictionKind::kUserMute, "a").status().code(), unavailable);
  EXPECT_EQ(store.Version().status().code(), unavailable);
  EXPECT_EQ(store.LoadLive(kNow).status().code(), unavailable);
}

// SQLite: a revocation outlives a restart of the embedded node, and the first Version after the
// restart makes the node load it.
TEST(SqliteRestrictionStoreTest, RestrictionsOutliveAReopen) {
  testing::TemporaryDirectory directory;
  const SqliteOptions options = testing::TestSqliteOptions(directory);
  const Restriction revocation =
      Make(RestrictionKind::kTokenRevocation, "alice", kNow, kNow + 24 * kHour);
  {
    std::unique_ptr<SqliteDatabase> database = testing::OpenTestDatabase(options);
    ASSERT_NE(database, nullptr);
    SqliteRestrictionStore store(*database);
    EXPECT_NE(*store.Version(), 0u);
    ASSERT_TRUE(store.Put(revocation).ok());
  }
  std::unique_ptr<SqliteDatabase> database = testing::OpenTestDatabase(options);
  ASSERT_NE(database, nullptr);
  SqliteRestrictionStore store(*database);
  EXPECT_NE(*store.Version(), 0u);  // a node that has loaded nothing holds 0: it loads
  EXPECT_EQ(Rows(*store.LoadLive(kNow)), Rows({revocation}));
}

TEST(SqliteRestrictionStoreTest, PutDropsWhatLapsed) {
  testing::TestSqliteDatabase database;
  std::atomic<int64_t> now_ms{kNow};
  SqliteRestrictionStore store(database.database(), [&] { return now_ms.load(); });
  const Restriction lapsed = Make(RestrictionKind::kUserMute, "lapsed", 0, kNow);
  const Restriction live = Make(RestrictionKind::kUserMute, "live", 0, kNow + 1);
  ASSERT_TRUE(store.Put(lapsed).ok());  // the one put is written, lapsed or not
  ASSERT_TRUE(store.Put(live).ok());
  EXPECT_EQ(Rows(*store.LoadLive(0)), Rows({live}));
  now_ms = kNow + 1;
  ASSERT_TRUE(store.Put(Make(RestrictionKind::kGroupMute, "g", 0, kNow + kHour)).ok());
  EXPECT_EQ(store.LoadLive(0)->size(), 1u);
}

TEST(SqliteRestrictionStoreTest, RowsOfAnUnknownKindAreSkippedAndCounted) {
  testing::TestSqliteDatabase database;
  SqliteRestrictionStore store(database.database());
  const Restriction mute = Make(RestrictionKind::kUserMute, "alice", 0, kNow + kHour);
  ASSERT_TRUE(store.Put(mute).ok());
  ASSERT_TRUE(database.database()
                  .Write([](SqliteConnection& connection) {
                    return connection.Execute(
                        "INSERT INTO restrictions VALUES (9, x'616c696365', 0, 9000000000000000)");
                  })
                  .ok());
  EXPECT_EQ(Rows(*store.LoadLive(kNow)), Rows({mute}));
  EXPECT_EQ(store.skipped_rows(), 1u);
}

}  // namespace
}  // namespace im::store
