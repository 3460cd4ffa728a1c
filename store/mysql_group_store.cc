#include "store/mysql_group_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <map>
#include <memory>
#include <utility>

#include "fmt/format.h"
#include "store/group_rules.h"
#include "store/message_rules.h"
#include "store/mysql_multi_row.h"
#include "store/mysql_retry.h"

namespace im::store {
namespace {

constexpr char kMemberColumns[] = "uid, role, joined_seq, joined_ms";

std::unique_ptr<sql::ResultSet> Query(sql::PreparedStatement& statement) {
  return std::unique_ptr<sql::ResultSet>(statement.executeQuery());
}

// The member in the current row, in kMemberColumns order.
GroupMember ReadMember(const sql::ResultSet& row) {
  GroupMember member;
  member.uid = ColumnBytes(row, 1);
  member.role = static_cast<im::v1::GroupRole>(row.getInt(2));
  member.joined_seq = row.getUInt64(3);
  member.joined_ms = row.getInt64(4);
  return member;
}

struct LockedGroup {
  uint64_t member_count = 0;
  std::string owner;
};

// Locks the group's row until the transaction ends: every change of the group's membership or
// roles takes this lock first, so they take turns and never deadlock on each other. Nullopt when
// there is no such group.
std::optional<LockedGroup> LockGroup(MySqlConnection& connection, std::string_view group_id) {
  sql::PreparedStatement& select =
      connection.Prepare("SELECT member_count, owner FROM im_groups WHERE group_id = ? FOR UPDATE");
  MySqlParams(select).Bytes(group_id);
  std::unique_ptr<sql::ResultSet> row = Query(select);
  if (!row->next()) return std::nullopt;
  return LockedGroup{row->getUInt64(1), ColumnBytes(*row, 2)};
}

// The stored memberships of the uids of members[rows[...]] in the group, by uid.
std::map<std::string, GroupMember, std::less<>> SelectMembers(
    MySqlConnection& connection, std::string_view group_id, const std::vector<GroupMember>& members,
    const std::vector<size_t>& rows) {
  std::map<std::string, GroupMember, std::less<>> stored;
  for (const auto& [begin, end] : Chunks(rows.size(), kMaxRowsPerStatement)) {
    sql::PreparedStatement& select = connection.Prepare(
        fmt::format("SELECT {} FROM group_members WHERE group_id = ? AND uid IN ({})",
                    kMemberColumns, Repeat("?", PaddedRows(end - begin), ", ")));
    MySqlParams params(select);
    params.Bytes(group_id);
    BindRows(params, begin, end,
             [&](MySqlParams& p, size_t r, bool) { p.Bytes(members[rows[r]].uid); });
    std::unique_ptr<sql::ResultSet> found = Query(select);
    while (found->next()) {
      GroupMember member = ReadMember(*found);
      std::string uid = member.uid;
      stored.insert_or_assign(std::move(uid), std::move(member));
    }
  }
  return stored;
}

// Writes members[rows[...]] into the group; returns how many rows were new. A row whose key is
// taken (a padding row: see PaddedRows) is left as it is and not counted.
size_t InsertMembers(MySqlConnection& connection, std::string_view group_id,
                     const std::vector<GroupMember>& members, const std::vector<size_t>& rows) {
  size_t inserted = 0;
  for (const auto& [begin, end] : Chunks(rows.size(), kMaxRowsPerStatement)) {
    sql::PreparedStatement& insert = connection.Prepare(fmt::format(
        "INSERT INTO group_members (group_id, {}) VALUES {} ON DUPLICATE KEY UPDATE role = role",
        kMemberColumns, Repeat("(?, ?, ?, ?, ?)", PaddedRows(end - begin), ", ")));
    MySqlParams params(insert);
    BindRows(params, begin, end, [&](MySqlParams& p, size_t r, bool) {
      const GroupMember& member = members[rows[r]];
      p.Bytes(group_id)
          .Bytes(member.uid)
          .I32(member.role)
          .U64(member.joined_seq)
          .I64(member.joined_ms);
    });
    inserted += static_cast<size_t>(insert.executeUpdate());
  }
  return inserted;
}

void AddToMemberCount(MySqlConnection& connection, std::string_view group_id, int64_t delta) {
  sql::PreparedStatement& update =
      connection.Prepare("UPDATE im_groups SET member_count = member_count + ? WHERE group_id = ?");
  MySqlParams(update).I64(delta).Bytes(group_id);
  update.executeUpdate();
}

// Group changes are retried once when InnoDB aborts them (see RetryIfAborted).
constexpr int kGroupAttempts = 2;

}  // namespace

absl::Status MySqlGroupStore::CreateGroup(const Group& group,
                                          const std::vector<GroupMember>& members,
                                          uint32_t member_cap) {
  if (absl::Status status = CheckNewGroup(group, members); !status.ok()) return status;
  const std::vector<size_t> distinct = DistinctMembers(members);
  if (distinct.size() > member_cap) {
    return absl::ResourceExhaustedError(fmt::format("group {}: {} members, at most {}",
                                                    group.group_id, distinct.size(), member_cap));
  }
  return RetryIfAborted(
      [&] {
        return pool_.Run([&](MySqlConnection& connection) -> absl::Status {
          connection.Begin();
          // A taken id is left as it is and counts 0 rows (the connection does not set
          // CLIENT_FOUND_ROWS); a creator racing for the same id waits for this row lock.
          sql::PreparedStatement& insert = connection.Prepare(
              "INSERT INTO im_groups (group_id, name, owner, created_ms, member_count) "
              "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE group_id = group_id");
          MySqlParams(insert)
              .Bytes(group.group_id)
              .Bytes(group.name)
              .Bytes(group.owner)
              .I64(group.created_ms)
              .U64(distinct.size());
          if (insert.executeUpdate() == 0) {
            return absl::AlreadyExistsError(fmt::format("group {} exists", group.group_id));
          }
          if (const size_t inserted = InsertMembers(connection, group.group_id, members, distinct);
              inserted != distinct.size()) {
            return absl::InternalError(
                fmt::format("group {} is new but {} of its {} member rows were there already",
                            group.group_id, distinct.size() - inserted, distinct.size()));
          }
          connection.Commit();
          return absl::OkStatus();
        });
      },
      kGroupAttempts);
}

absl::StatusOr<std::optional<Group>> MySqlGroupStore::GetGroup(std::string_view group_id) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  using Result = std::optional<Group>;
  return pool_.Run<Result>([&](MySqlConnection& connection) -> absl::StatusOr<Result> {
    sql::PreparedStatement& select = connection.Prepare(
        "SELECT group_id, name, owner, created_ms, member_count FROM im_groups "
        "WHERE group_id = ?");
    MySqlParams(select).Bytes(group_id);
    std::unique_ptr<sql::ResultSet> row = Query(select);
    if (!row->next()) return Result();
    Group group;
    group.group_id = ColumnBytes(*row, 1);
    group.name = ColumnBytes(*row, 2);
    group.owner = ColumnBytes(*row, 3);
    group.created_ms = row->getInt64(4);
    group.member_count = row->getUInt(5);
    return group;
  });
}

absl::StatusOr<std::vector<GroupMember>> MySqlGroupStore::AddMembers(
    std::string_view group_id, const std::vector<GroupMember>& members, uint32_t member_cap) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMembers(members, /*allow_owner=*/false); !status.ok()) {
    return status;
  }
  const std::vector<size_t> distinct = DistinctMembers(members);
  using Result = std::vector<GroupMember>;
  return RetryIfAborted(
      [&] {
        return pool_.Run<Result>([&](MySqlConnection& connection) -> absl::StatusOr<Result> {
          connection.Begin();
          const std::optional<LockedGroup> locked = LockGroup(connection, group_id);
          if (!locked) return absl::NotFoundError(fmt::format("no group {}", group_id));
          // With the group's row locked, nobody else changes its members until this commits.
          std::map<std::string, GroupMember, std::less<>> stored =
              SelectMembers(connection, group_id, members, distinct);
          std::vector<size_t> added;
          for (size_t i : distinct) {
            if (!stored.contains(members[i].uid)) added.push_back(i);
          }
          if (!added.empty()) {
            if (locked->member_count + added.size() > member_cap) {
              return absl::ResourceExhaustedError(
                  fmt::format("group {} has {} members; {} more would pass the cap of {}", group_id,
                              locked->member_count, added.size(), member_cap));
            }
            if (const size_t inserted = InsertMembers(connection, group_id, members, added);
                inserted != added.size()) {
              return absl::InternalError(
                  fmt::format("group {}: {} of {} new member rows were there", group_id,
                              added.size() - inserted, added.size()));
            }
            AddToMemberCount(connection, group_id, static_cast<int64_t>(added.size()));
          }
          connection.Commit();
          for (size_t i : added) stored.emplace(members[i].uid, members[i]);
          Result result;
          result.reserve(members.size());
          for (const GroupMember& member : members)
            result.push_back(stored.find(member.uid)->second);
          return result;
        });
      },
      kGroupAttempts);
}

absl::StatusOr<bool> MySqlGroupStore::RemoveMember(std::string_view group_id,
                                                   std::string_view uid) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  return RetryIfAborted(
      [&] {
        return pool_.Run<bool>([&](MySqlConnection& connection) -> absl::StatusOr<bool> {
          connection.Begin();
          if (!LockGroup(connection, group_id)) return false;
          sql::PreparedStatement& remove =
              connection.Prepare("DELETE FROM group_members WHERE group_id = ? AND uid = ?");
          MySqlParams(remove).Bytes(group_id).Bytes(uid);
          const bool removed = remove.executeUpdate() > 0;
          if (removed) AddToMemberCount(connection, group_id, -1);
          connection.Commit();
          return removed;
        });
      },
      kGroupAttempts);
}

absl::Status MySqlGroupStore::SetRole(std::string_view group_id, std::string_view uid,
                                      im::v1::GroupRole role) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckRole(role); !status.ok()) return status;
  return RetryIfAborted(
      [&] {
        return pool_.Run([&](MySqlConnection& connection) -> absl::Status {
          connection.Begin();
          const std::optional<LockedGroup> locked = LockGroup(connection, group_id);
          const absl::Status not_member =
              absl::NotFoundError(fmt::format("{} is not a member of group {}", uid, group_id));
          if (!locked) return not_member;
          sql::PreparedStatement& select =
              connection.Prepare("SELECT role FROM group_members WHERE group_id = ? AND uid = ?");
          MySqlParams(select).Bytes(group_id).Bytes(uid);
          std::unique_ptr<sql::ResultSet> row = Query(select);
          if (!row->next()) return not_member;
          const int stored_role = row->getInt(1);
          row.reset();
          sql::PreparedStatement& update = connection.Prepare(
              "UPDATE group_members SET role = ? WHERE group_id = ? AND uid = ? AND role = ?");
          if (stored_role != role) {
            MySqlParams(update).I32(role).Bytes(group_id).Bytes(uid).I32(stored_role);
            update.executeUpdate();
          }
          if (role == im::v1::OWNER && locked->owner != uid) {
            // Ownership moves: the previous owner, if it is still a member and still OWNER, steps
            // down to ADMIN.
            MySqlParams(update)
                .I32(im::v1::ADMIN)
                .Bytes(group_id)
                .Bytes(locked->owner)
                .I32(im::v1::OWNER);
            update.executeUpdate();
            sql::PreparedStatement& owner =
                connection.Prepare("UPDATE im_groups SET owner = ? WHERE group_id = ?");
            MySqlParams(owner).Bytes(uid).Bytes(group_id);
            owner.executeUpdate();
          }
          connection.Commit();
          return absl::OkStatus();
        });
      },
      kGroupAttempts);
}

absl::StatusOr<std::optional<GroupMember>> MySqlGroupStore::GetMember(std::string_view group_id,
                                                                      std::string_view uid) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  using Result = std::optional<GroupMember>;
  return pool_.Run<Result>([&](MySqlConnection& connection) -> absl::StatusOr<Result> {
    sql::PreparedStatement& select = connection.Prepare(
        fmt::format("SELECT {} FROM group_members WHERE group_id = ? AND uid = ?", kMemberColumns));
    MySqlParams(select).Bytes(group_id).Bytes(uid);
    std::unique_ptr<sql::ResultSet> row = Query(select);
    if (!row->next()) return Result();
    return ReadMember(*row);
  });
}

absl::StatusOr<std::vector<GroupMember>> MySqlGroupStore::ListMembers(std::string_view group_id,
                                                                      std::string_view after_uid,
                                                                      uint32_t limit) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  if (absl::Status status = CheckUid(after_uid); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  using Result = std::vector<GroupMember>;
  return pool_.Run<Result>([&](MySqlConnection& connection) -> absl::StatusOr<Result> {
    sql::PreparedStatement& select = connection.Prepare(
        fmt::format("SELECT {} FROM group_members WHERE group_id = ? AND uid > ? ORDER BY uid "
                    "LIMIT ?",
                    kMemberColumns));
    MySqlParams(select).Bytes(group_id).Bytes(after_uid).U64(limit);
    Result page;
    std::unique_ptr<sql::ResultSet> rows = Query(select);
    while (rows->next()) page.push_back(ReadMember(*rows));
    return page;
  });
}

absl::StatusOr<std::vector<std::string>> MySqlGroupStore::DeleteGroup(std::string_view group_id) {
  if (absl::Status status = CheckGroupId(group_id); !status.ok()) return status;
  using Result = std::vector<std::string>;
  return RetryIfAborted(
      [&] {
        return pool_.Run<Result>([&](MySqlConnection& connection) -> absl::StatusOr<Result> {
          connection.Begin();
          // With the group's row locked, no add or remove of a member runs until this commits:
          // the members read here are the ones deleted.
          if (!LockGroup(connection, group_id)) {
            return absl::NotFoundError(fmt::format("no group {}", group_id));
          }
          Result uids;
          {
            sql::PreparedStatement& select =
                connection.Prepare("SELECT uid FROM group_members WHERE group_id = ? ORDER BY uid");
            MySqlParams(select).Bytes(group_id);
            std::unique_ptr<sql::ResultSet> rows = Query(select);
            while (rows->next()) uids.push_back(ColumnBytes(*rows, 1));
          }
          sql::PreparedStatement& remove_members =
              connection.Prepare("DELETE FROM group_members WHERE group_id = ?");
          MySqlParams(remove_members).Bytes(group_id);
          if (const size_t removed = static_cast<size_t>(remove_members.executeUpdate());
              removed != uids.size()) {
            return absl::InternalError(
                fmt::format("group {}: {} members read but {} member rows deleted", group_id,
                            uids.size(), removed));
          }
          sql::PreparedStatement& remove_group =
              connection.Prepare("DELETE FROM im_groups WHERE group_id = ?");
          MySqlParams(remove_group).Bytes(group_id);
          remove_group.executeUpdate();
          connection.Commit();
          return uids;
        });
      },
      kGroupAttempts);
}

}  // namespace im::store
