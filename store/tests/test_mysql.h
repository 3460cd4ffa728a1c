#pragma once

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "store/mysql_connection_pool.h"
#include "store/tests/unique_prefix.h"

namespace im::store::testing {

// The real MariaDB that scripts/test.sh starts, named by IM_TEST_MYSQL ("host:port"), with user
// im, password im-dev, database im, over TLS when IM_TEST_MYSQL_TLS_CA names the CA of its
// certificate. It is shared and never wiped: use UniquePrefix() for ids. Unset IM_TEST_MYSQL is a
// test failure, never a skip.
inline MySqlOptions TestMySqlOptions() {
  MySqlOptions options;
  options.user = "im";
  options.password = "im-dev";
  options.database = "im";
  options.pool_size = 4;
  options.connect_timeout = std::chrono::seconds(2);
  options.read_write_timeout = std::chrono::seconds(10);
  const char* address = std::getenv("IM_TEST_MYSQL");
  if (address == nullptr) {
    ADD_FAILURE() << "IM_TEST_MYSQL is not set: run through scripts/test.sh, or start MariaDB with "
                     "deploy/local/services.sh start and set IM_TEST_MYSQL=127.0.0.1:13306";
    options.port = 1;  // nothing listens there: every call fails fast
    return options;
  }
  const std::string text(address);
  const size_t colon = text.rfind(':');
  options.host = text.substr(0, colon);
  options.port = std::atoi(text.substr(colon + 1).c_str());
  if (const char* ca = std::getenv("IM_TEST_MYSQL_TLS_CA")) options.tls_ca_file = ca;
  return options;
}

// Runs `sql` on a connection of `pool`; fails the test on an error.
inline void ExecuteSql(MySqlConnectionPool& pool, const std::string& sql) {
  absl::Status status = pool.Run([&](MySqlConnection& connection) {
    connection.Execute(sql);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << sql << ": " << status;
}

// The first column of the first row `sql` returns, as an integer; -1 when there is no row or on
// an error, which also fails the test.
inline int64_t QueryInt(MySqlConnectionPool& pool, const std::string& sql) {
  absl::StatusOr<int64_t> value =
      pool.Run<int64_t>([&](MySqlConnection& connection) -> absl::StatusOr<int64_t> {
        std::unique_ptr<sql::ResultSet> row(connection.Prepare(sql).executeQuery());
        return row->next() ? row->getInt64(1) : -1;
      });
  EXPECT_TRUE(value.ok()) << sql << ": " << value.status();
  return value.value_or(-1);
}

}  // namespace im::store::testing
