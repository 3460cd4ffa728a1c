#include "store/sqlite_statement.h"

#include <sqlite3.h>

#include <limits>
#include <utility>

#include "fmt/format.h"

namespace im::store {
namespace {

absl::StatusCode ConstraintCode(int code) {
  switch (code) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_ROWID:
      return absl::StatusCode::kAlreadyExists;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::StatusCode::kFailedPrecondition;
    default:  // CHECK, NOT NULL, a STRICT column's type
      return absl::StatusCode::kInvalidArgument;
  }
}

absl::StatusCode CodeFor(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ConstraintCode(code);
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kCancelled;
    case SQLITE_ABORT:
      return absl::StatusCode::kAborted;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status StatusFromSqlite(int code, std::string_view where, std::string_view message) {
  return absl::Status(CodeFor(code), fmt::format("{}: {} (SQLite error {}: {})", where, message,
                                                 code, sqlite3_errstr(code)));
}

absl::Status StatusFromSqlite(sqlite3* db, int code, std::string_view where) {
  return StatusFromSqlite(code, where, db != nullptr ? sqlite3_errmsg(db) : "out of memory");
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)),
      lent_(std::exchange(other.lent_, nullptr)),
      next_parameter_(other.next_parameter_),
      bind_error_(std::move(other.bind_error_)) {}

SqliteStatement::~SqliteStatement() {
  if (statement_ == nullptr) return;
  // reset returns the error of the last step again, which Step has reported already.
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
  *lent_ = false;
}

void SqliteStatement::Check(int code, std::string_view what) {
  if (code != SQLITE_OK && bind_error_.ok()) {
    bind_error_ =
        StatusFromSqlite(sqlite3_db_handle(statement_), code,
                         fmt::format("binding {} as parameter {}", what, next_parameter_));
  }
  ++next_parameter_;
}

SqliteStatement& SqliteStatement::Bytes(std::string_view value) {
  // A null pointer would bind NULL; an empty value must stay an empty BLOB.
  Check(sqlite3_bind_blob64(statement_, next_parameter_, value.empty() ? "" : value.data(),
                            value.size(), SQLITE_TRANSIENT),
        "bytes");
  return *this;
}

SqliteStatement& SqliteStatement::BytesOrNull(std::string_view value) {
  if (!value.empty()) return Bytes(value);
  Check(sqlite3_bind_null(statement_, next_parameter_), "NULL");
  return *this;
}

SqliteStatement& SqliteStatement::Text(std::string_view value) {
  Check(sqlite3_bind_text64(statement_, next_parameter_, value.empty() ? "" : value.data(),
                            value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
        "text");
  return *this;
}

SqliteStatement& SqliteStatement::I64(int64_t value) {
  Check(sqlite3_bind_int64(statement_, next_parameter_, value), "an integer");
  return *this;
}

SqliteStatement& SqliteStatement::U64(uint64_t value) {
  if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    if (bind_error_.ok()) {
      bind_error_ = absl::InvalidArgumentError(
          fmt::format("{} does not fit an SQLite integer (parameter {} of {})", value,
                      next_parameter_, sqlite3_sql(statement_)));
    }
    ++next_parameter_;
    return *this;
  }
  return I64(static_cast<int64_t>(value));
}

absl::StatusOr<bool> SqliteStatement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  return StatusFromSqlite(sqlite3_db_handle(statement_), code, sqlite3_sql(statement_));
}

absl::Status SqliteStatement::ForEachRow(absl::FunctionRef<void(const SqliteStatement&)> row) {
  for (;;) {
    absl::StatusOr<bool> found = Step();
    if (!found.ok()) return found.status();
    if (!*found) return absl::OkStatus();
    row(*this);
  }
}

absl::Status SqliteStatement::Run() {
  return ForEachRow([](const SqliteStatement&) {});
}

bool SqliteStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

int64_t SqliteStatement::ColumnI64(int column) const {
  return sqlite3_column_int64(statement_, column);
}

uint64_t SqliteStatement::ColumnU64(int column) const {
  return static_cast<uint64_t>(sqlite3_column_int64(statement_, column));
}

std::string SqliteStatement::ColumnBytes(int column) const {
  const void* bytes = sqlite3_column_blob(statement_, column);
  const int size = sqlite3_column_bytes(statement_, column);
  return bytes == nullptr ? std::string() : std::string(static_cast<const char*>(bytes), size);
}

}  // namespace im::store
