// One contract, every backend: the in-process store always, the Redis one against the real server
// whose address IM_TEST_REDIS gives. A missing server is a failure, never a skip.
#include <gtest/gtest.h>

#include <memory>

#include "store/in_memory_presence_store.h"
#include "store/redis_presence_store.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

class InMemoryBackend {
 public:
  PresenceStore& store() { return store_; }

 private:
  InMemoryPresenceStore store_;
};

class RedisBackend {
 public:
  // The checks are one key per cluster: this test's own, so that a cluster of another test
  // sweeping the same Redis neither takes them nor hands it its own.
  RedisBackend() : store_(testing::TestRedis(), testing::UniquePrefix() + "presence:checks") {}
  PresenceStore& store() { return store_; }

 private:
  RedisPresenceStore store_;
};

template <typename Backend>
class PresenceStoreContractTest : public ::testing::Test {
 protected:
  PresenceStoreContractTest() : prefix_(testing::UniquePrefix()) {}
  std::string Uid(const std::string& name) { return prefix_ + name; }
  Watcher DeviceOf(const std::string& name, const std::string& device) {
    return Watcher{Uid(name), device};
  }
  PresenceStore& store() { return backend_.store(); }
  std::vector<std::vector<Watcher>> WatchersOf(const std::vector<std::string>& targets,
                                               int64_t now_ms) {
    absl::StatusOr<std::vector<std::vector<Watcher>>> watchers =
        store().WatchersOf(targets, now_ms);
    EXPECT_TRUE(watchers.ok()) << watchers.status();
    return watchers.value_or(std::vector<std::vector<Watcher>>(targets.size()));
  }

  static constexpr int64_t kNow = 1'000'000;
  std::string prefix_;
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, RedisBackend>;
TYPED_TEST_SUITE(PresenceStoreContractTest, Backends);

TYPED_TEST(PresenceStoreContractTest, WatchersAreListedPerTargetInOrder) {
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  const Watcher amy_phone = this->DeviceOf("amy", "phone");
  const Watcher amy_web = this->DeviceOf("amy", "web");
  const Watcher dan_phone = this->DeviceOf("dan", "phone");
  const int64_t until = this->kNow + 60'000;
  ASSERT_TRUE(this->store().Watch(dan_phone, {bob}, this->kNow, until).ok());
  ASSERT_TRUE(this->store().Watch(amy_web, {bob, carol}, this->kNow, until).ok());
  ASSERT_TRUE(this->store().Watch(amy_phone, {bob}, this->kNow, until).ok());
  const auto watchers = this->WatchersOf({carol, bob, this->Uid("nobody")}, this->kNow);
  ASSERT_EQ(watchers.size(), 3u);
  EXPECT_EQ(watchers[0], (std::vector<Watcher>{amy_web}));
  EXPECT_EQ(watchers[1], (std::vector<Watcher>{amy_phone, amy_web, dan_phone}));
  EXPECT_TRUE(watchers[2].empty());
}

TYPED_TEST(PresenceStoreContractTest, AWatchReplacesTheDevicesListAndAnEmptyOneStopsIt) {
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  const Watcher amy = this->DeviceOf("amy", "phone");
  const int64_t until = this->kNow + 60'000;
  ASSERT_TRUE(this->store().Watch(amy, {bob, carol}, this->kNow, until).ok());
  ASSERT_TRUE(this->store().Watch(amy, {carol}, this->kNow, until).ok());
  auto watchers = this->WatchersOf({bob, carol}, this->kNow);
  EXPECT_TRUE(watchers[0].empty()) << "bob is no longer on amy's list";
  EXPECT_EQ(watchers[1], (std::vector<Watcher>{amy}));
  ASSERT_TRUE(this->store().Watch(amy, {}, this->kNow, until).ok());
  watchers = this->WatchersOf({bob, carol}, this->kNow);
  EXPECT_TRUE(watchers[0].empty());
  EXPECT_TRUE(watchers[1].empty());
}

TYPED_TEST(PresenceStoreContractTest, AWatchNotRenewedLapses) {
  const std::string bob = this->Uid("bob");
  const Watcher amy = this->DeviceOf("amy", "phone");
  const Watcher dan = this->DeviceOf("dan", "phone");
  ASSERT_TRUE(this->store().Watch(amy, {bob}, this->kNow, this->kNow + 1'000).ok());
  ASSERT_TRUE(this->store().Watch(dan, {bob}, this->kNow, this->kNow + 5'000).ok());
  EXPECT_EQ(this->WatchersOf({bob}, this->kNow + 999)[0], (std::vector<Watcher>{amy, dan}));
  EXPECT_EQ(this->WatchersOf({bob}, this->kNow + 1'000)[0], (std::vector<Watcher>{dan}));
  // Renewed: it lasts again.
  ASSERT_TRUE(this->store().Watch(amy, {bob}, this->kNow + 2'000, this->kNow + 9'000).ok());
  EXPECT_EQ(this->WatchersOf({bob}, this->kNow + 6'000)[0], (std::vector<Watcher>{amy}));
}

// A change records when the users were last seen and answers who watches them.
TYPED_TEST(PresenceStoreContractTest, AChangeRecordsLastSeenAndAnswersTheWatchers) {
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  const Watcher amy = this->DeviceOf("amy", "phone");
  ASSERT_TRUE(this->store().Watch(amy, {bob}, this->kNow, this->kNow + 60'000).ok());
  EXPECT_EQ(*this->store().LastSeen({bob, carol}), (std::vector<int64_t>{0, 0}));
  // carol left, bob logged in: only a departure is a last-seen time.
  absl::StatusOr<std::vector<std::vector<Watcher>>> watchers =
      this->store().Changed({carol, bob}, {carol}, this->kNow + 5, 86'400'000);
  ASSERT_TRUE(watchers.ok()) << watchers.status();
  EXPECT_EQ(*watchers, (std::vector<std::vector<Watcher>>{{}, {amy}}));
  EXPECT_EQ(*this->store().LastSeen({bob, carol, this->Uid("nobody")}),
            (std::vector<int64_t>{0, this->kNow + 5, 0}));
  ASSERT_TRUE(this->store().Changed({bob}, {bob}, this->kNow + 9, 86'400'000).ok());
  EXPECT_EQ(*this->store().LastSeen({bob}), (std::vector<int64_t>{this->kNow + 9}));
}

TYPED_TEST(PresenceStoreContractTest, DueChecksAreTakenOnceEarliestFirst) {
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  const std::string dan = this->Uid("dan");
  ASSERT_TRUE(this->store()
                  .ScheduleChecks(
                      {{carol, this->kNow + 20}, {bob, this->kNow + 10}, {dan, this->kNow + 500}})
                  .ok());
  // A later time for bob keeps the earlier one; an earlier one for dan moves it up.
  ASSERT_TRUE(this->store().ScheduleChecks({{bob, this->kNow + 900}, {dan, this->kNow + 30}}).ok());
  EXPECT_TRUE(this->store().TakeDueChecks(this->kNow + 9, 10)->empty());
  EXPECT_EQ(*this->store().TakeDueChecks(this->kNow + 30, 2),
            (std::vector<std::string>{bob, carol}));
  EXPECT_EQ(*this->store().TakeDueChecks(this->kNow + 30, 10), (std::vector<std::string>{dan}));
  EXPECT_TRUE(this->store().TakeDueChecks(this->kNow + 10'000, 10)->empty()) << "taken once";
}

TYPED_TEST(PresenceStoreContractTest, CancelledChecksAreNotTaken) {
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  ASSERT_TRUE(
      this->store().ScheduleChecks({{bob, this->kNow + 10}, {carol, this->kNow + 20}}).ok());
  ASSERT_TRUE(this->store().CancelChecks({bob, this->Uid("never-scheduled")}).ok());
  EXPECT_EQ(*this->store().TakeDueChecks(this->kNow + 100, 10), (std::vector<std::string>{carol}));
}

}  // namespace
}  // namespace im::store
