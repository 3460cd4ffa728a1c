// What the SQLite backend promises besides the store contracts (message_store_test.cc and
// group_store_test.cc run those on it): its status mapping and statement helper, the durability
// settings, migrations applied once, data that outlives the process, and readers running beside
// the writer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "fmt/format.h"
#include "store/sqlite_database.h"
#include "store/sqlite_group_store.h"
#include "store/sqlite_message_store.h"
#include "store/sqlite_schema.h"
#include "store/sqlite_statement.h"
#include "store/tests/test_sqlite.h"

namespace im::store {
namespace {

using testing::OpenTestDatabase;
using testing::TemporaryDirectory;
using testing::TestSqliteDatabase;
using testing::TestSqliteOptions;

// Message `seq` of `conv` from `sender`, to `participants`.
NewMessage Msg(const std::string& conv, uint64_t seq, const std::string& sender,
               std::vector<std::string> participants = {}) {
  NewMessage entry;
  im::v1::Message& m = entry.message;
  m.set_conv_id(conv);
  m.set_seq(seq);
  m.set_msg_id(1'000'000 + seq);
  m.set_sender(sender);
  m.set_client_msg_id(fmt::format("{}-{}-{}", conv, sender, seq));
  m.set_type(im::v1::TEXT);
  m.set_body(fmt::format("body {}", seq));
  m.set_created_ms(1'000 * static_cast<int64_t>(seq));
  entry.participants = std::move(participants);
  return entry;
}

GroupMember Member(std::string uid, im::v1::GroupRole role, uint64_t joined_seq = 0) {
  GroupMember member;
  member.uid = std::move(uid);
  member.role = role;
  member.joined_seq = joined_seq;
  return member;
}

// The first column of the first row `sql` returns, read on a read connection; -1 (and a test
// failure) when it fails.
int64_t QueryInt(SqliteDatabase& database, const std::string& sql) {
  absl::StatusOr<int64_t> value =
      database.Read<int64_t>([&](SqliteConnection& connection) -> absl::StatusOr<int64_t> {
        absl::StatusOr<SqliteStatement> select = connection.Prepare(sql);
        if (!select.ok()) return select.status();
        absl::StatusOr<bool> row = select->Step();
        if (!row.ok()) return row.status();
        return *row ? select->ColumnI64(0) : -1;
      });
  EXPECT_TRUE(value.ok()) << sql << ": " << value.status();
  return value.value_or(-1);
}

std::vector<uint64_t> Seqs(MessageStore& store, const std::string& conv) {
  absl::StatusOr<MessagePage> page = store.ReadMessages(conv, 0, 100'000);
  EXPECT_TRUE(page.ok()) << page.status();
  std::vector<uint64_t> seqs;
  if (page.ok()) {
    for (const im::v1::Message& m : page->messages) seqs.push_back(m.seq());
  }
  return seqs;
}

TEST(SqliteStatusTest, MapsResultCodesToTheStoreContracts) {
  const std::map<int, absl::StatusCode> expected = {
      {SQLITE_BUSY, absl::StatusCode::kUnavailable},
      {SQLITE_BUSY_SNAPSHOT, absl::StatusCode::kUnavailable},
      {SQLITE_LOCKED, absl::StatusCode::kUnavailable},
      {SQLITE_IOERR_FSYNC, absl::StatusCode::kUnavailable},
      {SQLITE_FULL, absl::StatusCode::kUnavailable},
      {SQLITE_CANTOPEN, absl::StatusCode::kUnavailable},
      {SQLITE_CONSTRAINT_UNIQUE, absl::StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_PRIMARYKEY, absl::StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_FOREIGNKEY, absl::StatusCode::kFailedPrecondition},
      {SQLITE_CONSTRAINT_NOTNULL, absl::StatusCode::kInvalidArgument},
      {SQLITE_CONSTRAINT_DATATYPE, absl::StatusCode::kInvalidArgument},
      {SQLITE_TOOBIG, absl::StatusCode::kInvalidArgument},
      {SQLITE_CORRUPT, absl::StatusCode::kDataLoss},
      {SQLITE_NOTADB, absl::StatusCode::kDataLoss},
      {SQLITE_NOMEM, absl::StatusCode::kResourceExhausted},
      {SQLITE_ERROR, absl::StatusCode::kInternal},
  };
  for (const auto& [code, status_code] : expected) {
    const absl::Status status = StatusFromSqlite(code, "appending", "what SQLite said");
    EXPECT_EQ(status.code(), status_code) << code;
    EXPECT_NE(status.message().find("appending: what SQLite said"), std::string_view::npos)
        << status;
  }
}

TEST(SqliteDatabaseTest, OpensWithADurableWriteAheadLogAndForeignKeys) {
  TestSqliteDatabase test;
  SqliteDatabase& database = test.database();
  // Read connections share the file's journal mode and the per-connection settings.
  EXPECT_EQ(QueryInt(database, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
  EXPECT_EQ(QueryInt(database, "PRAGMA synchronous"), 2);  // FULL
  EXPECT_EQ(QueryInt(database, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(QueryInt(database, "PRAGMA query_only"), 1);
  absl::Status status = database.Write([](SqliteConnection& connection) -> absl::Status {
    for (const char* pragma : {"PRAGMA synchronous", "PRAGMA foreign_keys"}) {
      absl::StatusOr<SqliteStatement> select = connection.Prepare(pragma);
      if (!select.ok()) return select.status();
      EXPECT_TRUE(select->Step().value_or(false));
      EXPECT_EQ(select->ColumnI64(0), std::string_view(pragma) == "PRAGMA synchronous" ? 2 : 1)
          << pragma << " on the write connection";
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(SqliteDatabaseTest, BadOptionsAndAMissingDirectoryFailToOpen) {
  SqliteOptions options;
  EXPECT_EQ(SqliteDatabase::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  TemporaryDirectory directory;
  options = TestSqliteOptions(directory);
  options.read_connections = 0;
  EXPECT_EQ(SqliteDatabase::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = TestSqliteOptions(directory);
  options.path = directory.path() + "/missing/im.db";
  absl::Status status = SqliteDatabase::Open(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(options.path), std::string_view::npos) << status;
}

TEST(SqliteDatabaseTest, MigrationsAreAppliedOnceAndRecorded) {
  TemporaryDirectory directory;
  const SqliteOptions options = TestSqliteOptions(directory);
  const auto applied = [](SqliteDatabase& database) {
    absl::StatusOr<std::vector<AppliedMigration>> ledger =
        database.Read<std::vector<AppliedMigration>>(
            [](SqliteConnection& connection) { return AppliedMigrations(connection); });
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.value_or(std::vector<AppliedMigration>());
  };
  std::vector<AppliedMigration> first;
  {
    std::unique_ptr<SqliteDatabase> database = OpenTestDatabase(options);
    ASSERT_NE(database, nullptr);
    first = applied(*database);
  }
  ASSERT_EQ(first.size(), EmbeddedSqliteMigrationFiles().size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].version, i + 1);
    EXPECT_EQ(fmt::format("{:04}_{}.sql", first[i].version, first[i].name),
              EmbeddedSqliteMigrationFiles()[i].file_name);
    EXPECT_GT(first[i].applied_ms, 0);
  }

  // Reopening finds them recorded and runs none again (their CREATE TABLEs would fail if it did).
  std::unique_ptr<SqliteDatabase> reopened = OpenTestDatabase(options);
  ASSERT_NE(reopened, nullptr);
  const std::vector<AppliedMigration> second = applied(*reopened);
  ASSERT_EQ(second.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(second[i].version, first[i].version);
    EXPECT_EQ(second[i].applied_ms, first[i].applied_ms);
  }
  absl::StatusOr<std::unique_ptr<SqliteConnection>> connection =
      SqliteConnection::Open(options.path, options.busy_timeout);
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::vector<uint32_t> ran;
  EXPECT_TRUE(ApplySqliteMigrations(**connection, &ran).ok());
  EXPECT_TRUE(ran.empty());
}

TEST(SqliteStatementTest, BindsEmptyBytesAsEmptyNotNullAndRefusesWhatDoesNotFit) {
  TestSqliteDatabase test;
  absl::Status status = test.database().Read([](SqliteConnection& connection) -> absl::Status {
    absl::StatusOr<SqliteStatement> select =
        connection.Prepare("SELECT ? IS NULL, typeof(?), length(?), ? IS NULL");
    if (!select.ok()) return select.status();
    select->Bytes("").Bytes("").Bytes("abc").BytesOrNull("");
    EXPECT_TRUE(select->Step().value_or(false));
    EXPECT_EQ(select->ColumnI64(0), 0);
    EXPECT_EQ(select->ColumnBytes(1), "blob");
    EXPECT_EQ(select->ColumnI64(2), 3);
    EXPECT_EQ(select->ColumnI64(3), 1);
    // One use at a time: a second one of the same text while this one lives is a bug.
    EXPECT_EQ(
        connection.Prepare("SELECT ? IS NULL, typeof(?), length(?), ? IS NULL").status().code(),
        absl::StatusCode::kInternal);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;

  status = test.database().Read([](SqliteConnection& connection) -> absl::Status {
    absl::StatusOr<SqliteStatement> select = connection.Prepare("SELECT ?, ?");
    if (!select.ok()) return select.status();
    select->U64(uint64_t{1} << 63).I64(1);
    return select->Step().status();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST(SqliteDatabaseTest, AFailedWriteLeavesNothingBehind) {
  TestSqliteDatabase test;
  SqliteMessageStore store(test.database());
  const absl::Status status =
      test.database().Write([](SqliteConnection& connection) -> absl::Status {
        absl::Status inserted = connection.Execute(
            "INSERT INTO conversations (conv_id, max_seq, updated_ms) VALUES (x'6700', 1, 1)");
        if (!inserted.ok()) return inserted;
        return absl::AbortedError("changed my mind");
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(QueryInt(test.database(), "SELECT count(*) FROM conversations"), 0);
  // A member row without its conversation breaks the foreign key, and rolls back.
  EXPECT_EQ(test.database()
                .Write([](SqliteConnection& connection) {
                  return connection.Execute(
                      "INSERT INTO user_conversations (uid, conv_id, joined_ms) "
                      "VALUES (x'75', x'6700', 1)");
                })
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // Neither left the write connection in a transaction.
  EXPECT_TRUE(store.Append({Msg("g:x", 1, "alice", {"alice"})}).ok());
}

TEST(SqliteMessageStoreTest, SeqsAboveTheLargestSqliteIntegerAreRefusedOrClamped) {
  TestSqliteDatabase test;
  SqliteMessageStore store(test.database());
  constexpr uint64_t kTooLarge = uint64_t{1} << 63;
  NewMessage big = Msg("g:x", 2, "alice");
  big.message.set_seq(kTooLarge);
  EXPECT_EQ(store.Append({Msg("g:x", 1, "alice"), big}).status().code(),
            absl::StatusCode::kInvalidArgument);
  NewMessage big_id = Msg("g:x", 2, "alice");
  big_id.message.set_msg_id(kTooLarge);
  EXPECT_EQ(store.Append({big_id}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.JoinConversation("bob", "g:x", kTooLarge, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*store.MaxSeq("g:x"), 0u);

  ASSERT_TRUE(store.Append({Msg("g:x", 1, "alice", {"alice", "bob"})}).ok());
  absl::StatusOr<MessagePage> page = store.ReadMessages("g:x", kTooLarge, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->messages.empty());
  EXPECT_EQ(*store.AdvanceRead("bob", "g:x", std::numeric_limits<uint64_t>::max()), 1u);
  EXPECT_TRUE(store.AdvanceDelivered("alice", {{"g:x", kTooLarge}}).ok());
}

// Everything the stores write is in the file: a new SqliteDatabase on it finds it all.
TEST(SqliteStoresTest, DataSurvivesClosingAndReopening) {
  TemporaryDirectory directory;
  const SqliteOptions options = TestSqliteOptions(directory);
  {
    std::unique_ptr<SqliteDatabase> database = OpenTestDatabase(options);
    ASSERT_NE(database, nullptr);
    SqliteMessageStore messages(*database);
    SqliteGroupStore groups(*database);
    ASSERT_TRUE(messages
                    .Append({Msg("s:alice:bob", 1, "alice", {"alice", "bob"}),
                             Msg("s:alice:bob", 2, "bob", {"alice", "bob"}),
                             Msg("s:alice:bob", 3, "alice", {"alice", "bob"})})
                    .ok());
    ASSERT_TRUE(messages.AdvanceRead("bob", "s:alice:bob", 2).ok());
    ASSERT_TRUE(messages.AdvanceDelivered("bob", {{"s:alice:bob", 3}}).ok());
    Group group;
    group.group_id = "club";
    group.name = "the club";
    group.owner = "alice";
    group.created_ms = 5'000;
    ASSERT_TRUE(groups.CreateGroup(group, {Member("alice", im::v1::OWNER)}, 10).ok());
    ASSERT_TRUE(groups.AddMembers("club", {Member("carol", im::v1::MEMBER, 7)}, 10).ok());
    ASSERT_TRUE(groups.SetRole("club", "carol", im::v1::OWNER).ok());
    ASSERT_TRUE(messages.JoinConversation("carol", "g:club", 7, 6'000).ok());
  }

  std::unique_ptr<SqliteDatabase> database = OpenTestDatabase(options);
  ASSERT_NE(database, nullptr);
  SqliteMessageStore messages(*database);
  SqliteGroupStore groups(*database);
  EXPECT_EQ(Seqs(messages, "s:alice:bob"), (std::vector<uint64_t>{1, 2, 3}));
  absl::StatusOr<std::vector<im::v1::Conversation>> bob =
      messages.ListConversations("bob", 0, std::nullopt, 10);
  ASSERT_TRUE(bob.ok()) << bob.status();
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].read_seq(), 2u);
  EXPECT_EQ((*bob)[0].delivered_seq(), 3u);
  EXPECT_EQ((*bob)[0].unread(), 1u);
  EXPECT_EQ((*bob)[0].last_message().body(), "body 3");
  absl::StatusOr<std::vector<im::v1::Conversation>> carol =
      messages.ListConversations("carol", 0, std::nullopt, 10);
  ASSERT_TRUE(carol.ok()) << carol.status();
  ASSERT_EQ(carol->size(), 1u);
  EXPECT_EQ((*carol)[0].read_seq(), 7u);

  absl::StatusOr<std::optional<Group>> club = groups.GetGroup("club");
  ASSERT_TRUE(club.ok() && club->has_value()) << club.status();
  EXPECT_EQ((*club)->name, "the club");
  EXPECT_EQ((*club)->owner, "carol");
  EXPECT_EQ((*club)->member_count, 2u);
  absl::StatusOr<std::vector<GroupMember>> members = groups.ListMembers("club", "", 10);
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].uid, "alice");
  EXPECT_EQ((*members)[0].role, im::v1::ADMIN);
  EXPECT_EQ((*members)[1].uid, "carol");
  EXPECT_EQ((*members)[1].role, im::v1::OWNER);
  EXPECT_EQ((*members)[1].joined_seq, 7u);
}

// A process killed right after Append returned (no close, no checkpoint: the messages are only in
// the write-ahead log) loses none of them.
TEST(SqliteStoresTest, AnAppendedMessageSurvivesKillNine) {
  TemporaryDirectory directory;
  const SqliteOptions options = TestSqliteOptions(directory);
  int appended[2];
  ASSERT_EQ(::pipe(appended), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(appended[0]);
    absl::StatusOr<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::Open(options);
    if (database.ok()) {
      SqliteMessageStore store(**database);
      for (uint64_t seq = 1; seq <= 20; ++seq) {
        if (!store.Append({Msg("g:x", seq, "alice", {"bob"})}).ok()) break;
        const char acked = 1;
        if (::write(appended[1], &acked, 1) != 1) break;
      }
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(1);
  }
  ::close(appended[1]);
  int acked = 0;
  char byte;
  while (::read(appended[0], &byte, 1) == 1) ++acked;
  ::close(appended[0]);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL);
  EXPECT_EQ(acked, 20);

  std::unique_ptr<SqliteDatabase> database = OpenTestDatabase(options);
  ASSERT_NE(database, nullptr);
  SqliteMessageStore store(*database);
  EXPECT_EQ(Seqs(store, "g:x").size(), static_cast<size_t>(acked));
  EXPECT_EQ(*store.MaxSeq("g:x"), static_cast<uint64_t>(acked));
}

// A read is not held up by a write transaction in progress: it reads the snapshot before it.
TEST(SqliteDatabaseTest, ReadsRunBesideAnOpenWrite) {
  TestSqliteDatabase test;
  SqliteMessageStore store(test.database());
  ASSERT_TRUE(store.Append({Msg("g:x", 1, "alice")}).ok());
  std::mutex mutex;
  std::condition_variable changed;
  bool writing = false;
  bool read_done = false;
  std::thread writer([&] {
    absl::Status status = test.database().Write([&](SqliteConnection& connection) {
      absl::Status updated = connection.Execute(
          "UPDATE conversations SET max_seq = 99 WHERE conv_id = CAST('g:x' AS BLOB)");
      std::unique_lock<std::mutex> lock(mutex);
      writing = true;
      changed.notify_all();
      changed.wait_for(lock, std::chrono::seconds(10), [&] { return read_done; });
      return updated;
    });
    EXPECT_TRUE(status.ok()) << status;
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return writing; });
  }
  absl::StatusOr<uint64_t> during = store.MaxSeq("g:x");
  {
    std::lock_guard<std::mutex> lock(mutex);
    read_done = true;
  }
  changed.notify_all();
  writer.join();
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(*during, 1u);
  EXPECT_EQ(*store.MaxSeq("g:x"), 99u);
}

// Writers append batches from several threads while readers list and read beside them, more
// readers than read connections: every message lands, no call fails (no SQLITE_BUSY surfaces),
// and no reader sees a conversation go back.
TEST(SqliteStoresTest, ConcurrentAppendsWithReadersBesideThemKeepEveryMessage) {
  TemporaryDirectory directory;
  SqliteOptions options = TestSqliteOptions(directory);
  options.read_connections = 2;
  std::unique_ptr<SqliteDatabase> database = OpenTestDatabase(options);
  ASSERT_NE(database, nullptr);
  SqliteMessageStore store(*database);
  constexpr int kWriters = 4;
  constexpr int kReaders = 3;
  constexpr int kBatches = 25;
  constexpr int kPerBatch = 8;
  const std::string shared = "g:shared";
  const auto own = [](int writer) { return fmt::format("s:bob:w{}", writer); };

  std::atomic<int> failures{0};
  std::atomic<int> writers_left{kWriters};
  std::mutex failure_mutex;
  std::string first_failure;
  const auto fail = [&](const absl::Status& status) {
    ++failures;
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (first_failure.empty()) first_failure = status.ToString();
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<NewMessage> batch;
        for (int k = 0; k < kPerBatch; ++k) {
          const int n = b * kPerBatch + k;
          // The writers interleave their seqs in the shared conversation.
          batch.push_back(Msg(shared, 1 + w + kWriters * n, fmt::format("w{}", w), {"bob"}));
          batch.push_back(Msg(own(w), 1 + n, fmt::format("w{}", w), {"bob"}));
        }
        if (absl::Status status = store.Append(batch).status(); !status.ok()) fail(status);
      }
      --writers_left;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      std::map<std::string, uint64_t> seen;  // conv -> the highest max_seq seen
      while (writers_left.load() > 0) {
        absl::StatusOr<std::vector<im::v1::Conversation>> page =
            store.ListConversations("bob", 0, std::nullopt, 100);
        if (!page.ok()) fail(page.status());
        for (const im::v1::Conversation& c : page.value_or(std::vector<im::v1::Conversation>())) {
          if (c.max_seq() < seen[c.conv_id()]) fail(absl::InternalError("max_seq went back"));
          seen[c.conv_id()] = c.max_seq();
        }
        absl::StatusOr<std::vector<MessagePage>> reads =
            store.ReadMessagesMany({{shared, 0, 50}, {own(0), 0, 50}});
        if (!reads.ok()) fail(reads.status());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;

  const std::vector<uint64_t> seqs = Seqs(store, shared);
  ASSERT_EQ(seqs.size(), size_t{kWriters * kBatches * kPerBatch});
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(Seqs(store, own(w)).size(), size_t{kBatches * kPerBatch}) << own(w);
  }
  absl::StatusOr<std::vector<im::v1::Conversation>> bob =
      store.ListConversations("bob", 0, std::nullopt, 100);
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(bob->size(), size_t{kWriters + 1});
}

}  // namespace
}  // namespace im::store
