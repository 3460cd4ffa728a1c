#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "im/v1/client.pb.h"

namespace im::store {

struct Group {
  std::string group_id;
  std::string name;
  std::string owner;
  int64_t created_ms = 0;
  uint32_t member_count = 0;  // set by the store; ignored by CreateGroup
};

// One member of a group. A member sees the group's messages with seq > joined_seq.
struct GroupMember {
  std::string uid;
  im::v1::GroupRole role = im::v1::MEMBER;
  uint64_t joined_seq = 0;
  int64_t joined_ms = 0;
};

// Groups and their members (DESIGN.md section 7: tables `groups` and `group_members`), the truth
// that logic's member cache is loaded from. Implementations are thread-safe; calls block
// (network), so they run on logic's executor. Errors: UNAVAILABLE when the database cannot be
// reached (the call may be retried), INVALID_ARGUMENT for values the schema cannot hold
// (store/group_rules.h: group ids 1-64 bytes of [A-Za-z0-9_-], names up to 128 characters of UTF-8,
// uids non-empty and as store/message_rules.h checks them, roles MEMBER, ADMIN or OWNER).
//
// The store keeps one rule of ownership: Group.owner names the member last made OWNER (by
// CreateGroup or SetRole). Everything else (who may add, remove or promote whom, what happens when
// the owner leaves) is logic's policy. Membership here and the members' conversation rows
// (MessageStore::JoinConversation / LeaveConversation) are separate writes that logic makes.
class GroupStore {
 public:
  virtual ~GroupStore() = default;

  // Creates `group` with `members` (the owner among them, with role OWNER, and no other OWNER;
  // INVALID_ARGUMENT otherwise), in one transaction. A uid listed twice counts once, as first
  // listed. ALREADY_EXISTS when the id is taken; RESOURCE_EXHAUSTED (nothing written) when there
  // are more than `member_cap` members.
  virtual absl::Status CreateGroup(const Group& group, const std::vector<GroupMember>& members,
                                   uint32_t member_cap) = 0;

  // The group with its current member count, nullopt when there is none.
  virtual absl::StatusOr<std::optional<Group>> GetGroup(std::string_view group_id) = 0;

  // Adds the members that are not in the group yet, atomically: all or none. A uid already in the
  // group keeps its role, joined_seq and joined_ms; a uid listed twice counts once, as first
  // listed. Returns the stored membership of every requested entry, in request order.
  // NOT_FOUND when there is no such group; RESOURCE_EXHAUSTED (nothing written) when the new
  // count would exceed `member_cap` (adding nobody new never fails on the cap);
  // INVALID_ARGUMENT for role OWNER (ownership moves with SetRole). Safe against concurrent adds
  // and removes: the cap holds.
  virtual absl::StatusOr<std::vector<GroupMember>> AddMembers(
      std::string_view group_id, const std::vector<GroupMember>& members, uint32_t member_cap) = 0;

  // Removes uid from the group; false when it was not a member or there is no such group.
  // Removing the owner leaves Group.owner naming it until SetRole makes another member OWNER.
  virtual absl::StatusOr<bool> RemoveMember(std::string_view group_id, std::string_view uid) = 0;

  // Changes a member's role. Making uid OWNER hands the group over in the same transaction:
  // Group.owner becomes uid and the previous owner, if still a member with role OWNER, becomes
  // ADMIN. Demoting the owner leaves Group.owner naming it until another member is made OWNER.
  // NOT_FOUND when uid is not a member (or there is no such group).
  virtual absl::Status SetRole(std::string_view group_id, std::string_view uid,
                               im::v1::GroupRole role) = 0;

  // uid's membership, nullopt when it is not a member (or there is no such group).
  virtual absl::StatusOr<std::optional<GroupMember>> GetMember(std::string_view group_id,
                                                               std::string_view uid) = 0;

  // Up to `limit` (>= 1) members with uid > after_uid (byte order; "" lists from the start), in
  // uid order. Empty when there is no such group.
  virtual absl::StatusOr<std::vector<GroupMember>> ListMembers(std::string_view group_id,
                                                               std::string_view after_uid,
                                                               uint32_t limit) = 0;

  // Dismisses the group: deletes it and every membership in one transaction. Returns the uids
  // that were members (uid order), or NOT_FOUND when there is no such group. The group's
  // messages and conversation rows are not touched (MessageStore's), and the id may be used again.
  virtual absl::StatusOr<std::vector<std::string>> DeleteGroup(std::string_view group_id) = 0;
};

}  // namespace im::store
