// The rolling-update drill: while devices chat (single chats and a group), every gateway in turn
// is stopped with SIGTERM and started again, then every logic node. Devices behave as the SDK
// does: on GoAway they stay until the hint, then move to another gateway, log in again, sync from
// their cursor and resend what was not acknowledged (same client_msg_id). Afterwards every
// acknowledged message is held exactly once, in order, by every recipient device, and no device
// saw anything but reconnects: no error status, no Error or Kick frame, no unanswered request.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kGateways = 3;
constexpr int kLogicNodes = 2;
// Sends are answered well within this even while a logic node restarts (gateway deadline 5 s).
constexpr Millis kSendTimeout{15'000};

// Client ports of the gateways a device may connect to (0: not running or draining, as a load
// balancer takes an unready pod out). Written by the test thread, read by the chat thread.
class GatewayDirectory {
 public:
  explicit GatewayDirectory(size_t size) : ports_(size, 0) {}
  void Set(size_t index, uint16_t port) {
    std::lock_guard<std::mutex> lock(mutex_);
    ports_[index] = port;
  }
  // A random open port other than `avoid`; 0 when there is none.
  uint16_t Pick(uint16_t avoid, std::minstd_rand& random) const {
    std::vector<uint16_t> open;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (uint16_t port : ports_) {
        if (port != 0 && port != avoid) open.push_back(port);
      }
    }
    if (open.empty()) return 0;
    return open[std::uniform_int_distribution<size_t>(0, open.size() - 1)(random)];
  }

 private:
  mutable std::mutex mutex_;
  std::vector<uint16_t> ports_;
};

// One device in the drill: what it sends where, and what it saw.
struct Chatter {
  std::unique_ptr<TestDevice> device;
  std::vector<std::string> convs;  // conversations it is a member of (checked at the end)
  std::string send_conv;           // empty: it only receives
  std::string name;
  int next_message = 0;
  std::optional<std::string> pending;  // client_msg_id sent and not acknowledged yet
  int go_aways_seen = 0;
  std::optional<Clock::time_point> move_at;  // GoAway: leave for another gateway then
  int reconnects = 0;
  int moves = 0;
  uint64_t last_acked_seq = 0;
};

// An acknowledged message, as its sender learnt it.
struct Acked {
  uint64_t seq = 0;
  std::string sender;
  std::string client_msg_id;
};

uint16_t ReadyStatus(uint16_t port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(1));
  client.set_read_timeout(std::chrono::seconds(2));
  httplib::Result result = client.Get("/readyz");
  return result ? static_cast<uint16_t>(result->status) : 0;
}

bool WaitReady(uint16_t port, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (ReadyStatus(port) != 200) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(100));
  }
  return true;
}

class Drill {
 public:
  explicit Drill(GatewayDirectory& gateways)
      : gateways_(gateways), random_(std::random_device{}()) {}

  void Add(Chatter chatter) { chatters_.push_back(std::move(chatter)); }
  std::vector<Chatter>& chatters() { return chatters_; }
  const std::map<std::string, std::vector<Acked>>& acked() const { return acked_; }
  const std::vector<std::string>& errors() const { return errors_; }
  int sent() const { return sent_; }

  // The chat thread: rounds until `stop` is set, then until nothing is pending.
  void Run(const std::atomic<bool>& stop) {
    const auto give_up = Clock::now() + Millis(600'000);
    for (;;) {
      const bool stopping = stop.load();
      bool any_pending = false;
      for (Chatter& chatter : chatters_) {
        Step(chatter, /*send_new=*/!stopping);
        any_pending = any_pending || chatter.pending.has_value();
      }
      if (stopping && !any_pending) return;
      if (Clock::now() > give_up) {
        errors_.push_back("the drill did not finish in 10 minutes");
        return;
      }
      std::this_thread::sleep_for(Millis(20));
    }
  }

  // Connects every device that is not, and catches each up on every conversation.
  void Settle() {
    for (Chatter& chatter : chatters_) {
      for (int attempt = 0; attempt < 100 && !chatter.device->connected(); ++attempt) {
        Reconnect(chatter);
      }
      for (const std::string& conv : chatter.convs) chatter.device->CatchUp(conv, 200);
    }
  }

 private:
  void Error(const Chatter& chatter, const std::string& what) {
    errors_.push_back(absl::StrCat(chatter.name, ": ", what));
  }

  // Logs in on some other open gateway, then does what the SDK does after a login: sync every
  // conversation from its cursor. The pending send, if any, is resent by the next Step.
  void Reconnect(Chatter& chatter) {
    TestDevice& device = *chatter.device;
    const uint16_t port = gateways_.Pick(device.port(), random_);
    if (port == 0) {
      std::this_thread::sleep_for(Millis(50));
      return;
    }
    std::optional<im::v1::LoginResp> login = device.Connect(port, Millis(10'000));
    if (!login) {
      // Refused or closed: that gateway is going away. Another is tried next round.
      device.Disconnect();
      return;
    }
    if (login->status().code() != im::v1::OK) {
      Error(chatter, "login refused: " + login->status().ShortDebugString());
      device.Disconnect();
      return;
    }
    chatter.reconnects++;
    chatter.go_aways_seen = device.go_aways();
    chatter.move_at.reset();
    for (const std::string& conv : chatter.convs) {
      TestDevice::SyncResult synced = device.CatchUp(conv, 200);
      if (!synced.ok && device.connected()) Error(chatter, "sync failed: " + synced.error);
    }
  }

  void Step(Chatter& chatter, bool send_new) {
    TestDevice& device = *chatter.device;
    if (!device.connected()) return Reconnect(chatter);
    if (device.go_aways() > chatter.go_aways_seen) {
      chatter.go_aways_seen = device.go_aways();
      if (!chatter.move_at) chatter.move_at = Clock::now() + Millis(device.last_go_away_ms());
    }
    if (chatter.move_at && Clock::now() >= *chatter.move_at) {
      chatter.moves++;
      return Reconnect(chatter);  // Connect() closes the old connection first
    }
    if (chatter.send_conv.empty() || (!chatter.pending && !send_new)) {
      device.Poll(Millis(1));
      return;
    }
    if (!chatter.pending) {
      chatter.pending = absl::StrCat(chatter.name, "-", chatter.next_message++);
      sent_++;
    }
    std::optional<im::v1::SendResp> resp = device.SendToConv(
        chatter.send_conv, *chatter.pending, "body of " + *chatter.pending, kSendTimeout);
    if (!resp) {
      // A closed connection is a reconnect (resend after it); a live one that does not answer
      // is a failure the client would see.
      if (device.connected()) Error(chatter, "no SendResp for " + *chatter.pending);
      return;
    }
    if (resp->status().code() != im::v1::OK) {
      Error(chatter,
            absl::StrCat("send ", *chatter.pending, ": ", resp->status().ShortDebugString()));
      return;  // resent next round
    }
    if (resp->seq() <= chatter.last_acked_seq) {
      Error(chatter, absl::StrCat("seq ", resp->seq(), " for ", *chatter.pending,
                                  " not above the previous send's ", chatter.last_acked_seq));
    }
    chatter.last_acked_seq = resp->seq();
    acked_[chatter.send_conv].push_back(Acked{resp->seq(), device.uid(), *chatter.pending});
    chatter.pending.reset();
  }

  GatewayDirectory& gateways_;
  std::minstd_rand random_;
  std::vector<Chatter> chatters_;
  std::map<std::string, std::vector<Acked>> acked_;  // by conversation
  std::vector<std::string> errors_;
  int sent_ = 0;
};

TEST(RollingUpdateTest, EveryGatewayThenEveryLogicNodeRestartsWhileDevicesChat) {
  ClusterOptions options;
  options.logic_nodes = kLogicNodes;
  options.gateways = kGateways;
  // GoAway hints spread over 3 s, well inside the 6 s drain.
  options.gateway_env = {{"IM_GATEWAY_DRAIN_TIMEOUT_MS", "6000"},
                         {"IM_GATEWAY_GOAWAY_RECONNECT_MS", "300"},
                         {"IM_GATEWAY_GOAWAY_SPREAD_MS", "3000"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  GatewayDirectory gateways(kGateways);
  for (int i = 0; i < kGateways; ++i) gateways.Set(i, cluster.client_port(i));

  Drill drill(gateways);
  auto chatter = [&](const std::string& user, const std::string& device_name) {
    Chatter c;
    c.name = user + "/" + device_name;
    c.device = cluster.Device(user, device_name);
    return c;
  };
  const std::string a1 = cluster.Uid("a1"), b1 = cluster.Uid("b1");
  const std::string a2 = cluster.Uid("a2"), b2 = cluster.Uid("b2");
  const std::string pair1 = SingleConvId(a1, b1), pair2 = SingleConvId(a2, b2);

  // The group, created before the drill so that every member sees all of its messages.
  std::unique_ptr<TestDevice> owner = cluster.Device("c1", "setup");
  ASSERT_TRUE(owner->Login(cluster.client_port(0)));
  std::optional<im::v1::GroupCreateResp> group =
      owner->GroupCreate("drill", {cluster.Uid("c2"), cluster.Uid("c3"), a1});
  ASSERT_TRUE(group && group->status().code() == im::v1::OK)
      << (group ? group->ShortDebugString() : "no GroupCreateResp");
  const std::string group_conv = group->conv_id();
  owner->Disconnect();

  struct Plan {
    std::string user, device, send_conv;
    std::vector<std::string> convs;
  };
  const std::vector<Plan> plans = {
      {"a1", "phone", pair1, {pair1, group_conv}},
      {"b1", "phone", pair1, {pair1}},
      {"b1", "tablet", "", {pair1}},  // only receives, including b1/phone's sends
      {"a2", "phone", pair2, {pair2}},
      {"b2", "phone", pair2, {pair2}},
      {"c1", "phone", group_conv, {group_conv}},
      {"c2", "phone", group_conv, {group_conv}},
      {"c3", "phone", "", {group_conv}},
  };
  for (const Plan& plan : plans) {
    Chatter c = chatter(plan.user, plan.device);
    c.send_conv = plan.send_conv;
    c.convs = plan.convs;
    drill.Add(std::move(c));
  }

  std::atomic<bool> stop{false};
  std::thread chat([&] { drill.Run(stop); });
  auto let_them_chat = [] { std::this_thread::sleep_for(Millis(2'000)); };

  let_them_chat();
  for (int i = 0; i < kGateways; ++i) {
    SCOPED_TRACE("gateway " + cluster.gateway_id(i));
    const uint16_t metrics_port = cluster.gateway_metrics_port(i);
    gateways.Set(i, 0);  // the load balancer stops sending new clients
    ASSERT_TRUE(cluster.BeginStopGateway(i));
    // Unready at once, while it still serves the clients it holds.
    const auto signalled = Clock::now();
    uint16_t status = ReadyStatus(metrics_port);
    while (status == 200 && Clock::now() - signalled < Millis(2'000)) {
      std::this_thread::sleep_for(Millis(20));
      status = ReadyStatus(metrics_port);
    }
    EXPECT_NE(status, 200) << "a draining gateway must fail /readyz";
    EXPECT_TRUE(cluster.WaitGatewayExit(i, Millis(6'000 + 20'000)));
    ASSERT_TRUE(cluster.RestartGateway(i));
    gateways.Set(i, cluster.client_port(i));
    let_them_chat();
  }
  for (int i = 0; i < kLogicNodes; ++i) {
    SCOPED_TRACE("logic node " + std::to_string(i));
    ASSERT_TRUE(cluster.StopLogic(i));
    let_them_chat();
    ASSERT_TRUE(cluster.RestartLogic(i));
    EXPECT_TRUE(WaitReady(cluster.logic_metrics_port(i), Millis(30'000)));
    // The gateways reconnect within their 2 s backoff before the next node goes.
    std::this_thread::sleep_for(Millis(3'000));
  }
  let_them_chat();
  stop = true;
  chat.join();

  drill.Settle();
  EXPECT_TRUE(drill.errors().empty()) << absl::StrJoin(drill.errors(), "\n");
  int moves = 0;
  for (const Chatter& c : drill.chatters()) moves += c.moves;
  // Every device was on some gateway when it drained, so each moved at least once on GoAway.
  EXPECT_GE(moves, static_cast<int>(drill.chatters().size()));
  EXPECT_GT(drill.sent(), 100) << "too little traffic to mean anything";

  for (Chatter& c : drill.chatters()) {
    TestDevice& device = *c.device;
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(device.errors().empty()) << device.errors().front().ShortDebugString();
    EXPECT_TRUE(device.kicks().empty()) << device.kicks().front().ShortDebugString();
    EXPECT_TRUE(device.conflicts().empty()) << device.conflicts().front();
    for (const std::string& conv : c.convs) {
      SCOPED_TRACE(conv);
      const auto found = drill.acked().find(conv);
      ASSERT_NE(found, drill.acked().end()) << "nothing was acknowledged in " << conv;
      std::map<uint64_t, const Acked*> expected;
      for (const Acked& acked : found->second) expected[acked.seq] = &acked;
      // Holes young enough may still fill: catch up until the grace passes, at most.
      device.WaitUntil(
          [&] {
            device.CatchUp(conv, 200);
            std::set<uint64_t> held;
            for (const im::v1::Message& m : device.Held(conv)) held.insert(m.seq());
            for (const auto& [seq, acked] : expected) {
              if (held.count(seq) == 0) return false;
            }
            return true;
          },
          Millis(30'000));
      const std::vector<im::v1::Message> held = device.Held(conv);
      EXPECT_TRUE(EachSeqOnceInOrder(held));
      // Pushes are at least once: a retry of a send whose answer a stopping node lost pushes
      // again (the node may have stopped before pushing), and a group record in flight during a
      // consumer-group rebalance is delivered again. Devices drop the repeat by (conv, seq), as
      // Held() does (DESIGN.md section 6): each seq once, in order, is checked above.
      std::set<uint64_t> held_seqs;
      for (const im::v1::Message& message : held) {
        held_seqs.insert(message.seq());
        if (message.type() == im::v1::SYSTEM) continue;  // group notices are nobody's send
        const auto it = expected.find(message.seq());
        if (it == expected.end()) {
          ADD_FAILURE() << "held a message nobody was acknowledged for: "
                        << message.ShortDebugString();
          continue;
        }
        EXPECT_EQ(message.sender(), it->second->sender) << message.ShortDebugString();
        EXPECT_EQ(message.client_msg_id(), it->second->client_msg_id) << message.ShortDebugString();
      }
      std::vector<uint64_t> missing;
      for (const auto& [seq, acked] : expected) {
        if (held_seqs.count(seq) == 0) missing.push_back(seq);
      }
      EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged messages never reached "
                                   << c.name << ": " << SeqList(missing);
    }
  }
  size_t acked_total = 0;
  for (const auto& [conv, list] : drill.acked()) acked_total += list.size();
  std::printf("rolling update drill: %d sends, %zu acknowledged, %d GoAway moves\n", drill.sent(),
              acked_total, moves);
}

}  // namespace
}  // namespace im::e2e
