#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace im::store {

// An SQLite result code (extended codes included) as a status, for the store contracts:
// busy, locked, I/O, disk full, cannot open, read-only file -> UNAVAILABLE (the call may be
// retried; a full disk is not RESOURCE_EXHAUSTED, which the group store answers for a full group);
// a value too big or of the wrong type, a CHECK or NOT NULL constraint -> INVALID_ARGUMENT; a
// unique or primary key -> ALREADY_EXISTS; a foreign key -> FAILED_PRECONDITION; corrupt or not a
// database -> DATA_LOSS; out of memory -> RESOURCE_EXHAUSTED; interrupted -> CANCELLED; anything
// else (a bad statement) INTERNAL. The text names `where`, SQLite's message and its code name.
absl::Status StatusFromSqlite(int code, std::string_view where, std::string_view message);

// The status of the last call on `db` that returned `code`, with sqlite3_errmsg as its message.
absl::Status StatusFromSqlite(sqlite3* db, int code, std::string_view where);

// One use of a prepared statement that its SqliteConnection keeps: bind the parameters in order,
// step, read the columns of each row. Going out of scope resets the statement and clears its
// bindings, so that no read stays open and the next use starts afresh. Used by the thread that
// holds the connection, and never beyond the connection's life.
//
// Parameters are bound in order, from the first (a statement that names them ?1, ?2 ... binds them
// in that order). Values are copied into SQLite. A value that cannot be bound (U64 above
// INT64_MAX: SQLite integers are signed 64-bit) makes the next Step fail with INVALID_ARGUMENT.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  ~SqliteStatement();

  // Bytes, compared byte for byte: identifiers and bodies. An empty value is an empty BLOB, not
  // NULL.
  SqliteStatement& Bytes(std::string_view value);
  // NULL for an empty value: an optional key, such as a client_msg_id the sender did not give.
  SqliteStatement& BytesOrNull(std::string_view value);
  // UTF-8 text.
  SqliteStatement& Text(std::string_view value);
  SqliteStatement& I64(int64_t value);
  SqliteStatement& U64(uint64_t value);

  // The next row: true when there is one, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Steps to the end, calling `row` on each row (it reads the columns).
  absl::Status ForEachRow(absl::FunctionRef<void(const SqliteStatement&)> row);
  // Steps to the end, for a statement that writes (its rows, if any, are dropped).
  absl::Status Run();

  // Columns of the current row, from 0.
  bool ColumnIsNull(int column) const;
  int64_t ColumnI64(int column) const;
  // A column that only ever holds values from U64.
  uint64_t ColumnU64(int column) const;
  std::string ColumnBytes(int column) const;

 private:
  friend class SqliteConnection;
  // `lent` is the connection's mark that this statement is in use; cleared on destruction.
  SqliteStatement(sqlite3_stmt* statement, bool* lent) : statement_(statement), lent_(lent) {}

  // Records the first failing bind; Step returns it.
  void Check(int code, std::string_view what);

  sqlite3_stmt* statement_;
  bool* lent_;
  int next_parameter_ = 1;
  absl::Status bind_error_;
};

}  // namespace im::store
