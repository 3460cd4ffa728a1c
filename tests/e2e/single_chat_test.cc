// End-to-end single chat on the real binaries, the cluster's (im-logic, im-gateway against the real
// Redis and MariaDB) and the embedded node's (im-server on SQLite): delivery to every device,
// offline sync, read receipts, idempotent retries and re-login on the same device (DESIGN.md
// sections 5, 6 and 8).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

constexpr Millis kPushTimeout{15'000};
// How long a test lets a message or receipt that must NOT come have to show up anyway.
constexpr Millis kQuietPeriod{500};

bool IsOk(const std::optional<im::v1::SendResp>& resp) {
  return resp && resp->status().code() == im::v1::OK;
}

std::string Describe(const std::optional<im::v1::SendResp>& resp) {
  return resp ? resp->ShortDebugString() : "no SendResp";
}

// What a test sent and was acknowledged, by seq.
struct Sent {
  TestDevice* device = nullptr;
  std::string body;
  im::v1::SendResp resp;
};

// Every test runs on the cluster (two gateways) and on the embedded node (one im-server).
class SingleChatTest : public DeploymentTest {};
IM_INSTANTIATE_DEPLOYMENTS(SingleChatTest);

TEST_P(SingleChatTest, MessagesBothWaysReachEveryOtherDeviceOnceInOrder) {
  auto cluster = Deploy();
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  auto alice_laptop = cluster->Device("alice", "laptop");
  auto bob_phone = cluster->Device("bob", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(0)));
  ASSERT_TRUE(alice_laptop->Login(cluster->client_port(1)));
  ASSERT_TRUE(bob_phone->Login(cluster->client_port(1)));
  const std::string alice = alice_phone->uid();
  const std::string bob = bob_phone->uid();
  const std::string conv = SingleConvId(alice, bob);
  std::vector<TestDevice*> devices = {alice_phone.get(), alice_laptop.get(), bob_phone.get()};

  constexpr int kPerSide = 50;
  std::map<uint64_t, Sent> sent;
  for (int i = 0; i < kPerSide; ++i) {
    // Alice alternates between her two devices, so each of them is both sender and "other device".
    TestDevice* alice_device = i % 2 == 0 ? alice_phone.get() : alice_laptop.get();
    for (auto [device, to, tag] :
         {std::make_tuple(alice_device, bob, "a"), std::make_tuple(bob_phone.get(), alice, "b")}) {
      const std::string cmid = absl::StrCat(tag, "-", i);
      const std::string body = absl::StrCat(device->uid(), "/", device->device(), " says ", i);
      std::optional<im::v1::SendResp> resp = device->SendTo(to, cmid, body);
      ASSERT_TRUE(IsOk(resp)) << cmid << ": " << Describe(resp);
      EXPECT_EQ(resp->conv_id(), conv);
      EXPECT_EQ(resp->client_msg_id(), cmid);
      EXPECT_NE(resp->msg_id(), 0u);
      EXPECT_GT(resp->server_time_ms(), 0);
      ASSERT_EQ(sent.count(resp->seq()), 0u) << "seq " << resp->seq() << " handed out twice";
      sent[resp->seq()] = Sent{device, body, *resp};
    }
    for (TestDevice* device : devices) device->Poll(Millis(0));
  }

  // A new conversation: seqs 1..100, dense.
  std::vector<uint64_t> all;
  for (uint64_t seq = 1; seq <= 2 * kPerSide; ++seq) all.push_back(seq);
  std::vector<uint64_t> acknowledged;
  for (const auto& [seq, s] : sent) acknowledged.push_back(seq);
  EXPECT_EQ(acknowledged, all);

  for (TestDevice* device : devices) {
    std::vector<uint64_t> expected;  // every message not sent on this very connection
    for (const auto& [seq, s] : sent) {
      if (s.device != device) expected.push_back(seq);
    }
    EXPECT_TRUE(device->WaitForPushed(conv, expected.size(), kPushTimeout))
        << device->uid() << "/" << device->device() << " was pushed " << device->PushedCount(conv)
        << " of " << expected.size();
    device->Poll(kQuietPeriod);  // anything extra (a duplicate, an echo) shows up too
    const std::vector<PushedMessage> pushed = device->Pushed(conv);
    // Each message is pushed exactly once. Pushes of different messages may overtake each other
    // on the wire (each is its own Push call, possibly from different logic nodes), so order is
    // what the device shows: like the SDK, it holds messages by seq and shows the contiguous run,
    // which must be the whole conversation once every push has arrived.
    std::vector<im::v1::Message> pushed_by_seq = MessagesOf(pushed);
    std::stable_sort(pushed_by_seq.begin(), pushed_by_seq.end(),
                     [](const auto& a, const auto& b) { return a.seq() < b.seq(); });
    EXPECT_TRUE(SeqsAre(pushed_by_seq, expected)) << device->uid() << "/" << device->device();
    EXPECT_EQ(device->ContiguousSeq(conv), all.back()) << device->uid() << "/" << device->device();
    for (const PushedMessage& p : pushed) {
      auto it = sent.find(p.message.seq());
      if (it == sent.end()) continue;
      EXPECT_EQ(p.message.msg_id(), it->second.resp.msg_id()) << "seq " << p.message.seq();
      EXPECT_EQ(p.message.sender(), it->second.device->uid()) << "seq " << p.message.seq();
      EXPECT_EQ(p.message.client_msg_id(), it->second.resp.client_msg_id());
      EXPECT_EQ(p.message.body(), it->second.body) << "seq " << p.message.seq();
      EXPECT_EQ(p.message.type(), im::v1::TEXT);
      EXPECT_EQ(p.message.conv_id(), conv);
    }
    // With its own sends, the device holds the whole conversation.
    EXPECT_TRUE(SeqsAre(device->Held(conv), all)) << device->uid() << "/" << device->device();
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
    EXPECT_TRUE(device->errors().empty()) << device->errors().front().ShortDebugString();
    EXPECT_EQ(device->unexpected_frames(), 0);
  }
}

TEST_P(SingleChatTest, OfflineUserSyncsFiveHundredMessagesThenReadReceiptsFlow) {
  auto cluster = Deploy();
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(0)));
  const std::string alice = alice_phone->uid();
  const std::string bob = cluster->Uid("bob");
  const std::string conv = SingleConvId(alice, bob);

  // Bob has never logged in: everything waits for him in MySQL.
  constexpr int kMessages = 500;
  std::vector<im::v1::SendReq> reqs;
  for (int i = 0; i < kMessages; ++i) {
    im::v1::SendReq req;
    req.set_to_uid(bob);
    req.set_client_msg_id(absl::StrCat("offline-", i));
    req.set_type(im::v1::TEXT);
    req.set_body(absl::StrCat("while you were away #", i));
    reqs.push_back(std::move(req));
  }
  const std::vector<std::optional<im::v1::SendResp>> resps =
      alice_phone->SendPipelined(reqs, 16, Millis(120'000));
  std::map<uint64_t, size_t> index_of_seq;
  for (size_t i = 0; i < resps.size(); ++i) {
    ASSERT_TRUE(IsOk(resps[i])) << "send " << i << ": " << Describe(resps[i]);
    EXPECT_EQ(resps[i]->conv_id(), conv);
    EXPECT_TRUE(index_of_seq.emplace(resps[i]->seq(), i).second)
        << "seq " << resps[i]->seq() << " handed out twice";
  }
  ASSERT_EQ(index_of_seq.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(index_of_seq.begin()->first, 1u);
  EXPECT_EQ(index_of_seq.rbegin()->first, static_cast<uint64_t>(kMessages));

  // Three more people wrote to bob once each, so that his conversation list takes several pages.
  std::vector<std::string> others;
  for (const char* name : {"carol", "dave", "erin"}) {
    auto other = cluster->Device(name, "phone");
    ASSERT_TRUE(other->Login(cluster->client_port(1)));
    ASSERT_TRUE(IsOk(other->SendTo(bob, "hi", "hi bob")));
    others.push_back(SingleConvId(other->uid(), bob));
  }

  auto bob_phone = cluster->Device("bob", "phone");
  ASSERT_TRUE(bob_phone->Login(cluster->client_port(1)));
  const TestDevice::ConversationsResult listed = bob_phone->ListConversations(2);
  ASSERT_TRUE(listed.ok) << listed.error;
  EXPECT_GE(listed.pages, 2);
  std::map<std::string, im::v1::Conversation> by_id;
  for (const im::v1::Conversation& c : listed.conversations) {
    EXPECT_TRUE(by_id.emplace(c.conv_id(), c).second) << c.conv_id() << " listed twice";
  }
  EXPECT_EQ(by_id.size(), 4u);
  for (const std::string& other : others) {
    ASSERT_EQ(by_id.count(other), 1u) << other;
    EXPECT_EQ(by_id[other].unread(), 1u);
    EXPECT_EQ(by_id[other].max_seq(), 1u);
  }
  ASSERT_EQ(by_id.count(conv), 1u);
  const im::v1::Conversation& before = by_id[conv];
  EXPECT_EQ(before.max_seq(), static_cast<uint64_t>(kMessages));
  EXPECT_EQ(before.unread(), static_cast<uint64_t>(kMessages));
  EXPECT_EQ(before.read_seq(), 0u);
  EXPECT_EQ(before.delivered_seq(), 0u);
  EXPECT_EQ(before.last_message().seq(), static_cast<uint64_t>(kMessages));
  EXPECT_EQ(before.last_message().sender(), alice);

  const TestDevice::SyncResult synced = bob_phone->SyncAll(conv, 0, 60);
  ASSERT_TRUE(synced.ok) << synced.error;
  EXPECT_GE(synced.pages, (kMessages + 59) / 60);
  EXPECT_TRUE(synced.holes.empty());
  EXPECT_EQ(synced.max_seq, static_cast<uint64_t>(kMessages));
  std::vector<uint64_t> all;
  for (uint64_t seq = 1; seq <= kMessages; ++seq) all.push_back(seq);
  EXPECT_TRUE(SeqsAre(synced.messages, all));
  for (const im::v1::Message& m : synced.messages) {
    auto it = index_of_seq.find(m.seq());
    ASSERT_NE(it, index_of_seq.end());
    EXPECT_EQ(m.msg_id(), resps[it->second]->msg_id()) << "seq " << m.seq();
    EXPECT_EQ(m.client_msg_id(), reqs[it->second].client_msg_id()) << "seq " << m.seq();
    EXPECT_EQ(m.body(), reqs[it->second].body()) << "seq " << m.seq();
    EXPECT_EQ(m.sender(), alice);
  }

  // The delivered cursor moves with an AckReq (no response: poll the conversation).
  ASSERT_TRUE(bob_phone->Ack(conv, kMessages));
  std::optional<im::v1::Conversation> acked;
  EXPECT_TRUE(bob_phone->WaitUntil(
      [&] {
        acked = bob_phone->FindConversation(conv);
        return acked && acked->delivered_seq() == kMessages;
      },
      Millis(10'000)))
      << (acked ? acked->ShortDebugString() : "conversation not listed");

  // Bob reads on his phone; alice (online) and bob's laptop get a ReadPush, the phone does not.
  auto bob_laptop = cluster->Device("bob", "laptop");
  ASSERT_TRUE(bob_laptop->Login(cluster->client_port(0)));
  std::optional<im::v1::ReadResp> read = bob_phone->Read(conv, kMessages);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status().code(), im::v1::OK) << read->ShortDebugString();
  EXPECT_EQ(read->read_seq(), static_cast<uint64_t>(kMessages));
  for (TestDevice* device : {alice_phone.get(), bob_laptop.get()}) {
    EXPECT_TRUE(device->WaitUntil([&] { return !device->read_pushes().empty(); }, kPushTimeout))
        << device->uid() << "/" << device->device() << " got no ReadPush";
    if (device->read_pushes().empty()) continue;
    const im::v1::ReadPush& push = device->read_pushes().back();
    EXPECT_EQ(push.conv_id(), conv);
    EXPECT_EQ(push.reader(), bob);
    EXPECT_EQ(push.read_seq(), static_cast<uint64_t>(kMessages));
  }
  bob_phone->Poll(kQuietPeriod);
  EXPECT_TRUE(bob_phone->read_pushes().empty())
      << "the reading connection was pushed its own receipt: "
      << bob_phone->read_pushes().front().ShortDebugString();

  std::optional<im::v1::Conversation> bob_after = bob_phone->FindConversation(conv);
  ASSERT_TRUE(bob_after.has_value());
  EXPECT_EQ(bob_after->unread(), 0u) << bob_after->ShortDebugString();
  EXPECT_EQ(bob_after->read_seq(), static_cast<uint64_t>(kMessages));
  std::optional<im::v1::Conversation> alice_view = alice_phone->FindConversation(conv);
  ASSERT_TRUE(alice_view.has_value());
  EXPECT_EQ(alice_view->peer_read_seq(), static_cast<uint64_t>(kMessages))
      << alice_view->ShortDebugString();
  EXPECT_EQ(alice_view->unread(), 0u) << "her own messages are not unread for her";
  EXPECT_EQ(alice_view->max_seq(), static_cast<uint64_t>(kMessages));

  // The read cursor never moves backwards.
  std::optional<im::v1::ReadResp> back = bob_phone->Read(conv, 100);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->status().code(), im::v1::OK);
  EXPECT_EQ(back->read_seq(), static_cast<uint64_t>(kMessages));
}

TEST_P(SingleChatTest, RetriedSendGetsTheSameSeqAndIsStoredOnce) {
  auto cluster = Deploy();
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  auto bob_phone = cluster->Device("bob", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(0)));
  ASSERT_TRUE(bob_phone->Login(cluster->client_port(1)));
  const std::string bob = bob_phone->uid();
  const std::string conv = SingleConvId(alice_phone->uid(), bob);

  const std::optional<im::v1::SendResp> first = alice_phone->SendTo(bob, "retry-me", "once");
  ASSERT_TRUE(IsOk(first)) << Describe(first);
  auto expect_same = [&](const std::optional<im::v1::SendResp>& again, const char* when) {
    ASSERT_TRUE(IsOk(again)) << when << ": " << Describe(again);
    EXPECT_EQ(again->seq(), first->seq()) << when;
    EXPECT_EQ(again->msg_id(), first->msg_id()) << when;
    EXPECT_EQ(again->conv_id(), conv) << when;
    EXPECT_EQ(again->client_msg_id(), "retry-me") << when;
  };
  expect_same(alice_phone->SendTo(bob, "retry-me", "once"), "immediate retry");
  // Named by conversation id instead of peer: the same send.
  expect_same(alice_phone->SendToConv(conv, "retry-me", "once"), "retry by conv_id");

  const std::optional<im::v1::SendResp> second = alice_phone->SendTo(bob, "next", "twice");
  ASSERT_TRUE(IsOk(second)) << Describe(second);
  EXPECT_EQ(second->seq(), first->seq() + 1);

  // The connection drops; the SDK reconnects through the other gateway and retries.
  alice_phone->Disconnect();
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(1)));
  expect_same(alice_phone->SendTo(bob, "retry-me", "once"), "retry after reconnecting");

  TestDevice reader(bob, "tablet", ChatDeployment::Token(bob));
  ASSERT_TRUE(reader.Login(cluster->client_port(0)));
  const TestDevice::SyncResult synced = reader.SyncAll(conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  EXPECT_TRUE(SeqsAre(synced.messages, {first->seq(), second->seq()}));
  EXPECT_EQ(synced.max_seq, second->seq());
  std::optional<im::v1::Conversation> listed = reader.FindConversation(conv);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->max_seq(), second->seq());
  EXPECT_EQ(listed->unread(), 2u);

  // Bob's phone may be pushed a retried message again (the SDK drops it by (conv, seq)), but
  // never a different message under the same seq.
  EXPECT_TRUE(bob_phone->WaitForPushed(conv, 2, kPushTimeout));
  bob_phone->Poll(kQuietPeriod);
  std::set<uint64_t> pushed_seqs;
  for (const PushedMessage& p : bob_phone->Pushed(conv)) pushed_seqs.insert(p.message.seq());
  EXPECT_EQ(pushed_seqs, (std::set<uint64_t>{first->seq(), second->seq()}));
  EXPECT_TRUE(bob_phone->conflicts().empty()) << bob_phone->conflicts().front();
}

// A retry pushes the stored message again: the first attempt's logic node may have died after
// storing it and before pushing it (its answer lost with it). A device that missed the first push
// gets the message from the retry; a device that had it drops the repeat by seq.
TEST_P(SingleChatTest, ARetriedSendIsPushedAgain) {
  auto cluster = Deploy();
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(0)));
  const std::string bob = cluster->Uid("bob");
  const std::string conv = SingleConvId(alice_phone->uid(), bob);
  const std::optional<im::v1::SendResp> first = alice_phone->SendTo(bob, "pushed-again", "hello");
  ASSERT_TRUE(IsOk(first)) << Describe(first);

  auto bob_phone = cluster->Device("bob", "phone");  // online only after the first push
  ASSERT_TRUE(bob_phone->Login(cluster->client_port(1)));
  const std::optional<im::v1::SendResp> again = alice_phone->SendTo(bob, "pushed-again", "hello");
  ASSERT_TRUE(IsOk(again)) << Describe(again);
  EXPECT_EQ(again->seq(), first->seq());
  ASSERT_TRUE(bob_phone->WaitForPushed(conv, 1, kPushTimeout))
      << "the retry pushed nothing to a device that missed the first push";
  const std::vector<PushedMessage> pushed = bob_phone->Pushed(conv);
  EXPECT_EQ(pushed.front().message.seq(), first->seq());
  EXPECT_EQ(pushed.front().message.msg_id(), first->msg_id());
  EXPECT_EQ(pushed.front().message.body(), "hello");
}

TEST_P(SingleChatTest, ConcurrentDuplicateSendsGetOneAnswer) {
  ClusterOptions options;
  options.gateways = 1;
  auto cluster = Deploy(options);
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(0)));
  const std::string bob = cluster->Uid("bob");
  const std::string conv = SingleConvId(alice_phone->uid(), bob);

  // The same send twice in flight at once (an SDK that retried on a timeout while the first
  // attempt was still being processed).
  im::v1::SendReq req;
  req.set_to_uid(bob);
  req.set_client_msg_id("twin");
  req.set_type(im::v1::TEXT);
  req.set_body("twin");
  const std::vector<std::optional<im::v1::SendResp>> resps =
      alice_phone->SendPipelined({req, req, req}, 3);
  ASSERT_TRUE(IsOk(resps[0])) << Describe(resps[0]);
  for (size_t i = 1; i < resps.size(); ++i) {
    ASSERT_TRUE(IsOk(resps[i])) << Describe(resps[i]);
    EXPECT_EQ(resps[i]->seq(), resps[0]->seq());
    EXPECT_EQ(resps[i]->msg_id(), resps[0]->msg_id());
  }
  const TestDevice::SyncResult synced = alice_phone->SyncAll(conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), 1u) << SeqList(SeqsOf(synced.messages));
  EXPECT_EQ(synced.messages[0].seq(), resps[0]->seq());
  EXPECT_EQ(synced.messages[0].client_msg_id(), "twin");
}

// Logs bob's phone in on `first_gateway`, then the same device on `second_gateway`.
void ExpectReloginKicksOlderConnectionAndKeepsNewOne(ChatDeployment& cluster, int first_gateway,
                                                     int second_gateway) {
  ASSERT_TRUE(cluster.Start());
  auto alice_phone = cluster.Device("alice", "phone");
  auto old_phone = cluster.Device("bob", "phone");
  auto new_phone = cluster.Device("bob", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster.client_port(0)));
  ASSERT_TRUE(old_phone->Login(cluster.client_port(first_gateway)));
  const std::string bob = old_phone->uid();
  const std::string conv = SingleConvId(alice_phone->uid(), bob);
  ASSERT_TRUE(IsOk(alice_phone->SendTo(bob, "before", "before the second login")));
  EXPECT_TRUE(old_phone->WaitForPushed(conv, 1, kPushTimeout));

  ASSERT_TRUE(new_phone->Login(cluster.client_port(second_gateway)));
  EXPECT_TRUE(old_phone->WaitUntil([&] { return !old_phone->kicks().empty(); }, Millis(10'000)))
      << "the older connection got no Kick";
  if (!old_phone->kicks().empty()) {
    EXPECT_EQ(old_phone->kicks().front().reason(), im::v1::Kick::LOGGED_IN_ELSEWHERE)
        << old_phone->kicks().front().ShortDebugString();
  }
  EXPECT_TRUE(old_phone->WaitClosed(Millis(10'000))) << "the older connection was not closed";
  // Closing the old connection sent logic a Disconnect for it; give a late one time to arrive.
  // It must not remove the new session.
  std::this_thread::sleep_for(Millis(1'000));

  const std::optional<im::v1::SendResp> after =
      alice_phone->SendTo(bob, "after", "after the second login");
  ASSERT_TRUE(IsOk(after)) << Describe(after);
  EXPECT_TRUE(new_phone->WaitForPushed(conv, 1, kPushTimeout))
      << "the new session received no push after the old connection closed";
  const std::vector<PushedMessage> pushed = new_phone->Pushed(conv);
  if (!pushed.empty()) {
    EXPECT_EQ(pushed.back().message.seq(), after->seq());
  }
  EXPECT_EQ(old_phone->PushedCount(conv), 1u);
  EXPECT_TRUE(new_phone->kicks().empty());
  EXPECT_TRUE(new_phone->connected());
}

TEST_P(SingleChatTest, ReloginOnAnotherGatewayKicksOlderConnection) {
  ExpectReloginKicksOlderConnectionAndKeepsNewOne(*Deploy(), 0, 1);
}

TEST_P(SingleChatTest, ReloginOnTheSameGatewayKicksOlderConnection) {
  ExpectReloginKicksOlderConnectionAndKeepsNewOne(*Deploy(), 1, 1);
}

// The device drops its old connection itself right after logging in again elsewhere, so the
// Disconnect of the old connection may reach logic after the new login: it must not remove it.
TEST_P(SingleChatTest, OldConnectionClosedAfterReloginDoesNotRemoveNewSession) {
  auto cluster = Deploy();
  ASSERT_TRUE(cluster->Start());
  auto alice_phone = cluster->Device("alice", "phone");
  auto old_phone = cluster->Device("bob", "phone");
  auto new_phone = cluster->Device("bob", "phone");
  ASSERT_TRUE(alice_phone->Login(cluster->client_port(1)));
  ASSERT_TRUE(old_phone->Login(cluster->client_port(0)));
  ASSERT_TRUE(new_phone->Login(cluster->client_port(1)));
  old_phone->Disconnect();
  std::this_thread::sleep_for(Millis(1'000));  // let the old connection's Disconnect land

  const std::string bob = new_phone->uid();
  const std::string conv = SingleConvId(alice_phone->uid(), bob);
  const std::optional<im::v1::SendResp> resp = alice_phone->SendTo(bob, "m", "still there?");
  ASSERT_TRUE(IsOk(resp)) << Describe(resp);
  EXPECT_TRUE(new_phone->WaitForPushed(conv, 1, kPushTimeout))
      << "the new session received no push after the old connection closed";
}

}  // namespace
}  // namespace im::e2e
