#include "sdk/presence_watcher.h"

#include <gtest/gtest.h>

namespace im::sdk {
namespace {

using Uids = std::vector<std::string>;

Presence Online(const std::string& uid, Uids devices = {"ios"}) {
  return Presence{uid, true, std::move(devices), 0, {}};
}

Presence Offline(const std::string& uid, int64_t last_seen_ms) {
  return Presence{uid, false, {}, last_seen_ms, {}};
}

// The uids of the request due at `now_ms`; nullopt when none is.
std::optional<Uids> Due(PresenceWatcher& watcher, int64_t now_ms) {
  std::optional<PresenceWatcher::Request> request = watcher.TakeDue(now_ms);
  if (!request) return std::nullopt;
  return request->uids;
}

TEST(PresenceWatcherTest, NothingGoesOutBeforeTheAppWatches) {
  PresenceWatcher watcher;
  EXPECT_FALSE(watcher.TakeDue(0));
  watcher.OnLoggedIn();
  EXPECT_FALSE(watcher.TakeDue(1'000'000));
}

TEST(PresenceWatcherTest, ANewListGoesOutAtOnceAndIsRenewedAtHalfTheTtl) {
  PresenceWatcher watcher;
  const uint64_t generation = watcher.Watch({"bob", "carol"});
  std::optional<PresenceWatcher::Request> request = watcher.TakeDue(1000);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->generation, generation);
  EXPECT_EQ(request->uids, (Uids{"bob", "carol"}));
  EXPECT_EQ(watcher.on_wire_generation(), generation);
  EXPECT_FALSE(watcher.TakeDue(1000)) << "one request at a time";

  watcher.OnAnswered({Online("bob"), Offline("carol", 5)}, 60, 2000);
  EXPECT_EQ(watcher.on_wire_generation(), 0u);
  EXPECT_FALSE(watcher.TakeDue(31'999));
  EXPECT_EQ(Due(watcher, 32'000), (Uids{"bob", "carol"}));
  watcher.OnAnswered({Online("bob"), Offline("carol", 5)}, 60, 32'010);
  EXPECT_FALSE(watcher.TakeDue(62'009));
  EXPECT_EQ(Due(watcher, 62'010), (Uids{"bob", "carol"})) << "and again, every half ttl";
}

TEST(PresenceWatcherTest, TheFirstAnswerReportsEveryStateALoginsAnswerWhatChangedMeanwhile) {
  PresenceWatcher watcher;
  watcher.Watch({"bob", "carol"});
  watcher.TakeDue(0);
  EXPECT_EQ(watcher.OnAnswered({Online("bob"), Offline("carol", 5)}, 60, 0),
            (std::vector<Presence>{Online("bob"), Offline("carol", 5)}));
  watcher.OnLoggedIn();
  watcher.TakeDue(0);
  EXPECT_EQ(watcher.OnAnswered({Online("bob", {"android", "ios"}), Offline("carol", 5)}, 60, 0),
            (std::vector<Presence>{Online("bob", {"android", "ios"})}))
      << "bob's devices changed while the device was away, carol did not";
  watcher.OnLoggedIn();
  watcher.TakeDue(0);
  EXPECT_TRUE(
      watcher.OnAnswered({Online("bob", {"android", "ios"}), Offline("carol", 5)}, 60, 0).empty())
      << "nothing changed while away";
}

TEST(PresenceWatcherTest, ARenewalOnALiveConnectionReportsNothing) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 60, 0);
  ASSERT_TRUE(watcher.TakeDue(30'000));
  // Its state may be older than a push that overtook the answer: the pushes tell the changes.
  EXPECT_TRUE(watcher.OnAnswered({Offline("bob", 7)}, 60, 30'000).empty());
  EXPECT_EQ(watcher.OnPush({Offline("bob", 8)}), (std::vector<Presence>{Offline("bob", 8)}));
}

TEST(PresenceWatcherTest, ANewListReportsEveryStateAgainEvenOfUsersWatchedBefore) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 60, 0);
  watcher.Watch({"bob", "dave"});
  watcher.TakeDue(0);
  EXPECT_EQ(watcher.OnAnswered({Online("bob"), Offline("dave", 0)}, 60, 0),
            (std::vector<Presence>{Online("bob"), Offline("dave", 0)}));
}

TEST(PresenceWatcherTest, PushesReportChangesOfWatchedUsersOnly) {
  PresenceWatcher watcher;
  watcher.Watch({"bob", "carol"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob"), Offline("carol", 5)}, 60, 0);
  EXPECT_EQ(watcher.OnPush({Online("bob"), Online("carol"), Online("eve")}),
            (std::vector<Presence>{Online("carol")}));
  watcher.Watch({"carol"});
  EXPECT_TRUE(watcher.OnPush({Offline("bob", 9)}).empty()) << "no longer watched";
  EXPECT_EQ(watcher.OnPush({Offline("carol", 9)}), (std::vector<Presence>{Offline("carol", 9)}));
}

TEST(PresenceWatcherTest, AListGivenWhileOneIsOnTheWireWaitsAndReplacesAnyNotSentYet) {
  PresenceWatcher watcher;
  const uint64_t first = watcher.Watch({"bob"});
  ASSERT_TRUE(watcher.TakeDue(0));
  watcher.Watch({"carol"});
  const uint64_t third = watcher.Watch({"dave"});
  EXPECT_FALSE(watcher.TakeDue(0)) << "two lists on the wire could be applied in either order";
  EXPECT_EQ(watcher.on_wire_generation(), first);

  // The answer to the old list reports nothing (the current list's answer will) and renews
  // nothing.
  EXPECT_TRUE(watcher.OnAnswered({Online("bob")}, 60, 0).empty());
  std::optional<PresenceWatcher::Request> request = watcher.TakeDue(0);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->generation, third);
  EXPECT_EQ(request->uids, Uids{"dave"});
  EXPECT_EQ(watcher.OnAnswered({Online("dave")}, 60, 0), (std::vector<Presence>{Online("dave")}))
      << "the first answer to the current list reports all of it";
}

TEST(PresenceWatcherTest, ALoginSendsTheListAgainAtOnce) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 600, 0);
  EXPECT_FALSE(watcher.TakeDue(1000));
  watcher.OnLoggedIn();
  EXPECT_EQ(Due(watcher, 1000), Uids{"bob"});
}

TEST(PresenceWatcherTest, AStopGoesOutOnceAndEndsTheRenewals) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 10, 0);
  watcher.Watch({});
  EXPECT_EQ(Due(watcher, 1), Uids{});
  EXPECT_TRUE(watcher.OnAnswered({}, 10, 2).empty());
  EXPECT_FALSE(watcher.TakeDue(1'000'000)) << "a stopped watch is not renewed";
  watcher.OnLoggedIn();
  EXPECT_FALSE(watcher.TakeDue(1'000'000)) << "nor sent after a login";
  EXPECT_TRUE(watcher.OnPush({Online("bob")}).empty());
}

TEST(PresenceWatcherTest, AStopLostWithItsConnectionGoesOutAfterTheNextLogin) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 10, 0);
  watcher.Watch({});
  watcher.TakeDue(0);
  watcher.OnFailed(true, 5000);
  watcher.OnLoggedIn();
  EXPECT_EQ(Due(watcher, 10), Uids{});
}

TEST(PresenceWatcherTest, AFailureIsRetriedAtTheGivenTimeARefusalAfterTheNextLogin) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnFailed(true, 1500);
  EXPECT_FALSE(watcher.TakeDue(1499));
  ASSERT_EQ(Due(watcher, 1500), Uids{"bob"});
  watcher.OnFailed(false, 0);
  EXPECT_FALSE(watcher.TakeDue(1'000'000)) << "refused for good on this connection";
  watcher.OnLoggedIn();
  EXPECT_EQ(Due(watcher, 1'000'000), Uids{"bob"}) << "another node may take it";
  EXPECT_EQ(watcher.OnAnswered({Online("bob")}, 60, 0), (std::vector<Presence>{Online("bob")}))
      << "the list's first accepted answer reports all of it";
}

TEST(PresenceWatcherTest, AFailureOfAReplacedListLetsTheCurrentOneGoAtOnce) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.Watch({"carol"});
  watcher.OnFailed(true, 5000);
  EXPECT_EQ(Due(watcher, 0), Uids{"carol"});
}

TEST(PresenceWatcherTest, AWatchWithoutTtlIsNotRenewed) {
  PresenceWatcher watcher;
  watcher.Watch({"bob"});
  watcher.TakeDue(0);
  watcher.OnAnswered({Online("bob")}, 0, 0);
  EXPECT_FALSE(watcher.TakeDue(1'000'000'000));
}

}  // namespace
}  // namespace im::sdk
