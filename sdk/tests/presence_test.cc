// Presence through the whole client, against a fake gateway on loopback: what WatchPresence
// writes, how answers and pushes reach the app (C++ and C), and that the client renews the watch
// by itself, after a login and every half ttl.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "sdk/client.h"
#include "sdk/im_client.h"
#include "sdk/tests/fake_gateway.h"

namespace im::sdk {
namespace {

using Uids = std::vector<std::string>;
using std::chrono::milliseconds;

constexpr milliseconds kWait{10'000};

// Each device on a platform of its own name: "on-<device>".
Presence Online(const std::string& uid, Uids devices) {
  Uids platforms;
  for (const std::string& device : devices) platforms.push_back("on-" + device);
  return Presence{uid, true, std::move(devices), 0, std::move(platforms)};
}

Presence Offline(const std::string& uid, int64_t last_seen_ms) {
  return Presence{uid, false, {}, last_seen_ms, {}};
}

void AddPresences(const std::vector<Presence>& presences,
                  google::protobuf::RepeatedPtrField<im::v1::Presence>* out) {
  for (const Presence& presence : presences) {
    im::v1::Presence* item = out->Add();
    item->set_uid(presence.uid);
    item->set_online(presence.online);
    for (const std::string& device : presence.devices) item->add_devices(device);
    for (const std::string& platform : presence.platforms) item->add_platforms(platform);
    item->set_last_seen_ms(presence.last_seen_ms);
  }
}

Uids UidsOf(const im::v1::Frame& request) {
  const auto& uids = request.presence_subscribe_req().uids();
  return Uids(uids.begin(), uids.end());
}

// Waits on what the client's threads report.
class Waiter {
 public:
  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, kWait, done);
  }

 protected:
  void Change(const std::function<void()>& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    change();
    changed_.notify_all();
  }
  std::mutex mutex_;

 private:
  std::condition_variable changed_;
};

class Recorder : public ClientListener, public Waiter {
 public:
  void OnStateChanged(ConnectionState state, const Status&) override {
    Change([&] { connects_ += state == ConnectionState::kConnected ? 1 : 0; });
  }
  void OnPresence(const std::vector<Presence>& presences) override {
    Change([&] { reports_.push_back(presences); });
  }
  bool WaitForConnects(int count) {
    return WaitFor([&] { return connects_ >= count; });
  }
  // The `index`th OnPresence, once it came.
  std::optional<std::vector<Presence>> Report(size_t index) {
    if (!WaitFor([&] { return reports_.size() > index; })) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_[index];
  }

 private:
  int connects_ = 0;
  std::vector<std::vector<Presence>> reports_;
};

// The answer to one WatchPresence call.
class Answer : public Waiter {
 public:
  std::function<void(Status, WatchedPresence)> Callback() {
    return [this](Status status, WatchedPresence watched) {
      Change([&] { answer_.emplace(std::move(status), std::move(watched)); });
    };
  }
  std::optional<std::pair<Status, WatchedPresence>> Get() {
    if (!WaitFor([&] { return answer_.has_value(); })) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    return answer_;
  }

 private:
  std::optional<std::pair<Status, WatchedPresence>> answer_;
};

class PresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeGateway>> started = FakeGateway::Start("alice");
    ASSERT_TRUE(started.ok()) << started.status();
    gateway_ = std::move(*started);
    ClientOptions options;
    options.gateways = {gateway_->address()};
    options.token = "opaque";
    options.reconnect_initial_ms = 10;
    options.reconnect_max_ms = 50;
    client_ = std::make_unique<Client>(options, &seen_);
  }

  // Lets the client log in (its `count`th login) and waits until it knows.
  void LogIn(int count) {
    ASSERT_TRUE(gateway_->AcceptLogin(kWait));
    ASSERT_TRUE(seen_.WaitForConnects(count));
  }
  std::optional<im::v1::Frame> NextWatch() {
    return gateway_->Receive(FakeGateway::Is(im::v1::Frame::kPresenceSubscribeReq), kWait);
  }
  // The client's next PresenceSubscribeReq or, when it has none to write, the TypingReq written
  // now as a probe: frames on one connection keep their order.
  std::optional<im::v1::Frame> NextWatchOrProbe() {
    client_->Typing("probe");
    return gateway_->Receive(
        [](const im::v1::Frame& frame) {
          return frame.has_presence_subscribe_req() || frame.has_typing_req();
        },
        kWait);
  }
  void AnswerWatch(const im::v1::Frame& request, const std::vector<Presence>& presences,
                   const Uids& refused, uint32_t ttl_sec) {
    im::v1::Frame answer;
    answer.set_id(request.id());
    im::v1::PresenceSubscribeResp* resp = answer.mutable_presence_subscribe_resp();
    resp->mutable_status()->set_code(im::v1::OK);
    AddPresences(presences, resp->mutable_presences());
    for (const std::string& uid : refused) resp->add_refused(uid);
    resp->set_ttl_sec(ttl_sec);
    ASSERT_TRUE(gateway_->Send(answer));
  }
  void Push(const std::vector<Presence>& presences) {
    im::v1::Frame push;
    AddPresences(presences, push.mutable_presence_push()->mutable_presences());
    ASSERT_TRUE(gateway_->Send(push));
  }

  Recorder seen_;
  std::unique_ptr<FakeGateway> gateway_;
  std::unique_ptr<Client> client_;  // destroyed first: it calls seen_ and talks to gateway_
};

TEST_F(PresenceTest, AWatchSendsItsListAndReportsTheAnswerAndThePushes) {
  client_->Start();
  LogIn(1);
  Answer answer;
  client_->WatchPresence({"bob", "carol", "mallory"}, answer.Callback());
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), (Uids{"bob", "carol", "mallory"}));
  const std::vector<Presence> states = {Online("bob", {"android", "ios"}), Offline("carol", 1234)};
  AnswerWatch(*request, states, {"mallory"}, 60);

  std::optional<std::pair<Status, WatchedPresence>> watched = answer.Get();
  ASSERT_TRUE(watched);
  EXPECT_TRUE(watched->first.ok()) << watched->first.message;
  EXPECT_EQ(watched->second.presences, states);
  EXPECT_EQ(watched->second.refused, Uids{"mallory"});
  EXPECT_EQ(seen_.Report(0), states) << "OnPresence gets the states of the answer";

  // A push: bob's state is the one known, eve is not watched, carol came online.
  Push({Online("bob", {"android", "ios"}), Online("eve", {"web"}), Online("carol", {"web"})});
  EXPECT_EQ(seen_.Report(1), (std::vector<Presence>{Online("carol", {"web"})}));
}

TEST_F(PresenceTest, EveryLoginSendsTheWatchedListAgainUntilTheAppStops) {
  client_->Start();
  LogIn(1);
  client_->WatchPresence({"bob", "carol"}, nullptr);
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  AnswerWatch(*request, {Online("bob", {"ios"}), Offline("carol", 5)}, {}, 600);
  ASSERT_TRUE(seen_.Report(0));

  // A new connection, maybe to another node: the client renews the watch on its own, and
  // reports only what changed meanwhile.
  gateway_->Disconnect();
  LogIn(2);
  request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), (Uids{"bob", "carol"}));
  AnswerWatch(*request, {Offline("bob", 77), Offline("carol", 5)}, {}, 600);
  EXPECT_EQ(seen_.Report(1), (std::vector<Presence>{Offline("bob", 77)}));

  Answer stopped;
  client_->WatchPresence({}, stopped.Callback());
  request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), Uids{}) << "an empty list stops the server's watch";
  AnswerWatch(*request, {}, {}, 600);
  ASSERT_TRUE(stopped.Get());
  EXPECT_TRUE(stopped.Get()->first.ok());

  gateway_->Disconnect();
  LogIn(3);
  std::optional<im::v1::Frame> next = NextWatchOrProbe();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->has_typing_req()) << "a stopped watch is not sent after a login";
}

TEST_F(PresenceTest, TheWatchIsRenewedAtHalfItsTtl) {
  client_->Start();
  LogIn(1);
  client_->WatchPresence({"bob"}, nullptr);
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  const int64_t answered_ms = common::SteadyMillis();
  AnswerWatch(*request, {Online("bob", {"ios"})}, {}, 1);
  ASSERT_TRUE(seen_.Report(0));

  std::optional<im::v1::Frame> renewal = NextWatch();
  ASSERT_TRUE(renewal);
  EXPECT_GE(common::SteadyMillis() - answered_ms, 500) << "half of the 1 s ttl";
  EXPECT_EQ(UidsOf(*renewal), Uids{"bob"});
  // A renewal's answer is not reported (a push may have overtaken it): the next report is the
  // push that follows it.
  AnswerWatch(*renewal, {Online("bob", {"ios", "web"})}, {}, 600);
  Push({Offline("bob", 99)});
  EXPECT_EQ(seen_.Report(1), (std::vector<Presence>{Offline("bob", 99)}));
}

TEST_F(PresenceTest, AListGivenWhileOneIsOnTheWireGoesOutAfterItsAnswer) {
  client_->Start();
  LogIn(1);
  Answer first;
  Answer second;
  client_->WatchPresence({"bob"}, first.Callback());
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  client_->WatchPresence({"carol"}, second.Callback());
  std::optional<im::v1::Frame> next = NextWatchOrProbe();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->has_typing_req()) << "the server could apply two lists in either order";

  AnswerWatch(*request, {Online("bob", {"ios"})}, {}, 600);
  ASSERT_TRUE(first.Get());
  EXPECT_TRUE(first.Get()->first.ok());
  EXPECT_EQ(first.Get()->second.presences, (std::vector<Presence>{Online("bob", {"ios"})}));
  request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), Uids{"carol"});
  AnswerWatch(*request, {Offline("carol", 3)}, {}, 600);
  ASSERT_TRUE(second.Get());
  EXPECT_TRUE(second.Get()->first.ok());
  EXPECT_EQ(seen_.Report(0), (std::vector<Presence>{Offline("carol", 3)}))
      << "bob's state came for a list no longer watched";
}

TEST_F(PresenceTest, ListsGivenBeforeTheLoginAreReplacedByTheLastOne) {
  Answer replaced;
  Answer last;
  client_->WatchPresence({"bob"}, replaced.Callback());
  client_->WatchPresence({"carol", "dave"}, last.Callback());
  ASSERT_TRUE(replaced.Get());
  EXPECT_EQ(replaced.Get()->first.code, im::v1::CANCELLED);

  client_->Start();
  LogIn(1);
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), (Uids{"carol", "dave"}));
  AnswerWatch(*request, {}, {"carol", "dave"}, 600);
  ASSERT_TRUE(last.Get());
  EXPECT_TRUE(last.Get()->first.ok());
  EXPECT_EQ(last.Get()->second.refused, (Uids{"carol", "dave"}));
}

TEST_F(PresenceTest, ARefusedListIsNotRenewedUntilTheNextLogin) {
  client_->Start();
  LogIn(1);
  Answer refused;
  client_->WatchPresence({"bob"}, refused.Callback());
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  im::v1::Frame answer;
  answer.set_id(request->id());
  answer.mutable_presence_subscribe_resp()->mutable_status()->set_code(im::v1::INVALID_ARGUMENT);
  ASSERT_TRUE(gateway_->Send(answer));
  ASSERT_TRUE(refused.Get());
  EXPECT_EQ(refused.Get()->first.code, im::v1::INVALID_ARGUMENT);
  std::optional<im::v1::Frame> next = NextWatchOrProbe();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->has_typing_req());

  gateway_->Disconnect();
  LogIn(2);
  request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), Uids{"bob"});
}

// What a C client saw, copied out of the callbacks (their strings die with them).
class CRecorder : public Waiter {
 public:
  static void OnState(void* self, int state, int, const char*) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Change([&] { recorder->connected_ = state == IM_STATE_CONNECTED; });
  }
  static void OnPresence(void* self, const im_presence* presences, size_t count) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Change([&] { recorder->reported_.push_back(Copy(presences, count)); });
  }
  static void OnWatched(void* self, int code, const im_presence* presences, size_t count,
                        const char* const* refused, size_t refused_count) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Change([&] {
      recorder->code_ = code;
      recorder->watched_ = Copy(presences, count);
      recorder->refused_.assign(refused, refused + refused_count);
    });
  }

  bool WaitConnected() {
    return WaitFor([&] { return connected_; });
  }
  bool WaitReports(size_t count) {
    return WaitFor([&] { return reported_.size() >= count; });
  }
  bool WaitWatched() {
    return WaitFor([&] { return code_ != -1; });
  }
  // Read once waited for (the client writes nothing more meanwhile).
  int code_ = -1;
  std::vector<Presence> watched_;
  Uids refused_;
  std::vector<std::vector<Presence>> reported_;

 private:
  static std::vector<Presence> Copy(const im_presence* presences, size_t count) {
    std::vector<Presence> copies;
    for (size_t i = 0; i < count; ++i) {
      const im_presence& item = presences[i];
      Uids platforms;
      for (size_t d = 0; d < item.device_count; ++d) {
        const char* platform = im_presence_platform(&item, d);
        platforms.push_back(platform != nullptr ? platform : "(null)");
      }
      EXPECT_EQ(im_presence_platform(&item, item.device_count), nullptr);
      copies.push_back(Presence{item.uid, item.online != 0,
                                Uids(item.devices, item.devices + item.device_count),
                                item.last_seen_ms, std::move(platforms)});
    }
    return copies;
  }
  bool connected_ = false;
};

TEST_F(PresenceTest, TheCApiHandsOverPresencesAndRefusedUids) {
  client_.reset();
  const std::string address = gateway_->address();
  const char* gateways[] = {address.c_str()};
  im_client_config config = {gateways, 1, "opaque", nullptr, nullptr, 0};
  CRecorder seen;
  im_client_callbacks callbacks = {&seen, CRecorder::OnState, nullptr, nullptr, nullptr, nullptr};
  std::unique_ptr<im_client, void (*)(im_client*)> client(
      im_client_create(&config, &callbacks, nullptr, 0), im_client_destroy);
  ASSERT_NE(client, nullptr);
  im_client_set_on_presence(client.get(), CRecorder::OnPresence, &seen);
  im_client_start(client.get());
  ASSERT_TRUE(gateway_->AcceptLogin(kWait));
  ASSERT_TRUE(seen.WaitConnected());

  const char* uids[] = {"bob", "carol", "mallory"};
  im_client_watch_presence(client.get(), uids, 3, CRecorder::OnWatched, &seen);
  std::optional<im::v1::Frame> request = NextWatch();
  ASSERT_TRUE(request);
  EXPECT_EQ(UidsOf(*request), (Uids{"bob", "carol", "mallory"}));
  const std::vector<Presence> states = {Online("bob", {"android", "ios"}), Offline("carol", 42)};
  AnswerWatch(*request, states, {"mallory"}, 600);
  ASSERT_TRUE(seen.WaitWatched());
  ASSERT_TRUE(seen.WaitReports(1));
  EXPECT_EQ(seen.code_, 0);
  EXPECT_EQ(seen.watched_, states);
  EXPECT_EQ(seen.refused_, Uids{"mallory"});
  EXPECT_EQ(seen.reported_[0], states);

  Push({Online("carol", {"web"})});
  ASSERT_TRUE(seen.WaitReports(2));
  EXPECT_EQ(seen.reported_[1], (std::vector<Presence>{Online("carol", {"web"})}));
}

}  // namespace
}  // namespace im::sdk
