#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/migration_file.h"
#include "store/mysql_connection_pool.h"

namespace im::store {

// Generated from store/migrations; in file name order, which is version order.
std::span<const MigrationFile> EmbeddedMigrationFiles();

struct Migration {
  uint32_t version = 0;  // 1 for 0001_*.sql
  std::string name;      // the rest of the file name, without ".sql"
  std::vector<std::string> statements;
};

// The statements of a migration script: each ends with a line that ends in ';'. Blank lines and
// lines starting with "--" are dropped, so a ';' in a comment ends nothing.
std::vector<std::string> SplitSqlStatements(std::string_view script);

// The migrations built into this binary, in version order. Any thread.
const std::vector<Migration>& KnownMigrations();

// Brings the schema up to date. Creates the ledger table schema_migrations(version, name,
// applied_ms) if missing; then, holding the named lock im_schema_migrations so that logic nodes
// starting together take turns (waiting up to 30 s for it), applies each known migration the ledger
// lacks, in version order, recording each right after its statements ran. A second run does
// nothing. Adds the versions it applied to *applied when given. Blocks on MySQL; any thread.
absl::Status ApplyMigrations(MySqlConnectionPool& pool, std::vector<uint32_t>* applied = nullptr);

// What the ledger records, in version order; empty before the first ApplyMigrations. Any thread.
absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(MySqlConnectionPool& pool);

// The two above with another migration list and ledger table (lowercase letters, digits and '_'),
// for tests that must not touch the real schema.
absl::Status ApplyMigrations(MySqlConnectionPool& pool, const std::vector<Migration>& migrations,
                             std::string_view ledger, std::vector<uint32_t>* applied);
absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(MySqlConnectionPool& pool,
                                                                std::string_view ledger);

}  // namespace im::store
