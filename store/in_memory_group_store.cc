#include "store/in_memory_group_store.h"

#include "fmt/format.h"
#include "store/group_rules.h"
#include "store/message_rules.h"

namespace im::store {

InMemoryGroupStore::GroupState* InMemoryGroupStore::Find(std::string_view group_id) {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second;
}

absl::Status InMemoryGroupStore::CreateGroup(const Group& group,
                                             const std::vector<GroupMember>& members,
                                             uint32_t member_cap) {
  if (absl::Status status = CheckNewGroup(group, members); !status.ok()) return status;
  const std::vector<size_t> distinct = DistinctMembers(members);
  if (distinct.size() > member_cap) {
    return absl::ResourceExhaustedError(fmt::format("group {}: {} members, at most {}",
                                                    group.group_id, distinct.size(), member_cap));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, created] = groups_.try_emplace(group.group_id);
  if (!created) return absl::AlreadyExistsError(fmt::format("group {} exists", group.group_id));
  GroupState& state = it->second;
  state.group = group;
  for (size_t i : distinct) state.members.emplace(members[i].uid, members[i]);
  state.group.member_count = static_cast<uint32_t>(state.members.size());
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Group>> InMemoryGroupStore::GetGroup(std::string_view group_id) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  const GroupState* state = Find(group_id);
  if (state == nullptr) return std::optional<Group>();
  return state->group;
}

absl::StatusOr<std::vector<GroupMember>> InMemoryGroupStore::AddMembers(
    std::string_view group_id, const std::vector<GroupMember>& members, uint32_t member_cap) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMembers(members, /*allow_owner=*/false); !status.ok()) {
    return status;
  }
  const std::vector<size_t> distinct = DistinctMembers(members);
  std::lock_guard<std::mutex> lock(mutex_);
  GroupState* state = Find(group_id);
  if (state == nullptr) return absl::NotFoundError(fmt::format("no group {}", group_id));
  size_t added = 0;
  for (size_t i : distinct) {
    if (!state->members.contains(members[i].uid)) ++added;
  }
  if (added > 0 && state->members.size() + added > member_cap) {
    return absl::ResourceExhaustedError(
        fmt::format("group {} has {} members; {} more would pass the cap of {}", group_id,
                    state->members.size(), added, member_cap));
  }
  std::vector<GroupMember> result;
  result.reserve(members.size());
  for (const GroupMember& member : members) {
    result.push_back(state->members.try_emplace(member.uid, member).first->second);
  }
  state->group.member_count = static_cast<uint32_t>(state->members.size());
  return result;
}

absl::StatusOr<bool> InMemoryGroupStore::RemoveMember(std::string_view group_id,
                                                      std::string_view uid) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  GroupState* state = Find(group_id);
  if (state == nullptr) return false;
  auto member = state->members.find(uid);
  if (member == state->members.end()) return false;
  state->members.erase(member);
  state->group.member_count = static_cast<uint32_t>(state->members.size());
  return true;
}

absl::Status InMemoryGroupStore::SetRole(std::string_view group_id, std::string_view uid,
                                         im::v1::GroupRole role) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckRole(role); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  GroupState* state = Find(group_id);
  GroupMember* member = nullptr;
  if (state != nullptr) {
    auto it = state->members.find(uid);
    if (it != state->members.end()) member = &it->second;
  }
  if (member == nullptr) {
    return absl::NotFoundError(fmt::format("{} is not a member of group {}", uid, group_id));
  }
  member->role = role;
  if (role == im::v1::OWNER && state->group.owner != uid) {
    auto previous = state->members.find(state->group.owner);
    if (previous != state->members.end() && previous->second.role == im::v1::OWNER) {
      previous->second.role = im::v1::ADMIN;
    }
    state->group.owner = std::string(uid);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<GroupMember>> InMemoryGroupStore::GetMember(std::string_view group_id,
                                                                         std::string_view uid) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  const GroupState* state = Find(group_id);
  if (state == nullptr) return std::optional<GroupMember>();
  auto member = state->members.find(uid);
  if (member == state->members.end()) return std::optional<GroupMember>();
  return member->second;
}

absl::StatusOr<std::vector<GroupMember>> InMemoryGroupStore::ListMembers(std::string_view group_id,
                                                                         std::string_view after_uid,
                                                                         uint32_t limit) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckUid(after_uid); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<GroupMember> page;
  const GroupState* state = Find(group_id);
  if (state == nullptr) return page;
  for (auto it = state->members.upper_bound(after_uid);
       it != state->members.end() && page.size() < limit; ++it) {
    page.push_back(it->second);
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> InMemoryGroupStore::DeleteGroup(
    std::string_view group_id) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return absl::NotFoundError(fmt::format("no group {}", group_id));
  std::vector<std::string> uids;
  uids.reserve(it->second.members.size());
  for (const auto& [uid, member] : it->second.members) uids.push_back(uid);
  groups_.erase(it);
  return uids;
}

}  // namespace im::store
