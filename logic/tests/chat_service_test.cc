// ChatService on in-process backends with a fake clock: send semantics, validation, sync paging
// and holes, conversations and read cursors.
#include "logic/conversation/chat_service.h"

#include <gtest/gtest.h>

#include <future>

#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class ChatServiceTest : public LogicFixture {
 protected:
  std::vector<im::v1::Conversation> ConversationsOf(const std::string& uid,
                                                    std::string page_token = {}, uint32_t limit = 0,
                                                    im::v1::ConversationsResp* last = nullptr) {
    im::v1::ConversationsRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_page_token(page_token);
    request.mutable_req()->set_limit(limit);
    im::v1::ConversationsResp resp = Call(&ChatService::Conversations, request);
    EXPECT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    if (last != nullptr) *last = resp;
    return {resp.conversations().begin(), resp.conversations().end()};
  }
};

TEST_F(ChatServiceTest, SendAssignsDenseSeqsAndAnswersWithTheStoredCoordinates) {
  for (uint64_t i = 1; i <= 3; ++i) {
    im::v1::SendResp resp = Send("alice", "bob", "m" + std::to_string(i));
    ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    EXPECT_EQ(resp.conv_id(), "s:alice:bob");
    EXPECT_EQ(resp.seq(), i);
    EXPECT_NE(resp.msg_id(), 0u);
    EXPECT_EQ(resp.server_time_ms(), kStartMs);
    EXPECT_EQ(resp.client_msg_id(), "m" + std::to_string(i));
  }
  im::v1::SyncResp sync = Sync("bob", "s:alice:bob", 0);
  ASSERT_EQ(sync.status().code(), im::v1::OK);
  ASSERT_EQ(sync.messages_size(), 3);
  EXPECT_EQ(sync.messages(0).body(), "hi");
  EXPECT_EQ(sync.messages(2).sender(), "alice");
  EXPECT_EQ(sync.max_seq(), 3u);
  EXPECT_FALSE(sync.has_more());
}

TEST_F(ChatServiceTest, ABatchOfSendsAnswersEachWithItsOwnOutcomeAndNumbersThemInOrder) {
  auto send = [](const std::string& from, const std::string& to, const std::string& cmid) {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf(from);
    request.mutable_req()->set_to_uid(to);
    request.mutable_req()->set_client_msg_id(cmid);
    request.mutable_req()->set_body("batched");
    return request;
  };
  const std::vector<im::v1::SendRequest> requests = {
      send("alice", "bob", "b1"), send("alice", "bob", ""),  // no client_msg_id
      send("alice", "bob", "b1"),                            // the same send again
      send("carol", "dan", "c1"), send("alice", "bob", "b2")};
  std::vector<std::promise<im::v1::SendResp>> answers(requests.size());
  std::vector<ChatService::Respond<im::v1::SendResp>> responds;
  for (auto& answer : answers) {
    responds.push_back([&answer](im::v1::SendResp resp) { answer.set_value(std::move(resp)); });
  }
  chat_->SendBatch(requests, std::move(responds));
  std::vector<im::v1::SendResp> resps;
  for (auto& answer : answers) {
    std::future<im::v1::SendResp> future = answer.get_future();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    resps.push_back(future.get());
  }
  EXPECT_EQ(resps[0].status().code(), im::v1::OK) << resps[0].status().message();
  EXPECT_EQ(resps[0].seq(), 1u);
  EXPECT_EQ(resps[1].status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(resps[2].status().code(), im::v1::OK) << resps[2].status().message();
  EXPECT_EQ(resps[2].seq(), 1u) << "the repeat got the first attempt's answer";
  EXPECT_EQ(resps[2].msg_id(), resps[0].msg_id());
  EXPECT_EQ(resps[3].conv_id(), "s:carol:dan");
  EXPECT_EQ(resps[3].seq(), 1u);
  EXPECT_EQ(resps[4].seq(), 2u) << "the repeat took a seq";
  EXPECT_EQ(Sync("alice", "s:alice:bob", 0).messages_size(), 2);
}

TEST_F(ChatServiceTest, RetriedSendReturnsTheOriginalAndStoresOnce) {
  im::v1::SendResp first = Send("alice", "bob", "same");
  ASSERT_EQ(first.status().code(), im::v1::OK);
  executor_->Shutdown();  // the dedup entry is written after the reply: let that happen
  for (int attempt = 0; attempt < 3; ++attempt) {
    im::v1::SendResp retry = Send("alice", "bob", "same", "a different body is ignored");
    ASSERT_EQ(retry.status().code(), im::v1::OK);
    EXPECT_EQ(retry.seq(), first.seq());
    EXPECT_EQ(retry.msg_id(), first.msg_id());
    EXPECT_EQ(retry.server_time_ms(), first.server_time_ms());
  }
  EXPECT_EQ(Sync("alice", "s:alice:bob", 0).messages_size(), 1);
}

TEST_F(ChatServiceTest, RetryWithoutADedupEntryIsStillStoredOnce) {
  im::v1::SendResp first = Send("alice", "bob", "once");
  ASSERT_EQ(first.status().code(), im::v1::OK);
  executor_->Shutdown();
  now_ms_ += int64_t{options_.dedup_ttl_sec} * 1000 + 1;  // the dedup entry has expired
  im::v1::SendResp retry = Send("alice", "bob", "once");
  ASSERT_EQ(retry.status().code(), im::v1::OK);
  EXPECT_EQ(retry.seq(), first.seq());
  EXPECT_EQ(retry.msg_id(), first.msg_id());
  EXPECT_EQ(messages_->ReadMessages("s:alice:bob", 0, 10)->messages.size(), 1u);
}

TEST_F(ChatServiceTest, BadSendsGetTheirCodeAndStoreNothing) {
  struct Case {
    std::string conv_id, to_uid, client_msg_id;
    im::v1::MessageType type;
    size_t body_bytes;
    im::v1::Code expected;
  };
  const std::vector<Case> cases = {
      {"", "bob", "", im::v1::TEXT, 1, im::v1::INVALID_ARGUMENT},
      {"", "bob", std::string(65, 'c'), im::v1::TEXT, 1, im::v1::INVALID_ARGUMENT},
      {"", "bob", "c1", im::v1::TEXT, options_.max_body_bytes + 1, im::v1::BODY_TOO_LARGE},
      {"", "bob", "c2", im::v1::SYSTEM, 1, im::v1::INVALID_ARGUMENT},
      {"", "alice", "c3", im::v1::TEXT, 1, im::v1::INVALID_CONVERSATION},
      {"", "", "c4", im::v1::TEXT, 1, im::v1::INVALID_CONVERSATION},
      {"chat-with-bob", "", "c5", im::v1::TEXT, 1, im::v1::INVALID_CONVERSATION},
      {"s:bob:alice", "", "c6", im::v1::TEXT, 1, im::v1::INVALID_CONVERSATION},
      {"s:bob:carol", "", "c7", im::v1::TEXT, 1, im::v1::PERMISSION_DENIED},
      {"s:alice:bob", "carol", "c8", im::v1::TEXT, 1, im::v1::INVALID_ARGUMENT},
      {"g:nosuchgroup", "", "c9", im::v1::TEXT, 1, im::v1::NOT_MEMBER},
  };
  for (const Case& c : cases) {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf("alice");
    request.mutable_req()->set_conv_id(c.conv_id);
    request.mutable_req()->set_to_uid(c.to_uid);
    request.mutable_req()->set_client_msg_id(c.client_msg_id);
    request.mutable_req()->set_type(c.type);
    request.mutable_req()->set_body(std::string(c.body_bytes, 'x'));
    im::v1::SendResp resp = Call(&ChatService::Send, request);
    EXPECT_EQ(resp.status().code(), c.expected)
        << "conv '" << c.conv_id << "' to '" << c.to_uid << "': " << resp.status().message();
    EXPECT_FALSE(resp.status().message().empty());
  }
  EXPECT_TRUE(ConversationsOf("alice").empty());
  EXPECT_TRUE(ConversationsOf("bob").empty());
}

TEST_F(ChatServiceTest, SyncPagesInSeqOrder) {
  for (int i = 0; i < 25; ++i) Send("alice", "bob", "p" + std::to_string(i));
  uint64_t after = 0;
  int pages = 0;
  for (bool more = true; more; ++pages) {
    im::v1::SyncResp page = Sync("bob", "s:alice:bob", after, 10);
    ASSERT_EQ(page.status().code(), im::v1::OK);
    for (const im::v1::Message& m : page.messages()) EXPECT_EQ(m.seq(), ++after);
    more = page.has_more();
  }
  EXPECT_EQ(after, 25u);
  EXPECT_EQ(pages, 3);
}

TEST_F(ChatServiceTest, SyncCapsTheLimitAndRefusesStrangers) {
  for (int i = 0; i < 5; ++i) Send("alice", "bob", "c" + std::to_string(i));
  options_.sync_page_max = 2;
  EXPECT_EQ(Sync("bob", "s:alice:bob", 0, 1000).messages_size(), 2);
  EXPECT_EQ(Sync("carol", "s:alice:bob", 0).status().code(), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Sync("carol", "nonsense", 0).status().code(), im::v1::INVALID_CONVERSATION);
}

TEST_F(ChatServiceTest, AYoungGapStopsSyncAndAnOldOneIsReportedAsAHole) {
  Send("alice", "bob", "before");                // seq 1
  ASSERT_TRUE(seqs_->Next("s:alice:bob").ok());  // seq 2: allocated, never persisted
  Send("alice", "bob", "after");                 // seq 3

  im::v1::SyncResp young = Sync("bob", "s:alice:bob", 0);
  ASSERT_EQ(young.messages_size(), 1);  // seq 2 may still be on its way
  EXPECT_EQ(young.messages(0).seq(), 1u);
  EXPECT_TRUE(young.has_more());
  EXPECT_EQ(young.holes_size(), 0);

  now_ms_ += options_.hole_grace_ms;
  im::v1::SyncResp old = Sync("bob", "s:alice:bob", 1);
  ASSERT_EQ(old.messages_size(), 1);
  EXPECT_EQ(old.messages(0).seq(), 3u);
  ASSERT_EQ(old.holes_size(), 1);
  EXPECT_EQ(old.holes(0).first(), 2u);
  EXPECT_EQ(old.holes(0).last(), 2u);
  EXPECT_FALSE(old.has_more());
}

// The embedded node after a restart: it alone writes its conversations, so a gap before a message
// stored before it started can never fill; a gap made since still waits out the grace period.
TEST_F(ChatServiceTest, OnASoleWriterAGapFromBeforeItStartedIsAHoleAtOnce) {
  Send("alice", "bob", "before");                // seq 1
  ASSERT_TRUE(seqs_->Next("s:alice:bob").ok());  // seq 2: in flight when the node died
  Send("alice", "bob", "after");                 // seq 3
  now_ms_ += 1;
  RestartChatService(/*sole_writer_since_ms=*/now_ms_.load());

  im::v1::SyncResp resp = Sync("bob", "s:alice:bob", 0);
  ASSERT_EQ(resp.messages_size(), 2);
  EXPECT_EQ(resp.messages(1).seq(), 3u);
  ASSERT_EQ(resp.holes_size(), 1);
  EXPECT_EQ(resp.holes(0).first(), 2u);
  EXPECT_FALSE(resp.has_more());

  ASSERT_TRUE(seqs_->Next("s:alice:bob").ok());  // seq 4: in flight now, may still land
  Send("alice", "bob", "since");                 // seq 5
  im::v1::SyncResp since = Sync("bob", "s:alice:bob", 3);
  EXPECT_EQ(since.messages_size(), 0);
  EXPECT_TRUE(since.has_more());
  EXPECT_EQ(since.holes_size(), 0);
}

TEST_F(ChatServiceTest, ConversationsCarryUnreadAndPage) {
  for (int i = 0; i < 4; ++i) Send("alice", "bob", "a" + std::to_string(i));
  Send("bob", "alice", "b0");
  for (const char* peer : {"carol", "dave"}) {
    now_ms_ += 1000;
    Send(peer, "bob", std::string("x-") + peer);
  }
  std::vector<im::v1::Conversation> all = ConversationsOf("bob");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].conv_id(), "s:alice:bob");
  EXPECT_EQ(all[0].max_seq(), 5u);
  EXPECT_EQ(all[0].unread(), 4u);  // bob's own message is not unread
  EXPECT_EQ(all[0].last_message().client_msg_id(), "b0");

  im::v1::ConversationsResp page;
  std::vector<std::string> seen;
  std::string token;
  do {
    for (const auto& c : ConversationsOf("bob", token, 2, &page)) seen.push_back(c.conv_id());
    token = page.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"s:alice:bob", "s:bob:carol", "s:bob:dave"}));

  im::v1::ConversationsRequest bad;
  *bad.mutable_caller() = CallerOf("bob");
  bad.mutable_req()->set_page_token("garbage");
  EXPECT_EQ(Call(&ChatService::Conversations, bad).status().code(), im::v1::INVALID_ARGUMENT);
}

TEST_F(ChatServiceTest, ReadMovesTheCursorForwardOnly) {
  for (int i = 0; i < 3; ++i) Send("alice", "bob", "r" + std::to_string(i));
  auto read = [this](const std::string& uid, const std::string& conv, uint64_t seq) {
    im::v1::ReadRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_conv_id(conv);
    request.mutable_req()->set_read_seq(seq);
    return Call(&ChatService::Read, request);
  };
  EXPECT_EQ(read("bob", "s:alice:bob", 2).read_seq(), 2u);
  EXPECT_EQ(read("bob", "s:alice:bob", 1).read_seq(), 2u);   // never backwards
  EXPECT_EQ(read("bob", "s:alice:bob", 99).read_seq(), 3u);  // never past max_seq
  EXPECT_EQ(read("bob", "s:bob:carol", 1).status().code(), im::v1::NOT_FOUND);
  EXPECT_EQ(read("carol", "s:alice:bob", 1).status().code(), im::v1::PERMISSION_DENIED);
  std::vector<im::v1::Conversation> alice = ConversationsOf("alice");
  ASSERT_EQ(alice.size(), 1u);
  EXPECT_EQ(alice[0].peer_read_seq(), 3u);
  EXPECT_EQ(ConversationsOf("bob")[0].unread(), 0u);
}

TEST_F(ChatServiceTest, AckMovesTheDeliveredCursorAndIgnoresForeignConversations) {
  for (int i = 0; i < 3; ++i) Send("alice", "bob", "k" + std::to_string(i));
  im::v1::AckRequest request;
  *request.mutable_caller() = CallerOf("bob");
  auto* cursor = request.mutable_req()->add_cursors();
  cursor->set_conv_id("s:alice:bob");
  cursor->set_seq(2);
  auto* foreign = request.mutable_req()->add_cursors();
  foreign->set_conv_id("s:alice:carol");
  foreign->set_seq(2);
  Call(&ChatService::Ack, request);
  executor_->Shutdown();
  std::vector<im::v1::Conversation> bob = ConversationsOf("bob");
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0].delivered_seq(), 2u);
}

}  // namespace
}  // namespace im::logic::testing
