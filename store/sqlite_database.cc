#include "store/sqlite_database.h"

#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/sqlite_schema.h"

namespace im::store {
namespace {

// On every connection: FULL makes COMMIT fsync the log (NORMAL, the usual WAL setting, may lose
// the last transactions on power loss, and an acked message must not be lost); a checkpoint,
// which the last connection to close may run, syncs too. Foreign keys are off unless asked for.
constexpr char kConnectionPragmas[] = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON";

// The journal mode is a property of the file, set once by the writer before anyone reads.
absl::Status UseWriteAheadLog(SqliteConnection& writer) {
  IM_ASSIGN_OR_RETURN(SqliteStatement pragma, writer.Prepare("PRAGMA journal_mode = WAL"));
  IM_ASSIGN_OR_RETURN(const bool row, pragma.Step());
  const std::string mode = row ? pragma.ColumnBytes(0) : "";
  if (mode != "wal") {
    // A file system without shared memory (some network ones) cannot hold a WAL database.
    return absl::UnavailableError(
        fmt::format("{}: journal mode is '{}', not 'wal'", writer.path(), mode));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> OpenWriter(const SqliteOptions& options) {
  IM_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> writer,
                      SqliteConnection::Open(options.path, options.busy_timeout));
  IM_RETURN_IF_ERROR(writer->Execute(kConnectionPragmas));
  IM_RETURN_IF_ERROR(UseWriteAheadLog(*writer));
  IM_RETURN_IF_ERROR(ApplySqliteMigrations(*writer));
  return writer;
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> OpenReader(const SqliteOptions& options) {
  IM_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> reader,
                      SqliteConnection::Open(options.path, options.busy_timeout));
  IM_RETURN_IF_ERROR(reader->Execute(kConnectionPragmas));
  // A read connection that tried to write would be a second writer, racing the first for the
  // lock: refuse it outright.
  IM_RETURN_IF_ERROR(reader->Execute("PRAGMA query_only = ON"));
  return reader;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const SqliteOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("SQLite database path is empty");
  if (options.read_connections == 0) {
    return absl::InvalidArgumentError("SQLite needs at least one read connection");
  }
  IM_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> writer, OpenWriter(options));
  std::vector<std::unique_ptr<SqliteConnection>> readers;
  for (size_t i = 0; i < options.read_connections; ++i) {
    IM_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> reader, OpenReader(options));
    readers.push_back(std::move(reader));
  }
  return std::unique_ptr<SqliteDatabase>(
      new SqliteDatabase(options, std::move(writer), std::move(readers)));
}

SqliteDatabase::SqliteDatabase(SqliteOptions options, std::unique_ptr<SqliteConnection> writer,
                               std::vector<std::unique_ptr<SqliteConnection>> readers)
    : options_(std::move(options)), writer_(std::move(writer)), idle_readers_(std::move(readers)) {}

// The readers (declared last) close first, so that the writer is the last connection: it
// checkpoints the log into the database file and removes it.
SqliteDatabase::~SqliteDatabase() = default;

absl::Status SqliteDatabase::Write(absl::FunctionRef<absl::Status(SqliteConnection&)> transaction) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  return writer_->Transaction(SqliteConnection::Begin::kImmediate,
                              [&] { return transaction(*writer_); });
}

absl::Status SqliteDatabase::Read(absl::FunctionRef<absl::Status(SqliteConnection&)> reads) {
  IM_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> reader, AcquireReader());
  absl::Status status =
      reader->Transaction(SqliteConnection::Begin::kDeferred, [&] { return reads(*reader); });
  ReleaseReader(std::move(reader));
  return status;
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteDatabase::AcquireReader() {
  std::unique_lock<std::mutex> lock(readers_mutex_);
  if (!reader_released_.wait_for(lock, options_.busy_timeout,
                                 [&] { return !idle_readers_.empty(); })) {
    return absl::UnavailableError(
        fmt::format("{}: all {} SQLite read connections stayed busy for {} ms", options_.path,
                    options_.read_connections, options_.busy_timeout.count()));
  }
  std::unique_ptr<SqliteConnection> reader = std::move(idle_readers_.back());
  idle_readers_.pop_back();
  return reader;
}

void SqliteDatabase::ReleaseReader(std::unique_ptr<SqliteConnection> reader) {
  {
    std::lock_guard<std::mutex> lock(readers_mutex_);
    idle_readers_.push_back(std::move(reader));
  }
  reader_released_.notify_one();
}

}  // namespace im::store
