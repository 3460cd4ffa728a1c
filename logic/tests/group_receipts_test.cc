// Group read receipts (ChatService::Readers) on in-process backends: counts and names by the
// members' read cursors, counts only above the size limit, and bad requests refused.
#include <gtest/gtest.h>

#include "logic/conversation/chat_service.h"
#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class GroupReceiptsTest : public LogicFixture {
 protected:
  void SetUp() override {
    im::v1::GroupCreateRequest create;
    *create.mutable_caller() = CallerOf("alice");
    create.mutable_req()->set_name("team");
    for (const char* uid : {"bob", "carol", "dan"}) create.mutable_req()->add_members(uid);
    im::v1::GroupCreateResp created = Call(&GroupService::Create, create);
    ASSERT_EQ(created.status().code(), im::v1::OK) << created.status().message();
    group_ = created.conv_id();
    now_ms_ += 1'000;  // messages come after the members joined
  }
  uint64_t SendToGroup(const std::string& from, const std::string& client_msg_id) {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf(from);
    request.mutable_req()->set_conv_id(group_);
    request.mutable_req()->set_client_msg_id(client_msg_id);
    request.mutable_req()->set_type(im::v1::TEXT);
    request.mutable_req()->set_body("hello");
    im::v1::SendResp resp = Call(&ChatService::Send, request);
    EXPECT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    return resp.seq();
  }
  void MarkRead(const std::string& uid, uint64_t seq) {
    im::v1::ReadRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_conv_id(group_);
    request.mutable_req()->set_read_seq(seq);
    ASSERT_EQ(Call(&ChatService::Read, request).status().code(), im::v1::OK);
  }
  im::v1::ReadersResp Readers(const std::string& uid, const std::string& conv_id, uint64_t seq,
                              bool names, const std::string& page_token = "", uint32_t limit = 0) {
    im::v1::ReadersRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_conv_id(conv_id);
    request.mutable_req()->set_seq(seq);
    request.mutable_req()->set_names(names);
    request.mutable_req()->set_page_token(page_token);
    request.mutable_req()->set_limit(limit);
    return Call(&ChatService::Readers, request);
  }

  std::string group_;
};

TEST_F(GroupReceiptsTest, CountsAndNamesTheMembersWhoReadIt) {
  const uint64_t seq = SendToGroup("bob", "b1");
  MarkRead("alice", seq);
  MarkRead("dan", seq);
  im::v1::ReadersResp resp = Readers("bob", group_, seq, true);
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
  EXPECT_EQ(resp.read_count(), 2u);
  EXPECT_EQ(resp.unread_count(), 1u);  // carol; bob, the sender, is not counted
  EXPECT_FALSE(resp.counts_only());
  EXPECT_EQ(std::vector<std::string>(resp.readers().begin(), resp.readers().end()),
            (std::vector<std::string>{"alice", "dan"}));

  const im::v1::ReadersResp first = Readers("carol", group_, seq, true, "", 1);
  ASSERT_EQ(first.readers_size(), 1);
  EXPECT_EQ(first.readers(0), "alice");
  EXPECT_EQ(first.next_page_token(), "alice");
  const im::v1::ReadersResp second = Readers("carol", group_, seq, true, "alice", 1);
  ASSERT_EQ(second.readers_size(), 1);
  EXPECT_EQ(second.readers(0), "dan");
  EXPECT_TRUE(second.next_page_token().empty());
}

TEST_F(GroupReceiptsTest, AboveTheLimitOnlyCounts) {
  options_.receipt_max_group_members = 3;  // the group has 4
  const uint64_t seq = SendToGroup("bob", "b1");
  MarkRead("alice", seq);
  const im::v1::ReadersResp resp = Readers("bob", group_, seq, true);
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
  EXPECT_TRUE(resp.counts_only());
  EXPECT_EQ(resp.read_count(), 1u);
  EXPECT_EQ(resp.readers_size(), 0);
}

TEST_F(GroupReceiptsTest, BadRequestsGetTheirCode) {
  const uint64_t seq = SendToGroup("bob", "b1");
  EXPECT_EQ(Readers("erin", group_, seq, true).status().code(), im::v1::NOT_MEMBER);
  EXPECT_EQ(Readers("bob", group_, seq + 5, true).status().code(), im::v1::NOT_FOUND);
  EXPECT_EQ(Readers("bob", group_, 0, true).status().code(), im::v1::NOT_FOUND);
  ASSERT_EQ(Send("alice", "bob", "s1").status().code(), im::v1::OK);
  EXPECT_EQ(Readers("bob", "s:alice:bob", 1, true).status().code(), im::v1::INVALID_CONVERSATION);
  EXPECT_EQ(Readers("bob", "nonsense", 1, true).status().code(), im::v1::INVALID_CONVERSATION);
}

}  // namespace
}  // namespace im::logic::testing
