#include "sdk/sqlite_state_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace im::sdk {
namespace {

constexpr const char* kSchema[] = {
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "CREATE TABLE IF NOT EXISTS cursors ("
    " uid TEXT NOT NULL, conv_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (uid, conv_id))",
    // position keeps the order the app sent in.
    "CREATE TABLE IF NOT EXISTS outbox ("
    " position INTEGER PRIMARY KEY AUTOINCREMENT,"
    " uid TEXT NOT NULL, client_msg_id TEXT NOT NULL, conv_id TEXT NOT NULL,"
    " to_uid TEXT NOT NULL, type INTEGER NOT NULL, body BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
    " UNIQUE (uid, client_msg_id))",
};

// Schema versions after kSchema (PRAGMA user_version): migrations[i] takes a file at version i
// to version i + 1, so a file an older SDK wrote is brought up to date when opened.
constexpr const char* kMigrations[] = {
    // 1: recall and edit sends name the message they change.
    "ALTER TABLE outbox ADD COLUMN ref_seq INTEGER NOT NULL DEFAULT 0",
};

// Finalizes a prepared statement when it goes out of scope.
class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt** out() { return &statement_; }
  sqlite3_stmt* get() const { return statement_; }

  void BindText(int index, const std::string& text) {
    sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
  }
  void BindBlob(int index, const std::string& bytes) {
    sqlite3_bind_blob(statement_, index, bytes.data(), static_cast<int>(bytes.size()),
                      SQLITE_TRANSIENT);
  }
  void BindInt(int index, int64_t value) { sqlite3_bind_int64(statement_, index, value); }
  std::string Text(int column) const {
    const void* bytes = sqlite3_column_blob(statement_, column);
    const int size = sqlite3_column_bytes(statement_, column);
    return bytes == nullptr ? std::string() : std::string(static_cast<const char*>(bytes), size);
  }
  int64_t Int(int column) const { return sqlite3_column_int64(statement_, column); }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", detail));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(db));
  for (const char* sql : kSchema) {
    if (absl::Status status = store->Execute(sql); !status.ok()) return status;
  }
  if (absl::Status status = store->Migrate(); !status.ok()) return status;
  return store;
}

absl::Status SqliteStateStore::Migrate() {
  Statement version;
  if (absl::Status status = Prepare("PRAGMA user_version", version.out()); !status.ok()) {
    return status;
  }
  if (sqlite3_step(version.get()) != SQLITE_ROW) return Error("reading the schema version");
  for (int64_t v = version.Int(0); v < static_cast<int64_t>(std::size(kMigrations)); ++v) {
    if (absl::Status status = Execute(kMigrations[v]); !status.ok()) return status;
    const std::string bump = absl::StrCat("PRAGMA user_version = ", v + 1);
    if (absl::Status status = Execute(bump.c_str()); !status.ok()) return status;
  }
  return absl::OkStatus();
}

SqliteStateStore::~SqliteStateStore() { sqlite3_close(db_); }

absl::Status SqliteStateStore::Load(const std::string& uid,
                                    std::map<std::string, uint64_t>* cursors,
                                    std::vector<PendingSend>* outbox) {
  cursors->clear();
  outbox->clear();
  Statement read_cursors;
  if (absl::Status status =
          Prepare("SELECT conv_id, seq FROM cursors WHERE uid = ?", read_cursors.out());
      !status.ok()) {
    return status;
  }
  read_cursors.BindText(1, uid);
  int step;
  while ((step = sqlite3_step(read_cursors.get())) == SQLITE_ROW) {
    (*cursors)[read_cursors.Text(0)] = static_cast<uint64_t>(read_cursors.Int(1));
  }
  if (step != SQLITE_DONE) return Error("reading cursors");

  Statement read_outbox;
  if (absl::Status status =
          Prepare("SELECT client_msg_id, conv_id, to_uid, type, body, created_ms, deadline_ms,"
                  " ref_seq FROM outbox WHERE uid = ? ORDER BY position",
                  read_outbox.out());
      !status.ok()) {
    return status;
  }
  read_outbox.BindText(1, uid);
  while ((step = sqlite3_step(read_outbox.get())) == SQLITE_ROW) {
    PendingSend send;
    send.client_msg_id = read_outbox.Text(0);
    send.conv_id = read_outbox.Text(1);
    send.to_uid = read_outbox.Text(2);
    send.type = static_cast<int>(read_outbox.Int(3));
    send.body = read_outbox.Text(4);
    send.created_ms = read_outbox.Int(5);
    send.deadline_ms = read_outbox.Int(6);
    send.ref_seq = static_cast<uint64_t>(read_outbox.Int(7));
    outbox->push_back(std::move(send));
  }
  if (step != SQLITE_DONE) return Error("reading the outbox");
  return absl::OkStatus();
}

absl::Status SqliteStateStore::SaveCursors(const std::string& uid,
                                           const std::map<std::string, uint64_t>& cursors) {
  if (cursors.empty()) return absl::OkStatus();
  if (absl::Status status = Execute("BEGIN"); !status.ok()) return status;
  Statement upsert;
  absl::Status status = Prepare(
      "INSERT INTO cursors (uid, conv_id, seq) VALUES (?, ?, ?)"
      " ON CONFLICT (uid, conv_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
      upsert.out());
  for (auto it = cursors.begin(); status.ok() && it != cursors.end(); ++it) {
    sqlite3_reset(upsert.get());
    upsert.BindText(1, uid);
    upsert.BindText(2, it->first);
    upsert.BindInt(3, static_cast<int64_t>(it->second));
    if (sqlite3_step(upsert.get()) != SQLITE_DONE) status = Error("saving a cursor");
  }
  if (!status.ok()) {
    Execute("ROLLBACK").IgnoreError();
    return status;
  }
  return Execute("COMMIT");
}

absl::Status SqliteStateStore::AddPending(const std::string& uid, const PendingSend& send) {
  Statement insert;
  if (absl::Status status =
          Prepare("INSERT INTO outbox (uid, client_msg_id, conv_id, to_uid, type, body, created_ms,"
                  " deadline_ms, ref_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  insert.out());
      !status.ok()) {
    return status;
  }
  insert.BindText(1, uid);
  insert.BindText(2, send.client_msg_id);
  insert.BindText(3, send.conv_id);
  insert.BindText(4, send.to_uid);
  insert.BindInt(5, send.type);
  insert.BindBlob(6, send.body);
  insert.BindInt(7, send.created_ms);
  insert.BindInt(8, send.deadline_ms);
  insert.BindInt(9, static_cast<int64_t>(send.ref_seq));
  const int step = sqlite3_step(insert.get());
  if (step == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError("client_msg_id already in the outbox");
  }
  return step == SQLITE_DONE ? absl::OkStatus() : Error("adding to the outbox");
}

absl::Status SqliteStateStore::RemovePending(const std::string& uid,
                                             const std::string& client_msg_id) {
  Statement remove;
  if (absl::Status status =
          Prepare("DELETE FROM outbox WHERE uid = ? AND client_msg_id = ?", remove.out());
      !status.ok()) {
    return status;
  }
  remove.BindText(1, uid);
  remove.BindText(2, client_msg_id);
  return sqlite3_step(remove.get()) == SQLITE_DONE ? absl::OkStatus()
                                                   : Error("removing from the outbox");
}

absl::Status SqliteStateStore::Execute(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return Error(sql);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Prepare(const char* sql, sqlite3_stmt** statement) {
  if (sqlite3_prepare_v2(db_, sql, -1, statement, nullptr) != SQLITE_OK) return Error(sql);
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Error(const char* what) const {
  return absl::InternalError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db_)));
}

}  // namespace im::sdk
