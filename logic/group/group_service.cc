#include "logic/group/group_service.h"

#include <algorithm>
#include <future>
#include <set>

#include "common/logging.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/reply_status.h"
#include "nlohmann/json.hpp"
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

// The caller's standing in the group: the admin API's (a trusted app server) is the OWNER's.
CallerMembership ActorOf(MemberLists* members, const std::string& group_id,
                         const im::v1::Caller& caller) {
  if (!caller.admin()) return MembershipOf(members, group_id, caller.uid());
  CallerMembership result;
  if (!store::CheckGroupId(group_id).ok()) {
    result.code = im::v1::INVALID_ARGUMENT;
    result.reason = "group_id must be 1-64 bytes of [A-Za-z0-9_-]";
    return result;
  }
  result.member = store::GroupMember{caller.uid(), im::v1::OWNER, 0, 0};
  return result;
}

// The uids a notice names: the first kMaxNoticeUids of them (the notice says how many in all).
constexpr size_t kMaxNoticeUids = 100;

nlohmann::json NoticeUids(const std::vector<std::string>& uids) {
  nlohmann::json listed = nlohmann::json::array();
  for (size_t i = 0; i < uids.size() && i < kMaxNoticeUids; ++i) listed.push_back(uids[i]);
  return listed;
}

}  // namespace

std::string GroupConversation(const std::string& group_id) { return "g:" + group_id; }

GroupService::GroupService(const LogicOptions& options, store::GroupStore* groups,
                           store::MessageStore* messages, MemberLists* members, MsgIdGenerator* ids,
                           Clock now_ms, PostNotice post_notice)
    : options_(options),
      groups_(groups),
      messages_(messages),
      members_(members),
      ids_(ids),
      now_ms_(std::move(now_ms)),
      post_notice_(std::move(post_notice)) {}

void GroupService::Announce(const std::string& group_id, const im::v1::Caller& by,
                            nlohmann::json notice, absl::AnyInvocable<void() &&> then) {
  if (!post_notice_) return std::move(then)();
  notice["group_id"] = group_id;
  if (by.uid() != kSystemUid) notice["by"] = by.uid();
  // Unique per event: a notice is posted once per change that happened (a retried call whose
  // change is already made posts none).
  const std::string notice_id = fmt::format("notice:{}", ids_->Next());
  post_notice_(group_id, notice_id, notice.dump(),
               [group_id, notice_id, then = std::move(then)](im::v1::SendResp resp) mutable {
                 if (resp.status().code() != im::v1::OK) {
                   IM_LOG_RATE_LIMITED(spdlog::level::warn, "group {}: notice {} not posted: {} {}",
                                       group_id, notice_id, im::v1::Code_Name(resp.status().code()),
                                       resp.status().message());
                 }
                 std::move(then)();
               });
}

absl::StatusOr<std::vector<std::string>> GroupService::Dismiss(const im::v1::Caller& by,
                                                               const std::string& group_id) {
  if (!store::CheckGroupId(group_id).ok()) {
    return absl::InvalidArgumentError("group_id must be 1-64 bytes of [A-Za-z0-9_-]");
  }
  // The members hear it while they are members: they get it pushed or by sync.
  std::promise<void> told;
  Announce(group_id, by, {{"event", "group_dismissed"}}, [&told] { told.set_value(); });
  told.get_future().wait();
  absl::StatusOr<std::vector<std::string>> members = groups_->DeleteGroup(group_id);
  if (!members.ok()) return members.status();
  for (const std::string& uid : *members) {
    if (absl::Status status = AfterLeave(group_id, uid); !status.ok()) return status;
  }
  spdlog::info("group {} dismissed ({} members)", group_id, members->size());
  return members;
}

void GroupService::RemoveMembers(const im::v1::Caller& by, const std::string& group_id,
                                 const std::vector<std::string>& uids,
                                 absl::AnyInvocable<void(absl::StatusOr<size_t>) &&> done) {
  if (!store::CheckGroupId(group_id).ok()) {
    return std::move(done)(
        absl::InvalidArgumentError("group_id must be 1-64 bytes of [A-Za-z0-9_-]"));
  }
  absl::StatusOr<std::optional<store::Group>> group = groups_->GetGroup(group_id);
  if (!group.ok()) return std::move(done)(group.status());
  if (!group->has_value()) return std::move(done)(absl::NotFoundError("no such group"));
  if (std::find(uids.begin(), uids.end(), (*group)->owner) != uids.end()) {
    return std::move(done)(absl::FailedPreconditionError(
        "the owner is not removed: hand the group over (role OWNER) first"));
  }
  std::vector<std::string> removed;
  for (const std::string& uid : uids) {
    absl::StatusOr<bool> was_member = groups_->RemoveMember(group_id, uid);
    absl::Status status = was_member.status();
    if (status.ok() && *was_member) status = AfterLeave(group_id, uid);
    if (!status.ok()) return std::move(done)(status);  // a retry removes the rest
    if (*was_member) removed.push_back(uid);
  }
  if (removed.empty()) return std::move(done)(size_t{0});
  nlohmann::json notice = {
      {"event", "member_removed"}, {"count", removed.size()}, {"uids", NoticeUids(removed)}};
  Announce(group_id, by, std::move(notice),
           [done = std::move(done), count = removed.size()]() mutable { std::move(done)(count); });
}

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
    return answer(im::v1::INVALID_ARGUMENT, "name must be at most 128 characters of UTF-8");
  }
  if (!req.group_id().empty() && !store::CheckGroupId(req.group_id()).ok()) {
    return answer(im::v1::INVALID_ARGUMENT, "group_id must be 1-64 bytes of [A-Za-z0-9_-]");
  }
  if (!IsValidUid(owner) || owner == kSystemUid) {
    return answer(im::v1::INVALID_ARGUMENT, "the owner must be a valid uid of a user");
  }
  const int64_t now = now_ms_();
  std::vector<store::GroupMember> members = {{owner, im::v1::OWNER, 0, now}};
  std::set<std::string> seen = {owner};
  for (const std::string& uid : req.members()) {
    if (!IsValidUid(uid) || uid == kSystemUid) {
      return answer(im::v1::INVALID_ARGUMENT, "members holds an invalid uid");
    }
    if (seen.insert(uid).second) members.push_back({uid, im::v1::MEMBER, 0, now});
  }
  if (members.size() > options_.group_member_cap) {
    return answer(im::v1::GROUP_FULL,
                  fmt::format("a group holds at most {} members", options_.group_member_cap));
  }
  store::Group group;
  group.group_id = req.group_id().empty() ? NewGroupId(ids_->Next()) : req.group_id();
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
  std::vector<std::string> uids;
  for (const store::GroupMember& member : members) uids.push_back(member.uid);
  nlohmann::json notice = {{"event", "group_created"},
                           {"name", group.name},
                           {"owner", owner},
                           {"count", uids.size()},
                           {"uids", NoticeUids(uids)}};
  SetStatus(resp.mutable_status(), im::v1::OK, "");
  Announce(group.group_id, request.caller(), std::move(notice),
           [respond = std::move(respond), resp = std::move(resp)]() mutable {
             std::move(respond)(std::move(resp));
           });
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
    if (!IsValidUid(uid) || uid == kSystemUid) {
      return answer(im::v1::INVALID_ARGUMENT, "uids holds an invalid uid");
    }
  }
  if (adds_others) {
    CallerMembership membership = ActorOf(members_, req.group_id(), request.caller());
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
  SetStatus(resp.mutable_status(), im::v1::OK, "");
  // Those that were members already keep their earlier joined_ms.
  std::vector<std::string> joined;
  for (const store::GroupMember& member : *stored) {
    if (member.joined_ms == now) joined.push_back(member.uid);
  }
  if (joined.empty()) return std::move(respond)(std::move(resp));
  nlohmann::json notice = {
      {"event", "member_joined"}, {"count", joined.size()}, {"uids", NoticeUids(joined)}};
  Announce(req.group_id(), request.caller(), std::move(notice),
           [respond = std::move(respond), resp = std::move(resp)]() mutable {
             std::move(respond)(std::move(resp));
           });
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
  CallerMembership self = ActorOf(members_, req.group_id(), request.caller());
  if (!self.member) return answer(self.code, self.reason);
  if (uid == caller && !request.caller().admin()) {
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
    if (target.member->role == im::v1::OWNER) {  // the admin API's, as the owner's standing
      return answer(im::v1::FAILED_PRECONDITION,
                    "the owner is not removed: hand the group over (role OWNER) first");
    }
  }
  absl::StatusOr<bool> removed = groups_->RemoveMember(req.group_id(), uid);
  absl::Status status = removed.status();
  if (status.ok()) status = AfterLeave(req.group_id(), uid);
  if (!status.ok()) return answer(CodeOf(status), std::string(status.message()));
  SetStatus(resp.mutable_status(), im::v1::OK, "");
  if (!*removed) return std::move(respond)(std::move(resp));
  const bool left = uid == caller;
  nlohmann::json notice = {{"event", left ? "member_left" : "member_removed"},
                           {"count", 1},
                           {"uids", NoticeUids({uid})}};
  Announce(req.group_id(), request.caller(), std::move(notice),
           [respond = std::move(respond), resp = std::move(resp)]() mutable {
             std::move(respond)(std::move(resp));
           });
}

void GroupService::Members(const im::v1::GroupMembersRequest& request,
                           Respond<im::v1::GroupMembersResp> respond) {
  const im::v1::GroupMembersReq& req = request.req();
  im::v1::GroupMembersResp resp;
  auto answer = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  CallerMembership self = ActorOf(members_, req.group_id(), request.caller());
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
  CallerMembership self = ActorOf(members_, req.group_id(), request.caller());
  if (!self.member) return answer(self.code, self.reason);
  if (self.member->role != im::v1::OWNER) {
    return answer(im::v1::PERMISSION_DENIED, "only the owner changes roles");
  }
  if (req.uid() == caller && !request.caller().admin()) {
    return answer(im::v1::FAILED_PRECONDITION,
                  "the owner hands over by making another member OWNER");
  }
  CallerMembership target = MembershipOf(members_, req.group_id(), req.uid());
  if (!target.member) return answer(target.code, target.reason);
  if (target.member->role == req.role()) return answer(im::v1::OK, "");
  absl::Status status = groups_->SetRole(req.group_id(), req.uid(), req.role());
  if (status.ok()) status = members_->Invalidate(req.group_id());
  if (!status.ok()) return answer(CodeOf(status), std::string(status.message()));
  SetStatus(resp.mutable_status(), im::v1::OK, "");
  nlohmann::json notice = {
      {"event", "role_changed"}, {"uid", req.uid()}, {"role", im::v1::GroupRole_Name(req.role())}};
  Announce(req.group_id(), request.caller(), std::move(notice),
           [respond = std::move(respond), resp = std::move(resp)]() mutable {
             std::move(respond)(std::move(resp));
           });
}

}  // namespace im::logic
