#pragma once

#include "store/group_store.h"
#include "store/sqlite_database.h"

namespace im::store {

// GroupStore on SQLite, for the embedded single-node mode (tables im_groups and group_members:
// see store/sqlite_migrations/0002_groups.sql, applied when the database opens). Thread-safe:
// changes take turns on the database's write connection, each in one transaction that is on disk
// when the call returns, so the member cap holds under concurrent adds without row locks; reads
// (GetGroup, GetMember, ListMembers) run beside them on read connections. Calls block on the disk,
// so they run on the store executor. member_count is kept in the group's row, as in MySQL. SQLite
// integers are signed: a joined_seq above INT64_MAX is INVALID_ARGUMENT.
class SqliteGroupStore final : public GroupStore {
 public:
  // `database` must outlive the store.
  explicit SqliteGroupStore(SqliteDatabase& database) : database_(database) {}

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
  SqliteDatabase& database_;
};

}  // namespace im::store
