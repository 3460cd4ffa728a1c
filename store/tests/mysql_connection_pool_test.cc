// The MySQL adapter: error mapping without a server; the pool against the real MariaDB
// (IM_TEST_MYSQL).
#include "store/mysql_connection_pool.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_replace.h"
#include "common/tls/testing/test_certificates.h"
#include "fmt/format.h"
#include "store/tests/test_mysql.h"

namespace im::store {
namespace {

TEST(MySqlErrorTest, MapsErrorsToStatusCodes) {
  struct Case {
    int error;
    const char* sql_state;
    absl::StatusCode code;
    bool breaks_connection;
  };
  const Case cases[] = {
      {2003, "HY000", absl::StatusCode::kUnavailable, true},       // cannot connect
      {2006, "HY000", absl::StatusCode::kUnavailable, true},       // server gone away
      {2013, "HY000", absl::StatusCode::kUnavailable, true},       // lost during a query
      {2055, "HY000", absl::StatusCode::kUnavailable, true},       // lost, extended
      {1927, "70100", absl::StatusCode::kUnavailable, true},       // killed
      {0, "08S01", absl::StatusCode::kUnavailable, true},          // connection exception class
      {1213, "40001", absl::StatusCode::kAborted, false},          // deadlock
      {1205, "HY000", absl::StatusCode::kAborted, false},          // lock wait timeout
      {1406, "22001", absl::StatusCode::kInvalidArgument, false},  // data too long
      {1366, "22007", absl::StatusCode::kInvalidArgument, false},  // not utf8mb4
      {1153, "08S01", absl::StatusCode::kInvalidArgument, true},   // packet too large
      {1064, "42000", absl::StatusCode::kInternal, false},         // syntax
      {1146, "42S02", absl::StatusCode::kInternal, false},         // no such table
      {2014, "HY000", absl::StatusCode::kInternal, true},          // commands out of sync
      {0, "", absl::StatusCode::kInternal, true},                  // the connector's own
  };
  for (const Case& c : cases) {
    const absl::Status status = StatusFromMySqlError("db:1", c.error, c.sql_state, "what");
    EXPECT_EQ(status.code(), c.code) << c.error;
    EXPECT_EQ(status.message(),
              fmt::format("mysql db:1: error {} ({}): what", c.error, c.sql_state));
    EXPECT_EQ(MySqlErrorBreaksConnection(c.error, c.sql_state), c.breaks_connection) << c.error;
  }
}

class MySqlConnectionPoolTest : public ::testing::Test {
 protected:
  static MySqlOptions Options(uint32_t pool_size) {
    MySqlOptions options = testing::TestMySqlOptions();
    options.pool_size = pool_size;
    return options;
  }
  static absl::StatusOr<int64_t> ConnectionId(MySqlConnectionPool& pool) {
    return pool.Run<int64_t>([](MySqlConnection& connection) -> absl::StatusOr<int64_t> {
      std::unique_ptr<sql::ResultSet> row(
          connection.Prepare("SELECT CONNECTION_ID()").executeQuery());
      row->next();
      return row->getInt64(1);
    });
  }
};

TEST_F(MySqlConnectionPoolTest, SqlErrorsComeBackAsStatusAndTheConnectionIsKept) {
  MySqlConnectionPool pool(Options(1));
  absl::StatusOr<int64_t> id = ConnectionId(pool);
  ASSERT_TRUE(id.ok()) << id.status();
  absl::Status status = pool.Run([](MySqlConnection& connection) {
    connection.Execute("SELECT * FROM no_such_table_anywhere");
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("error 1146"), std::string_view::npos) << status;
  EXPECT_EQ(*ConnectionId(pool), *id);
  EXPECT_EQ(pool.open_connections(), 1u);
}

TEST_F(MySqlConnectionPoolTest, AKilledConnectionIsReplaced) {
  MySqlConnectionPool pool(Options(1));
  MySqlConnectionPool admin(Options(1));
  absl::StatusOr<int64_t> first = ConnectionId(pool);
  ASSERT_TRUE(first.ok()) << first.status();
  testing::ExecuteSql(admin, fmt::format("KILL CONNECTION {}", *first));
  // The call that finds the connection dead fails as UNAVAILABLE; the next one gets a new one.
  absl::StatusOr<int64_t> next = ConnectionId(pool);
  if (!next.ok()) {
    EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable) << next.status();
    next = ConnectionId(pool);
  }
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *first);
  EXPECT_EQ(pool.open_connections(), 1u);
}

TEST_F(MySqlConnectionPoolTest, ATransactionLeftOpenIsRolledBack) {
  MySqlConnectionPool pool(Options(1));  // one connection: the temporary table stays visible
  testing::ExecuteSql(pool, "CREATE TEMPORARY TABLE rollback_probe (x INT) ENGINE=InnoDB");
  absl::Status status = pool.Run([](MySqlConnection& connection) {
    connection.Begin();
    connection.Execute("INSERT INTO rollback_probe VALUES (1)");
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(testing::QueryInt(pool, "SELECT COUNT(*) FROM rollback_probe"), 0);
  EXPECT_EQ(testing::QueryInt(pool, "SELECT @@in_transaction"), 0);
  EXPECT_EQ(testing::QueryInt(pool, "SELECT @@autocommit"), 1);
}

TEST_F(MySqlConnectionPoolTest, ADeadlockIsAborted) {
  MySqlConnectionPool pool(Options(2));
  const std::string table = absl::StrReplaceAll(testing::UniquePrefix(), {{"-", "_"}}) + "deadlock";
  testing::ExecuteSql(pool, fmt::format("CREATE TABLE {} (id INT PRIMARY KEY, v INT)", table));
  testing::ExecuteSql(pool, fmt::format("INSERT INTO {} VALUES (1, 0), (2, 0)", table));
  const auto update = [&](MySqlConnection& connection, int id) {
    return connection.Guard([&] {
      connection.Execute(fmt::format("UPDATE {} SET v = v + 1 WHERE id = {}", table, id));
      return absl::OkStatus();
    });
  };
  {
    absl::StatusOr<MySqlConnectionPool::Lease> a = pool.Acquire();
    absl::StatusOr<MySqlConnectionPool::Lease> b = pool.Acquire();
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE((*a)->Guard([&] {
                      (*a)->Begin();
                      return absl::OkStatus();
                    })
                    .ok());
    ASSERT_TRUE((*b)->Guard([&] {
                      (*b)->Begin();
                      return absl::OkStatus();
                    })
                    .ok());
    ASSERT_TRUE(update(**a, 1).ok());
    ASSERT_TRUE(update(**b, 2).ok());
    absl::Status crossed[2];
    std::thread other([&] { crossed[0] = update(**a, 2); });
    crossed[1] = update(**b, 1);
    other.join();
    // InnoDB rolls one back at once; the other then gets its lock.
    EXPECT_NE(crossed[0].ok(), crossed[1].ok()) << crossed[0] << " / " << crossed[1];
    const absl::Status& victim = crossed[0].ok() ? crossed[1] : crossed[0];
    EXPECT_EQ(victim.code(), absl::StatusCode::kAborted) << victim;
    EXPECT_NE(victim.message().find("error 1213"), std::string_view::npos) << victim;
  }  // both leases return; the survivor's transaction is rolled back
  EXPECT_EQ(testing::QueryInt(pool, fmt::format("SELECT SUM(v) FROM {}", table)), 0);
  EXPECT_EQ(pool.open_connections(), 2u);
  testing::ExecuteSql(pool, fmt::format("DROP TABLE {}", table));
}

TEST_F(MySqlConnectionPoolTest, WaitsForAFreeConnectionWithinTheAcquireTimeout) {
  MySqlOptions options = Options(1);
  options.acquire_timeout = std::chrono::milliseconds(200);
  MySqlConnectionPool pool(options);
  std::optional<absl::StatusOr<MySqlConnectionPool::Lease>> held(pool.Acquire());
  ASSERT_TRUE(held->ok()) << held->status();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<MySqlConnectionPool::Lease> refused = pool.Acquire();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));

  // A waiter gets the connection as soon as it is returned.
  absl::Status waited;
  std::thread waiter([&] { waited = pool.Acquire().status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  held.reset();
  waiter.join();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(pool.open_connections(), 1u);
}

TEST_F(MySqlConnectionPoolTest, AWrongPasswordIsUnavailable) {
  MySqlOptions options = Options(1);
  options.password = "not-the-password";
  MySqlConnectionPool pool(options);
  absl::Status status = pool.Run([](MySqlConnection&) { return absl::OkStatus(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("1045"), std::string_view::npos) << status;
  EXPECT_EQ(pool.open_connections(), 0u);
}

// The test MariaDB serves TLS with the development CA's certificate (scripts/test.sh gives its CA
// in IM_TEST_MYSQL_TLS_CA): with the CA set, every connection is encrypted and the server's
// certificate checked; a CA that did not sign it refuses the connection.
TEST_F(MySqlConnectionPoolTest, WithACaConnectionsAreEncryptedAndTheServerChecked) {
  MySqlOptions options = Options(1);
  ASSERT_FALSE(options.tls_ca_file.empty())
      << "IM_TEST_MYSQL_TLS_CA is not set: scripts/test.sh sets it to the services' CA";
  MySqlConnectionPool pool(options);
  absl::StatusOr<std::string> cipher =
      pool.Run<std::string>([](MySqlConnection& connection) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::ResultSet> row(
            connection.Prepare("SHOW SESSION STATUS LIKE 'Ssl_version'").executeQuery());
        return row->next() ? std::string(row->getString(2)) : std::string();
      });
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  EXPECT_TRUE(*cipher == "TLSv1.3" || *cipher == "TLSv1.2") << "Ssl_version '" << *cipher << "'";

  const std::string dir = ::testing::TempDir() + "im-mysql-tls-" + testing::UniquePrefix();
  absl::StatusOr<tls::testing::TestCertificates> other =
      tls::testing::TestCertificates::Create(dir, "other");
  ASSERT_TRUE(other.ok()) << other.status();
  MySqlOptions wrong_ca = options;
  wrong_ca.tls_ca_file = other->ca_file;
  MySqlConnectionPool refusing(wrong_ca);
  const absl::Status refused = refusing.Run([](MySqlConnection&) { return absl::OkStatus(); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_EQ(refusing.open_connections(), 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace im::store
