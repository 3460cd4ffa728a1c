// PresenceService on in-process backends and a fake clock, its changes reported by a real
// SessionService and its pushes recorded: who may watch whom, what a watcher is told and when.
#include "logic/presence/presence_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "common/token.h"
#include "logic/session/session_service.h"
#include "store/in_memory_message_store.h"
#include "store/in_memory_presence_store.h"
#include "store/in_memory_session_registry.h"

namespace im::logic {
namespace {

constexpr char kSecret[] = "presence-test-secret-0123456789";
constexpr int64_t kStartMs = 1'800'000'000'000;
constexpr int64_t kSessionTtlMs = 60'000;

// The PresencePush frames pushed, by device.
class RecordingPusher final : public Pusher {
 public:
  struct Pushed {
    std::string uid;
    std::string device;
    im::v1::PresencePush push;
  };
  absl::Status RegisterGateway(const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  void Push(std::shared_ptr<const std::string> frame, const std::vector<PushTarget>& targets,
            std::function<void()> done) override {
    im::v1::Frame parsed;
    EXPECT_TRUE(parsed.ParseFromString(*frame));
    std::lock_guard<std::mutex> lock(mutex_);
    for (const PushTarget& target : targets) {
      pushed_.push_back({target.uid, target.session.device, parsed.presence_push()});
    }
    if (done) done();
  }
  void Kick(const PushTarget&, im::v1::Kick::Reason, const std::string&) override {}
  bool WaitIdle(std::chrono::milliseconds) override { return true; }

  std::vector<Pushed> Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(pushed_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<Pushed> pushed_;
};

class PresenceServiceTest : public ::testing::Test {
 protected:
  PresenceServiceTest() {
    // amy, bob and carol are in a group; dan talks with nobody.
    for (const char* uid : {"amy", "bob", "carol"}) {
      EXPECT_TRUE(messages_.JoinConversation(uid, "g:team", 0, kStartMs).ok());
    }
  }

  im::v1::LoginReply Login(const std::string& uid, const std::string& device, uint64_t conn) {
    im::v1::LoginRequest request;
    request.mutable_req()->set_token(common::SignToken({uid, now_ms_ / 1000 + 3600, ""}, kSecret));
    request.mutable_req()->set_device(device);
    request.set_gateway_id("gw-1");
    request.set_conn_id(conn);
    im::v1::LoginReply reply = sessions_.Login(request);
    EXPECT_EQ(reply.resp().status().code(), im::v1::OK) << reply.resp().status().message();
    return reply;
  }
  void Disconnect(const std::string& uid, const std::string& device, uint64_t conn) {
    im::v1::DisconnectRequest request;
    request.mutable_caller()->set_uid(uid);
    request.mutable_caller()->set_device(device);
    request.mutable_caller()->set_gateway_id("gw-1");
    request.mutable_caller()->set_conn_id(conn);
    EXPECT_TRUE(sessions_.Disconnect(request).removed());
  }
  im::v1::PresenceSubscribeResp Watch(const std::string& uid, const std::string& device,
                                      const std::vector<std::string>& uids) {
    im::v1::PresenceSubscribeRequest request;
    request.mutable_caller()->set_uid(uid);
    request.mutable_caller()->set_device(device);
    for (const std::string& watched : uids) request.mutable_req()->add_uids(watched);
    im::v1::PresenceSubscribeResp answer;
    presence_.Subscribe(request, [&](im::v1::PresenceSubscribeResp resp) { answer = resp; });
    return answer;
  }
  void Advance(int64_t ms) { now_ms_ += ms; }
  // Set before the services that read them are made.
  static LogicOptions Options() {
    LogicOptions options;
    options.token_secret = kSecret;
    options.session_ttl_sec = kSessionTtlMs / 1000;
    options.presence_max_watch = 5;
    return options;
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  common::MillisClock clock_ = [this] { return now_ms_.load(); };
  LogicOptions options_ = Options();
  prometheus::Registry registry_;
  LogicMetrics metrics_{registry_};
  store::InMemorySessionRegistry registry_sessions_{kSessionTtlMs, clock_};
  store::InMemoryPresenceStore watches_;
  store::InMemoryMessageStore messages_;
  RecordingPusher pusher_;
  PresenceService presence_{
      options_,
      PresenceDependencies{&registry_sessions_, &watches_, &messages_, &pusher_, &metrics_},
      clock_};
  SessionService sessions_{options_, &registry_sessions_, &pusher_, clock_,
                           [this](const std::vector<ChangedDevice>& devices, DeviceChange change) {
                             presence_.DevicesChanged(UidsOf(devices), change);
                           }};
};

TEST_F(PresenceServiceTest, AWatchAnswersTheStatesOfPeersAndRefusesStrangers) {
  Login("bob", "phone", 1);
  Login("bob", "web", 2);
  im::v1::PresenceSubscribeResp resp = Watch("amy", "phone", {"dan", "carol", "bob", "bob"});
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
  EXPECT_EQ(resp.ttl_sec(), options_.presence_watch_ttl_sec);
  ASSERT_EQ(resp.presences_size(), 2);  // uid order, once each
  EXPECT_EQ(resp.presences(0).uid(), "bob");
  EXPECT_TRUE(resp.presences(0).online());
  EXPECT_EQ(std::vector<std::string>(resp.presences(0).devices().begin(),
                                     resp.presences(0).devices().end()),
            (std::vector<std::string>{"phone", "web"}));
  EXPECT_EQ(resp.presences(1).uid(), "carol");
  EXPECT_FALSE(resp.presences(1).online());
  EXPECT_EQ(resp.presences(1).last_seen_ms(), 0) << "never seen";
  ASSERT_EQ(resp.refused_size(), 1);
  EXPECT_EQ(resp.refused(0), "dan") << "dan shares no conversation with amy";
}

TEST_F(PresenceServiceTest, TooManyOrInvalidUidsAreRefusedWithoutWatching) {
  im::v1::PresenceSubscribeResp too_many =
      Watch("amy", "phone", {"bob", "carol", "u1", "u2", "u3", "u4"});
  EXPECT_EQ(too_many.status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_NE(too_many.status().message().find("at most 5"), std::string::npos);
  EXPECT_EQ(Watch("amy", "phone", {"bob", ""}).status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(Watch("amy", "phone", {"b|ob"}).status().code(), im::v1::INVALID_ARGUMENT);
  Login("bob", "phone", 1);
  presence_.RunOnce(now_ms_, false);
  EXPECT_TRUE(pusher_.Take().empty()) << "a refused watch watches nothing";
}

TEST_F(PresenceServiceTest, ChangesReachOnlyTheDevicesWatchingWithLastSeenOnLeaving) {
  Login("amy", "phone", 1);
  Login("amy", "web", 2);
  ASSERT_EQ(Watch("amy", "phone", {"bob"}).status().code(), im::v1::OK);
  Login("bob", "phone", 3);
  presence_.RunOnce(now_ms_, false);
  std::vector<RecordingPusher::Pushed> pushed = pusher_.Take();
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_EQ(pushed[0].uid, "amy");
  EXPECT_EQ(pushed[0].device, "phone") << "the web device watches nobody";
  ASSERT_EQ(pushed[0].push.presences_size(), 1);
  EXPECT_EQ(pushed[0].push.presences(0).uid(), "bob");
  EXPECT_TRUE(pushed[0].push.presences(0).online());

  Advance(options_.presence_push_interval_ms);
  Disconnect("bob", "phone", 3);
  presence_.RunOnce(now_ms_, false);
  pushed = pusher_.Take();
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_FALSE(pushed[0].push.presences(0).online());
  EXPECT_EQ(pushed[0].push.presences(0).last_seen_ms(), now_ms_.load());
  // A later watch is told when bob left.
  const int64_t left_ms = now_ms_;
  Advance(5'000);
  im::v1::PresenceSubscribeResp resp = Watch("carol", "phone", {"bob"});
  ASSERT_EQ(resp.presences_size(), 1);
  EXPECT_EQ(resp.presences(0).last_seen_ms(), left_ms);
}

TEST_F(PresenceServiceTest, AFlappingConnectionCostsOnePushPerIntervalWithTheLatestState) {
  ASSERT_EQ(Watch("amy", "phone", {"bob"}).status().code(), im::v1::OK);
  Login("amy", "phone", 1);
  for (uint64_t conn = 10; conn < 20; ++conn) {
    Login("bob", "phone", conn);
    presence_.RunOnce(now_ms_, false);
    Advance(10);
    Disconnect("bob", "phone", conn);
    presence_.RunOnce(now_ms_, false);
    Advance(10);
  }
  Login("bob", "phone", 99);  // ends online
  EXPECT_EQ(pusher_.Take().size(), 1u) << "the first change goes at once, the rest wait";
  Advance(options_.presence_push_interval_ms);
  presence_.RunOnce(now_ms_, false);
  std::vector<RecordingPusher::Pushed> pushed = pusher_.Take();
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_TRUE(pushed[0].push.presences(0).online()) << "the state when the push went";
}

TEST_F(PresenceServiceTest, AUserWhoseSessionsLapseShowsOfflineAfterTheSweep) {
  Login("amy", "phone", 1);
  Login("bob", "phone", 2);
  Login("carol", "phone", 3);
  presence_.RunOnce(now_ms_, false);  // their logins, published before anyone watched
  ASSERT_EQ(Watch("amy", "phone", {"bob", "carol"}).status().code(), im::v1::OK);
  // amy's and carol's gateway keeps refreshing them; bob's died: nothing refreshes him.
  auto refresh = [&] {
    ASSERT_TRUE(
        registry_sessions_.Refresh("gw-1", {{"amy", "phone", 1}, {"carol", "phone", 3}}).ok());
  };
  Advance(kSessionTtlMs / 2);
  refresh();
  presence_.RunOnce(now_ms_, true);
  EXPECT_TRUE(pusher_.Take().empty()) << "nothing lapsed yet";
  Advance(kSessionTtlMs / 2 + 200);  // past bob's expiry and the check's margin
  refresh();
  presence_.RunOnce(now_ms_, true);
  std::vector<RecordingPusher::Pushed> pushed = pusher_.Take();
  ASSERT_EQ(pushed.size(), 1u);
  ASSERT_EQ(pushed[0].push.presences_size(), 1);
  EXPECT_EQ(pushed[0].push.presences(0).uid(), "bob");
  EXPECT_FALSE(pushed[0].push.presences(0).online());
  EXPECT_EQ(metrics_.presence_lapsed.Value(), 1);
  // carol was checked and found alive; she is checked again when hers would lapse, not pushed.
  Advance(kSessionTtlMs / 2);
  refresh();
  presence_.RunOnce(now_ms_, true);
  EXPECT_TRUE(pusher_.Take().empty());
}

TEST_F(PresenceServiceTest, AWatchNotRenewedEnds) {
  Login("amy", "phone", 1);
  presence_.RunOnce(now_ms_, false);
  ASSERT_EQ(Watch("amy", "phone", {"bob"}).status().code(), im::v1::OK);
  // amy stays online (her gateway refreshes her) but does not repeat her watch.
  for (int64_t waited = 0; waited < int64_t{options_.presence_watch_ttl_sec} * 1000;
       waited += kSessionTtlMs / 2) {
    Advance(kSessionTtlMs / 2);
    ASSERT_EQ(*registry_sessions_.Refresh("gw-1", {{"amy", "phone", 1}}), std::vector<uint64_t>());
  }
  Login("bob", "phone", 2);
  presence_.RunOnce(now_ms_, false);
  EXPECT_TRUE(pusher_.Take().empty());
  EXPECT_EQ(metrics_.presence_published.Value(), 2) << "bob's login published, to nobody";
}

TEST_F(PresenceServiceTest, ChangesPastThePendingBoundAreDroppedAndCounted) {
  options_.presence_max_pending = 2;
  presence_.DevicesChanged({"u1", "u2", "u3", "u2"}, DeviceChange::kLoggedIn);
  EXPECT_EQ(metrics_.presence_dropped.Value(), 1);
  presence_.RunOnce(now_ms_, false);
  EXPECT_EQ(metrics_.presence_published.Value(), 2);
}

}  // namespace
}  // namespace im::logic
