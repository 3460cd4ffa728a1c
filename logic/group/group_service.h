#pragma once

#include <functional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/conversation/msg_id_generator.h"
#include "logic/group/member_lists.h"
#include "logic/logic_options.h"
#include "store/group_store.h"
#include "store/message_store.h"

namespace im::logic {

// Group management (DESIGN.md sections 6 and 7): create, join, leave, members, roles.
// The creator is OWNER. Anyone may join a group by id; an OWNER or ADMIN may add others and
// remove MEMBERs; only the OWNER may remove an ADMIN, change roles or hand the group over, and
// the OWNER leaves only after handing it over (or as its last member). A member joins at the
// group's highest stored seq and sees what comes after it; leaving drops the group from the
// member's conversations, and pushes and Sync stop with it.
// Every change lands in MySQL first, then invalidates the cached member list, then moves the
// members' conversation rows; each step is idempotent, so a client retries a failed call.
// Methods run on logic's executor and may block; each answers through `respond` exactly once.
class GroupService {
 public:
  template <typename Response>
  using Respond = absl::AnyInvocable<void(Response) &&>;
  using Clock = common::MillisClock;  // Unix milliseconds

  GroupService(const LogicOptions& options, store::GroupStore* groups,
               store::MessageStore* messages, MemberLists* members, MsgIdGenerator* ids,
               Clock now_ms);

  void Create(const im::v1::GroupCreateRequest& request, Respond<im::v1::GroupCreateResp> respond);
  void Join(const im::v1::GroupJoinRequest& request, Respond<im::v1::GroupJoinResp> respond);
  void Leave(const im::v1::GroupLeaveRequest& request, Respond<im::v1::GroupLeaveResp> respond);
  void Members(const im::v1::GroupMembersRequest& request,
               Respond<im::v1::GroupMembersResp> respond);
  void SetRole(const im::v1::GroupSetRoleRequest& request,
               Respond<im::v1::GroupSetRoleResp> respond);

 private:
  // After a committed change: the member list cache and the members' conversation rows.
  absl::Status AfterJoin(const std::string& group_id, const std::vector<store::GroupMember>& added);
  absl::Status AfterLeave(const std::string& group_id, const std::string& uid);

  const LogicOptions& options_;
  store::GroupStore* groups_;
  store::MessageStore* messages_;
  MemberLists* members_;
  MsgIdGenerator* ids_;
  Clock now_ms_;
};

// "g:<group_id>".
std::string GroupConversation(const std::string& group_id);

}  // namespace im::logic
