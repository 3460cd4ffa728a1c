#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sdk/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace im::sdk {

// Keeps cursors and the outbox in a SQLite file, so that an app restart resumes where it stopped:
// unsent messages are sent once, and the receive side continues after the last delivered seq.
// WAL journal with synchronous=NORMAL: a power loss may forget the last moments, never corrupt.
class SqliteStateStore : public StateStore {
 public:
  // Opens (creating if needed) the database at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(const std::string& path);
  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  absl::Status Load(const std::string& uid, std::map<std::string, uint64_t>* cursors,
                    std::vector<PendingSend>* outbox) override;
  absl::Status SaveCursors(const std::string& uid,
                           const std::map<std::string, uint64_t>& cursors) override;
  absl::Status AddPending(const std::string& uid, const PendingSend& send) override;
  absl::Status RemovePending(const std::string& uid, const std::string& client_msg_id) override;

 private:
  explicit SqliteStateStore(sqlite3* db) : db_(db) {}
  absl::Status Execute(const char* sql);
  // Brings a file of an earlier schema version up to date (kMigrations).
  absl::Status Migrate();
  absl::Status Prepare(const char* sql, sqlite3_stmt** statement);
  absl::Status Error(const char* what) const;

  sqlite3* db_;
};

}  // namespace im::sdk
