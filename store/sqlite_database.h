#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/sqlite_connection.h"

namespace im::store {

struct SqliteOptions {
  std::string path;  // the database file, created if missing; its directory must exist
  // Connections for reads, at least 1: readers run beside each other and beside the writer.
  size_t read_connections = 4;
  // How long a statement waits for a lock another process holds, and a read for a free read
  // connection, before the call fails with UNAVAILABLE.
  std::chrono::milliseconds busy_timeout{5000};
};

// The SQLite database of the embedded single-node mode: its messages, conversations, cursors,
// groups and restrictions (store/sqlite_migrations, applied when it opens).
//
// Durability: the journal is a write-ahead log with synchronous=FULL, so COMMIT returns once the
// log is on disk (fsync): a transaction that returned OK survives kill -9 and power loss, and a
// message is durable before its ack. Foreign keys are enforced.
//
// Threads: one write connection, lent under a mutex, so writes take turns in this process and
// never meet SQLITE_BUSY from each other (SQLite allows one writer at a time anyway); each write
// runs in a BEGIN IMMEDIATE transaction. Beside it a pool of read connections: in WAL mode readers
// read a snapshot and neither wait for the writer nor hold it up. Thread-safe; calls block (disk),
// so they run on the store executor, never on an event loop. Writers wait for the mutex without a
// bound of their own: the executor that runs them bounds how many wait.
class SqliteDatabase {
 public:
  // Opens (creating) the database, sets it up and applies the migrations it lacks. UNAVAILABLE
  // when the file cannot be opened or locked; INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(const SqliteOptions& options);
  // No Read or Write may be running.
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  // Runs `transaction` on the write connection in a BEGIN IMMEDIATE transaction, which commits
  // when it returns OK and rolls back otherwise. Any thread; `transaction` runs on the calling
  // thread and must not call Read or Write.
  absl::Status Write(absl::FunctionRef<absl::Status(SqliteConnection&)> transaction);
  template <typename T>
  absl::StatusOr<T> Write(absl::FunctionRef<absl::StatusOr<T>(SqliteConnection&)> transaction) {
    absl::StatusOr<T> result = absl::UnknownError("not run");
    absl::Status status = Write([&](SqliteConnection& connection) {
      result = transaction(connection);
      return result.status();
    });
    if (!status.ok()) return status;
    return result;
  }

  // Runs `reads` on a read connection in one read transaction, so that its statements see one
  // snapshot: every write committed before it began, none after. UNAVAILABLE when no read
  // connection frees up within busy_timeout. Any thread; `reads` runs on the calling thread and
  // must not call Read or Write.
  absl::Status Read(absl::FunctionRef<absl::Status(SqliteConnection&)> reads);
  template <typename T>
  absl::StatusOr<T> Read(absl::FunctionRef<absl::StatusOr<T>(SqliteConnection&)> reads) {
    absl::StatusOr<T> result = absl::UnknownError("not run");
    absl::Status status = Read([&](SqliteConnection& connection) {
      result = reads(connection);
      return result.status();
    });
    if (!status.ok()) return status;
    return result;
  }

  const SqliteOptions& options() const { return options_; }

 private:
  SqliteDatabase(SqliteOptions options, std::unique_ptr<SqliteConnection> writer,
                 std::vector<std::unique_ptr<SqliteConnection>> readers);

  // A read connection, waiting up to busy_timeout for one; hand it back with ReleaseReader.
  absl::StatusOr<std::unique_ptr<SqliteConnection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<SqliteConnection> reader);

  const SqliteOptions options_;
  std::mutex write_mutex_;
  const std::unique_ptr<SqliteConnection> writer_ ABSL_PT_GUARDED_BY(write_mutex_);
  std::mutex readers_mutex_;
  std::condition_variable reader_released_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_ ABSL_GUARDED_BY(readers_mutex_);
};

}  // namespace im::store
