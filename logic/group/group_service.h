#pragma once

#include <functional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/conversation/msg_id_generator.h"
#include "logic/group/member_lists.h"
#include "logic/logic_options.h"
#include "nlohmann/json.hpp"
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

  // Posts `body` (JSON) as a SYSTEM message from kSystemUid in the group's conversation, with
  // `notice_id` as its client_msg_id, and hands `done` the send's answer (on any thread). Called
  // on the executor.
  using PostNotice =
      std::function<void(const std::string& group_id, const std::string& notice_id,
                         std::string body, absl::AnyInvocable<void(im::v1::SendResp) &&> done)>;

  // `post_notice` (empty: none) posts the group's system notices (docs/admin-api.md): created,
  // member joined, left or removed, role changed. A call that changed the group is answered once
  // its notice is posted (or failed: logged), so a member's client sees the notices of changes
  // made one after another in that order.
  GroupService(const LogicOptions& options, store::GroupStore* groups,
               store::MessageStore* messages, MemberLists* members, MsgIdGenerator* ids,
               Clock now_ms, PostNotice post_notice = {});

  void Create(const im::v1::GroupCreateRequest& request, Respond<im::v1::GroupCreateResp> respond);
  void Join(const im::v1::GroupJoinRequest& request, Respond<im::v1::GroupJoinResp> respond);
  void Leave(const im::v1::GroupLeaveRequest& request, Respond<im::v1::GroupLeaveResp> respond);
  void Members(const im::v1::GroupMembersRequest& request,
               Respond<im::v1::GroupMembersResp> respond);
  void SetRole(const im::v1::GroupSetRoleRequest& request,
               Respond<im::v1::GroupSetRoleResp> respond);
  // The admin API's dismissal: tells the members (a "group_dismissed" notice), then deletes the
  // group and its memberships and takes it out of the members' conversations. Returns the uids
  // that were members; NOT_FOUND when there is no such group. Blocks.
  absl::StatusOr<std::vector<std::string>> Dismiss(const im::v1::Caller& by,
                                                   const std::string& group_id);
  // The admin API's removal of many members at once, with one "member_removed" notice naming
  // them: `done` gets how many were members. The owner is not removed (FAILED_PRECONDITION,
  // nobody removed); NOT_FOUND when there is no such group. Blocks.
  void RemoveMembers(const im::v1::Caller& by, const std::string& group_id,
                     const std::vector<std::string>& uids,
                     absl::AnyInvocable<void(absl::StatusOr<size_t>) &&> done);

 private:
  // Posts `notice` (its "event" set; group_id and the acting uid are added) as the group's
  // system notice, then runs `then`, also when the notice could not be posted (logged).
  void Announce(const std::string& group_id, const im::v1::Caller& by, nlohmann::json notice,
                absl::AnyInvocable<void() &&> then);
  // After a committed change: the member list cache and the members' conversation rows.
  absl::Status AfterJoin(const std::string& group_id, const std::vector<store::GroupMember>& added);
  absl::Status AfterLeave(const std::string& group_id, const std::string& uid);

  const LogicOptions& options_;
  store::GroupStore* groups_;
  store::MessageStore* messages_;
  MemberLists* members_;
  MsgIdGenerator* ids_;
  Clock now_ms_;
  PostNotice post_notice_;
};

// "g:<group_id>".
std::string GroupConversation(const std::string& group_id);

}  // namespace im::logic
