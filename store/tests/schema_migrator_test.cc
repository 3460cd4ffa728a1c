// The migrator: statement splitting and the embedded list without a server; applying against the
// real MariaDB (IM_TEST_MYSQL). Tests that need an empty schema use a ledger and tables of their
// own, because the test database is shared and keeps the real schema.
#include "store/schema_migrator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/str_replace.h"
#include "fmt/format.h"
#include "store/tests/test_mysql.h"

namespace im::store {
namespace {

TEST(SplitSqlStatementsTest, AStatementEndsWithALineEndingInASemicolon) {
  const std::vector<std::string> statements = SplitSqlStatements(
      "-- a comment; not a statement\n"
      "CREATE TABLE a (\n"
      "  x INT  -- a trailing comment; still inside\n"
      ");\n"
      "\n"
      "INSERT INTO a VALUES (';');   \n"
      "  -- an indented comment;\n"
      "SELECT 1");
  EXPECT_EQ(statements,
            (std::vector<std::string>{"CREATE TABLE a (\n  x INT  -- a trailing comment; still "
                                      "inside\n)",
                                      "INSERT INTO a VALUES (';')", "SELECT 1"}));
  EXPECT_TRUE(SplitSqlStatements("-- nothing\n\n").empty());
}

TEST(KnownMigrationsTest, AreEmbeddedInVersionOrder) {
  const std::vector<Migration>& migrations = KnownMigrations();
  ASSERT_FALSE(migrations.empty());
  EXPECT_EQ(migrations.size(), EmbeddedMigrationFiles().size());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, i + 1) << "versions are 0001, 0002, ... without gaps";
    EXPECT_FALSE(migrations[i].name.empty());
    EXPECT_FALSE(migrations[i].statements.empty());
  }
  EXPECT_EQ(migrations[0].name, "conversations_and_messages");
  const std::vector<std::string>& first = migrations[0].statements;
  for (const char* table : {"messages", "conversations", "user_conversations"}) {
    const std::string create = fmt::format("CREATE TABLE IF NOT EXISTS {} (", table);
    EXPECT_TRUE(std::any_of(first.begin(), first.end(), [&](const std::string& s) {
      return s.starts_with(create);
    })) << table;
  }
}

class SchemaMigratorTest : public ::testing::Test {
 protected:
  SchemaMigratorTest()
      : pool_(testing::TestMySqlOptions()),
        prefix_(absl::StrReplaceAll(testing::UniquePrefix(), {{"-", "_"}})) {}
  ~SchemaMigratorTest() override {
    for (const char* suffix : {"ledger", "a", "b", "c"}) {
      testing::ExecuteSql(pool_, fmt::format("DROP TABLE IF EXISTS {}{}", prefix_, suffix));
    }
  }

  // Migrations that create this test's own tables, recorded in its own ledger.
  std::vector<Migration> PrivateMigrations() {
    return {
        {1,
         "create_a",
         {fmt::format("CREATE TABLE IF NOT EXISTS {}a (x INT PRIMARY KEY)", prefix_),
          "DO SLEEP(0.2)"}},  // long enough that a second node must wait for the lock
        {2, "fill_a", {fmt::format("INSERT INTO {}a VALUES (1), (2)", prefix_)}},
        {3, "create_b", {fmt::format("CREATE TABLE IF NOT EXISTS {}b (y INT)", prefix_)}},
    };
  }
  std::string Ledger() { return prefix_ + "ledger"; }
  std::vector<uint32_t> Recorded() {
    absl::StatusOr<std::vector<AppliedMigration>> applied = AppliedMigrations(pool_, Ledger());
    EXPECT_TRUE(applied.ok()) << applied.status();
    std::vector<uint32_t> versions;
    for (const AppliedMigration& m : applied.value_or(std::vector<AppliedMigration>())) {
      versions.push_back(m.version);
    }
    return versions;
  }
  int64_t TableCount(std::string_view table) {
    return testing::QueryInt(pool_,
                             fmt::format("SELECT COUNT(*) FROM information_schema.tables WHERE "
                                         "table_schema = DATABASE() AND table_name = '{}'",
                                         table));
  }

  MySqlConnectionPool pool_;
  const std::string prefix_;
};

TEST_F(SchemaMigratorTest, ApplyingTwiceIsANoOp) {
  ASSERT_TRUE(ApplyMigrations(pool_).ok());
  absl::StatusOr<std::vector<AppliedMigration>> before = AppliedMigrations(pool_);
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<uint32_t> applied;
  ASSERT_TRUE(ApplyMigrations(pool_, &applied).ok());
  EXPECT_TRUE(applied.empty());
  absl::StatusOr<std::vector<AppliedMigration>> after = AppliedMigrations(pool_);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  for (size_t i = 0; i < after->size(); ++i) {
    EXPECT_EQ((*after)[i].version, (*before)[i].version);
    EXPECT_EQ((*after)[i].applied_ms, (*before)[i].applied_ms);
  }
  for (const Migration& known : KnownMigrations()) {
    EXPECT_TRUE(std::any_of(after->begin(), after->end(), [&](const AppliedMigration& m) {
      return m.version == known.version && m.name == known.name && m.applied_ms > 0;
    })) << known.version;
  }

  // The same for a schema that starts empty.
  applied.clear();
  ASSERT_TRUE(ApplyMigrations(pool_, PrivateMigrations(), Ledger(), &applied).ok());
  EXPECT_EQ(applied, (std::vector<uint32_t>{1, 2, 3}));
  applied.clear();
  ASSERT_TRUE(ApplyMigrations(pool_, PrivateMigrations(), Ledger(), &applied).ok());
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(testing::QueryInt(pool_, fmt::format("SELECT COUNT(*) FROM {}a", prefix_)), 2);
}

TEST_F(SchemaMigratorTest, TheTablesExistAfterwards) {
  ASSERT_TRUE(ApplyMigrations(pool_).ok());
  for (const char* table :
       {"messages", "conversations", "user_conversations", "schema_migrations"}) {
    EXPECT_EQ(TableCount(table), 1) << table;
  }
  EXPECT_EQ(testing::QueryInt(pool_,
                              "SELECT COUNT(*) FROM information_schema.statistics WHERE "
                              "table_schema = DATABASE() AND table_name = 'messages' AND "
                              "index_name = 'uk_messages_sender_client_msg_id' AND non_unique = 0"),
            2);  // two columns
  EXPECT_EQ(testing::QueryInt(pool_,
                              "SELECT COUNT(*) FROM information_schema.statistics WHERE "
                              "table_schema = DATABASE() AND table_name = 'user_conversations' "
                              "AND index_name = 'idx_user_conversations_conv_read'"),
            2);
}

TEST_F(SchemaMigratorTest, TwoNodesMigratingAtOnceBothSucceedAndApplyEachOnce) {
  MySqlConnectionPool other(testing::TestMySqlOptions());
  std::vector<uint32_t> applied[2];
  absl::Status status[2];
  const std::vector<Migration> migrations = PrivateMigrations();
  std::thread first([&] { status[0] = ApplyMigrations(pool_, migrations, Ledger(), &applied[0]); });
  std::thread second(
      [&] { status[1] = ApplyMigrations(other, migrations, Ledger(), &applied[1]); });
  first.join();
  second.join();
  ASSERT_TRUE(status[0].ok()) << status[0];
  ASSERT_TRUE(status[1].ok()) << status[1];
  std::vector<uint32_t> all = applied[0];
  all.insert(all.end(), applied[1].begin(), applied[1].end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Recorded(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(testing::QueryInt(pool_, fmt::format("SELECT COUNT(*) FROM {}a", prefix_)), 2);

  // And on the real schema, which is already current.
  std::thread third([&] { status[0] = ApplyMigrations(pool_); });
  std::thread fourth([&] { status[1] = ApplyMigrations(other); });
  third.join();
  fourth.join();
  EXPECT_TRUE(status[0].ok()) << status[0];
  EXPECT_TRUE(status[1].ok()) << status[1];
}

TEST_F(SchemaMigratorTest, AFailedMigrationStopsThereAndTheNextRunCarriesOn) {
  std::vector<Migration> migrations = PrivateMigrations();
  migrations[1].statements = {fmt::format("INSERT INTO {}a VALUES (1)", prefix_),
                              "THIS IS NOT SQL"};
  std::vector<uint32_t> applied;
  absl::Status status = ApplyMigrations(pool_, migrations, Ledger(), &applied);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("0002_fill_a"), std::string_view::npos) << status;
  EXPECT_NE(status.message().find("1064"), std::string_view::npos) << status;  // syntax error
  EXPECT_EQ(applied, (std::vector<uint32_t>{1}));
  EXPECT_EQ(Recorded(), (std::vector<uint32_t>{1}));
  EXPECT_EQ(TableCount(prefix_ + "b"), 0);

  // Fixed: the next run finishes it. Its first statement ran before and must be re-runnable. Had
  // the failed run kept the lock, this one would wait 30 s for it and fail.
  migrations[1].statements = {fmt::format("INSERT IGNORE INTO {}a VALUES (1), (2)", prefix_)};
  applied.clear();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ApplyMigrations(pool_, migrations, Ledger(), &applied).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(applied, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(Recorded(), (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(SchemaMigratorTest, RefusesALedgerNameThatIsNotPlain) {
  EXPECT_EQ(ApplyMigrations(pool_, {}, "x; DROP TABLE messages", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AppliedMigrations(pool_, "Bad-Name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace im::store
