#include "store/sqlite_group_store.h"

#include <map>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/group_rules.h"
#include "store/message_rules.h"

namespace im::store {
namespace {

constexpr char kSelectGroupSql[] =
    "SELECT group_id, name, owner, created_ms, member_count FROM im_groups WHERE group_id = ?";

constexpr char kSelectMemberSql[] =
    "SELECT uid, role, joined_seq, joined_ms FROM group_members WHERE group_id = ? AND uid = ?";

constexpr char kMemberPageSql[] =
    "SELECT uid, role, joined_seq, joined_ms FROM group_members WHERE group_id = ? AND uid > ? "
    "ORDER BY uid LIMIT ?";

// A taken key is left as it is; changes() tells whether the row was new.
constexpr char kInsertGroupSql[] =
    "INSERT INTO im_groups (group_id, name, owner, created_ms, member_count) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

constexpr char kInsertMemberSql[] =
    "INSERT INTO group_members (group_id, uid, role, joined_seq, joined_ms) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

// Changes a role only from the one the caller saw: the previous owner steps down only if it is
// still OWNER.
constexpr char kUpdateRoleSql[] =
    "UPDATE group_members SET role = ? WHERE group_id = ? AND uid = ? AND role = ?";

// The member in the current row, in kSelectMemberSql's column order.
GroupMember ReadMember(const SqliteStatement& row) {
  GroupMember member;
  member.uid = row.ColumnBytes(0);
  member.role = static_cast<im::v1::GroupRole>(row.ColumnI64(1));
  member.joined_seq = row.ColumnU64(2);
  member.joined_ms = row.ColumnI64(3);
  return member;
}

absl::StatusOr<std::optional<Group>> FindGroup(SqliteConnection& connection,
                                               std::string_view group_id) {
  IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kSelectGroupSql));
  select.Bytes(group_id);
  IM_ASSIGN_OR_RETURN(const bool found, select.Step());
  if (!found) return std::nullopt;
  Group group;
  group.group_id = select.ColumnBytes(0);
  group.name = select.ColumnBytes(1);
  group.owner = select.ColumnBytes(2);
  group.created_ms = select.ColumnI64(3);
  group.member_count = static_cast<uint32_t>(select.ColumnI64(4));
  return group;
}

absl::StatusOr<std::optional<GroupMember>> FindMember(SqliteConnection& connection,
                                                      std::string_view group_id,
                                                      std::string_view uid) {
  IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kSelectMemberSql));
  select.Bytes(group_id).Bytes(uid);
  IM_ASSIGN_OR_RETURN(const bool found, select.Step());
  if (!found) return std::nullopt;
  return ReadMember(select);
}

// Writes the member into the group; false when the group has it already.
absl::StatusOr<bool> InsertMember(SqliteConnection& connection, std::string_view group_id,
                                  const GroupMember& member) {
  IM_ASSIGN_OR_RETURN(SqliteStatement insert, connection.Prepare(kInsertMemberSql));
  insert.Bytes(group_id)
      .Bytes(member.uid)
      .I64(member.role)
      .U64(member.joined_seq)
      .I64(member.joined_ms);
  IM_RETURN_IF_ERROR(insert.Run());
  return connection.changes() == 1;
}

// Writes members[rows[...]], which the group must not have yet.
absl::Status InsertNewMembers(SqliteConnection& connection, std::string_view group_id,
                              const std::vector<GroupMember>& members,
                              const std::vector<size_t>& rows) {
  for (size_t i : rows) {
    IM_ASSIGN_OR_RETURN(const bool inserted, InsertMember(connection, group_id, members[i]));
    if (!inserted) {
      return absl::InternalError(
          fmt::format("group {}: the row of new member {} was there", group_id, members[i].uid));
    }
  }
  return absl::OkStatus();
}

absl::Status AddToMemberCount(SqliteConnection& connection, std::string_view group_id,
                              int64_t delta) {
  IM_ASSIGN_OR_RETURN(
      SqliteStatement update,
      connection.Prepare(
          "UPDATE im_groups SET member_count = member_count + ? WHERE group_id = ?"));
  update.I64(delta).Bytes(group_id);
  return update.Run();
}

absl::Status UpdateRole(SqliteConnection& connection, std::string_view group_id,
                        std::string_view uid, im::v1::GroupRole from, im::v1::GroupRole to) {
  IM_ASSIGN_OR_RETURN(SqliteStatement update, connection.Prepare(kUpdateRoleSql));
  update.I64(to).Bytes(group_id).Bytes(uid).I64(from);
  return update.Run();
}

// Group.owner becomes uid; the previous owner, if still a member with role OWNER, becomes ADMIN.
absl::Status HandOver(SqliteConnection& connection, const Group& group, std::string_view uid) {
  IM_RETURN_IF_ERROR(
      UpdateRole(connection, group.group_id, group.owner, im::v1::OWNER, im::v1::ADMIN));
  IM_ASSIGN_OR_RETURN(SqliteStatement update,
                      connection.Prepare("UPDATE im_groups SET owner = ? WHERE group_id = ?"));
  update.Bytes(uid).Bytes(group.group_id);
  return update.Run();
}

}  // namespace

absl::Status SqliteGroupStore::CreateGroup(const Group& group,
                                           const std::vector<GroupMember>& members,
                                           uint32_t member_cap) {
  IM_RETURN_IF_ERROR(CheckNewGroup(group, members));
  const std::vector<size_t> distinct = DistinctMembers(members);
  if (distinct.size() > member_cap) {
    return absl::ResourceExhaustedError(fmt::format("group {}: {} members, at most {}",
                                                    group.group_id, distinct.size(), member_cap));
  }
  return database_.Write([&](SqliteConnection& connection) -> absl::Status {
    {
      IM_ASSIGN_OR_RETURN(SqliteStatement insert, connection.Prepare(kInsertGroupSql));
      insert.Bytes(group.group_id)
          .Text(group.name)
          .Bytes(group.owner)
          .I64(group.created_ms)
          .U64(distinct.size());
      IM_RETURN_IF_ERROR(insert.Run());
    }
    if (connection.changes() == 0) {
      return absl::AlreadyExistsError(fmt::format("group {} exists", group.group_id));
    }
    return InsertNewMembers(connection, group.group_id, members, distinct);
  });
}

absl::StatusOr<std::optional<Group>> SqliteGroupStore::GetGroup(std::string_view group_id) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  return database_.Read<std::optional<Group>>(
      [&](SqliteConnection& connection) { return FindGroup(connection, group_id); });
}

absl::StatusOr<std::vector<GroupMember>> SqliteGroupStore::AddMembers(
    std::string_view group_id, const std::vector<GroupMember>& members, uint32_t member_cap) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  IM_RETURN_IF_ERROR(CheckMembers(members, /*allow_owner=*/false));
  const std::vector<size_t> distinct = DistinctMembers(members);
  using Result = std::vector<GroupMember>;
  // With the write connection held, nobody else changes the group until this commits: the count
  // read here is the one the cap applies to.
  return database_.Write<Result>([&](SqliteConnection& connection) -> absl::StatusOr<Result> {
    IM_ASSIGN_OR_RETURN(const std::optional<Group> group, FindGroup(connection, group_id));
    if (!group) return absl::NotFoundError(fmt::format("no group {}", group_id));
    std::map<std::string, GroupMember, std::less<>> stored;
    std::vector<size_t> added;
    for (size_t i : distinct) {
      IM_ASSIGN_OR_RETURN(std::optional<GroupMember> member,
                          FindMember(connection, group_id, members[i].uid));
      if (member) {
        stored.emplace(members[i].uid, *std::move(member));
      } else {
        added.push_back(i);
      }
    }
    if (!added.empty() && group->member_count + added.size() > member_cap) {
      return absl::ResourceExhaustedError(
          fmt::format("group {} has {} members; {} more would pass the cap of {}", group_id,
                      group->member_count, added.size(), member_cap));
    }
    if (!added.empty()) {
      IM_RETURN_IF_ERROR(InsertNewMembers(connection, group_id, members, added));
      IM_RETURN_IF_ERROR(
          AddToMemberCount(connection, group_id, static_cast<int64_t>(added.size())));
    }
    for (size_t i : added) stored.emplace(members[i].uid, members[i]);
    Result result;
    result.reserve(members.size());
    for (const GroupMember& member : members) result.push_back(stored.find(member.uid)->second);
    return result;
  });
}

absl::StatusOr<bool> SqliteGroupStore::RemoveMember(std::string_view group_id,
                                                    std::string_view uid) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  IM_RETURN_IF_ERROR(CheckMemberUid(uid));
  return database_.Write<bool>([&](SqliteConnection& connection) -> absl::StatusOr<bool> {
    {
      IM_ASSIGN_OR_RETURN(
          SqliteStatement remove,
          connection.Prepare("DELETE FROM group_members WHERE group_id = ? AND uid = ?"));
      remove.Bytes(group_id).Bytes(uid);
      IM_RETURN_IF_ERROR(remove.Run());
    }
    if (connection.changes() == 0) return false;
    IM_RETURN_IF_ERROR(AddToMemberCount(connection, group_id, -1));
    return true;
  });
}

absl::Status SqliteGroupStore::SetRole(std::string_view group_id, std::string_view uid,
                                       im::v1::GroupRole role) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  IM_RETURN_IF_ERROR(CheckMemberUid(uid));
  IM_RETURN_IF_ERROR(CheckRole(role));
  return database_.Write([&](SqliteConnection& connection) -> absl::Status {
    const absl::Status not_member =
        absl::NotFoundError(fmt::format("{} is not a member of group {}", uid, group_id));
    IM_ASSIGN_OR_RETURN(const std::optional<Group> group, FindGroup(connection, group_id));
    if (!group) return not_member;
    IM_ASSIGN_OR_RETURN(const std::optional<GroupMember> member,
                        FindMember(connection, group_id, uid));
    if (!member) return not_member;
    if (member->role != role) {
      IM_RETURN_IF_ERROR(UpdateRole(connection, group_id, uid, member->role, role));
    }
    if (role == im::v1::OWNER && group->owner != uid) return HandOver(connection, *group, uid);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<GroupMember>> SqliteGroupStore::GetMember(std::string_view group_id,
                                                                       std::string_view uid) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  IM_RETURN_IF_ERROR(CheckMemberUid(uid));
  return database_.Read<std::optional<GroupMember>>(
      [&](SqliteConnection& connection) { return FindMember(connection, group_id, uid); });
}

absl::StatusOr<std::vector<GroupMember>> SqliteGroupStore::ListMembers(std::string_view group_id,
                                                                       std::string_view after_uid,
                                                                       uint32_t limit) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  IM_RETURN_IF_ERROR(CheckUid(after_uid));
  IM_RETURN_IF_ERROR(CheckLimit(limit));
  using Page = std::vector<GroupMember>;
  return database_.Read<Page>([&](SqliteConnection& connection) -> absl::StatusOr<Page> {
    IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMemberPageSql));
    select.Bytes(group_id).Bytes(after_uid).I64(limit);
    Page page;
    IM_RETURN_IF_ERROR(
        select.ForEachRow([&](const SqliteStatement& row) { page.push_back(ReadMember(row)); }));
    return page;
  });
}

absl::StatusOr<std::vector<std::string>> SqliteGroupStore::DeleteGroup(std::string_view group_id) {
  IM_RETURN_IF_ERROR(CheckGroupId(group_id));
  using Uids = std::vector<std::string>;
  return database_.Write<Uids>([&](SqliteConnection& connection) -> absl::StatusOr<Uids> {
    IM_ASSIGN_OR_RETURN(const std::optional<Group> group, FindGroup(connection, group_id));
    if (!group) return absl::NotFoundError(fmt::format("no group {}", group_id));
    Uids uids;
    {
      IM_ASSIGN_OR_RETURN(
          SqliteStatement select,
          connection.Prepare("SELECT uid FROM group_members WHERE group_id = ? ORDER BY uid"));
      select.Bytes(group_id);
      IM_RETURN_IF_ERROR(select.ForEachRow(
          [&](const SqliteStatement& row) { uids.push_back(row.ColumnBytes(0)); }));
    }
    {
      // The members first: their rows refer to the group's.
      IM_ASSIGN_OR_RETURN(SqliteStatement remove,
                          connection.Prepare("DELETE FROM group_members WHERE group_id = ?"));
      remove.Bytes(group_id);
      IM_RETURN_IF_ERROR(remove.Run());
    }
    IM_ASSIGN_OR_RETURN(SqliteStatement remove,
                        connection.Prepare("DELETE FROM im_groups WHERE group_id = ?"));
    remove.Bytes(group_id);
    IM_RETURN_IF_ERROR(remove.Run());
    return uids;
  });
}

}  // namespace im::store
