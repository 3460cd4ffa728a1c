#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/group_store.h"

namespace im::store {

// GroupStore in process memory, for unit tests and the single-node mode. Same contract as
// MySqlGroupStore, including its limits (store/group_rules.h), so tests written against one hold
// for the other. Thread-safe: every call holds one mutex; nothing blocks.
class InMemoryGroupStore final : public GroupStore {
 public:
  absl::Status CreateGroup(const Group& group, const std::vector<GroupMember>& members,
                           uint32_t member_cap) override;
  absl::StatusOr<std::optional<Group>> GetGroup(std::string_view group_id) override;
  absl::StatusOr<std::vector<GroupMember>> AddMembers(std::string_view group_id,
                                                      const std::vector<GroupMember>& members,
                                                      uint32_t member_cap) override;
  absl::StatusOr<bool> RemoveMember(std::string_view group_id, std::string_view uid) override;
  absl::Status SetRole(std::string_view group_id, std::string_view uid,
                       im::v1::GroupRole role) override;
  absl::StatusOr<std::optional<GroupMember>> GetMember(std::string_view group_id,
                                                       std::string_view uid) override;
  absl::StatusOr<std::vector<GroupMember>> ListMembers(std::string_view group_id,
                                                       std::string_view after_uid,
                                                       uint32_t limit) override;
  absl::StatusOr<std::vector<std::string>> DeleteGroup(std::string_view group_id) override;

 private:
  struct GroupState {
    Group group;                                              // member_count follows members
    std::map<std::string, GroupMember, std::less<>> members;  // by uid, in byte order
  };

  // Requires mutex_. The group, or null.
  GroupState* Find(std::string_view group_id);

  std::mutex mutex_;
  std::map<std::string, GroupState, std::less<>> groups_;
};

}  // namespace im::store
