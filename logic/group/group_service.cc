#include "logic/group/group_service.h"

#include <set>

#include "common/logging.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/reply_status.h"
#include "store/group_rules.h"

namespace im::logic {
namespace {

// A group id from a msg id: time-ordered, unique per cluster, short ([0-9a-z]).
std::string NewGroupId(uint64_t id) {
  constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string text;
  do {
    text.insert(text.begin(), kDigits[id % 36]);
    id /= 36;
  } while (id != 0);
  return text;
}

bool CanManage(im::v1::GroupRole role) { return role == im::v1::OWNER || role == im::v1::ADMIN; }

// The caller's membership, or the code that refuses a caller who is not a member.
struct CallerMembership {
  std::optional<store::GroupMember> member;
  im::v1::Code code = im::v1::OK;
  std::string reason;
};

CallerMembership MembershipOf(MemberLists* members, const std::string& group_id,
                              const std::string& uid) {
  CallerMembership result;
  if (!store::CheckGroupId(group_id).ok()) {
    result.code = im::v1::INVALID_ARGUMENT;
    result.reason = "group_id must be 1-64 bytes of [A-Za-z0-9_-]";
    return result;
  }
  absl::StatusOr<std::optional<store::GroupMember>> found = members->Find(group_id, uid);
  if (!found.ok()) {
    result.code = CodeOf(found.status());
    result.reason = std::string(found.status().message());
  } else if (!found->has_value()) {
    result.code = im::v1::NOT_MEMBER;
    result.reason = "not a member of this group";
  } else {
    result.member = std::move(**found);
  }
  return result;
}

}  // namespace

std::string GroupConversation(const std::string& group_id) { return "g:" + group_id; }

GroupService::GroupService(const LogicOptions& options, store::GroupStore* groups,
                           store::MessageStore* messages, MemberLists* members, MsgIdGenerator* ids,
                           Clock now_ms)
    : options_(options),
      groups_(groups),
      messages_(messages),
      members_(members),
      ids_(ids),
      now_ms_(std::move(now_ms)) {}

absl::Status GroupService::AfterJoin(const std::string& group_id,
                                     const std::vector<store::GroupMember>& added) {
  absl::Status status = members_->Invalidate(group_id);
  const std::string conv_id = GroupConversation(group_id);
  for (const store::GroupMember& member : added) {
    if (!status.ok()) break;
    status = messages_->JoinConversation(member.uid, conv_id, member.joined_seq, member.joined_ms);
  }
  return status;
}

absl::Status GroupService::AfterLeave(const std::string& group_id, const std::string& uid) {
  absl::Status status = members_->Invalidate(group_id);
  if (status.ok()) status = messages_->LeaveConversation(uid, GroupConversation(group_id));
  return status;
}

void GroupService::Create(const im::v1::GroupCreateRequest& request,
                          Respond<im::v1::GroupCreateResp> respond) {
  const im::v1::GroupCreateReq& req = request.req();
  const std::string& owner = request.caller().uid();
  im::v1::GroupCreateResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  if (!store::CheckGroupName(req.name()).ok()) {
    return answer(im::v1::INVALID_ARGUMENT, "name must be at most 128 bytes of UTF-8");
  }
  const int64_t now = now_ms_();
  std::vector<store::GroupMember> members = {{owner, im::v1::OWNER, 0, now}};
  std::set<std::string> seen = {owner};
  for (const std::string& uid : req.members()) {
    if (!IsValidUid(uid)) return answer(im::v1::INVALID_ARGUMENT, "members holds an invalid uid");
    if (seen.insert(uid).second) members.push_back({uid, im::v1::MEMBER, 0, now});
  }
  if (members.size() > options_.group_member_cap) {
    return answer(im::v1::GROUP_FULL,
                  fmt::format("a group holds at most {} members", options_.group_member_cap));
  }
  store::Group group;
  group.group_id = NewGroupId(ids_->Next());
  group.name = req.name();
  group.owner = owner;
  group.created_ms = now;
  absl::Status status = groups_->CreateGroup(group, members, options_.group_member_cap);
  if (status.ok()) status = AfterJoin(group.group_id, members);
  if (!status.ok()) {
    // The group may exist without every member's conversation row; the creator cannot retry
    // the same creation, but members still see its messages by id (Sync) and join repairs it.
    return answer(CodeOf(status), std::string(status.message()));
  }
  resp.set_group_id(group.group_id);
  resp.set_conv_id(GroupConversation(group.group_id));
  spdlog::info("group {} created by {} with {} members", group.group_id, owner, members.size());
  answer(im::v1::OK, "");
}

void GroupService::Join(const im::v1::GroupJoinRequest& request,
                        Respond<im::v1::GroupJoinResp> respond) {
  const im::v1::GroupJoinReq& req = request.req();
  const std::string& caller = request.caller().uid();
  im::v1::GroupJoinResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  if (!store::CheckGroupId(req.group_id()).ok()) {
    return answer(im::v1::INVALID_ARGUMENT, "group_id must be 1-64 bytes of [A-Za-z0-9_-]");
  }
  std::vector<std::string> uids(req.uids().begin(), req.uids().end());
  const bool adds_others = !(uids.empty() || (uids.size() == 1 && uids[0] == caller));
  if (uids.empty()) uids.push_back(caller);
  for (const std::string& uid : uids) {
    if (!IsValidUid(uid)) return answer(im::v1::INVALID_ARGUMENT, "uids holds an invalid uid");
  }
  if (adds_others) {
    CallerMembership membership = MembershipOf(members_, req.group_id(), caller);
    if (!membership.member) return answer(membership.code, membership.reason);
    if (!CanManage(membership.member->role)) {
      return answer(im::v1::PERMISSION_DENIED, "only the owner or an admin may add members");
    }
  }
  // New members see what is stored after this point.
  absl::StatusOr<uint64_t> max_seq = messages_->MaxSeq(GroupConversation(req.group_id()));
  if (!max_seq.ok())
    return answer(CodeOf(max_seq.status()), std::string(max_seq.status().message()));
  const int64_t now = now_ms_();
  std::vector<store::GroupMember> requested;
  for (const std::string& uid : uids) requested.push_back({uid, im::v1::MEMBER, *max_seq, now});
  absl::StatusOr<std::vector<store::GroupMember>> stored =
      groups_->AddMembers(req.group_id(), requested, options_.group_member_cap);
  if (!stored.ok()) {
    if (stored.status().code() == absl::StatusCode::kResourceExhausted) {
      return answer(im::v1::GROUP_FULL,
                    fmt::format("a group holds at most {} members", options_.group_member_cap));
    }
    if (stored.status().code() == absl::StatusCode::kNotFound) {
      return answer(im::v1::NOT_FOUND, "no such group");
    }
    return answer(CodeOf(stored.status()), std::string(stored.status().message()));
  }
  if (absl::Status status = AfterJoin(req.group_id(), *stored); !status.ok()) {
    return answer(CodeOf(status), std::string(status.message()));
  }
  resp.set_joined_seq(stored->front().joined_seq);
  answer(im::v1::OK, "");
}

void GroupService::Leave(const im::v1::GroupLeaveRequest& request,
                         Respond<im::v1::GroupLeaveResp> respond) {
  const im::v1::GroupLeaveReq& req = request.req();
  const std::string& caller = request.caller().uid();
  const std::string& uid = req.uid().empty() ? caller : req.uid();
  im::v1::GroupLeaveResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  CallerMembership self = MembershipOf(members_, req.group_id(), caller);
  if (!self.member) return answer(self.code, self.reason);
  if (uid == caller) {
    if (self.member->role == im::v1::OWNER) {
      absl::StatusOr<std::shared_ptr<const MemberLists::List>> all = members_->Get(req.group_id());
      if (!all.ok()) return answer(CodeOf(all.status()), std::string(all.status().message()));
      if ((*all)->size() > 1) {
        return answer(im::v1::FAILED_PRECONDITION,
                      "the owner must hand the group over (GroupSetRole OWNER) before leaving");
      }
    }
  } else {
    CallerMembership target = MembershipOf(members_, req.group_id(), uid);
    if (!target.member) return answer(target.code, target.reason);
    const bool allowed =
        self.member->role == im::v1::OWNER ||
        (self.member->role == im::v1::ADMIN && target.member->role == im::v1::MEMBER);
    if (!allowed) {
      return answer(im::v1::PERMISSION_DENIED,
                    "the owner removes anyone; an admin removes members only");
    }
  }
  absl::StatusOr<bool> removed = groups_->RemoveMember(req.group_id(), uid);
  absl::Status status = removed.status();
  if (status.ok()) status = AfterLeave(req.group_id(), uid);
  if (!status.ok()) return answer(CodeOf(status), std::string(status.message()));
  answer(im::v1::OK, "");
}

void GroupService::Members(const im::v1::GroupMembersRequest& request,
                           Respond<im::v1::GroupMembersResp> respond) {
  const im::v1::GroupMembersReq& req = request.req();
  im::v1::GroupMembersResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  CallerMembership self = MembershipOf(members_, req.group_id(), request.caller().uid());
  if (!self.member) return answer(self.code, self.reason);
  const uint32_t limit =
      req.limit() == 0 ? 100 : std::min(req.limit(), options_.group_members_page_max);
  // One more than asked tells whether another page follows.
  absl::StatusOr<std::vector<store::GroupMember>> page =
      groups_->ListMembers(req.group_id(), req.page_token(), limit + 1);
  if (!page.ok()) return answer(CodeOf(page.status()), std::string(page.status().message()));
  if (page->size() > limit) {
    page->resize(limit);
    resp.set_next_page_token(page->back().uid);
  }
  for (const store::GroupMember& member : *page) {
    im::v1::GroupMember* out = resp.add_members();
    out->set_uid(member.uid);
    out->set_role(member.role);
    out->set_joined_seq(member.joined_seq);
  }
  answer(im::v1::OK, "");
}

void GroupService::SetRole(const im::v1::GroupSetRoleRequest& request,
                           Respond<im::v1::GroupSetRoleResp> respond) {
  const im::v1::GroupSetRoleReq& req = request.req();
  const std::string& caller = request.caller().uid();
  im::v1::GroupSetRoleResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  if (!store::CheckRole(req.role()).ok()) {
    return answer(im::v1::INVALID_ARGUMENT, "role must be MEMBER, ADMIN or OWNER");
  }
  CallerMembership self = MembershipOf(members_, req.group_id(), caller);
  if (!self.member) return answer(self.code, self.reason);
  if (self.member->role != im::v1::OWNER) {
    return answer(im::v1::PERMISSION_DENIED, "only the owner changes roles");
  }
  if (req.uid() == caller) {
    return answer(im::v1::FAILED_PRECONDITION,
                  "the owner hands over by making another member OWNER");
  }
  CallerMembership target = MembershipOf(members_, req.group_id(), req.uid());
  if (!target.member) return answer(target.code, target.reason);
  absl::Status status = groups_->SetRole(req.group_id(), req.uid(), req.role());
  if (status.ok()) status = members_->Invalidate(req.group_id());
  if (!status.ok()) return answer(CodeOf(status), std::string(status.message()));
  answer(im::v1::OK, "");
}

}  // namespace im::logic
