#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/mysql_options.h"

namespace sql {
class Connection;
class PreparedStatement;
class ResultSet;
class Statement;
}  // namespace sql

namespace im::store {

// A MySQL error (server or client library) as a status. Connection refused or lost ->
// UNAVAILABLE (the call may be retried); deadlock (1213) or lock wait timeout (1205) -> ABORTED
// (the transaction was rolled back, retry it); a value the schema cannot hold -> INVALID_ARGUMENT;
// anything else INTERNAL. The text names `where`, the error number, SQL state and message.
absl::Status StatusFromMySqlError(std::string_view where, int error_code,
                                  std::string_view sql_state, std::string_view message);

// Whether a connection that reported this error is no longer usable (lost, or out of step with the
// server) and must be discarded rather than returned to its pool.
bool MySqlErrorBreaksConnection(int error_code, std::string_view sql_state);

// One MySQL Connector/C++ 1.1 connection (JDBC-style API, classic protocol) with its prepared
// statements. Not thread-safe: a MySqlConnectionPool lends it to one thread at a time.
// Autocommit is on except between Begin() and Commit(). OPT_RECONNECT is off, so a lost
// connection stays lost (a silent reconnect would drop session state and transactions); the pool
// replaces it.
class MySqlConnection {
 public:
  // Connects and sets the session up; any failure is UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<MySqlConnection>> Connect(const MySqlOptions& options);
  ~MySqlConnection();
  MySqlConnection(const MySqlConnection&) = delete;
  MySqlConnection& operator=(const MySqlConnection&) = delete;

  // Runs `work`, which uses the throwing calls below, and turns anything the connector throws into
  // a status (StatusFromMySqlError); an error that breaks the connection marks it broken(). This is
  // the one place where connector exceptions stop.
  absl::Status Guard(absl::FunctionRef<absl::Status()> work);

  // These throw sql::SQLException like the connector they wrap: call them only inside Guard().
  //
  // A server-side prepared statement for `sql`, prepared once per connection and kept (the least
  // recently used are closed beyond a bound). The reference is valid until the next Prepare().
  sql::PreparedStatement& Prepare(const std::string& sql);
  // Runs a statement that returns no rows, through the text protocol.
  void Execute(const std::string& sql);
  // START TRANSACTION and COMMIT. A transaction still open when the connection goes back to its
  // pool is rolled back there.
  void Begin();
  void Commit();

  // Never throw.
  // Rolls back an open transaction; if that fails the connection is marked broken.
  void RollbackIfOpen();
  // One round trip; false (and broken()) when the server is gone.
  bool Ping();

  bool broken() const { return broken_; }
  bool in_transaction() const { return in_transaction_; }
  const std::string& address() const { return address_; }

 private:
  MySqlConnection(std::unique_ptr<sql::Connection> connection, std::string address);

  const std::string address_;  // host:port, for error texts
  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::Statement> statement_;  // for Execute(), created on first use
  // Most recently used first; by_sql_ keys view the strings held in statements_.
  std::list<std::pair<std::string, std::unique_ptr<sql::PreparedStatement>>> statements_;
  std::unordered_map<std::string_view, decltype(statements_)::iterator> by_sql_;
  bool broken_ = false;
  bool in_transaction_ = false;
};

// Binds the parameters of a prepared statement left to right. Throws like the connector: use it
// only inside MySqlConnection::Guard().
class MySqlParams {
 public:
  explicit MySqlParams(sql::PreparedStatement& statement) : statement_(statement) {}

  MySqlParams& Bytes(std::string_view value);
  MySqlParams& BytesOrNull(std::string_view value);  // empty binds NULL
  MySqlParams& U64(uint64_t value);
  MySqlParams& I64(int64_t value);
  MySqlParams& I32(int32_t value);

 private:
  sql::PreparedStatement& statement_;
  unsigned int next_ = 1;
};

// Column `column` (1-based) of the current row as bytes; NULL reads as empty. Throws like the
// connector.
std::string ColumnBytes(const sql::ResultSet& row, uint32_t column);

}  // namespace im::store
