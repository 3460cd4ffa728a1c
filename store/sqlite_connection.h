#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/sqlite_statement.h"

struct sqlite3;
struct sqlite3_stmt;

namespace im::store {

// One SQLite connection with its prepared statements. Not thread-safe: SqliteDatabase lends it to
// one thread at a time (it is opened without SQLite's own per-connection mutex).
class SqliteConnection {
 public:
  // Opens (creating) the database file at `path`; waits up to `busy_timeout` for a lock another
  // connection holds before a statement gives up with SQLITE_BUSY. UNAVAILABLE when the file
  // cannot be opened.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(
      const std::string& path, std::chrono::milliseconds busy_timeout);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // Runs SQL text of one or more statements without parameters (pragmas, migrations); rows they
  // return are dropped.
  absl::Status Execute(std::string_view sql);

  // The statement for `sql`, prepared on its first use and kept until the connection closes. One
  // use at a time: INTERNAL while another SqliteStatement of the same text is alive.
  absl::StatusOr<SqliteStatement> Prepare(std::string_view sql);

  // How transactions take their locks: a writer takes the write lock at BEGIN (IMMEDIATE), so a
  // transaction that read first never fails to upgrade; a reader takes a snapshot at its first
  // read (DEFERRED).
  enum class Begin { kDeferred, kImmediate };
  // Runs `work` in a transaction: COMMIT when it returns OK, ROLLBACK otherwise (and when COMMIT
  // fails). Returns the first error.
  absl::Status Transaction(Begin begin, absl::FunctionRef<absl::Status()> work);

  // Rows changed by the last INSERT, UPDATE or DELETE that finished on this connection.
  int64_t changes() const;
  const std::string& path() const { return path_; }

 private:
  struct StatementDeleter {
    void operator()(sqlite3_stmt* statement) const;
  };
  struct Cached {
    std::unique_ptr<sqlite3_stmt, StatementDeleter> statement;
    bool lent = false;
  };

  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  // Rolls back the transaction if one is still open; SQLite has rolled it back already after some
  // errors (a full disk, an I/O error).
  void RollbackIfOpen();

  sqlite3* db_;
  const std::string path_;  // for error texts
  std::map<std::string, std::unique_ptr<Cached>, std::less<>> statements_;
};

}  // namespace im::store
