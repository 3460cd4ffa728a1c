#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/sqlite_connection.h"

namespace im::store {

// A file of store/sqlite_migrations as built into the binary (embedded at build time by
// store/embed_migrations.cmake, so that a deployment needs no schema files on disk).
struct SqliteMigrationFile {
  std::string_view file_name;  // "0001_conversations_and_messages.sql"
  std::string_view text;
};

// Generated; in file name order, which is version order.
std::span<const SqliteMigrationFile> EmbeddedSqliteMigrationFiles();

struct AppliedSqliteMigration {
  uint32_t version = 0;    // 1 for 0001_*.sql
  std::string name;        // the rest of the file name, without ".sql"
  int64_t applied_ms = 0;  // Unix milliseconds
};

// Brings the schema of the database `writer` is connected to up to date: creates the ledger table
// schema_migrations(version, name, applied_ms) if missing, then applies each embedded migration
// the ledger lacks, in version order, each in a transaction of its own together with its ledger
// row (SQLite's DDL is transactional: a migration is applied whole or not at all, and one that is
// recorded never runs again). Adds the versions it applied to *applied when given. `writer` must
// be the database's write connection, outside a transaction.
absl::Status ApplySqliteMigrations(SqliteConnection& writer,
                                   std::vector<uint32_t>* applied = nullptr);

// What the ledger records, in version order; empty before the first ApplySqliteMigrations.
absl::StatusOr<std::vector<AppliedSqliteMigration>> AppliedSqliteMigrations(
    SqliteConnection& connection);

}  // namespace im::store
