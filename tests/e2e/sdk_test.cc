// The SDK against the real binaries, the cluster's (im-gateway and im-logic on the real Redis,
// MariaDB and Kafka) and the embedded node's (im-server on SQLite): its guarantees hold while
// connections are cut and the app restarts; on the cluster, also while a gateway dies or drains.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sdk/client.h"
#include "sdk/sqlite_state_store.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/sdk_recorder.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp_proxy.h"

namespace im::e2e {
namespace {

using im::testing::TcpProxy;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::unique_ptr<TcpProxy> StartProxy(uint16_t target_port) {
  auto proxy = TcpProxy::Start(target_port);
  EXPECT_TRUE(proxy.ok()) << proxy.status();
  return proxy.ok() ? std::move(*proxy) : nullptr;
}

// Every message a side sent (by body) is in `messages` exactly once.
void ExpectHolds(const std::vector<im::sdk::Message>& messages, const std::string& sender,
                 const std::vector<std::string>& bodies) {
  std::multiset<std::string> seen;
  for (const im::sdk::Message& message : messages) {
    if (message.sender == sender) seen.insert(message.body);
  }
  for (const std::string& body : bodies) {
    EXPECT_EQ(seen.count(body), 1u) << sender << " / " << body;
  }
  EXPECT_EQ(seen.size(), bodies.size()) << "messages of " << sender;
}

// Gives late pushes (a duplicate the SDK let through would come late) time to arrive, then stops
// the clients, so that what the test checks next is everything they will ever show.
void SettleAndStop(std::initializer_list<im::sdk::Client*> clients) {
  std::this_thread::sleep_for(milliseconds(500));
  for (im::sdk::Client* client : clients) client->Stop();
  std::this_thread::sleep_for(milliseconds(200));
}

// Runs on the cluster (two gateways) and on the embedded node (one im-server, which every
// client_port names): SdkTest.X/Cluster and SdkTest.X/Embedded.
class SdkTest : public DeploymentTest {
 protected:
  void SetUp() override {
    cluster_ = Deploy();
    alice_ = cluster_->Uid("alice");
    bob_ = cluster_->Uid("bob");
    conv_ = SingleChat(alice_, bob_);
    ASSERT_TRUE(cluster_->Start());
  }

  std::unique_ptr<ChatDeployment> cluster_;
  // Users of this test only (the test MariaDB and Redis are shared), and their single chat.
  std::string alice_;
  std::string bob_;
  std::string conv_;
};
IM_INSTANTIATE_DEPLOYMENTS(SdkTest);

// For what only a cluster has: a second gateway process to kill or drain.
class SdkClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  LocalCluster cluster_;
  const std::string alice_ = cluster_.Uid("alice");
  const std::string bob_ = cluster_.Uid("bob");
  const std::string conv_ = SingleChat(alice_, bob_);
};

// Two clients exchange 2,000 messages through proxies that delay bytes and cut every connection
// at a random moment each second: at the end both show all 2,000 exactly once, in seq order,
// and every send was reported sent exactly once.
TEST_P(SdkTest, ExchangeSurvivesConnectionsCutEverySecond) {
  constexpr int kPerSide = 1000;
  std::unique_ptr<TcpProxy> proxy0 = StartProxy(cluster_->client_port(0));
  std::unique_ptr<TcpProxy> proxy1 = StartProxy(cluster_->client_port(1));
  ASSERT_TRUE(proxy0 && proxy1);
  proxy0->set_max_delay(milliseconds(20));
  proxy1->set_max_delay(milliseconds(20));
  const std::vector<std::string> gateways = {Address(proxy0->port()), Address(proxy1->port())};

  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice_client(OptionsFor(alice_, "phone", gateways), &alice_seen);
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {gateways[1], gateways[0]}), &bob_seen);
  ASSERT_TRUE(StartAndWait(alice_client, alice_seen));
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));

  std::vector<std::string> alice_bodies;
  std::vector<std::string> bob_bodies;
  std::set<std::string> alice_ids;
  std::set<std::string> bob_ids;
  std::atomic<bool> sending_done{false};
  std::thread cutter([&] {
    std::mt19937 random(7);
    while (!sending_done.load()) {
      std::this_thread::sleep_for(
          milliseconds(std::uniform_int_distribution<int>(200, 1000)(random)));
      (random() % 2 == 0 ? proxy0 : proxy1)->CutAll();
      if (random() % 3 == 0) (random() % 2 == 0 ? proxy1 : proxy0)->CutAll();
    }
  });
  for (int i = 0; i < kPerSide; ++i) {
    alice_bodies.push_back("a" + std::to_string(i));
    bob_bodies.push_back("b" + std::to_string(i));
    alice_ids.insert(alice_client.SendTo(bob_, alice_bodies.back()));
    bob_ids.insert(bob_client.Send(conv_, bob_bodies.back()));
    std::this_thread::sleep_for(milliseconds(8));
  }
  auto complete = [&](const SdkRecorder& r) {
    return r.sent_ok() + r.send_failures() >= kPerSide && r.delivered_count(conv_) >= 2 * kPerSide;
  };
  const bool alice_done = alice_seen.WaitFor(complete, seconds(120));
  const bool bob_done = bob_seen.WaitFor(complete, seconds(60));
  sending_done.store(true);
  cutter.join();
  EXPECT_GE(proxy0->connections_cut() + proxy1->connections_cut(), 10);
  EXPECT_TRUE(alice_done) << "alice: sent " << alice_seen.SentOkCopy() << ", shows "
                          << alice_seen.DeliveredCopy(conv_).size();
  EXPECT_TRUE(bob_done) << "bob: sent " << bob_seen.SentOkCopy() << ", shows "
                        << bob_seen.DeliveredCopy(conv_).size();
  SettleAndStop({&alice_client, &bob_client});

  for (SdkRecorder* seen : {&alice_seen, &bob_seen}) {
    const std::vector<im::sdk::Message> shown = seen->DeliveredCopy(conv_);
    EXPECT_EQ(shown.size(), 2u * kPerSide);
    EXPECT_EQ(CheckContiguous(shown, 1), "");
    ExpectHolds(shown, alice_, alice_bodies);
    ExpectHolds(shown, bob_, bob_bodies);
  }
  for (auto [seen, ids] : {std::pair{&alice_seen, &alice_ids}, std::pair{&bob_seen, &bob_ids}}) {
    EXPECT_EQ(seen->send_failures(), 0u);
    EXPECT_EQ(seen->send_results().size(), static_cast<size_t>(kPerSide));
    for (const auto& [id, results] : seen->send_results()) {
      EXPECT_EQ(results.size(), 1u) << "send " << id << " reported " << results.size() << " times";
      EXPECT_TRUE(ids->count(id)) << "unknown send " << id;
    }
  }
  EXPECT_GE(alice_seen.ConnectsCopy(), 3) << "the proxy cuts should have forced reconnects";
}

// kill -9 of the gateway a client is on: it reconnects to the other gateway and nothing is lost.
TEST_F(SdkClusterTest, GatewayKilledClientMovesToTheOtherAndLosesNothing) {
  constexpr int kCount = 200;
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice_client(
      OptionsFor(alice_, "phone",
                 {Address(cluster_.client_port(0)), Address(cluster_.client_port(1))}),
      &alice_seen);
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {Address(cluster_.client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(alice_client, alice_seen));
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));

  for (int i = 0; i < kCount; ++i) {
    alice_client.SendTo(bob_, "m" + std::to_string(i));
    bob_client.Send(conv_, "r" + std::to_string(i));
    if (i == kCount / 2) {
      ASSERT_TRUE(cluster_.KillGateway(0));  // alice's gateway
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  auto complete = [&](const SdkRecorder& r) {
    return r.sent_ok() >= kCount && r.delivered_count(conv_) >= 2 * kCount;
  };
  EXPECT_TRUE(alice_seen.WaitFor(complete, seconds(60)));
  EXPECT_TRUE(bob_seen.WaitFor(complete, seconds(30)));
  SettleAndStop({&alice_client, &bob_client});
  EXPECT_GE(alice_seen.ConnectsCopy(), 2);
  for (SdkRecorder* seen : {&alice_seen, &bob_seen}) {
    const std::vector<im::sdk::Message> shown = seen->DeliveredCopy(conv_);
    EXPECT_EQ(shown.size(), 2u * kCount);
    EXPECT_EQ(CheckContiguous(shown, 1), "");
    EXPECT_EQ(seen->send_failures(), 0u);
    EXPECT_EQ(seen->send_results().size(), static_cast<size_t>(kCount));
  }
}

// A gateway drained for a rolling update (SIGTERM): its client gets GoAway, moves to the other
// gateway after the hint, and a send stream across the move loses and repeats nothing.
TEST_F(SdkClusterTest, GoAwayMovesTheClientToAnotherGatewayWithoutLoss) {
  constexpr int kCount = 100;
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice_client(
      OptionsFor(alice_, "phone",
                 {Address(cluster_.client_port(0)), Address(cluster_.client_port(1))}),
      &alice_seen);
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {Address(cluster_.client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(alice_client, alice_seen));
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));
  std::thread drain;
  for (int i = 0; i < kCount; ++i) {
    alice_client.SendTo(bob_, "m" + std::to_string(i));
    if (i == kCount / 4) drain = std::thread([&] { EXPECT_TRUE(cluster_.StopGateway(0)); });
    std::this_thread::sleep_for(milliseconds(20));
  }
  drain.join();
  EXPECT_TRUE(
      alice_seen.WaitFor([&](const SdkRecorder& r) { return r.sent_ok() == kCount; }, seconds(30)));
  EXPECT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(conv_) == kCount; }, seconds(30)));
  SettleAndStop({&alice_client, &bob_client});
  EXPECT_EQ(alice_seen.ConnectsCopy(), 2) << "one connection before the drain, one after";
  EXPECT_EQ(alice_seen.send_failures(), 0u);
  EXPECT_EQ(CheckContiguous(bob_seen.DeliveredCopy(conv_), 1), "");
  EXPECT_EQ(bob_seen.DeliveredCopy(conv_).size(), static_cast<size_t>(kCount));
}

// The same device logging in elsewhere kicks the first connection: that client reports kKicked
// and does not fight back by reconnecting.
TEST_P(SdkTest, KickedClientReportsItAndStaysOff) {
  SdkRecorder first_seen;
  SdkRecorder second_seen;
  im::sdk::Client first(OptionsFor(alice_, "phone", {Address(cluster_->client_port(0))}),
                        &first_seen);
  ASSERT_TRUE(StartAndWait(first, first_seen));
  im::sdk::Client second(OptionsFor(alice_, "phone", {Address(cluster_->client_port(1))}),
                         &second_seen);
  ASSERT_TRUE(StartAndWait(second, second_seen));
  EXPECT_TRUE(first_seen.WaitFor(
      [](const SdkRecorder& r) { return r.state() == im::sdk::ConnectionState::kKicked; },
      seconds(15)));
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(first.state(), im::sdk::ConnectionState::kKicked);
  EXPECT_EQ(first_seen.ConnectsCopy(), 1);
  EXPECT_EQ(second.state(), im::sdk::ConnectionState::kConnected);
  first.Stop();
  second.Stop();
}

// An app restart: the client is destroyed with unsent messages in its outbox and a new one opens
// the same SQLite file. The messages are sent once, and receiving resumes after the last
// delivered seq (nothing shown before is shown again).
TEST_P(SdkTest, AppRestartSendsTheOutboxOnceAndResumesTheCursor) {
  const std::string db = ::testing::TempDir() + cluster_->prefix() + "alice.db";
  std::filesystem::remove(db);
  std::unique_ptr<TcpProxy> proxy = StartProxy(cluster_->client_port(0));
  ASSERT_TRUE(proxy);

  SdkRecorder bob_seen;
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {Address(cluster_->client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));

  std::vector<std::string> unsent;
  {
    auto store = im::sdk::SqliteStateStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
    SdkRecorder alice_seen;
    im::sdk::Client alice_client(OptionsFor(alice_, "phone", {Address(proxy->port())}), &alice_seen,
                                 std::move(*store));
    alice_client.Start();
    ASSERT_TRUE(alice_seen.WaitConnected(seconds(15)));
    for (int i = 0; i < 5; ++i) bob_client.Send(conv_, "before " + std::to_string(i));
    ASSERT_TRUE(alice_seen.WaitFor(
        [&](const SdkRecorder& r) { return r.delivered_count(conv_) == 5; }, seconds(15)));
    // The network goes away; what alice writes now stays in her outbox.
    proxy->set_refusing(true);
    proxy->CutAll();
    ASSERT_TRUE(alice_seen.WaitFor(
        [](const SdkRecorder& r) { return r.state() != im::sdk::ConnectionState::kConnected; },
        seconds(10)));
    for (int i = 0; i < 20; ++i) {
      unsent.push_back("offline " + std::to_string(i));
      alice_client.SendTo(bob_, unsent.back());
    }
    std::this_thread::sleep_for(milliseconds(500));
    EXPECT_EQ(alice_seen.SentOkCopy(), 0u);
  }  // the app is closed
  for (int i = 0; i < 3; ++i) bob_client.Send(conv_, "while away " + std::to_string(i));
  ASSERT_TRUE(bob_seen.WaitFor([](const SdkRecorder& r) { return r.sent_ok() == 8; }, seconds(10)));

  auto store = im::sdk::SqliteStateStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  SdkRecorder alice_seen;
  im::sdk::Client alice_client(OptionsFor(alice_, "phone", {Address(cluster_->client_port(0))}),
                               &alice_seen, std::move(*store));
  alice_client.Start();
  EXPECT_TRUE(alice_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.sent_ok() == 20 && r.delivered_count(conv_) == 23; },
      seconds(30)));
  EXPECT_TRUE(bob_seen.WaitFor([&](const SdkRecorder& r) { return r.delivered_count(conv_) == 28; },
                               seconds(30)));
  SettleAndStop({&alice_client, &bob_client});

  // After the restart alice shows only what came after seq 5: bob's 3 and her own 20.
  const std::vector<im::sdk::Message> shown = alice_seen.DeliveredCopy(conv_);
  EXPECT_EQ(shown.size(), 23u);
  EXPECT_EQ(CheckContiguous(shown, 6), "");
  ExpectHolds(shown, alice_, unsent);
  EXPECT_EQ(alice_seen.send_results().size(), 20u);
  for (const auto& [id, results] : alice_seen.send_results()) EXPECT_EQ(results.size(), 1u);
  // Bob got each offline message exactly once.
  const std::vector<im::sdk::Message> bob_shown = bob_seen.DeliveredCopy(conv_);
  EXPECT_EQ(CheckContiguous(bob_shown, 1), "");
  ExpectHolds(bob_shown, alice_, unsent);
  std::filesystem::remove(db);
}

// The rest of the API against the real cluster: groups (a member joining late sees only what
// came after its join, without stalling on the earlier seqs), conversations with unread counts,
// history paging and read receipts.
TEST_P(SdkTest, GroupsConversationsHistoryAndReadReceipts) {
  const std::string carol = cluster_->Uid("carol");
  const std::vector<std::string> gateways = {Address(cluster_->client_port(0)),
                                             Address(cluster_->client_port(1))};
  SdkRecorder alice_seen, bob_seen, carol_seen;
  im::sdk::Client alice_client(OptionsFor(alice_, "phone", gateways), &alice_seen);
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {gateways[1]}), &bob_seen);
  im::sdk::Client carol_client(OptionsFor(carol, "phone", gateways), &carol_seen);
  for (im::sdk::Client* client : {&alice_client, &bob_client, &carol_client}) client->Start();
  ASSERT_TRUE(alice_seen.WaitConnected(seconds(15)));
  ASSERT_TRUE(bob_seen.WaitConnected(seconds(15)));
  ASSERT_TRUE(carol_seen.WaitConnected(seconds(15)));

  std::promise<std::pair<im::sdk::Status, im::sdk::GroupCreated>> created;
  alice_client.CreateGroup("team", {bob_}, [&](im::sdk::Status status, im::sdk::GroupCreated g) {
    created.set_value({status, g});
  });
  auto [create_status, group] = created.get_future().get();
  ASSERT_TRUE(create_status.ok()) << create_status.message;
  for (int i = 1; i <= 5; ++i) alice_client.Send(group.conv_id, "early " + std::to_string(i));
  ASSERT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(group.conv_id) == 5; }, seconds(15)));
  // Seq 1 is the group's "group_created" notice (type SYSTEM from @system), delivered as a message.
  EXPECT_EQ(bob_seen.StreamCopy(group.conv_id).front().type, im::sdk::kMessageSystem);

  std::promise<im::sdk::Status> joined;
  carol_client.JoinGroup(group.group_id, {},
                         [&](im::sdk::Status status) { joined.set_value(status); });
  ASSERT_TRUE(joined.get_future().get().ok());
  for (int i = 6; i <= 10; ++i) alice_client.Send(group.conv_id, "late " + std::to_string(i));
  EXPECT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(group.conv_id) == 10; }, seconds(15)));
  EXPECT_TRUE(carol_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(group.conv_id) == 5; }, seconds(15)));
  // Carol's stream starts with her "member_joined" notice at seq 7.
  EXPECT_EQ(CheckContiguous(bob_seen.StreamCopy(group.conv_id), 1), "");
  EXPECT_EQ(CheckContiguous(carol_seen.StreamCopy(group.conv_id), 7), "");

  std::promise<std::vector<im::sdk::GroupMember>> members;
  carol_client.ListGroupMembers(group.group_id,
                                [&](im::sdk::Status, std::vector<im::sdk::GroupMember> list) {
                                  members.set_value(std::move(list));
                                });
  EXPECT_EQ(members.get_future().get().size(), 3u);

  // Bob has read nothing yet: 10 messages and 2 notices unread.
  std::promise<std::vector<im::sdk::Conversation>> listed;
  bob_client.ListConversations([&](im::sdk::Status status, std::vector<im::sdk::Conversation> l) {
    EXPECT_TRUE(status.ok());
    listed.set_value(std::move(l));
  });
  std::vector<im::sdk::Conversation> conversations = listed.get_future().get();
  ASSERT_EQ(conversations.size(), 1u);
  EXPECT_EQ(conversations[0].conv_id, group.conv_id);
  EXPECT_EQ(conversations[0].unread, 12u);
  // Sends in flight together get seqs in the order the server stored them: compare by seq.
  EXPECT_EQ(conversations[0].last_message.seq, 12u);
  EXPECT_EQ(conversations[0].last_message.body, bob_seen.DeliveredCopy(group.conv_id).back().body);

  // History: the 4 messages before seq 9, in order.
  std::promise<im::sdk::HistoryPage> history;
  bob_client.LoadHistory(group.conv_id, 9, 4, [&](im::sdk::Status status, im::sdk::HistoryPage p) {
    EXPECT_TRUE(status.ok());
    history.set_value(std::move(p));
  });
  im::sdk::HistoryPage page = history.get_future().get();
  ASSERT_EQ(page.messages.size(), 4u);
  EXPECT_EQ(page.messages.front().seq, 5u);
  EXPECT_EQ(page.messages.back().seq, 8u);

  // Bob reads up to 12 (in a group only his own devices hear of it; peers see read cursors).
  std::promise<uint64_t> read;
  bob_client.MarkRead(group.conv_id, 12, [&](im::sdk::Status status, uint64_t read_seq) {
    EXPECT_TRUE(status.ok());
    read.set_value(read_seq);
  });
  EXPECT_EQ(read.get_future().get(), 12u);
  std::promise<std::vector<im::sdk::Conversation>> relisted;
  bob_client.ListConversations([&](im::sdk::Status, std::vector<im::sdk::Conversation> l) {
    relisted.set_value(std::move(l));
  });
  EXPECT_EQ(relisted.get_future().get().at(0).unread, 0u);

  // In a single chat the reader's peer gets a read receipt.
  const std::string direct = SingleChat(alice_, carol);
  alice_client.SendTo(carol, "are you there?");
  ASSERT_TRUE(carol_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(direct) == 1; }, seconds(15)));
  // Carol's answer and alice's receipt leave logic together: wait for both, so that the test does
  // not end (stopping carol's client) with carol's answer still on its way.
  auto carol_read = std::make_shared<std::promise<im::sdk::Status>>();
  std::future<im::sdk::Status> carol_answer = carol_read->get_future();
  carol_client.MarkRead(direct, 1, [carol_read](im::sdk::Status status, uint64_t) {
    carol_read->set_value(std::move(status));
  });
  EXPECT_TRUE(alice_seen.WaitFor(
      [&](const SdkRecorder& r) {
        for (const im::sdk::ReadReceipt& receipt : r.read_receipts()) {
          if (receipt.conv_id == direct && receipt.reader == carol && receipt.read_seq == 1) {
            return true;
          }
        }
        return false;
      },
      seconds(15)));
  ASSERT_EQ(carol_answer.wait_for(seconds(15)), std::future_status::ready);
  const im::sdk::Status read_status = carol_answer.get();
  EXPECT_TRUE(read_status.ok()) << read_status.message;
  for (im::sdk::Client* client : {&alice_client, &bob_client, &carol_client}) client->Stop();
}

// imcli, as the README shows a newcomer: it logs in with an imctl token, opens a single chat,
// sends a line, shows the reply and lists the conversation with its unread count.
TEST_P(SdkTest, ImcliChatsWithAnSdkClient) {
  SdkRecorder bob_seen;
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {Address(cluster_->client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));

  auto imctl = im::testing::Subprocess::Start(
      {IM_IMCTL, "token", "--uid", alice_, "--secret", ChatDeployment::kTokenSecret});
  ASSERT_TRUE(imctl.ok()) << imctl.status();
  std::optional<std::string> token = (*imctl)->ReadLine(seconds(10));
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ((*imctl)->Wait(seconds(10)), 0);

  auto imcli = im::testing::Subprocess::Start(
      {IM_IMCLI, "--gateway", Address(cluster_->client_port(0)), "--token", *token}, {},
      {.pipe_stdin = true, .stderr_path = ""});
  ASSERT_TRUE(imcli.ok()) << imcli.status();
  ASSERT_TRUE((*imcli)->ReadLineStartingWith("* connected", seconds(15)));
  ASSERT_TRUE((*imcli)->WriteStdin("/open " + bob_ + "\nhello bob\n"));
  ASSERT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) {
        return r.delivered_count(conv_) == 1 && r.delivered(conv_)[0].body == "hello bob";
      },
      seconds(15)));
  bob_client.Send(conv_, "hi alice");
  EXPECT_TRUE(
      (*imcli)->ReadLineStartingWith("[" + conv_ + "] #2 " + bob_ + ": hi alice", seconds(15)));
  ASSERT_TRUE((*imcli)->WriteStdin("/list\n"));
  EXPECT_TRUE((*imcli)->ReadLineStartingWith("  " + conv_ + "  unread 1", seconds(15)))
      << "one unread: bob's (a user's own messages are never unread)";
  ASSERT_TRUE((*imcli)->WriteStdin("/quit\n"));
  EXPECT_EQ((*imcli)->Wait(seconds(15)), 0);
  bob_client.Stop();
}

// A C program using only sdk/im_client.h logs in, sends, and receives a reply.
TEST_P(SdkTest, CProgramOnTheCApiSendsAndReceives) {
  SdkRecorder bob_seen;
  im::sdk::Client bob_client(OptionsFor(bob_, "phone", {Address(cluster_->client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));

  auto program = im::testing::Subprocess::Start(
      {IM_SDK_C_EXAMPLE, Address(cluster_->client_port(0)), ChatDeployment::Token(alice_), bob_});
  ASSERT_TRUE(program.ok()) << program.status();
  ASSERT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) {
        for (const im::sdk::Message& message : r.delivered(conv_)) {
          if (message.sender == alice_ && message.body == "hello from C") return true;
        }
        return false;
      },
      seconds(30)));
  bob_client.Send(conv_, "hello from bob");
  EXPECT_EQ((*program)->Wait(seconds(30)), 0);
  bob_client.Stop();
}

}  // namespace
}  // namespace im::e2e
