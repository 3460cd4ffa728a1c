#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "store/group_store.h"

namespace im::store {

// What every GroupStore backend checks the same way, so that the in-process store never accepts
// what MySQL would refuse. Sizes are the columns of store/migrations/0002_groups.sql: the id's in
// bytes, the name's in characters (VARCHAR(128) of utf8mb4: code points, as JSON Schema's
// maxLength counts them for the admin API); uids follow store/message_rules.h.
inline constexpr size_t kMaxGroupIdBytes = 64;
inline constexpr size_t kMaxGroupNameChars = 128;

// 1 to kMaxGroupIdBytes bytes of [A-Za-z0-9_-].
absl::Status CheckGroupId(std::string_view group_id);
// At most kMaxGroupNameChars code points of well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF); empty is allowed.
absl::Status CheckGroupName(std::string_view name);
// MEMBER, ADMIN or OWNER.
absl::Status CheckRole(im::v1::GroupRole role);
// Every uid is a member uid (CheckMemberUid) and every role a known one; `allow_owner` false
// refuses OWNER too.
absl::Status CheckMembers(const std::vector<GroupMember>& members, bool allow_owner);
// CreateGroup's arguments: the group's id, name and owner, its members, and the owner among them
// as the one member with role OWNER.
absl::Status CheckNewGroup(const Group& group, const std::vector<GroupMember>& members);

// The index of the first entry with each uid, in request order: a uid listed twice counts once,
// as first listed.
std::vector<size_t> DistinctMembers(const std::vector<GroupMember>& members);

}  // namespace im::store
