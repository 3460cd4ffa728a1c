#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "store/sqlite_database.h"

namespace im::store::testing {

// A directory of its own under the system's temporary directory, removed with everything in it
// when this goes out of scope.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "im-sqlite-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "cannot make a temporary directory from " << pattern;
      return;
    }
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The options of a database file in `directory`.
inline SqliteOptions TestSqliteOptions(const TemporaryDirectory& directory) {
  SqliteOptions options;
  options.path = directory.path() + "/im.db";
  return options;
}

// Opens the database `options` names; a failure fails the test and gives null.
inline std::unique_ptr<SqliteDatabase> OpenTestDatabase(const SqliteOptions& options) {
  absl::StatusOr<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::Open(options);
  EXPECT_TRUE(database.ok()) << database.status();
  return database.ok() ? *std::move(database) : nullptr;
}

// A fresh database in a temporary directory of its own, for one test; both go when it does.
class TestSqliteDatabase {
 public:
  TestSqliteDatabase() : database_(OpenTestDatabase(TestSqliteOptions(directory_))) {}

  // The stores hold a reference: without a database there is nothing to test with.
  SqliteDatabase& database() {
    if (database_ == nullptr) {
      std::fprintf(stderr, "the test's SQLite database did not open\n");
      std::abort();
    }
    return *database_;
  }

 private:
  TemporaryDirectory directory_;  // declared first: removed after the database closes
  std::unique_ptr<SqliteDatabase> database_;
};

}  // namespace im::store::testing
