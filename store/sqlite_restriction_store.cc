#include "store/sqlite_restriction_store.h"

#include "common/logging.h"
#include "common/status_macros.h"
#include "store/restriction_rules.h"

namespace im::store {
namespace {

constexpr char kPruneSql[] = "DELETE FROM restrictions WHERE until_ms <= ?";

// Writes a new row or new times; an identical row is left as it is, so changes() tells whether
// anything changed.
constexpr char kUpsertSql[] =
    "INSERT INTO restrictions (kind, subject, since_ms, until_ms) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, subject) DO UPDATE SET since_ms = excluded.since_ms, "
    "until_ms = excluded.until_ms "
    "WHERE since_ms != excluded.since_ms OR until_ms != excluded.until_ms";

constexpr char kDeleteSql[] = "DELETE FROM restrictions WHERE kind = ? AND subject = ?";

constexpr char kSelectLiveSql[] =
    "SELECT kind, subject, since_ms, until_ms FROM restrictions WHERE until_ms > ?";

}  // namespace

absl::Status SqliteRestrictionStore::Put(const Restriction& restriction) {
  IM_RETURN_IF_ERROR(CheckRestrictionKey(restriction.kind, restriction.subject));
  const int64_t now_ms = now_ms_();
  IM_ASSIGN_OR_RETURN(
      const bool changed,
      database_.Write<bool>([&](SqliteConnection& connection) -> absl::StatusOr<bool> {
        {
          // Lapsed rows are not live: dropping them changes nothing a reader loads.
          IM_ASSIGN_OR_RETURN(SqliteStatement prune, connection.Prepare(kPruneSql));
          prune.I64(now_ms);
          IM_RETURN_IF_ERROR(prune.Run());
        }
        IM_ASSIGN_OR_RETURN(SqliteStatement upsert, connection.Prepare(kUpsertSql));
        upsert.I64(static_cast<int64_t>(restriction.kind))
            .Bytes(restriction.subject)
            .I64(restriction.since_ms)
            .I64(restriction.until_ms);
        IM_RETURN_IF_ERROR(upsert.Run());
        return connection.changes() > 0;
      }));
  if (changed) version_.fetch_add(1);
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteRestrictionStore::Remove(RestrictionKind kind,
                                                    std::string_view subject) {
  IM_RETURN_IF_ERROR(CheckRestrictionKey(kind, subject));
  IM_ASSIGN_OR_RETURN(
      const bool removed,
      database_.Write<bool>([&](SqliteConnection& connection) -> absl::StatusOr<bool> {
        IM_ASSIGN_OR_RETURN(SqliteStatement remove, connection.Prepare(kDeleteSql));
        remove.I64(static_cast<int64_t>(kind)).Bytes(subject);
        IM_RETURN_IF_ERROR(remove.Run());
        return connection.changes() > 0;
      }));
  if (removed) version_.fetch_add(1);
  return removed;
}

absl::StatusOr<uint64_t> SqliteRestrictionStore::Version() { return version_.load(); }

absl::StatusOr<std::vector<Restriction>> SqliteRestrictionStore::LoadLive(int64_t now_ms) {
  using Live = std::vector<Restriction>;
  return database_.Read<Live>([&](SqliteConnection& connection) -> absl::StatusOr<Live> {
    IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kSelectLiveSql));
    select.I64(now_ms);
    Live live;
    IM_RETURN_IF_ERROR(select.ForEachRow([&](const SqliteStatement& row) {
      const int64_t kind = row.ColumnI64(0);
      if (!IsKnownRestrictionKind(kind)) {
        skipped_rows_.fetch_add(1, std::memory_order_relaxed);
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "sqlite: skipped a restriction of unknown kind {}",
                            kind);
        return;
      }
      Restriction restriction;
      restriction.kind = static_cast<RestrictionKind>(kind);
      restriction.subject = row.ColumnBytes(1);
      restriction.since_ms = row.ColumnI64(2);
      restriction.until_ms = row.ColumnI64(3);
      live.push_back(std::move(restriction));
    }));
    return live;
  });
}

}  // namespace im::store
