// Groups on in-process backends: management rules, membership checks on send and sync, join and
// leave boundaries, and what a group send hands to the fan-out bus.
#include <gtest/gtest.h>

#include "logic/tests/logic_fixture.h"

namespace im::logic::testing {
namespace {

class GroupServiceTest : public LogicFixture {
 protected:
  template <typename Request>
  static Request By(const std::string& uid) {
    Request request;
    *request.mutable_caller() = CallerOf(uid);
    return request;
  }

  std::string Create(const std::string& owner, std::vector<std::string> members) {
    auto request = By<im::v1::GroupCreateRequest>(owner);
    request.mutable_req()->set_name("team");
    for (const std::string& uid : members) request.mutable_req()->add_members(uid);
    im::v1::GroupCreateResp resp = Call(&GroupService::Create, request);
    EXPECT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    EXPECT_EQ(resp.conv_id(), "g:" + resp.group_id());
    return resp.group_id();
  }
  im::v1::GroupJoinResp Join(const std::string& caller, const std::string& group,
                             std::vector<std::string> uids = {}) {
    auto request = By<im::v1::GroupJoinRequest>(caller);
    request.mutable_req()->set_group_id(group);
    for (const std::string& uid : uids) request.mutable_req()->add_uids(uid);
    return Call(&GroupService::Join, request);
  }
  im::v1::Code Leave(const std::string& caller, const std::string& group,
                     const std::string& uid = "") {
    auto request = By<im::v1::GroupLeaveRequest>(caller);
    request.mutable_req()->set_group_id(group);
    request.mutable_req()->set_uid(uid);
    return Call(&GroupService::Leave, request).status().code();
  }
  im::v1::Code SetRole(const std::string& caller, const std::string& group, const std::string& uid,
                       im::v1::GroupRole role) {
    auto request = By<im::v1::GroupSetRoleRequest>(caller);
    request.mutable_req()->set_group_id(group);
    request.mutable_req()->set_uid(uid);
    request.mutable_req()->set_role(role);
    return Call(&GroupService::SetRole, request).status().code();
  }
  im::v1::SendResp SendToGroup(const std::string& from, const std::string& group,
                               const std::string& client_msg_id) {
    auto request = By<im::v1::SendRequest>(from);
    request.mutable_caller()->set_request_id("req-" + client_msg_id);
    request.mutable_req()->set_conv_id("g:" + group);
    request.mutable_req()->set_client_msg_id(client_msg_id);
    request.mutable_req()->set_type(im::v1::TEXT);
    request.mutable_req()->set_body("hello " + client_msg_id);
    return Call(&ChatService::Send, request);
  }
  // Waits for the executor to run the pushes and publishes queued after the answers.
  std::vector<std::pair<im::v1::FanoutRecord, FanoutLane>> Published(size_t expected) {
    for (int i = 0; i < 500 && fanout_.published().size() < expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return fanout_.published();
  }
};

TEST_F(GroupServiceTest, MembersSendAndEachMessageIsPublishedWithItsSender) {
  const std::string group = Create("alice", {"bob", "carol"});
  im::v1::SendResp first = SendToGroup("bob", group, "m1");
  ASSERT_EQ(first.status().code(), im::v1::OK) << first.status().message();
  EXPECT_EQ(first.seq(), 1u);
  EXPECT_EQ(SendToGroup("alice", group, "m2").seq(), 2u);
  // A retry gets the same answer and stores nothing new, but publishes the message again: the
  // first attempt's node may have died before publishing it (devices drop the duplicate).
  EXPECT_EQ(SendToGroup("bob", group, "m1").seq(), 1u);
  auto published = Published(3);
  ASSERT_EQ(published.size(), 3u);
  EXPECT_EQ(published[2].first.message().seq(), 1u);
  EXPECT_EQ(published[2].first.message().msg_id(), first.msg_id());
  EXPECT_EQ(*messages_->MaxSeq("g:" + group), 2u);
  EXPECT_EQ(published[0].first.message().seq(), 1u);
  EXPECT_EQ(published[0].first.message().sender(), "bob");
  EXPECT_EQ(published[0].first.sender_gateway_id(), "gw-1");
  // The send's request id travels with the record, so that fan-out logs can name it.
  EXPECT_EQ(published[0].first.request_id(), "req-m1");
  EXPECT_EQ(published[1].first.request_id(), "req-m2");
  EXPECT_EQ(published[0].second, FanoutLane::kSmall);
  EXPECT_EQ(published[1].first.message().seq(), 2u);
  im::v1::SyncResp sync = Sync("carol", "g:" + group, 0);
  ASSERT_EQ(sync.status().code(), im::v1::OK);
  ASSERT_EQ(sync.messages_size(), 2);
  EXPECT_EQ(sync.messages(1).body(), "hello m2");
}

TEST_F(GroupServiceTest, NonMembersAreRefusedAndNothingIsStored) {
  const std::string group = Create("alice", {"bob"});
  EXPECT_EQ(SendToGroup("mallory", group, "x").status().code(), im::v1::NOT_MEMBER);
  EXPECT_EQ(SendToGroup("mallory", "nosuchgroup", "y").status().code(), im::v1::NOT_MEMBER);
  EXPECT_EQ(Sync("mallory", "g:" + group, 0).status().code(), im::v1::NOT_MEMBER);
  EXPECT_EQ(*messages_->MaxSeq("g:" + group), 0u);
  EXPECT_TRUE(Published(0).empty());
  EXPECT_EQ(SendToGroup("bob", "bad.id", "z").status().code(), im::v1::INVALID_CONVERSATION);
}

TEST_F(GroupServiceTest, AJoinerSeesOnlyWhatCameAfterItsJoinAndALeaverNothingMore) {
  const std::string group = Create("alice", {});
  ASSERT_EQ(SendToGroup("alice", group, "before").status().code(), im::v1::OK);
  im::v1::GroupJoinResp joined = Join("dave", group);
  ASSERT_EQ(joined.status().code(), im::v1::OK);
  EXPECT_EQ(joined.joined_seq(), 1u);
  ASSERT_EQ(SendToGroup("alice", group, "after").status().code(), im::v1::OK);
  im::v1::SyncResp sync = Sync("dave", "g:" + group, 0);
  ASSERT_EQ(sync.messages_size(), 1);
  EXPECT_EQ(sync.messages(0).body(), "hello after");
  // What came before the join is a hole for dave, so a device asking from 0 does not wait for it.
  ASSERT_EQ(sync.holes_size(), 1);
  EXPECT_EQ(sync.holes(0).first(), 1u);
  EXPECT_EQ(sync.holes(0).last(), 1u);
  EXPECT_TRUE(Sync("dave", "g:" + group, 1).holes().empty());

  ASSERT_EQ(Leave("dave", group), im::v1::OK);
  EXPECT_EQ(SendToGroup("dave", group, "gone").status().code(), im::v1::NOT_MEMBER);
  EXPECT_EQ(Sync("dave", "g:" + group, 0).status().code(), im::v1::NOT_MEMBER);
  EXPECT_TRUE(messages_->ListConversations("dave", 0, std::nullopt, 10)->empty());
}

TEST_F(GroupServiceTest, ConversationsListTheGroupWithUnreadFromTheJoin) {
  const std::string group = Create("alice", {"bob"});
  for (const char* id : {"a", "b", "c"}) ASSERT_EQ(SendToGroup("alice", group, id).seq() > 0, true);
  auto request = By<im::v1::ConversationsRequest>("bob");
  im::v1::ConversationsResp resp = Call(&ChatService::Conversations, request);
  ASSERT_EQ(resp.conversations_size(), 1);
  EXPECT_EQ(resp.conversations(0).conv_id(), "g:" + group);
  EXPECT_EQ(resp.conversations(0).unread(), 3u);
  EXPECT_EQ(resp.conversations(0).max_seq(), 3u);
}

TEST_F(GroupServiceTest, RolesDecideWhoAddsRemovesAndPromotes) {
  const std::string group = Create("owner", {"admin", "m1", "m2"});
  EXPECT_EQ(Join("m1", group, {"x"}).status().code(), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(SetRole("m1", group, "admin", im::v1::ADMIN), im::v1::PERMISSION_DENIED);
  ASSERT_EQ(SetRole("owner", group, "admin", im::v1::ADMIN), im::v1::OK);
  EXPECT_EQ(Join("admin", group, {"x", "y"}).status().code(), im::v1::OK);
  EXPECT_EQ(Leave("m1", group, "m2"), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Leave("admin", group, "m2"), im::v1::OK);
  EXPECT_EQ(Leave("admin", group, "owner"), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(Leave("admin", group, "nobody"), im::v1::NOT_MEMBER);
  EXPECT_EQ(Leave("owner", group), im::v1::FAILED_PRECONDITION);  // hand over first
  ASSERT_EQ(SetRole("owner", group, "admin", im::v1::OWNER), im::v1::OK);
  EXPECT_EQ(Leave("owner", group), im::v1::OK);
  EXPECT_EQ(Leave("admin", group, "x"), im::v1::OK);  // the new owner removes anyone
}

TEST_F(GroupServiceTest, TheMemberCapIsGroupFull) {
  options_.group_member_cap = 3;
  auto request = By<im::v1::GroupCreateRequest>("owner");
  for (const char* uid : {"a", "b", "c"}) request.mutable_req()->add_members(uid);
  EXPECT_EQ(Call(&GroupService::Create, request).status().code(), im::v1::GROUP_FULL);
  const std::string group = Create("owner", {"a", "b"});
  EXPECT_EQ(Join("c", group).status().code(), im::v1::GROUP_FULL);
  ASSERT_EQ(Leave("b", group), im::v1::OK);
  EXPECT_EQ(Join("c", group).status().code(), im::v1::OK);
  EXPECT_EQ(Join("c", "nosuchgroup").status().code(), im::v1::NOT_FOUND);
}

TEST_F(GroupServiceTest, MembersArePagedInUidOrderWithRoles) {
  std::vector<std::string> members;
  for (int i = 0; i < 7; ++i) members.push_back("u" + std::to_string(i));
  const std::string group = Create("owner", members);
  std::vector<std::string> seen;
  std::string token;
  do {
    auto request = By<im::v1::GroupMembersRequest>("u3");
    request.mutable_req()->set_group_id(group);
    request.mutable_req()->set_limit(3);
    request.mutable_req()->set_page_token(token);
    im::v1::GroupMembersResp page = Call(&GroupService::Members, request);
    ASSERT_EQ(page.status().code(), im::v1::OK);
    ASSERT_LE(page.members_size(), 3);
    for (const auto& member : page.members()) {
      seen.push_back(member.uid());
      EXPECT_EQ(member.role(), member.uid() == "owner" ? im::v1::OWNER : im::v1::MEMBER);
    }
    token = page.next_page_token();
  } while (!token.empty());
  members.insert(members.begin(), "owner");  // "owner" < "u0"
  EXPECT_EQ(seen, members);
  auto outsider = By<im::v1::GroupMembersRequest>("mallory");
  outsider.mutable_req()->set_group_id(group);
  EXPECT_EQ(Call(&GroupService::Members, outsider).status().code(), im::v1::NOT_MEMBER);
}

TEST_F(GroupServiceTest, GroupsAboveTheThresholdUseTheLargeLane) {
  options_.group_large_threshold = 2;
  const std::string group = Create("alice", {"bob", "carol"});
  ASSERT_EQ(SendToGroup("alice", group, "big").status().code(), im::v1::OK);
  auto published = Published(1);
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].second, FanoutLane::kLarge);
}

// The copy the lane is chosen by: what the last membership check read, until the group changes.
TEST_F(GroupServiceTest, ANodesLastCopyOfAListIsKeptUntilItsGroupChanges) {
  const std::string group = Create("alice", {"bob"});
  ASSERT_EQ(SendToGroup("alice", group, "hi").status().code(), im::v1::OK);
  std::shared_ptr<const MemberLists::List> copy = member_lists_->LastLocalCopy(group);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->size(), 2u);
  ASSERT_TRUE(member_lists_->Invalidate(group).ok());
  EXPECT_EQ(member_lists_->LastLocalCopy(group), nullptr);
}

}  // namespace
}  // namespace im::logic::testing
