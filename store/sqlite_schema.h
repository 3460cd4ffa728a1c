#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/migration_file.h"
#include "store/sqlite_connection.h"

namespace im::store {

// Generated from store/sqlite_migrations; in file name order, which is version order.
std::span<const MigrationFile> EmbeddedSqliteMigrationFiles();

// Brings the schema of the database `writer` is connected to up to date: creates the ledger table
// schema_migrations(version, name, applied_ms) if missing, then applies each embedded migration
// the ledger lacks, in version order, each in a transaction of its own together with its ledger
// row (SQLite's DDL is transactional: a migration is applied whole or not at all, and one that is
// recorded never runs again). Adds the versions it applied to *applied when given. `writer` must
// be the database's write connection, outside a transaction.
absl::Status ApplySqliteMigrations(SqliteConnection& writer,
                                   std::vector<uint32_t>* applied = nullptr);

// What the ledger records, in version order; empty before the first ApplySqliteMigrations.
absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(SqliteConnection& connection);

}  // namespace im::store
