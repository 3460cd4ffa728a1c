#pragma once

#include "store/group_store.h"
#include "store/mysql_connection_pool.h"

namespace im::store {

// GroupStore on MySQL/MariaDB (tables im_groups and group_members: see
// store/migrations/0002_groups.sql, applied by ApplyMigrations before this is used). Thread-safe:
// each call borrows a connection from `pool` for its duration; calls block, so they run on the
// logic tier's store executor.
//
// Every change of membership or role locks the group's im_groups row first (SELECT ... FOR UPDATE)
// and keeps member_count in that row, so writers to one group take turns and the cap holds;
// writers to different groups do not meet. A transaction that InnoDB aborts (deadlock, lock wait
// timeout) is retried once; a second ABORTED goes to the caller, who may retry.
//
// Round trips, once a connection has prepared its statements (the first use of each statement
// shape costs one more): GetGroup, GetMember and ListMembers take 1; CreateGroup 4 (START
// TRANSACTION, the group row, its member rows, COMMIT) plus 1 per further 256 members; AddMembers 6
// when it adds someone (START TRANSACTION, lock, look up the requested, insert the new, count,
// COMMIT), 4 when not, plus up to 2 per further 256 requested; RemoveMember 5; SetRole 5, or 7 when
// it hands ownership over; DeleteGroup 6 (START TRANSACTION, lock, read the members, delete them,
// delete the group, COMMIT). Multi-row statements are padded like MySqlMessageStore's
// (store/mysql_multi_row.h).
class MySqlGroupStore final : public GroupStore {
 public:
  // `pool` must outlive the store.
  explicit MySqlGroupStore(MySqlConnectionPool& pool) : pool_(pool) {}

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
  MySqlConnectionPool& pool_;
};

}  // namespace im::store
