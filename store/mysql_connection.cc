#include "store/mysql_connection.h"

#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <exception>

#include "fmt/format.h"

namespace im::store {
namespace {

// Statements a connection keeps prepared. Multi-row statements come in a few padded sizes (see
// mysql_message_store.cc), so this holds every shape the store uses with room to spare; the
// server's max_prepared_stmt_count (16382 by default) must cover pool_size times this.
constexpr size_t kMaxPreparedStatements = 128;

sql::mysql::MySQL_Driver* Driver() {
  // The first call initializes the client library, which must not run on two threads at once; a
  // function-local static is initialized exactly once.
  static sql::mysql::MySQL_Driver* const driver = sql::mysql::get_mysql_driver_instance();
  return driver;
}

int WholeSeconds(std::chrono::milliseconds duration) {
  return static_cast<int>(std::max<int64_t>(1, (duration.count() + 999) / 1000));
}

// Client library errors (2000-2999) that mean the server was never reached or the link is gone.
bool IsConnectionLost(int code) {
  switch (code) {
    case 2002:  // CR_CONNECTION_ERROR: cannot connect (socket)
    case 2003:  // CR_CONN_HOST_ERROR: cannot connect (TCP)
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2011:  // CR_TCP_CONNECTION
    case 2012:  // CR_SERVER_HANDSHAKE_ERR
    case 2013:  // CR_SERVER_LOST (also a read timeout)
    case 2026:  // CR_SSL_CONNECTION_ERROR
    case 2055:  // CR_SERVER_LOST_EXTENDED
    case 1040:  // ER_CON_COUNT_ERROR: too many connections
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1290:  // ER_OPTION_PREVENTS_STATEMENT: read-only server, e.g. during a failover
    case 1927:  // ER_CONNECTION_KILLED (MariaDB)
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
      return true;
    default:
      return false;
  }
}

bool IsBadValue(int code) {
  switch (code) {
    case 1048:  // ER_BAD_NULL_ERROR
    case 1153:  // ER_NET_PACKET_TOO_LARGE: larger than max_allowed_packet
    case 1264:  // ER_WARN_DATA_OUT_OF_RANGE
    case 1265:  // WARN_DATA_TRUNCATED
    case 1292:  // ER_TRUNCATED_WRONG_VALUE
    case 1366:  // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: bytes that are not valid utf8mb4
    case 1406:  // ER_DATA_TOO_LONG
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::Status StatusFromMySqlError(std::string_view where, int error_code,
                                  std::string_view sql_state, std::string_view message) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (IsConnectionLost(error_code)) {
    code = absl::StatusCode::kUnavailable;
  } else if (error_code == 1213 || error_code == 1205) {  // deadlock, lock wait timeout
    code = absl::StatusCode::kAborted;
  } else if (IsBadValue(error_code)) {
    code = absl::StatusCode::kInvalidArgument;
  } else if (sql_state.substr(0, 2) == "08") {  // class 08: "connection exception"
    code = absl::StatusCode::kUnavailable;
  }
  return absl::Status(
      code, fmt::format("mysql {}: error {} ({}): {}", where, error_code, sql_state, message));
}

bool MySqlErrorBreaksConnection(int error_code, std::string_view sql_state) {
  // Any client library error leaves the protocol state unknown; the connector's own errors carry
  // number 0 and may mean a closed connection. The server closes the link after 1153 itself.
  return IsConnectionLost(error_code) || sql_state.substr(0, 2) == "08" || error_code == 0 ||
         error_code == 1153 || (error_code >= 2000 && error_code < 3000);
}

absl::StatusOr<std::unique_ptr<MySqlConnection>> MySqlConnection::Connect(
    const MySqlOptions& options) {
  std::string address = fmt::format("{}:{}", options.host, options.port);
  try {
    sql::ConnectOptionsMap properties;
    properties["hostName"] = sql::SQLString(options.host);
    properties["port"] = options.port;
    properties["userName"] = sql::SQLString(options.user);
    properties["password"] = sql::SQLString(options.password);
    properties["schema"] = sql::SQLString(options.database);
    properties["OPT_CONNECT_TIMEOUT"] = WholeSeconds(options.connect_timeout);
    properties["OPT_READ_TIMEOUT"] = WholeSeconds(options.read_write_timeout);
    properties["OPT_WRITE_TIMEOUT"] = WholeSeconds(options.read_write_timeout);
    properties["OPT_RECONNECT"] = false;
    properties["OPT_CHARSET_NAME"] = "utf8mb4";
    // Affected rows must count changed rows only: Append tells inserts from duplicates by it.
    properties["CLIENT_FOUND_ROWS"] = false;
    if (!options.tls_ca_file.empty()) {
      properties["sslCA"] = sql::SQLString(options.tls_ca_file);
      properties["sslEnforce"] = true;  // no fallback to plaintext
      properties["sslVerify"] = true;   // the certificate, and that it names the host
      if (!options.tls_cert_file.empty()) {
        properties["sslCert"] = sql::SQLString(options.tls_cert_file);
        properties["sslKey"] = sql::SQLString(options.tls_key_file);
      }
    }
    std::unique_ptr<sql::Connection> connection(Driver()->connect(properties));
    std::unique_ptr<sql::Statement> statement(connection->createStatement());
    // The connector has set autocommit = 1. Strict mode turns a value the schema cannot hold into
    // an error instead of a silent truncation. A lock wait ends (error 1205, retried) before the
    // read timeout would cut the connection.
    statement->execute(
        fmt::format("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
                    "innodb_lock_wait_timeout = {}",
                    std::max(1, WholeSeconds(options.read_write_timeout) - 1)));
    statement.reset();
    return std::unique_ptr<MySqlConnection>(
        new MySqlConnection(std::move(connection), std::move(address)));
  } catch (const sql::SQLException& e) {
    return absl::UnavailableError(
        StatusFromMySqlError(address + " connect", e.getErrorCode(), e.getSQLState(), e.what())
            .message());
  } catch (const std::exception& e) {
    return absl::UnavailableError(fmt::format("mysql {} connect: {}", address, e.what()));
  }
}

MySqlConnection::MySqlConnection(std::unique_ptr<sql::Connection> connection, std::string address)
    : address_(std::move(address)), connection_(std::move(connection)) {}

MySqlConnection::~MySqlConnection() {
  // Statements before the connection they belong to; closing never throws past here.
  try {
    by_sql_.clear();
    statements_.clear();
    statement_.reset();
    connection_->close();
  } catch (const std::exception&) {
    // Closing a dead connection has nothing left to report.
  }
}

absl::Status MySqlConnection::Guard(absl::FunctionRef<absl::Status()> work) {
  try {
    return work();
  } catch (const sql::SQLException& e) {
    if (MySqlErrorBreaksConnection(e.getErrorCode(), e.getSQLState())) broken_ = true;
    return StatusFromMySqlError(address_, e.getErrorCode(), e.getSQLState(), e.what());
  } catch (const std::exception& e) {
    // Not the connector's own error type: its state is unknown, so do not reuse it.
    broken_ = true;
    return absl::InternalError(fmt::format("mysql {}: {}", address_, e.what()));
  }
}

sql::PreparedStatement& MySqlConnection::Prepare(const std::string& sql) {
  if (auto it = by_sql_.find(sql); it != by_sql_.end()) {
    statements_.splice(statements_.begin(), statements_, it->second);
    return *it->second->second;
  }
  std::unique_ptr<sql::PreparedStatement> statement(connection_->prepareStatement(sql));
  if (statements_.size() >= kMaxPreparedStatements) {
    by_sql_.erase(statements_.back().first);
    statements_.pop_back();
  }
  statements_.emplace_front(sql, std::move(statement));
  by_sql_.emplace(statements_.front().first, statements_.begin());
  return *statements_.front().second;
}

void MySqlConnection::Execute(const std::string& sql) {
  if (statement_ == nullptr) statement_.reset(connection_->createStatement());
  statement_->execute(sql);
}

void MySqlConnection::Begin() {
  Execute("START TRANSACTION");
  in_transaction_ = true;
}

void MySqlConnection::Commit() {
  Execute("COMMIT");
  in_transaction_ = false;
}

void MySqlConnection::RollbackIfOpen() {
  if (!in_transaction_) return;
  // A broken connection is discarded, and the server rolls back what it leaves open.
  if (!broken_ && !Guard([this] {
                     Execute("ROLLBACK");
                     return absl::OkStatus();
                   }).ok()) {
    broken_ = true;
  }
  in_transaction_ = false;
}

bool MySqlConnection::Ping() {
  bool valid = false;
  if (!Guard([&] {
         valid = connection_->isValid();
         return absl::OkStatus();
       }).ok() ||
      !valid) {
    broken_ = true;
  }
  return !broken_;
}

MySqlParams& MySqlParams::Bytes(std::string_view value) {
  statement_.setString(next_++, sql::SQLString(value.data(), value.size()));
  return *this;
}

MySqlParams& MySqlParams::BytesOrNull(std::string_view value) {
  if (!value.empty()) return Bytes(value);
  statement_.setNull(next_++, sql::DataType::VARCHAR);
  return *this;
}

MySqlParams& MySqlParams::U64(uint64_t value) {
  statement_.setUInt64(next_++, value);
  return *this;
}

MySqlParams& MySqlParams::I64(int64_t value) {
  statement_.setInt64(next_++, value);
  return *this;
}

MySqlParams& MySqlParams::I32(int32_t value) {
  statement_.setInt(next_++, value);
  return *this;
}

std::string ColumnBytes(const sql::ResultSet& row, uint32_t column) {
  return row.getString(column).asStdString();
}

}  // namespace im::store
