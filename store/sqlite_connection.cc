#include "store/sqlite_connection.h"

#include <sqlite3.h>

#include <utility>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace im::store {

void SqliteConnection::StatementDeleter::operator()(sqlite3_stmt* statement) const {
  sqlite3_finalize(statement);
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(
    const std::string& path, std::chrono::milliseconds busy_timeout) {
  sqlite3* db = nullptr;
  // NOMUTEX: a connection is used by one thread at a time (SqliteDatabase sees to it), so SQLite's
  // own per-connection mutex would only cost.
  const int code = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    absl::Status status = StatusFromSqlite(db, code, fmt::format("opening {}", path));
    sqlite3_close(db);
    return status;
  }
  std::unique_ptr<SqliteConnection> connection(new SqliteConnection(db, path));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
  return connection;
}

SqliteConnection::~SqliteConnection() {
  // Every statement must be finalized before the connection closes.
  statements_.clear();
  if (const int code = sqlite3_close(db_); code != SQLITE_OK) {
    spdlog::error("closing SQLite database {}: {}", path_, sqlite3_errstr(code));
  }
}

absl::Status SqliteConnection::Execute(std::string_view sql) {
  const std::string text(sql);  // sqlite3_exec needs a terminating NUL
  char* message = nullptr;
  const int code = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (code == SQLITE_OK) return absl::OkStatus();
  absl::Status status = StatusFromSqlite(code, fmt::format("{} on {}", text.substr(0, 80), path_),
                                         message != nullptr ? message : sqlite3_errstr(code));
  sqlite3_free(message);
  return status;
}

absl::StatusOr<SqliteStatement> SqliteConnection::Prepare(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* statement = nullptr;
    const int code = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
    if (code != SQLITE_OK) {
      sqlite3_finalize(statement);
      return StatusFromSqlite(db_, code, fmt::format("preparing {}", sql));
    }
    auto cached = std::make_unique<Cached>();
    cached->statement.reset(statement);
    it = statements_.emplace(std::string(sql), std::move(cached)).first;
  }
  Cached& cached = *it->second;
  if (cached.lent) {
    return absl::InternalError(fmt::format("statement used twice at once: {}", sql));
  }
  cached.lent = true;
  return SqliteStatement(cached.statement.get(), &cached.lent);
}

absl::Status SqliteConnection::Transaction(Begin begin, absl::FunctionRef<absl::Status()> work) {
  absl::Status status = Execute(begin == Begin::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  if (!status.ok()) return status;
  status = work();
  if (status.ok()) status = Execute("COMMIT");
  if (!status.ok()) RollbackIfOpen();
  return status;
}

void SqliteConnection::RollbackIfOpen() {
  if (sqlite3_get_autocommit(db_) != 0) return;
  if (absl::Status status = Execute("ROLLBACK"); !status.ok()) {
    spdlog::error("SQLite rollback failed: {}", status.ToString());
  }
}

int64_t SqliteConnection::changes() const { return sqlite3_changes64(db_); }

}  // namespace im::store
