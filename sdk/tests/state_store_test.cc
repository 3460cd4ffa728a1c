#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "sdk/in_memory_state_store.h"
#include "sdk/sqlite_state_store.h"

namespace im::sdk {
namespace {

PendingSend Send(const std::string& id) {
  PendingSend send;
  send.client_msg_id = id;
  send.to_uid = "bob";
  send.type = 4;
  send.body = std::string("bin\0ary", 7);
  send.created_ms = 1700000000000;
  send.deadline_ms = 1700000060000;
  send.ref_seq = 42;
  return send;
}

// One contract for every StateStore backend.
class StateStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = ::testing::TempDir() + "sdk_state_" + name + ".db";
    std::filesystem::remove(path_);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove(path_);
  }
  std::unique_ptr<StateStore> Open() {
    if (GetParam() == "memory") return std::make_unique<InMemoryStateStore>();
    auto opened = SqliteStateStore::Open(path_);
    if (!opened.ok()) ADD_FAILURE() << opened.status();
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  std::string path_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(StateStoreTest, OutboxKeepsOrderAndContent) {
  ASSERT_TRUE(store_->AddPending("alice", Send("1")).ok());
  ASSERT_TRUE(store_->AddPending("alice", Send("2")).ok());
  ASSERT_TRUE(store_->AddPending("alice", Send("3")).ok());
  EXPECT_EQ(store_->AddPending("alice", Send("2")).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->RemovePending("alice", "2").ok());
  std::map<std::string, uint64_t> cursors;
  std::vector<PendingSend> outbox;
  ASSERT_TRUE(store_->Load("alice", &cursors, &outbox).ok());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].client_msg_id, "1");
  EXPECT_EQ(outbox[1].client_msg_id, "3");
  const PendingSend expected = Send("3");
  EXPECT_EQ(outbox[1].to_uid, expected.to_uid);
  EXPECT_EQ(outbox[1].type, expected.type);
  EXPECT_EQ(outbox[1].body, expected.body);
  EXPECT_EQ(outbox[1].created_ms, expected.created_ms);
  EXPECT_EQ(outbox[1].deadline_ms, expected.deadline_ms);
  EXPECT_EQ(outbox[1].ref_seq, expected.ref_seq);
}

TEST_P(StateStoreTest, CursorsNeverMoveBackwardsAndAccountsAreSeparate) {
  ASSERT_TRUE(store_->SaveCursors("alice", {{"s:a:b", 5}, {"g:x", 2}}).ok());
  ASSERT_TRUE(store_->SaveCursors("alice", {{"s:a:b", 3}}).ok());
  ASSERT_TRUE(store_->SaveCursors("bob", {{"s:a:b", 9}}).ok());
  ASSERT_TRUE(store_->AddPending("bob", Send("b1")).ok());
  std::map<std::string, uint64_t> cursors;
  std::vector<PendingSend> outbox;
  ASSERT_TRUE(store_->Load("alice", &cursors, &outbox).ok());
  EXPECT_EQ(cursors, (std::map<std::string, uint64_t>{{"g:x", 2}, {"s:a:b", 5}}));
  EXPECT_TRUE(outbox.empty());
}

TEST(SqliteStateStoreTest, SurvivesReopening) {
  const std::string path = ::testing::TempDir() + "sdk_state_reopen.db";
  std::filesystem::remove(path);
  {
    auto store = SqliteStateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->SaveCursors("alice", {{"s:a:b", 7}}).ok());
    ASSERT_TRUE((*store)->AddPending("alice", Send("x")).ok());
  }
  auto store = SqliteStateStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  std::map<std::string, uint64_t> cursors;
  std::vector<PendingSend> outbox;
  ASSERT_TRUE((*store)->Load("alice", &cursors, &outbox).ok());
  EXPECT_EQ(cursors.at("s:a:b"), 7u);
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].client_msg_id, "x");
  store->reset();
  std::filesystem::remove(path);
}

TEST(SqliteStateStoreTest, AFileOfTheFirstSchemaIsMigratedAndKeepsItsOutbox) {
  const std::string path = ::testing::TempDir() + "sdk_state_v0.db";
  std::filesystem::remove(path);
  {
    // The outbox as the first SDK release wrote it: no ref_seq, user_version 0.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE outbox (position INTEGER PRIMARY KEY AUTOINCREMENT,"
                           " uid TEXT NOT NULL, client_msg_id TEXT NOT NULL, conv_id TEXT NOT NULL,"
                           " to_uid TEXT NOT NULL, type INTEGER NOT NULL, body BLOB NOT NULL,"
                           " created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
                           " UNIQUE (uid, client_msg_id));"
                           "INSERT INTO outbox (uid, client_msg_id, conv_id, to_uid, type, body,"
                           " created_ms, deadline_ms) VALUES ('alice', 'old', '', 'bob', 1, 'hi',"
                           " 1, 0)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  for (int open = 0; open < 2; ++open) {  // the second open finds it migrated already
    auto store = SqliteStateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->AddPending("alice", Send(open == 0 ? "new" : "newer")).ok());
    std::map<std::string, uint64_t> cursors;
    std::vector<PendingSend> outbox;
    ASSERT_TRUE((*store)->Load("alice", &cursors, &outbox).ok());
    ASSERT_EQ(outbox.size(), 2u + open);
    EXPECT_EQ(outbox[0].client_msg_id, "old");
    EXPECT_EQ(outbox[0].body, "hi");
    EXPECT_EQ(outbox[0].ref_seq, 0u);
    EXPECT_EQ(outbox[1].ref_seq, 42u);
  }
  std::filesystem::remove(path);
}

TEST(SqliteStateStoreTest, UnopenablePathIsAnError) {
  auto store = SqliteStateStore::Open("/nonexistent-dir/for/sure/state.db");
  EXPECT_FALSE(store.ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StateStoreTest, ::testing::Values("memory", "sqlite"));

}  // namespace
}  // namespace im::sdk
