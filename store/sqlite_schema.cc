#include "store/sqlite_schema.h"

#include "common/clock.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace im::store {
namespace {

constexpr char kCreateLedger[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_ms INTEGER NOT NULL) STRICT";

struct Migration {
  uint32_t version = 0;
  std::string_view name;
  std::string_view text;
};

// embed_migrations.cmake has checked the name: NNNN_lower_snake_case.sql.
Migration Parse(const MigrationFile& file) {
  Migration migration;
  migration.version = file.version();
  migration.name = file.name();
  migration.text = file.text;
  return migration;
}

absl::StatusOr<bool> IsRecorded(SqliteConnection& connection, uint32_t version) {
  IM_ASSIGN_OR_RETURN(SqliteStatement select,
                      connection.Prepare("SELECT 1 FROM schema_migrations WHERE version = ?"));
  select.I64(version);
  return select.Step();
}

// Runs the migration and records it, unless the ledger has it: read inside the write
// transaction, so that two processes opening the database at once do not both apply it.
absl::StatusOr<bool> ApplyOnce(SqliteConnection& writer, const Migration& migration) {
  bool ran = false;
  absl::Status status =
      writer.Transaction(SqliteConnection::Begin::kImmediate, [&]() -> absl::Status {
        IM_ASSIGN_OR_RETURN(const bool recorded, IsRecorded(writer, migration.version));
        if (recorded) return absl::OkStatus();
        IM_RETURN_IF_ERROR(writer.Execute(migration.text));
        IM_ASSIGN_OR_RETURN(SqliteStatement record,
                            writer.Prepare("INSERT INTO schema_migrations (version, name, "
                                           "applied_ms) VALUES (?, ?, ?)"));
        record.I64(migration.version).Text(migration.name).I64(common::UnixMillis());
        IM_RETURN_IF_ERROR(record.Run());
        ran = true;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return ran;
}

}  // namespace

absl::Status ApplySqliteMigrations(SqliteConnection& writer, std::vector<uint32_t>* applied) {
  IM_RETURN_IF_ERROR(writer.Execute(kCreateLedger));
  for (const MigrationFile& file : EmbeddedSqliteMigrationFiles()) {
    const Migration migration = Parse(file);
    absl::StatusOr<bool> ran = ApplyOnce(writer, migration);
    if (!ran.ok()) {
      return absl::Status(ran.status().code(),
                          fmt::format("SQLite schema migration {}: {}", file.file_name,
                                      std::string(ran.status().message())));
    }
    if (!*ran) continue;
    spdlog::info("SQLite schema migration {} applied to {}", file.file_name, writer.path());
    if (applied != nullptr) applied->push_back(migration.version);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(SqliteConnection& connection) {
  std::vector<AppliedMigration> result;
  IM_ASSIGN_OR_RETURN(SqliteStatement exists,
                      connection.Prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                                         "name = 'schema_migrations'"));
  IM_ASSIGN_OR_RETURN(const bool has_ledger, exists.Step());
  if (!has_ledger) return result;
  IM_ASSIGN_OR_RETURN(SqliteStatement select,
                      connection.Prepare("SELECT version, name, applied_ms FROM schema_migrations "
                                         "ORDER BY version"));
  IM_RETURN_IF_ERROR(select.ForEachRow([&](const SqliteStatement& row) {
    result.push_back(AppliedMigration{static_cast<uint32_t>(row.ColumnI64(0)), row.ColumnBytes(1),
                                      row.ColumnI64(2)});
  }));
  return result;
}

}  // namespace im::store
