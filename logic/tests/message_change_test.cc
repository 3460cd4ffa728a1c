// Recall and edit (ChatService::Change) on in-process backends with a fake clock: who may change
// what and until when, the change as a message of its own, and the original's current version.
#include "logic/conversation/message_change.h"

#include <gtest/gtest.h>

#include "logic/conversation/chat_service.h"
#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class MessageChangeTest : public LogicFixture {
 protected:
  im::v1::SendResp Change(const std::string& uid, const std::string& conv_id,
                          im::v1::MessageType type, uint64_t ref_seq,
                          const std::string& client_msg_id, const std::string& body = "") {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf(uid);
    im::v1::SendReq& req = *request.mutable_req();
    req.set_conv_id(conv_id);
    req.set_type(type);
    req.set_ref_seq(ref_seq);
    req.set_client_msg_id(client_msg_id);
    req.set_body(body);
    return Call(&ChatService::Change, request);
  }
  // The message at `seq` as a sync shows it to `uid`.
  im::v1::Message Synced(const std::string& uid, const std::string& conv_id, uint64_t seq) {
    const im::v1::SyncResp sync = Sync(uid, conv_id, 0);
    for (const im::v1::Message& m : sync.messages()) {
      if (m.seq() == seq) return m;
    }
    ADD_FAILURE() << conv_id << " has no message " << seq << " for " << uid;
    return im::v1::Message();
  }
  std::string CreateGroup(const std::string& owner, const std::vector<std::string>& members) {
    im::v1::GroupCreateRequest request;
    *request.mutable_caller() = CallerOf(owner);
    request.mutable_req()->set_name("team");
    for (const std::string& uid : members) request.mutable_req()->add_members(uid);
    im::v1::GroupCreateResp resp = Call(&GroupService::Create, request);
    EXPECT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    return resp.conv_id();
  }
  im::v1::SendResp SendToGroup(const std::string& from, const std::string& conv_id,
                               const std::string& client_msg_id) {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf(from);
    request.mutable_req()->set_conv_id(conv_id);
    request.mutable_req()->set_client_msg_id(client_msg_id);
    request.mutable_req()->set_type(im::v1::TEXT);
    request.mutable_req()->set_body("to the group");
    return Call(&ChatService::Send, request);
  }
};

TEST_F(MessageChangeTest, AnEditIsAMessageOfItsOwnAndTheOriginalShowsTheNewBody) {
  ASSERT_EQ(Send("alice", "bob", "m1", "helo").seq(), 1u);
  now_ms_ += 5'000;
  im::v1::SendResp edit = Change("alice", "s:alice:bob", im::v1::EDIT, 1, "e1", "hello");
  ASSERT_EQ(edit.status().code(), im::v1::OK) << edit.status().message();
  EXPECT_EQ(edit.seq(), 2u);

  const im::v1::Message original = Synced("bob", "s:alice:bob", 1);
  EXPECT_EQ(original.body(), "hello");
  EXPECT_EQ(original.edited_ms(), kStartMs + 5'000);
  const im::v1::Message event = Synced("bob", "s:alice:bob", 2);
  EXPECT_EQ(event.type(), im::v1::EDIT);
  EXPECT_EQ(event.ref_seq(), 1u);
  EXPECT_EQ(event.body(), "hello");
  EXPECT_EQ(event.sender(), "alice");
}

TEST_F(MessageChangeTest, ARecallDeletesTheBodyAndARetryAnswersTheSameSeq) {
  ASSERT_EQ(Send("alice", "bob", "m1", "oops").seq(), 1u);
  im::v1::SendResp recall = Change("alice", "s:alice:bob", im::v1::RECALL, 1, "r1");
  ASSERT_EQ(recall.status().code(), im::v1::OK) << recall.status().message();
  im::v1::SendResp retry = Change("alice", "s:alice:bob", im::v1::RECALL, 1, "r1");
  // The original is recalled now, so a retry is judged NOT_CHANGEABLE... unless it is found as
  // the send it repeats. It must be: a lost answer is retried with the same client_msg_id.
  EXPECT_EQ(retry.status().code(), im::v1::OK) << retry.status().message();
  EXPECT_EQ(retry.seq(), recall.seq());
  EXPECT_TRUE(Synced("bob", "s:alice:bob", 1).recalled());
  EXPECT_EQ(Synced("bob", "s:alice:bob", 1).body(), "");
  EXPECT_EQ(Sync("bob", "s:alice:bob", 0).messages_size(), 2);
}

TEST_F(MessageChangeTest, OnlyTheSenderChangesAMessageWithinTheWindow) {
  ASSERT_EQ(Send("alice", "bob", "m1").seq(), 1u);
  EXPECT_EQ(Change("bob", "s:alice:bob", im::v1::EDIT, 1, "b1", "x").status().code(),
            im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Change("bob", "s:alice:bob", im::v1::RECALL, 1, "b2").status().code(),
            im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Change("carol", "s:alice:bob", im::v1::RECALL, 1, "c1").status().code(),
            im::v1::PERMISSION_DENIED);  // not a participant
  now_ms_ += options_.recall_window_ms + 1;
  EXPECT_EQ(Change("alice", "s:alice:bob", im::v1::RECALL, 1, "a1").status().code(),
            im::v1::CHANGE_WINDOW_PASSED);
  EXPECT_EQ(Change("alice", "s:alice:bob", im::v1::EDIT, 1, "a2", "still").status().code(),
            im::v1::OK)
      << "the edit window is longer";
  now_ms_ += options_.edit_window_ms;
  EXPECT_EQ(Change("alice", "s:alice:bob", im::v1::EDIT, 1, "a3", "late").status().code(),
            im::v1::CHANGE_WINDOW_PASSED);
  EXPECT_EQ(Synced("bob", "s:alice:bob", 1).body(), "still");
}

TEST_F(MessageChangeTest, BadChangesGetTheirCodeAndStoreNothing) {
  ASSERT_EQ(Send("alice", "bob", "m1").seq(), 1u);
  ASSERT_EQ(Change("alice", "s:alice:bob", im::v1::RECALL, 1, "r1").status().code(), im::v1::OK);
  const std::string conv = "s:alice:bob";
  EXPECT_EQ(Change("alice", conv, im::v1::EDIT, 1, "e1", "x").status().code(),
            im::v1::NOT_CHANGEABLE);  // recalled
  EXPECT_EQ(Change("alice", conv, im::v1::RECALL, 2, "e2").status().code(),
            im::v1::NOT_CHANGEABLE);  // a change itself
  EXPECT_EQ(Change("alice", conv, im::v1::RECALL, 9, "e3").status().code(), im::v1::NOT_FOUND);
  EXPECT_EQ(Change("alice", conv, im::v1::RECALL, 0, "e4").status().code(),
            im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(Change("alice", "", im::v1::RECALL, 1, "e5").status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(Change("alice", "x:y", im::v1::RECALL, 1, "e6").status().code(),
            im::v1::INVALID_CONVERSATION);
  ASSERT_EQ(Send("alice", "bob", "m2").seq(), 3u);
  EXPECT_EQ(Change("alice", conv, im::v1::EDIT, 3, "", "x").status().code(),
            im::v1::INVALID_ARGUMENT);  // no client_msg_id

  // A plain Send may not carry a change or a ref_seq: changes are judged by Change only.
  im::v1::SendRequest smuggled;
  *smuggled.mutable_caller() = CallerOf("alice");
  smuggled.mutable_req()->set_conv_id(conv);
  smuggled.mutable_req()->set_client_msg_id("s1");
  smuggled.mutable_req()->set_type(im::v1::EDIT);
  smuggled.mutable_req()->set_ref_seq(1);
  EXPECT_EQ(Call(&ChatService::Send, smuggled).status().code(), im::v1::INVALID_ARGUMENT);
  smuggled.mutable_req()->set_type(im::v1::TEXT);
  EXPECT_EQ(Call(&ChatService::Send, smuggled).status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(Sync("bob", conv, 0).messages_size(), 3);
}

TEST_F(MessageChangeTest, AGroupAdminRecallsAnyonesMessageAMemberOnlyTheirOwn) {
  const std::string conv = CreateGroup("alice", {"bob", "carol"});
  const uint64_t bobs = SendToGroup("bob", conv, "b1").seq();
  const uint64_t carols = SendToGroup("carol", conv, "c1").seq();
  ASSERT_GT(bobs, 0u);
  EXPECT_EQ(Change("carol", conv, im::v1::RECALL, bobs, "c2").status().code(),
            im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Change("alice", conv, im::v1::EDIT, bobs, "a1", "x").status().code(),
            im::v1::PERMISSION_DENIED)
      << "an admin recalls, never edits, another's message";
  EXPECT_EQ(Change("alice", conv, im::v1::RECALL, bobs, "a2").status().code(), im::v1::OK);
  EXPECT_EQ(Change("carol", conv, im::v1::RECALL, carols, "c3").status().code(), im::v1::OK);
  EXPECT_TRUE(Synced("bob", conv, bobs).recalled());
  EXPECT_TRUE(Synced("bob", conv, carols).recalled());
  EXPECT_EQ(Change("dave", conv, im::v1::RECALL, carols, "d1").status().code(), im::v1::NOT_MEMBER);
}

TEST(JudgeChangeTest, SystemMessagesAndChangesAreNotChangeable) {
  im::v1::Message original;
  original.set_sender("alice");
  original.set_created_ms(1'000);
  const ChangeWindows windows{60'000, 60'000};
  for (im::v1::MessageType type : {im::v1::SYSTEM, im::v1::RECALL, im::v1::EDIT}) {
    original.set_type(type);
    EXPECT_EQ(JudgeChange(original, im::v1::RECALL, {"alice", true}, 2'000, windows).code,
              im::v1::NOT_CHANGEABLE);
  }
  original.set_type(im::v1::IMAGE);
  EXPECT_TRUE(JudgeChange(original, im::v1::EDIT, {"alice", false}, 61'000, windows).ok());
  EXPECT_EQ(JudgeChange(original, im::v1::EDIT, {"alice", false}, 61'001, windows).code,
            im::v1::CHANGE_WINDOW_PASSED);
}

}  // namespace
}  // namespace im::logic::testing
