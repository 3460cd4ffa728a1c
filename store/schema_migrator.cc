#include "store/schema_migrator.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "common/clock.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace im::store {
namespace {

constexpr char kLedger[] = "schema_migrations";
constexpr char kLockName[] = "im_schema_migrations";
constexpr int kLockWaitSeconds = 30;
// Migrations run on a connection of their own whose reads may wait this long: DDL on a large
// table, or another node's migrations holding the lock, take longer than a normal statement.
constexpr std::chrono::minutes kMigrationReadTimeout{10};

// Debian's abseil has its own string_view, so its string helpers do not take std's.
std::string_view StripTrailingWhitespace(std::string_view text) {
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::string_view StripWhitespace(std::string_view text) {
  text = StripTrailingWhitespace(text);
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  return text;
}

bool IsPlainName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

// embed_migrations.cmake has checked the name: NNNN_lower_snake_case.sql.
Migration Parse(const MigrationFile& file) {
  Migration migration;
  migration.version = file.version();
  migration.name = std::string(file.name());
  migration.statements = SplitSqlStatements(file.text);
  return migration;
}

// Throws like the connector.
std::set<uint32_t> RecordedVersions(MySqlConnection& connection, std::string_view ledger) {
  std::set<uint32_t> versions;
  sql::PreparedStatement& select =
      connection.Prepare(fmt::format("SELECT version FROM {}", ledger));
  std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
  while (rows->next()) versions.insert(rows->getUInt(1));
  return versions;
}

// Runs one migration's statements and records it. Throws like the connector.
void Apply(MySqlConnection& connection, const Migration& migration, std::string_view ledger) {
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& statement : migration.statements) connection.Execute(statement);
  sql::PreparedStatement& record = connection.Prepare(
      fmt::format("INSERT INTO {} (version, name, applied_ms) VALUES (?, ?, ?)", ledger));
  MySqlParams(record).U64(migration.version).Bytes(migration.name).I64(common::UnixMillis());
  record.executeUpdate();
  spdlog::info("schema migration {:04}_{} applied in {} ms", migration.version, migration.name,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count());
}

}  // namespace

std::vector<std::string> SplitSqlStatements(std::string_view script) {
  std::vector<std::string> statements;
  std::string current;
  while (!script.empty()) {
    const size_t end = script.find('\n');
    const std::string_view line = script.substr(0, end);
    script.remove_prefix(end == std::string_view::npos ? script.size() : end + 1);
    const std::string_view trimmed = StripWhitespace(line);
    if (trimmed.empty() || trimmed.substr(0, 2) == "--") continue;
    if (!current.empty()) current += '\n';
    current += StripTrailingWhitespace(line);
    if (trimmed.back() == ';') {
      current.pop_back();
      statements.push_back(std::move(current));
      current.clear();
    }
  }
  // A last statement without its ';' still runs.
  if (!StripWhitespace(current).empty()) statements.push_back(std::move(current));
  return statements;
}

const std::vector<Migration>& KnownMigrations() {
  static const std::vector<Migration>* const migrations = [] {
    auto* parsed = new std::vector<Migration>();
    for (const MigrationFile& file : EmbeddedMigrationFiles()) parsed->push_back(Parse(file));
    return parsed;
  }();
  return *migrations;
}

absl::Status ApplyMigrations(MySqlConnectionPool& pool, std::vector<uint32_t>* applied) {
  return ApplyMigrations(pool, KnownMigrations(), kLedger, applied);
}

absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(MySqlConnectionPool& pool) {
  return AppliedMigrations(pool, kLedger);
}

absl::Status ApplyMigrations(MySqlConnectionPool& pool, const std::vector<Migration>& migrations,
                             std::string_view ledger, std::vector<uint32_t>* applied) {
  if (!IsPlainName(ledger)) {
    return absl::InvalidArgumentError(fmt::format("bad ledger table name '{}'", ledger));
  }
  MySqlOptions options = pool.options();
  options.read_write_timeout =
      std::max<std::chrono::milliseconds>(options.read_write_timeout, kMigrationReadTimeout);
  absl::StatusOr<std::unique_ptr<MySqlConnection>> connected = MySqlConnection::Connect(options);
  if (!connected.ok()) return connected.status();
  // The named lock belongs to this connection's session, which ends when the connection is
  // destroyed on return: the lock is released whatever happened.
  MySqlConnection& connection = **connected;
  return connection.Guard([&]() -> absl::Status {
    {
      sql::PreparedStatement& lock = connection.Prepare("SELECT GET_LOCK(?, ?)");
      MySqlParams(lock).Bytes(kLockName).I32(kLockWaitSeconds);
      std::unique_ptr<sql::ResultSet> row(lock.executeQuery());
      if (!row->next() || row->isNull(1) || row->getInt(1) != 1) {
        return absl::UnavailableError(fmt::format(
            "schema migrations: another process held the lock {} for {} s; is a migration stuck?",
            kLockName, kLockWaitSeconds));
      }
    }
    connection.Execute(
        fmt::format("CREATE TABLE IF NOT EXISTS {} (version INT UNSIGNED NOT NULL PRIMARY KEY, "
                    "name VARCHAR(255) NOT NULL, applied_ms BIGINT NOT NULL) "
                    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                    ledger));
    const std::set<uint32_t> recorded = RecordedVersions(connection, ledger);
    for (uint32_t version : recorded) {
      if (std::none_of(migrations.begin(), migrations.end(),
                       [&](const Migration& m) { return m.version == version; })) {
        spdlog::warn(
            "schema migration {:04} is recorded but unknown to this build (a newer one "
            "ran); carrying on",
            version);
      }
    }
    for (const Migration& migration : migrations) {
      if (recorded.contains(migration.version)) continue;
      absl::Status status = connection.Guard([&] {
        Apply(connection, migration, ledger);
        return absl::OkStatus();
      });
      if (!status.ok()) {
        return absl::Status(status.code(),
                            fmt::format("schema migration {:04}_{}: {}", migration.version,
                                        migration.name, std::string(status.message())));
      }
      if (applied != nullptr) applied->push_back(migration.version);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<AppliedMigration>> AppliedMigrations(MySqlConnectionPool& pool,
                                                                std::string_view ledger) {
  if (!IsPlainName(ledger)) {
    return absl::InvalidArgumentError(fmt::format("bad ledger table name '{}'", ledger));
  }
  using Applied = std::vector<AppliedMigration>;
  return pool.Run<Applied>([&](MySqlConnection& connection) -> absl::StatusOr<Applied> {
    Applied result;
    sql::PreparedStatement& exists = connection.Prepare(
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = ?");
    MySqlParams(exists).Bytes(ledger);
    std::unique_ptr<sql::ResultSet> found(exists.executeQuery());
    if (!found->next() || found->getInt(1) == 0) return result;
    found.reset();
    sql::PreparedStatement& select = connection.Prepare(
        fmt::format("SELECT version, name, applied_ms FROM {} ORDER BY version", ledger));
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    while (rows->next()) {
      result.push_back(
          AppliedMigration{rows->getUInt(1), ColumnBytes(*rows, 2), rows->getInt64(3)});
    }
    return result;
  });
}

}  // namespace im::store
