// Recall, edit and typing through the SDK against the real binaries, on the cluster and on the
// embedded node: a change reaches online devices by push and offline ones by sync, history and
// the conversation list show the current version, refusals come back as codes, and typing reaches
// the others' online devices only, at most once an interval; a watched peer's presence reaches
// the SDK as it comes and goes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/v1/client.pb.h"
#include "sdk/client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/sdk_recorder.h"

namespace im::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kRecallWindowMs = 3'000;

class MessageChangeTest : public DeploymentTest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    // Short enough that a test can wait it out.
    options.logic_env = {{"IM_LOGIC_RECALL_WINDOW_MS", std::to_string(kRecallWindowMs)}};
    cluster_ = Deploy(options);
    alice_ = cluster_->Uid("alice");
    bob_ = cluster_->Uid("bob");
    carol_ = cluster_->Uid("carol");
    conv_ = SingleChat(alice_, bob_);
    ASSERT_TRUE(cluster_->Start());
  }

  std::unique_ptr<im::sdk::Client> Connect(const std::string& uid, SdkRecorder& seen,
                                           const std::string& device = "phone") {
    auto client = std::make_unique<im::sdk::Client>(
        OptionsFor(uid, device, {Address(cluster_->client_port(0))}), &seen);
    EXPECT_TRUE(StartAndWait(*client, seen)) << uid << " did not log in";
    return client;
  }

  // The outcome of the send `client_msg_id` once the SDK reports it.
  static im::sdk::SendResult WaitResult(SdkRecorder& seen, const std::string& client_msg_id) {
    im::sdk::SendResult result;
    EXPECT_TRUE(seen.WaitFor(
        [&](const SdkRecorder& r) {
          auto it = r.send_results().find(client_msg_id);
          if (it == r.send_results().end()) return false;
          result = it->second.front();
          return true;
        },
        seconds(15)))
        << "no result for " << client_msg_id;
    return result;
  }
  // Sends `body` from `client` to conv_id and returns its seq (0 when it failed).
  static uint64_t SendAndWait(im::sdk::Client& client, SdkRecorder& seen,
                              const std::string& conv_id, const std::string& body) {
    const im::sdk::SendResult result = WaitResult(seen, client.Send(conv_id, body));
    EXPECT_TRUE(result.status.ok()) << result.status.message;
    return result.seq;
  }
  static bool WaitDelivered(SdkRecorder& seen, const std::string& conv_id, size_t count) {
    return seen.WaitFor([&](const SdkRecorder& r) { return r.delivered_count(conv_id) >= count; },
                        seconds(15));
  }
  static im::sdk::HistoryPage History(im::sdk::Client& client, const std::string& conv_id) {
    std::promise<im::sdk::HistoryPage> page;
    client.LoadHistory(conv_id, 0, 50, [&page](im::sdk::Status status, im::sdk::HistoryPage p) {
      EXPECT_TRUE(status.ok()) << status.message;
      page.set_value(std::move(p));
    });
    return page.get_future().get();
  }
  static im::sdk::Conversation ConversationOf(im::sdk::Client& client, const std::string& conv_id) {
    std::promise<im::sdk::Conversation> found;
    client.ListConversations([&](im::sdk::Status status, std::vector<im::sdk::Conversation> list) {
      EXPECT_TRUE(status.ok()) << status.message;
      im::sdk::Conversation match;
      for (im::sdk::Conversation& c : list) {
        if (c.conv_id == conv_id) match = std::move(c);
      }
      found.set_value(std::move(match));
    });
    return found.get_future().get();
  }
  static const im::sdk::Message* AtSeq(const std::vector<im::sdk::Message>& messages,
                                       uint64_t seq) {
    for (const im::sdk::Message& m : messages) {
      if (m.seq == seq) return &m;
    }
    ADD_FAILURE() << "no message " << seq;
    return nullptr;
  }

  std::unique_ptr<ChatDeployment> cluster_;
  std::string alice_;
  std::string bob_;
  std::string carol_;
  std::string conv_;
};
IM_INSTANTIATE_DEPLOYMENTS(MessageChangeTest);

TEST_P(MessageChangeTest, AnEditIsPushedARecallReachesAnOfflineDeviceBySync) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  auto alice = Connect(alice_, alice_seen);
  auto bob = Connect(bob_, bob_seen);
  const uint64_t typo = SendAndWait(*alice, alice_seen, conv_, "helo");
  ASSERT_TRUE(WaitDelivered(bob_seen, conv_, 1));

  const im::sdk::SendResult edit = WaitResult(alice_seen, alice->Edit(conv_, typo, "hello"));
  ASSERT_TRUE(edit.status.ok()) << edit.status.message;
  ASSERT_TRUE(WaitDelivered(bob_seen, conv_, 2)) << "the edit was not pushed";
  const im::sdk::Message pushed = bob_seen.DeliveredCopy(conv_)[1];
  EXPECT_EQ(pushed.type, im::sdk::kMessageEdit);
  EXPECT_EQ(pushed.ref_seq, typo);
  EXPECT_EQ(pushed.body, "hello");
  EXPECT_EQ(pushed.seq, edit.seq);

  bob->Stop();  // offline while a message comes and is taken back
  const uint64_t oops = SendAndWait(*alice, alice_seen, conv_, "wrong chat");
  const im::sdk::SendResult recall = WaitResult(alice_seen, alice->Recall(conv_, oops));
  ASSERT_TRUE(recall.status.ok()) << recall.status.message;
  bob->Start();
  ASSERT_TRUE(WaitDelivered(bob_seen, conv_, 4)) << "the recall did not reach bob by sync";
  const std::vector<im::sdk::Message> synced = bob_seen.DeliveredCopy(conv_);
  EXPECT_EQ(CheckContiguous(synced, 1), "");
  EXPECT_TRUE(synced[2].recalled) << "sync shows the current version";
  EXPECT_EQ(synced[2].body, "");
  EXPECT_EQ(synced[3].type, im::sdk::kMessageRecall);
  EXPECT_EQ(synced[3].ref_seq, oops);

  const im::sdk::HistoryPage history = History(*alice, conv_);
  if (const im::sdk::Message* m = AtSeq(history.messages, typo)) {
    EXPECT_EQ(m->body, "hello");
    EXPECT_NE(m->edited_ms, 0);
  }
  if (const im::sdk::Message* m = AtSeq(history.messages, oops)) {
    EXPECT_TRUE(m->recalled);
  }
  const im::sdk::Conversation listed = ConversationOf(*bob, conv_);
  EXPECT_EQ(listed.last_message.seq, oops) << "the last message is the last content, recalled";
  EXPECT_TRUE(listed.last_message.recalled);
  EXPECT_EQ(listed.unread, 2u) << "changes are not unread";
}

TEST_P(MessageChangeTest, RefusedChangesAnswerWithTheirCode) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  auto alice = Connect(alice_, alice_seen);
  auto bob = Connect(bob_, bob_seen);
  const uint64_t seq = SendAndWait(*alice, alice_seen, conv_, "mine");
  auto code_of = [](SdkRecorder& seen, const std::string& id) {
    return WaitResult(seen, id).status.code;
  };
  EXPECT_EQ(code_of(bob_seen, bob->Edit(conv_, seq, "yours?")), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(code_of(bob_seen, bob->Recall(conv_, seq)), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(code_of(alice_seen, alice->Recall(conv_, seq + 100)), im::v1::NOT_FOUND);
  EXPECT_EQ(code_of(alice_seen, alice->Recall(SingleChat(alice_, carol_), 1)), im::v1::NOT_FOUND);
  const std::string group_of_others = "g:" + cluster_->Uid("nobodys-group");
  EXPECT_EQ(code_of(alice_seen, alice->Recall(group_of_others, 1)), im::v1::NOT_MEMBER);

  std::this_thread::sleep_for(milliseconds(kRecallWindowMs + 200));
  EXPECT_EQ(code_of(alice_seen, alice->Recall(conv_, seq)), im::v1::CHANGE_WINDOW_PASSED);
  const im::sdk::SendResult edit = WaitResult(alice_seen, alice->Edit(conv_, seq, "edits last"));
  ASSERT_TRUE(edit.status.ok()) << "the edit window is a day: " << edit.status.message;
  EXPECT_EQ(code_of(alice_seen, alice->Edit(conv_, edit.seq, "an edit of an edit")),
            im::v1::NOT_CHANGEABLE);
  // Each refusal was final and reported once; the connection lived through them all.
  for (const auto& [id, results] : alice_seen.send_results()) EXPECT_EQ(results.size(), 1u) << id;
  EXPECT_EQ(alice_seen.ConnectsCopy(), 1);
}

TEST_P(MessageChangeTest, AGroupAdminRecallsAMembersMessageForEveryone) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  SdkRecorder carol_seen;
  auto alice = Connect(alice_, alice_seen);
  auto bob = Connect(bob_, bob_seen);
  auto carol = Connect(carol_, carol_seen);
  std::promise<im::sdk::GroupCreated> created;
  alice->CreateGroup("team", {bob_, carol_},
                     [&created](im::sdk::Status status, im::sdk::GroupCreated group) {
                       EXPECT_TRUE(status.ok()) << status.message;
                       created.set_value(group);
                     });
  const std::string group = created.get_future().get().conv_id;
  const uint64_t spam = SendAndWait(*bob, bob_seen, group, "spam");
  ASSERT_TRUE(WaitDelivered(carol_seen, group, 1));
  EXPECT_EQ(WaitResult(carol_seen, carol->Recall(group, spam)).status.code,
            im::v1::PERMISSION_DENIED)
      << "a member recalls only their own";
  const im::sdk::SendResult recall = WaitResult(alice_seen, alice->Recall(group, spam));
  ASSERT_TRUE(recall.status.ok()) << recall.status.message;
  ASSERT_TRUE(WaitDelivered(carol_seen, group, 2));
  EXPECT_EQ(carol_seen.DeliveredCopy(group)[1].type, im::sdk::kMessageRecall);
  EXPECT_EQ(carol_seen.DeliveredCopy(group)[1].sender, alice_);
  const im::sdk::HistoryPage history = History(*carol, group);
  if (const im::sdk::Message* m = AtSeq(history.messages, spam)) {
    EXPECT_TRUE(m->recalled);
    EXPECT_EQ(m->body, "");
  }
}

TEST_P(MessageChangeTest, AnEditRacingAReadReceiptLeavesNothingUnread) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  auto alice = Connect(alice_, alice_seen);
  auto bob = Connect(bob_, bob_seen);
  const uint64_t seq = SendAndWait(*alice, alice_seen, conv_, "first draft");
  ASSERT_TRUE(WaitDelivered(bob_seen, conv_, 1));
  std::promise<uint64_t> read;
  bob->MarkRead(conv_, seq, [&read](im::sdk::Status status, uint64_t read_seq) {
    EXPECT_TRUE(status.ok()) << status.message;
    read.set_value(read_seq);
  });
  const std::string edit_id = alice->Edit(conv_, seq, "final");
  EXPECT_EQ(read.get_future().get(), seq);
  ASSERT_TRUE(WaitResult(alice_seen, edit_id).status.ok());
  ASSERT_TRUE(alice_seen.WaitFor([&](const SdkRecorder& r) { return !r.read_receipts().empty(); },
                                 seconds(10)));
  const im::sdk::Conversation listed = ConversationOf(*bob, conv_);
  EXPECT_EQ(listed.unread, 0u) << "an edit is not news to read";
  EXPECT_EQ(listed.last_message.body, "final");
  EXPECT_EQ(listed.read_seq, seq);
}

TEST_P(MessageChangeTest, TypingReachesTheOthersOnlineDevicesOncePerInterval) {
  SdkRecorder alice_seen;
  SdkRecorder alice_tablet_seen;
  SdkRecorder bob_seen;
  SdkRecorder carol_seen;
  auto alice = Connect(alice_, alice_seen);
  auto alice_tablet = Connect(alice_, alice_tablet_seen, "tablet");
  auto bob = Connect(bob_, bob_seen);
  auto carol = Connect(carol_, carol_seen);
  alice->Typing(conv_);
  alice->Typing(conv_);  // within the interval: dropped
  carol->Typing(conv_);  // not a participant: dropped
  ASSERT_TRUE(
      bob_seen.WaitFor([](const SdkRecorder& r) { return !r.typing().empty(); }, seconds(10)));
  std::this_thread::sleep_for(milliseconds(700));  // what else would come has come
  ASSERT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) {
        EXPECT_EQ(r.typing().size(), 1u);
        EXPECT_EQ(r.typing()[0].uid, alice_);
        EXPECT_EQ(r.typing()[0].conv_id, conv_);
        return true;
      },
      milliseconds(0)));
  ASSERT_TRUE(alice_tablet_seen.WaitFor(
      [](const SdkRecorder& r) {
        EXPECT_TRUE(r.typing().empty()) << "not to the typer's own devices";
        return true;
      },
      milliseconds(0)));
  EXPECT_EQ(carol_seen.ConnectsCopy(), 1) << "a dropped typing costs no connection";
  EXPECT_TRUE(SendAndWait(*carol, carol_seen, SingleChat(carol_, bob_), "still here") > 0);
}

// Presence through the SDK: alice watches bob (carol, a stranger, is refused) and hears him come
// and go, with a last-seen time when he leaves.
TEST_P(MessageChangeTest, PresenceOfAWatchedPeerReachesTheSdk) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  auto alice = Connect(alice_, alice_seen);
  ASSERT_GT(SendAndWait(*alice, alice_seen, conv_, "hi bob"), 0u);  // alice and bob talk
  std::promise<im::sdk::WatchedPresence> watched;
  alice->WatchPresence({bob_, carol_},
                       [&watched](im::sdk::Status status, im::sdk::WatchedPresence w) {
                         EXPECT_TRUE(status.ok()) << status.message;
                         watched.set_value(std::move(w));
                       });
  const im::sdk::WatchedPresence first = watched.get_future().get();
  EXPECT_EQ(first.refused, std::vector<std::string>{carol_}) << "carol never talked to alice";
  ASSERT_EQ(first.presences.size(), 1u);
  EXPECT_FALSE(first.presences[0].online);
  auto heard = [&](const std::function<bool(const im::sdk::Presence&)>& match) {
    return alice_seen.WaitFor(
        [&](const SdkRecorder& r) {
          for (const im::sdk::Presence& p : r.presences()) {
            if (p.uid == bob_ && match(p)) return true;
          }
          return false;
        },
        seconds(10));
  };
  auto bob = Connect(bob_, bob_seen);
  EXPECT_TRUE(heard([](const im::sdk::Presence& p) {
    return p.online && p.devices == std::vector<std::string>{"phone"};
  })) << "bob came online";
  bob->Stop();
  EXPECT_TRUE(heard([](const im::sdk::Presence& p) { return !p.online && p.last_seen_ms > 0; }))
      << "bob went offline, with a last-seen time";
}

}  // namespace
}  // namespace im::e2e
