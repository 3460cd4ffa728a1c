#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace im::store {

// A schema migration file as built into the binary by store/embed_migrations.cmake (so that a
// deployment needs no schema files on disk): store/migrations for MySQL, store/sqlite_migrations
// for the embedded node's SQLite. Named NNNN_lower_snake_case.sql, which the script checked.
struct MigrationFile {
  std::string_view file_name;  // "0001_conversations_and_messages.sql"
  std::string_view text;

  uint32_t version() const;       // 1 for 0001_*.sql
  std::string_view name() const;  // "conversations_and_messages"
};

// A row of a database's schema_migrations ledger.
struct AppliedMigration {
  uint32_t version = 0;
  std::string name;
  int64_t applied_ms = 0;  // Unix milliseconds
};

}  // namespace im::store
