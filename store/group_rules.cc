#include "store/group_rules.h"

#include <set>

#include "absl/strings/ascii.h"
#include "fmt/format.h"
#include "store/message_rules.h"

namespace im::store {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629, Table 3-7 of the
// Unicode standard), 0 when it is not one.
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong below U+0800
    if (lead == 0xED) high = 0x9F;  // surrogates U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong below U+10000
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, an overlong lead (C0, C1) or F5..FF
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

absl::Status CheckGroupId(std::string_view group_id) {
  if (group_id.empty() || group_id.size() > kMaxGroupIdBytes) {
    return absl::InvalidArgumentError(
        fmt::format("group_id is {} bytes, must be 1 to {}", group_id.size(), kMaxGroupIdBytes));
  }
  for (char c : group_id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          fmt::format("group_id holds byte 0x{:02x}; only A-Z a-z 0-9 _ - may appear",
                      static_cast<unsigned char>(c)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckGroupName(std::string_view name) {
  size_t chars = 0;
  for (size_t at = 0; at < name.size(); ++chars) {
    const size_t length = Utf8SequenceLength(name.substr(at));
    if (length == 0) {
      return absl::InvalidArgumentError(fmt::format("group name is not UTF-8 at byte {}", at));
    }
    at += length;
  }
  if (chars > kMaxGroupNameChars) {
    return absl::InvalidArgumentError(
        fmt::format("group name is {} characters, at most {} fit", chars, kMaxGroupNameChars));
  }
  return absl::OkStatus();
}

absl::Status CheckRole(im::v1::GroupRole role) {
  switch (role) {
    case im::v1::MEMBER:
    case im::v1::ADMIN:
    case im::v1::OWNER:
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(fmt::format("bad group role {}", static_cast<int>(role)));
  }
}

absl::Status CheckMembers(const std::vector<GroupMember>& members, bool allow_owner) {
  for (const GroupMember& member : members) {
    if (absl::Status status = CheckMemberUid(member.uid); !status.ok()) return status;
    if (absl::Status status = CheckRole(member.role); !status.ok()) return status;
    if (!allow_owner && member.role == im::v1::OWNER) {
      return absl::InvalidArgumentError(
          fmt::format("{} cannot join as OWNER: ownership moves with SetRole", member.uid));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNewGroup(const Group& group, const std::vector<GroupMember>& members) {
  if (absl::Status status = CheckGroupId(group.group_id); !status.ok()) return status;
  if (absl::Status status = CheckGroupName(group.name); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(group.owner); !status.ok()) return status;
  if (absl::Status status = CheckMembers(members, /*allow_owner=*/true); !status.ok()) {
    return status;
  }
  bool owner_listed = false;
  for (size_t i : DistinctMembers(members)) {
    const bool is_owner = members[i].uid == group.owner;
    if (is_owner != (members[i].role == im::v1::OWNER)) {
      return absl::InvalidArgumentError(
          fmt::format("group {}: {} is {}the owner but has role {}", group.group_id, members[i].uid,
                      is_owner ? "" : "not ", im::v1::GroupRole_Name(members[i].role)));
    }
    owner_listed = owner_listed || is_owner;
  }
  if (!owner_listed) {
    return absl::InvalidArgumentError(fmt::format("group {}: the owner {} is not among the members",
                                                  group.group_id, group.owner));
  }
  return absl::OkStatus();
}

std::vector<size_t> DistinctMembers(const std::vector<GroupMember>& members) {
  std::vector<size_t> distinct;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < members.size(); ++i) {
    if (seen.insert(members[i].uid).second) distinct.push_back(i);
  }
  return distinct;
}

}  // namespace im::store
