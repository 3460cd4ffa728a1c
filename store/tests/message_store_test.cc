// One contract, every backend: the in-process store always, the SQLite one on a fresh database file
// per test, the MySQL one against the real MariaDB whose address IM_TEST_MYSQL gives
// (scripts/test.sh starts it). A missing server is a failure, never a skip. The MariaDB database
// is shared and never wiped, so each test uses its own uids and conversation ids.
#include "store/message_store.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "fmt/format.h"
#include "store/in_memory_message_store.h"
#include "store/message_rules.h"
#include "store/mysql_message_store.h"
#include "store/schema_migrator.h"
#include "store/sqlite_message_store.h"
#include "store/tests/backend_name.h"
#include "store/tests/test_mysql.h"
#include "store/tests/test_sqlite.h"

namespace im::store {
namespace {

using google::protobuf::util::MessageDifferencer;

class InMemoryBackend {
 public:
  static constexpr char kName[] = "InMemory";
  MessageStore& store() { return store_; }

 private:
  InMemoryMessageStore store_;
};

class MySqlBackend {
 public:
  static constexpr char kName[] = "MySql";
  MySqlBackend() : pool_(testing::TestMySqlOptions()), store_(pool_) {
    absl::Status status = ApplyMigrations(pool_);
    EXPECT_TRUE(status.ok()) << status;
  }
  MessageStore& store() { return store_; }

 private:
  MySqlConnectionPool pool_;
  MySqlMessageStore store_;
};

class SqliteBackend {
 public:
  static constexpr char kName[] = "Sqlite";
  SqliteBackend() : store_(database_.database()) {}
  MessageStore& store() { return store_; }

 private:
  testing::TestSqliteDatabase database_;
  SqliteMessageStore store_;
};

template <typename Backend>
class MessageStoreContractTest : public ::testing::Test {
 protected:
  MessageStoreContractTest() : prefix_(testing::UniquePrefix()) {
    std::random_device random;
    next_msg_id_ = (uint64_t{random()} << 32 | random()) >> 1;
  }

  MessageStore& store() { return backend_.store(); }
  std::string Uid(std::string_view name) { return prefix_ + std::string(name); }
  // A single chat's id, as logic makes it.
  std::string Single(std::string_view a, std::string_view b) {
    return fmt::format("s:{}:{}", std::min(Uid(a), Uid(b)), std::max(Uid(a), Uid(b)));
  }
  std::string Group(std::string_view name) { return fmt::format("g:{}{}", prefix_, name); }
  std::vector<std::string> Uids(std::initializer_list<std::string_view> names) {
    std::vector<std::string> uids;
    for (std::string_view name : names) uids.push_back(Uid(name));
    return uids;
  }

  // Message `seq` of `conv` from Uid(sender) to `participants` (uids), with a client_msg_id of its
  // own, created at 1000 * seq ms.
  NewMessage Msg(const std::string& conv, uint64_t seq, std::string_view sender,
                 std::vector<std::string> participants) {
    NewMessage entry;
    im::v1::Message& m = entry.message;
    m.set_conv_id(conv);
    m.set_seq(seq);
    m.set_msg_id(next_msg_id_++);
    m.set_sender(Uid(sender));
    m.set_client_msg_id(fmt::format("cid-{}", m.msg_id()));
    m.set_type(im::v1::TEXT);
    m.set_body(fmt::format("body {}", seq));
    m.set_created_ms(1'000 * static_cast<int64_t>(seq));
    entry.participants = std::move(participants);
    return entry;
  }
  // Message `seq` of the chat between alice and bob.
  NewMessage Chat(uint64_t seq, std::string_view sender) {
    return Msg(Single("alice", "bob"), seq, sender, Uids({"alice", "bob"}));
  }
  // Message `seq` of the chat between alice and bob that recalls (RECALL) or edits (EDIT, with
  // `body`) message `ref_seq`.
  NewMessage Change(uint64_t seq, std::string_view sender, im::v1::MessageType type,
                    uint64_t ref_seq, std::string body = "") {
    NewMessage change = Chat(seq, sender);
    change.message.set_type(type);
    change.message.set_ref_seq(ref_seq);
    change.message.set_body(std::move(body));
    return change;
  }
  // The stored message at `seq` of `conv` (a default one, and a test failure, if none is).
  im::v1::Message At(const std::string& conv, uint64_t seq) {
    absl::StatusOr<MessagePage> page = store().ReadMessages(conv, seq - 1, 1);
    if (page.ok() && !page->messages.empty() && page->messages[0].seq() == seq) {
      return page->messages[0];
    }
    ADD_FAILURE() << conv << " has no message " << seq;
    return im::v1::Message();
  }
  // The same (sender, client_msg_id) as `original`, sent again as a new message at `seq`.
  NewMessage Resend(const NewMessage& original, uint64_t seq) {
    NewMessage copy = original;
    copy.message.set_seq(seq);
    copy.message.set_msg_id(next_msg_id_++);
    copy.message.set_body("resent");
    return copy;
  }

  std::vector<AppendOutcome> AppendOk(const std::vector<NewMessage>& batch) {
    absl::StatusOr<std::vector<AppendOutcome>> outcomes = store().Append(batch);
    EXPECT_TRUE(outcomes.ok()) << outcomes.status();
    if (!outcomes.ok()) return {};
    EXPECT_EQ(outcomes->size(), batch.size());
    return *std::move(outcomes);
  }
  std::vector<uint64_t> Seqs(const std::string& conv) {
    absl::StatusOr<MessagePage> page = store().ReadMessages(conv, 0, 10'000);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<uint64_t> seqs;
    if (page.ok()) {
      for (const im::v1::Message& m : page->messages) seqs.push_back(m.seq());
    }
    return seqs;
  }
  std::vector<im::v1::Conversation> List(const std::string& uid, int64_t updated_after_ms = 0,
                                         std::optional<ConversationPosition> after = std::nullopt,
                                         uint32_t limit = 1000) {
    absl::StatusOr<std::vector<im::v1::Conversation>> page =
        store().ListConversations(uid, updated_after_ms, after, limit);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.value_or(std::vector<im::v1::Conversation>());
  }
  std::vector<std::string> ConvIds(const std::vector<im::v1::Conversation>& page) {
    std::vector<std::string> ids;
    for (const im::v1::Conversation& c : page) ids.push_back(c.conv_id());
    return ids;
  }
  // uid's entry for `conv`; a default one (and a test failure) if it has none.
  im::v1::Conversation Entry(const std::string& uid, const std::string& conv) {
    for (im::v1::Conversation& c : List(uid)) {
      if (c.conv_id() == conv) return c;
    }
    ADD_FAILURE() << uid << " has no conversation " << conv;
    return im::v1::Conversation();
  }

  static void ExpectSame(const im::v1::Message& actual, const im::v1::Message& expected) {
    EXPECT_TRUE(MessageDifferencer::Equals(actual, expected))
        << "actual: " << actual.ShortDebugString() << "\nexpected: " << expected.ShortDebugString();
  }

  std::string prefix_;
  uint64_t next_msg_id_ = 0;
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, SqliteBackend, MySqlBackend>;
TYPED_TEST_SUITE(MessageStoreContractTest, Backends, testing::BackendName);

TYPED_TEST(MessageStoreContractTest, AppendsAndReadsBackInSeqOrder) {
  std::vector<NewMessage> batch = {this->Chat(2, "bob"), this->Chat(1, "alice"),
                                   this->Chat(3, "alice")};
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  batch[1].message.set_body(every_byte);
  batch[1].message.set_type(im::v1::IMAGE);
  batch[2].message.set_client_msg_id("");  // a sender may give none
  const std::vector<AppendOutcome> outcomes = this->AppendOk(batch);
  ASSERT_EQ(outcomes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(outcomes[i].inserted);
    this->ExpectSame(outcomes[i].stored, batch[i].message);
  }

  absl::StatusOr<MessagePage> page =
      this->store().ReadMessages(this->Single("alice", "bob"), 0, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages.size(), 3u);
  this->ExpectSame(page->messages[0], batch[1].message);
  this->ExpectSame(page->messages[1], batch[0].message);
  this->ExpectSame(page->messages[2], batch[2].message);
  EXPECT_EQ(page->max_seq, 3u);
}

TYPED_TEST(MessageStoreContractTest, ReadPagesWithAfterSeqAndLimit) {
  const std::string conv = this->Single("alice", "bob");
  std::vector<NewMessage> batch;
  for (uint64_t seq = 1; seq <= 5; ++seq) batch.push_back(this->Chat(seq, "alice"));
  this->AppendOk(batch);

  const std::vector<std::pair<uint64_t, std::vector<uint64_t>>> pages = {
      {0, {1, 2}}, {2, {3, 4}}, {4, {5}}, {5, {}}, {99, {}}};
  for (const auto& [after_seq, expected] : pages) {
    absl::StatusOr<MessagePage> page = this->store().ReadMessages(conv, after_seq, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    std::vector<uint64_t> seqs;
    for (const im::v1::Message& m : page->messages) seqs.push_back(m.seq());
    EXPECT_EQ(seqs, expected) << "after " << after_seq;
    EXPECT_EQ(page->max_seq, 5u);
  }
  absl::StatusOr<MessagePage> unknown = this->store().ReadMessages(this->Group("none"), 0, 10);
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_TRUE(unknown->messages.empty());
  EXPECT_EQ(unknown->max_seq, 0u);
}

// Many reads at once (a storm's syncs), more than one statement's worth, the same conversation
// several times and one without messages among them: each answered as ReadMessages answers it.
TYPED_TEST(MessageStoreContractTest, ReadMessagesManyAnswersEachReadAsReadMessagesDoes) {
  const std::string chat = this->Single("alice", "bob");
  const std::string group = this->Group("club");
  std::vector<NewMessage> batch;
  for (uint64_t seq = 1; seq <= 5; ++seq) batch.push_back(this->Chat(seq, "alice"));
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    batch.push_back(this->Msg(group, seq, "carol", this->Uids({"carol", "dave"})));
  }
  this->AppendOk(batch);

  std::vector<MessageStore::MessageRead> reads;
  for (uint64_t i = 0; i < 70; ++i) {
    reads.push_back({chat, i % 6, static_cast<uint32_t>(1 + i % 3)});
    if (i % 10 == 0) reads.push_back({group, i % 4, 10});
    if (i % 25 == 0) reads.push_back({this->Group("none"), 0, 10});
  }
  absl::StatusOr<std::vector<MessagePage>> pages = this->store().ReadMessagesMany(reads);
  ASSERT_TRUE(pages.ok()) << pages.status();
  ASSERT_EQ(pages->size(), reads.size());
  for (size_t i = 0; i < reads.size(); ++i) {
    absl::StatusOr<MessagePage> one =
        this->store().ReadMessages(reads[i].conv_id, reads[i].after_seq, reads[i].limit);
    ASSERT_TRUE(one.ok()) << one.status();
    const MessagePage& many = (*pages)[i];
    EXPECT_EQ(many.max_seq, one->max_seq) << "read " << i << " of " << reads[i].conv_id;
    ASSERT_EQ(many.messages.size(), one->messages.size()) << "read " << i;
    for (size_t m = 0; m < many.messages.size(); ++m) {
      this->ExpectSame(many.messages[m], one->messages[m]);
    }
  }
  EXPECT_EQ((*pages)[0].messages.size(), 1u) << "chat after 0, limit 1";
  EXPECT_EQ((*pages)[1].max_seq, 3u) << "the group";
  EXPECT_TRUE(this->store().ReadMessagesMany({})->empty());
  EXPECT_EQ(this->store().ReadMessagesMany({{chat, 0, 0}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(MessageStoreContractTest, RetryInALaterBatchReturnsTheFirstStored) {
  const NewMessage original = this->Chat(1, "alice");
  this->AppendOk({original});
  const NewMessage retry = this->Resend(original, 2);
  const NewMessage other = this->Chat(3, "alice");
  const std::vector<AppendOutcome> outcomes = this->AppendOk({retry, other});
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_FALSE(outcomes[0].inserted);
  this->ExpectSame(outcomes[0].stored, original.message);
  EXPECT_TRUE(outcomes[1].inserted);
  EXPECT_EQ(this->Seqs(this->Single("alice", "bob")), (std::vector<uint64_t>{1, 3}));
}

TYPED_TEST(MessageStoreContractTest, FindSentFindsTheMessageAppendIsIdempotentOn) {
  const NewMessage first = this->Chat(1, "alice");
  this->AppendOk({first});
  absl::StatusOr<std::optional<im::v1::Message>> found =
      this->store().FindSent(this->Uid("alice"), first.message.client_msg_id());
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(**found, first.message)) << (*found)->ShortDebugString();

  // Another sender's id, an unknown id and the empty id find nothing.
  for (const auto& [sender, client_msg_id] : std::vector<std::pair<std::string, std::string>>{
           {this->Uid("bob"), first.message.client_msg_id()},
           {this->Uid("alice"), "never-sent"},
           {this->Uid("alice"), ""}}) {
    absl::StatusOr<std::optional<im::v1::Message>> none =
        this->store().FindSent(sender, client_msg_id);
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_FALSE(none->has_value()) << sender << " " << client_msg_id;
  }
}

TYPED_TEST(MessageStoreContractTest, DuplicatesWithinABatchGetTheFirstOnesOutcome) {
  const NewMessage first = this->Chat(1, "alice");
  const NewMessage copy = this->Resend(first, 2);
  const NewMessage other = this->Chat(3, "bob");
  std::vector<AppendOutcome> outcomes = this->AppendOk({first, copy, other});
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].inserted);
  EXPECT_FALSE(outcomes[1].inserted);
  this->ExpectSame(outcomes[1].stored, first.message);
  EXPECT_TRUE(outcomes[2].inserted);

  // Two more copies of a stored message in one batch both get the stored one.
  outcomes = this->AppendOk({this->Resend(first, 4), this->Resend(first, 5)});
  ASSERT_EQ(outcomes.size(), 2u);
  for (const AppendOutcome& outcome : outcomes) {
    EXPECT_FALSE(outcome.inserted);
    this->ExpectSame(outcome.stored, first.message);
  }
  EXPECT_EQ(this->Seqs(this->Single("alice", "bob")), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(*this->store().MaxSeq(this->Single("alice", "bob")), 3u);
}

TYPED_TEST(MessageStoreContractTest, TheSameMessageAgainCountsAsInserted) {
  // An attempt whose reply was lost is retried with the very same message (same msg_id).
  const NewMessage message = this->Chat(1, "alice");
  this->AppendOk({message});
  const std::vector<AppendOutcome> outcomes = this->AppendOk({message});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].inserted);
  this->ExpectSame(outcomes[0].stored, message.message);
  EXPECT_EQ(this->Seqs(this->Single("alice", "bob")), (std::vector<uint64_t>{1}));
}

TYPED_TEST(MessageStoreContractTest, MessagesWithoutClientMsgIdAreNeverDuplicates) {
  std::vector<NewMessage> batch = {this->Chat(1, "alice"), this->Chat(2, "alice")};
  for (NewMessage& entry : batch) entry.message.clear_client_msg_id();
  this->AppendOk({batch[0]});
  const std::vector<AppendOutcome> outcomes = this->AppendOk({batch[1]});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].inserted);
  EXPECT_EQ(this->Seqs(this->Single("alice", "bob")), (std::vector<uint64_t>{1, 2}));
}

TYPED_TEST(MessageStoreContractTest, AValueTooLargeRejectsTheWholeBatch) {
  const std::string conv = this->Single("alice", "bob");
  const std::string too_long_uid(kMaxUidBytes + 1, 'u');
  std::vector<std::pair<std::string, std::function<void(NewMessage&)>>> spoilers = {
      {"conv_id", [](NewMessage& e) { e.message.set_conv_id(std::string(141, 'c')); }},
      {"no conv_id", [](NewMessage& e) { e.message.clear_conv_id(); }},
      {"seq 0", [](NewMessage& e) { e.message.set_seq(0); }},
      {"sender", [&](NewMessage& e) { e.message.set_sender(too_long_uid); }},
      {"client_msg_id", [](NewMessage& e) { e.message.set_client_msg_id(std::string(65, 'x')); }},
      {"participant", [&](NewMessage& e) { e.participants.push_back(too_long_uid); }},
      {"empty participant", [](NewMessage& e) { e.participants.push_back(""); }},
      {"body", [](NewMessage& e) { e.message.set_body(std::string(kMaxBodyBytes + 1, 'b')); }},
  };
  for (const auto& [what, spoil] : spoilers) {
    NewMessage bad = this->Chat(2, "bob");
    spoil(bad);
    absl::StatusOr<std::vector<AppendOutcome>> outcomes =
        this->store().Append({this->Chat(1, "alice"), bad});
    EXPECT_EQ(outcomes.status().code(), absl::StatusCode::kInvalidArgument) << what;
  }
  EXPECT_EQ(*this->store().MaxSeq(conv), 0u);
  EXPECT_TRUE(this->Seqs(conv).empty());
  EXPECT_TRUE(this->List(this->Uid("alice")).empty());
}

TYPED_TEST(MessageStoreContractTest, AMessageWhoseSeqIsTakenIsNotStoredAndTheBatchsOthersAre) {
  const std::string conv = this->Single("alice", "bob");
  const NewMessage stored = this->Chat(1, "alice");
  this->AppendOk({stored});
  // Another message at seq 1: the seq counter handed the number out again (it is behind the
  // store). That message is reported and not written; the others, in this conversation and in
  // another, are stored as usual.
  const NewMessage innocent =
      this->Msg(this->Single("alice", "carol"), 1, "alice", this->Uids({"alice", "carol"}));
  const NewMessage behind = this->Chat(1, "bob");
  absl::StatusOr<std::vector<AppendOutcome>> outcomes =
      this->store().Append({innocent, this->Chat(2, "bob"), behind});
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  ASSERT_EQ(outcomes->size(), 3u);
  EXPECT_TRUE((*outcomes)[0].inserted);
  EXPECT_FALSE((*outcomes)[0].seq_taken);
  EXPECT_TRUE((*outcomes)[1].inserted);
  EXPECT_FALSE((*outcomes)[2].inserted);
  EXPECT_TRUE((*outcomes)[2].seq_taken);
  EXPECT_EQ((*outcomes)[2].stored.msg_id(), behind.message.msg_id());
  EXPECT_EQ(this->Seqs(conv), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(*this->store().MaxSeq(conv), 2u);
  EXPECT_EQ(*this->store().MaxSeq(this->Single("alice", "carol")), 1u);
}

TYPED_TEST(MessageStoreContractTest, MaxSeqFollowsAppends) {
  const std::string conv = this->Group("team");
  EXPECT_EQ(*this->store().MaxSeq(conv), 0u);
  this->AppendOk({this->Msg(conv, 1, "alice", {}), this->Msg(conv, 3, "bob", {})});
  EXPECT_EQ(*this->store().MaxSeq(conv), 3u);
  this->AppendOk({this->Msg(conv, 2, "alice", {})});  // a late write below max_seq
  EXPECT_EQ(*this->store().MaxSeq(conv), 3u);
  this->AppendOk({this->Msg(conv, 10, "alice", {})});
  EXPECT_EQ(*this->store().MaxSeq(conv), 10u);
}

TYPED_TEST(MessageStoreContractTest, EveryParticipantGetsAConversationRow) {
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "alice")});
  NewMessage late = this->Chat(2, "bob");
  late.message.set_created_ms(5'000);
  NewMessage early = this->Chat(3, "bob");
  early.message.set_created_ms(4'000);  // clocks differ: updated_ms never goes back
  this->AppendOk({late, early});
  for (const std::string& uid : this->Uids({"alice", "bob"})) {
    const std::vector<im::v1::Conversation> page = this->List(uid);
    ASSERT_EQ(page.size(), 1u) << uid;
    EXPECT_EQ(page[0].conv_id(), conv);
    EXPECT_EQ(page[0].max_seq(), 3u);
    EXPECT_EQ(page[0].updated_ms(), 5'000);
    EXPECT_EQ(page[0].delivered_seq(), 0u);
    EXPECT_EQ(page[0].read_seq(), 0u);
  }
  EXPECT_TRUE(this->List(this->Uid("carol")).empty());
}

TYPED_TEST(MessageStoreContractTest, UnreadCountsOnlyOthersMessagesAboveTheReadCursor) {
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "alice"), this->Chat(2, "alice"), this->Chat(3, "bob"),
                  this->Chat(4, "bob"), this->Chat(5, "bob")});
  EXPECT_EQ(this->Entry(this->Uid("alice"), conv).unread(), 3u);
  EXPECT_EQ(this->Entry(this->Uid("bob"), conv).unread(), 2u);
  ASSERT_TRUE(this->store().AdvanceRead(this->Uid("bob"), conv, 3).ok());
  EXPECT_EQ(this->Entry(this->Uid("bob"), conv).unread(), 0u);
  ASSERT_TRUE(this->store().AdvanceRead(this->Uid("alice"), conv, 4).ok());
  EXPECT_EQ(this->Entry(this->Uid("alice"), conv).unread(), 1u);
}

TYPED_TEST(MessageStoreContractTest, DeliveredCursorOnlyMovesForwardAndStopsAtMaxSeq) {
  const std::string conv = this->Single("alice", "bob");
  const std::string group = this->Group("team");
  this->AppendOk({this->Chat(1, "bob"), this->Chat(2, "bob"), this->Chat(3, "bob"),
                  this->Msg(group, 5, "bob", this->Uids({"alice", "bob"}))});
  const std::string alice = this->Uid("alice");
  const auto delivered = [&](const std::string& c) {
    return this->Entry(alice, c).delivered_seq();
  };
  ASSERT_TRUE(this->store().AdvanceDelivered(alice, {{conv, 2}}).ok());
  EXPECT_EQ(delivered(conv), 2u);
  ASSERT_TRUE(this->store().AdvanceDelivered(alice, {{conv, 1}}).ok());
  EXPECT_EQ(delivered(conv), 2u);
  ASSERT_TRUE(this->store().AdvanceDelivered(alice, {{conv, 99}, {group, 4}, {group, 2}}).ok());
  EXPECT_EQ(delivered(conv), 3u);
  EXPECT_EQ(delivered(group), 4u);
  EXPECT_EQ(this->Entry(alice, conv).read_seq(), 0u);
  // Conversations the user is not in are ignored.
  ASSERT_TRUE(this->store()
                  .AdvanceDelivered(alice, {{this->Single("bob", "carol"), 1}, {"g:none", 1}})
                  .ok());
  ASSERT_TRUE(this->store().AdvanceDelivered(this->Uid("carol"), {{conv, 3}}).ok());
  EXPECT_TRUE(this->List(this->Uid("carol")).empty());
  EXPECT_TRUE(this->store().AdvanceDelivered(alice, {}).ok());
}

TYPED_TEST(MessageStoreContractTest, ReadCursorOnlyMovesForwardStopsAtMaxSeqAndRaisesDelivered) {
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "bob"), this->Chat(2, "bob"), this->Chat(3, "bob")});
  const std::string alice = this->Uid("alice");
  EXPECT_EQ(*this->store().AdvanceRead(alice, conv, 2), 2u);
  EXPECT_EQ(this->Entry(alice, conv).delivered_seq(), 2u);
  EXPECT_EQ(*this->store().AdvanceRead(alice, conv, 1), 2u);
  ASSERT_TRUE(this->store().AdvanceDelivered(alice, {{conv, 3}}).ok());
  EXPECT_EQ(*this->store().AdvanceRead(alice, conv, 2), 2u);
  EXPECT_EQ(this->Entry(alice, conv).delivered_seq(), 3u);  // read never lowers delivered
  EXPECT_EQ(*this->store().AdvanceRead(alice, conv, 99), 3u);
  const im::v1::Conversation entry = this->Entry(alice, conv);
  EXPECT_EQ(entry.read_seq(), 3u);
  EXPECT_EQ(entry.delivered_seq(), 3u);

  EXPECT_EQ(this->store().AdvanceRead(this->Uid("carol"), conv, 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(this->store().AdvanceRead(alice, this->Group("none"), 1).status().code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(MessageStoreContractTest, ListsConversationsByUpdateTimeAndPagesWithoutGaps) {
  const std::string alice = this->Uid("alice");
  const std::string c1 = this->Single("alice", "bob");
  const std::string c2 = this->Single("alice", "carol");
  const std::string c3 = this->Group("x");
  const std::string c4 = this->Group("y");
  std::vector<NewMessage> batch = {this->Msg(c1, 1, "bob", this->Uids({"alice", "bob"})),
                                   this->Msg(c2, 1, "carol", this->Uids({"alice", "carol"})),
                                   this->Msg(c3, 1, "dave", this->Uids({"alice", "dave"})),
                                   this->Msg(c4, 1, "dave", this->Uids({"alice", "dave"}))};
  batch[0].message.set_created_ms(3'000);
  batch[1].message.set_created_ms(1'000);
  batch[2].message.set_created_ms(2'000);
  batch[3].message.set_created_ms(2'000);  // a tie: conv_id decides
  this->AppendOk(batch);

  EXPECT_EQ(this->ConvIds(this->List(alice)), (std::vector<std::string>{c2, c3, c4, c1}));
  EXPECT_EQ(this->ConvIds(this->List(alice, 1'000)), (std::vector<std::string>{c3, c4, c1}));
  EXPECT_EQ(this->ConvIds(this->List(alice, 2'000)), (std::vector<std::string>{c1}));
  EXPECT_TRUE(this->List(alice, 3'000).empty());

  const std::vector<im::v1::Conversation> first = this->List(alice, 0, std::nullopt, 2);
  ASSERT_EQ(this->ConvIds(first), (std::vector<std::string>{c2, c3}));
  const ConversationPosition end_of_first{first[1].updated_ms(), first[1].conv_id()};
  const std::vector<im::v1::Conversation> second = this->List(alice, 0, end_of_first, 2);
  ASSERT_EQ(this->ConvIds(second), (std::vector<std::string>{c4, c1}));
  const ConversationPosition end_of_second{second[1].updated_ms(), second[1].conv_id()};
  EXPECT_TRUE(this->List(alice, 0, end_of_second, 2).empty());

  // A conversation that changes while the client pages moves behind its position.
  NewMessage newer = this->Msg(c2, 2, "carol", this->Uids({"alice", "carol"}));
  newer.message.set_created_ms(4'000);
  this->AppendOk({newer});
  EXPECT_EQ(this->ConvIds(this->List(alice, 0, end_of_second, 2)), (std::vector<std::string>{c2}));
  EXPECT_EQ(this->ConvIds(this->List(alice, 3'000)), (std::vector<std::string>{c2}));
}

TYPED_TEST(MessageStoreContractTest, PeerReadSeqIsTheHighestReadCursorOfTheOthers) {
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "alice"), this->Chat(2, "alice"), this->Chat(3, "alice"),
                  this->Chat(4, "bob")});
  const std::string alice = this->Uid("alice");
  const std::string bob = this->Uid("bob");
  EXPECT_EQ(this->Entry(alice, conv).peer_read_seq(), 0u);
  ASSERT_TRUE(this->store().AdvanceRead(bob, conv, 3).ok());
  EXPECT_EQ(this->Entry(alice, conv).peer_read_seq(), 3u);
  EXPECT_EQ(this->Entry(bob, conv).peer_read_seq(), 0u);  // the user's own cursor never counts
  ASSERT_TRUE(this->store().AdvanceRead(alice, conv, 2).ok());
  EXPECT_EQ(this->Entry(bob, conv).peer_read_seq(), 2u);

  const std::string group = this->Group("team");
  this->AppendOk({this->Msg(group, 1, "alice", this->Uids({"alice", "bob", "carol"})),
                  this->Msg(group, 2, "alice", this->Uids({"alice", "bob", "carol"}))});
  ASSERT_TRUE(this->store().AdvanceRead(this->Uid("carol"), group, 2).ok());
  ASSERT_TRUE(this->store().AdvanceRead(bob, group, 1).ok());
  EXPECT_EQ(this->Entry(alice, group).peer_read_seq(), 2u);
  EXPECT_EQ(this->Entry(bob, group).peer_read_seq(), 2u);
}

TYPED_TEST(MessageStoreContractTest, LastMessageIsTheOneAtMaxSeq) {
  const std::string conv = this->Single("alice", "bob");
  const std::vector<NewMessage> batch = {this->Chat(3, "bob"), this->Chat(1, "alice"),
                                         this->Chat(2, "alice")};
  this->AppendOk(batch);
  this->ExpectSame(this->Entry(this->Uid("alice"), conv).last_message(), batch[0].message);
  const NewMessage next = this->Chat(4, "alice");
  this->AppendOk({next});
  this->ExpectSame(this->Entry(this->Uid("bob"), conv).last_message(), next.message);
}

TYPED_TEST(MessageStoreContractTest, AnEditReplacesTheBodyAndARecallDeletesIt) {
  const std::string conv = this->Single("alice", "bob");
  const NewMessage edit = this->Change(3, "alice", im::v1::EDIT, 1, "fixed");
  const NewMessage recall = this->Change(4, "bob", im::v1::RECALL, 2);
  this->AppendOk({this->Chat(1, "alice"), this->Chat(2, "bob"), edit, recall});
  ASSERT_TRUE(this->store().ApplyChange(edit.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(recall.message).ok());

  const im::v1::Message edited = this->At(conv, 1);
  EXPECT_EQ(edited.body(), "fixed");
  EXPECT_EQ(edited.edited_ms(), edit.message.created_ms());
  EXPECT_FALSE(edited.recalled());
  const im::v1::Message recalled = this->At(conv, 2);
  EXPECT_TRUE(recalled.recalled());
  EXPECT_EQ(recalled.body(), "");
  // The changes themselves are stored as sent, ref_seq included.
  this->ExpectSame(this->At(conv, 3), edit.message);
  this->ExpectSame(this->At(conv, 4), recall.message);
}

TYPED_TEST(MessageStoreContractTest, TheLatestChangeWinsWhateverOrderTheyLandIn) {
  const std::string conv = this->Single("alice", "bob");
  const NewMessage first = this->Change(2, "alice", im::v1::EDIT, 1, "first edit");
  const NewMessage second = this->Change(3, "alice", im::v1::EDIT, 1, "second edit");
  this->AppendOk({this->Chat(1, "alice"), first, second});
  ASSERT_TRUE(this->store().ApplyChange(second.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(first.message).ok());  // late: changes nothing
  EXPECT_EQ(this->At(conv, 1).body(), "second edit");
  EXPECT_EQ(this->At(conv, 1).edited_ms(), second.message.created_ms());

  // A recall wins over any edit, earlier or later, and a replay changes nothing.
  const NewMessage recall = this->Change(4, "alice", im::v1::RECALL, 1);
  const NewMessage later_edit = this->Change(5, "alice", im::v1::EDIT, 1, "too late");
  this->AppendOk({recall, later_edit});
  ASSERT_TRUE(this->store().ApplyChange(recall.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(later_edit.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(recall.message).ok());
  EXPECT_TRUE(this->At(conv, 1).recalled());
  EXPECT_EQ(this->At(conv, 1).body(), "");
}

// A recall deletes every version of the message, so sync and history serve none of them: the
// bodies of its edits go too, whether applied before the recall or racing it (an edit with a
// higher seq applied first, or one judged before the recall landed and applied after it). The
// edits of other messages keep theirs.
TYPED_TEST(MessageStoreContractTest, ARecallDeletesTheBodiesOfTheMessagesEditsToo) {
  const std::string conv = this->Single("alice", "bob");
  const NewMessage edit = this->Change(2, "alice", im::v1::EDIT, 1, "secret, fixed");
  const NewMessage bobs_edit = this->Change(4, "bob", im::v1::EDIT, 3, "bob's fix");
  const NewMessage recall = this->Change(5, "alice", im::v1::RECALL, 1);
  const NewMessage racing_edit = this->Change(6, "alice", im::v1::EDIT, 1, "secret, again");
  const NewMessage late_edit = this->Change(7, "alice", im::v1::EDIT, 1, "secret, late");
  this->AppendOk(
      {this->Chat(1, "alice"), edit, this->Chat(3, "bob"), bobs_edit, recall, racing_edit});
  ASSERT_TRUE(this->store().ApplyChange(edit.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(bobs_edit.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(racing_edit.message).ok());  // before the recall
  ASSERT_TRUE(this->store().ApplyChange(recall.message).ok());
  this->AppendOk({late_edit});
  ASSERT_TRUE(this->store().ApplyChange(late_edit.message).ok());  // after it

  for (uint64_t seq : {1, 2, 6, 7}) EXPECT_EQ(this->At(conv, seq).body(), "") << "seq " << seq;
  EXPECT_TRUE(this->At(conv, 1).recalled());
  EXPECT_EQ(this->At(conv, 2).ref_seq(), 1u);  // the edits themselves stay, empty
  EXPECT_EQ(this->At(conv, 3).body(), "bob's fix");
  EXPECT_EQ(this->At(conv, 4).body(), "bob's fix");
}

TYPED_TEST(MessageStoreContractTest, ApplyChangeRefusesWhatIsNotAChangeOfAStoredMessage) {
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "alice")});
  EXPECT_EQ(
      this->store().ApplyChange(this->Change(3, "alice", im::v1::EDIT, 2, "x").message).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(this->store().ApplyChange(this->Chat(2, "alice").message).code(),
            absl::StatusCode::kInvalidArgument);  // not a change
  EXPECT_EQ(
      this->store().ApplyChange(this->Change(2, "alice", im::v1::EDIT, 2, "x").message).code(),
      absl::StatusCode::kInvalidArgument);  // refers to itself
  EXPECT_EQ(this->store().ApplyChange(this->Change(2, "alice", im::v1::RECALL, 0).message).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(this->At(conv, 1).body(), "body 1");
}

TYPED_TEST(MessageStoreContractTest, ChangesAreNeitherUnreadNorTheLastMessage) {
  const std::string conv = this->Single("alice", "bob");
  const NewMessage hello = this->Chat(1, "alice");
  const NewMessage oops = this->Chat(2, "alice");
  const NewMessage recall = this->Change(3, "alice", im::v1::RECALL, 2);
  const NewMessage edit = this->Change(4, "alice", im::v1::EDIT, 1, "hello!");
  this->AppendOk({hello, oops, recall, edit});
  ASSERT_TRUE(this->store().ApplyChange(recall.message).ok());
  ASSERT_TRUE(this->store().ApplyChange(edit.message).ok());
  const im::v1::Conversation entry = this->Entry(this->Uid("bob"), conv);
  EXPECT_EQ(entry.max_seq(), 4u);
  EXPECT_EQ(entry.unread(), 2u);  // hello and oops, not the two changes
  // The last message that says something, in its current version: oops, recalled.
  EXPECT_EQ(entry.last_message().seq(), 2u);
  EXPECT_TRUE(entry.last_message().recalled());
  EXPECT_EQ(entry.last_message().body(), "");
}

// Presence is watched only among users who talk: those with a row in a conversation of uid's,
// by a single chat or a shared group; a group left no longer counts.
TYPED_TEST(MessageStoreContractTest, ConversationPeersAreTheCandidatesSharingAConversation) {
  this->AppendOk({this->Chat(1, "alice")});  // alice and bob chat
  const std::string group = this->Group("peers");
  for (const char* name : {"alice", "carol", "dave"}) {
    ASSERT_TRUE(this->store().JoinConversation(this->Uid(name), group, 0, 1'000).ok());
  }
  ASSERT_TRUE(this->store().LeaveConversation(this->Uid("dave"), group).ok());
  const std::vector<std::string> candidates =
      this->Uids({"zed", "dave", "carol", "bob", "alice", "carol"});
  absl::StatusOr<std::vector<std::string>> peers =
      this->store().ConversationPeers(this->Uid("alice"), candidates);
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_EQ(*peers, this->Uids({"alice", "bob", "carol"}));  // uid order, once each
  EXPECT_EQ(*this->store().ConversationPeers(this->Uid("zed"), this->Uids({"alice"})),
            std::vector<std::string>());
  EXPECT_EQ(*this->store().ConversationPeers(this->Uid("bob"), {}), std::vector<std::string>());
  EXPECT_EQ(this->store().ConversationPeers(this->Uid("alice"), {""}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(MessageStoreContractTest, ReadersAreMembersAtSendTimeWithTheirCursorPastTheSeq) {
  const std::string group = this->Group("readers");
  const std::string alice = this->Uid("alice");
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  const std::string dave = this->Uid("dave");
  for (const std::string& uid : {alice, bob, carol}) {
    ASSERT_TRUE(this->store().JoinConversation(uid, group, 0, 1'000).ok());
  }
  const NewMessage first = this->Msg(group, 1, "alice", {});  // created at 1,000 ms
  const NewMessage second = this->Msg(group, 2, "bob", {});   // created at 2,000 ms
  this->AppendOk({first, second});
  // Dave joins later, his cursors at the join: he never saw either message.
  ASSERT_TRUE(this->store().JoinConversation(dave, group, 2, 5'000).ok());
  ASSERT_TRUE(this->store().AdvanceRead(bob, group, 1).ok());
  ASSERT_TRUE(this->store().AdvanceRead(carol, group, 2).ok());

  absl::StatusOr<MessageStore::ReaderCount> of_first =
      this->store().CountReaders(group, 1, alice, first.message.created_ms());
  ASSERT_TRUE(of_first.ok()) << of_first.status();
  EXPECT_EQ(of_first->members, 2u);  // bob and carol: not the sender, not dave
  EXPECT_EQ(of_first->read, 2u);
  absl::StatusOr<MessageStore::ReaderCount> of_second =
      this->store().CountReaders(group, 2, bob, second.message.created_ms());
  ASSERT_TRUE(of_second.ok()) << of_second.status();
  EXPECT_EQ(of_second->members, 2u);  // alice and carol
  EXPECT_EQ(of_second->read, 1u);     // carol

  auto list = [&](std::string_view after, uint32_t limit) {
    absl::StatusOr<std::vector<std::string>> page =
        this->store().ListReaders(group, 1, alice, first.message.created_ms(), after, limit);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.value_or(std::vector<std::string>());
  };
  EXPECT_EQ(list("", 10), (std::vector<std::string>{bob, carol}));
  EXPECT_EQ(list("", 1), (std::vector<std::string>{bob}));
  EXPECT_EQ(list(bob, 10), (std::vector<std::string>{carol}));
  EXPECT_TRUE(list(carol, 10).empty());

  EXPECT_EQ(*this->store().ReadCursor(carol, group), 2u);
  EXPECT_EQ(*this->store().ReadCursor(dave, group), 2u);
  EXPECT_EQ(this->store().ReadCursor(this->Uid("erin"), group).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<MessageStore::ReaderCount> nobody =
      this->store().CountReaders(this->Group("empty"), 1, alice, 1'000);
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  EXPECT_EQ(nobody->members, 0u);
}

TYPED_TEST(MessageStoreContractTest, RejectsArgumentsTheSchemaCannotHold) {
  const std::string long_conv(kMaxConvIdBytes + 1, 'c');
  const std::string long_uid(kMaxUidBytes + 1, 'u');
  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(this->store().MaxSeq(long_conv).status().code(), invalid);
  EXPECT_EQ(this->store().ReadMessages(long_conv, 0, 1).status().code(), invalid);
  EXPECT_EQ(this->store().ReadMessages("g:x", 0, 0).status().code(), invalid);
  EXPECT_EQ(this->store().AdvanceDelivered(long_uid, {}).code(), invalid);
  EXPECT_EQ(this->store().AdvanceDelivered("u", {{long_conv, 1}}).code(), invalid);
  EXPECT_EQ(this->store().AdvanceRead(long_uid, "g:x", 1).status().code(), invalid);
  EXPECT_EQ(this->store().AdvanceRead("u", long_conv, 1).status().code(), invalid);
  EXPECT_EQ(this->store().ListConversations(long_uid, 0, std::nullopt, 1).status().code(), invalid);
  EXPECT_EQ(this->store().ListConversations("u", 0, std::nullopt, 0).status().code(), invalid);
  EXPECT_EQ(this->store()
                .ListConversations("u", 0, ConversationPosition{1, long_conv}, 1)
                .status()
                .code(),
            invalid);
  // Exactly at the limits is fine.
  const auto widest = [&](char fill, size_t bytes) {
    return this->prefix_ + std::string(bytes - this->prefix_.size(), fill);
  };
  NewMessage entry = this->Msg(widest('c', kMaxConvIdBytes), 1, "", {widest('u', kMaxUidBytes)});
  entry.message.set_sender(widest('s', kMaxUidBytes));
  entry.message.set_client_msg_id(widest('x', kMaxClientMsgIdBytes));
  absl::StatusOr<std::vector<AppendOutcome>> outcomes = this->store().Append({entry});
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  EXPECT_TRUE((*outcomes)[0].inserted);
  EXPECT_EQ(this->List(widest('u', kMaxUidBytes)).size(), 1u);
}

TYPED_TEST(MessageStoreContractTest, LargeBatchesSpanSeveralStatements) {
  const std::string conv = this->Group("big");
  std::vector<NewMessage> batch;
  for (uint64_t seq = 1; seq <= 300; ++seq) {
    batch.push_back(this->Msg(conv, seq, seq % 2 == 0 ? "alice" : "bob", this->Uids({"alice"})));
  }
  batch.push_back(this->Resend(batch[9], 301));
  std::vector<AppendOutcome> outcomes = this->AppendOk(batch);
  ASSERT_EQ(outcomes.size(), 301u);
  EXPECT_EQ(std::count_if(outcomes.begin(), outcomes.end(),
                          [](const AppendOutcome& o) { return o.inserted; }),
            300);
  EXPECT_EQ(outcomes[300].stored.seq(), 10u);
  EXPECT_EQ(this->Seqs(conv).size(), 300u);
  EXPECT_EQ(this->Entry(this->Uid("alice"), conv).unread(), 150u);

  // Every message again under new seqs: all duplicates, across statement boundaries.
  std::vector<NewMessage> again;
  for (size_t i = 0; i < 300; ++i) again.push_back(this->Resend(batch[i], 1'000 + i));
  outcomes = this->AppendOk(again);
  ASSERT_EQ(outcomes.size(), 300u);
  for (size_t i = 0; i < 300; ++i) {
    EXPECT_FALSE(outcomes[i].inserted);
    EXPECT_EQ(outcomes[i].stored.seq(), i + 1);
  }
  EXPECT_EQ(*this->store().MaxSeq(conv), 300u);
}

TYPED_TEST(MessageStoreContractTest, LargeBodiesAreSplitAcrossStatementsAndSurviveIntact) {
  const std::string conv = this->Single("alice", "bob");
  std::vector<NewMessage> batch;
  for (uint64_t seq = 1; seq <= 6; ++seq) {
    batch.push_back(this->Chat(seq, "alice"));
    batch.back().message.set_body(std::string(1 << 20, static_cast<char>('a' + seq)));
  }
  const std::vector<AppendOutcome> outcomes = this->AppendOk(batch);
  ASSERT_EQ(outcomes.size(), 6u);
  absl::StatusOr<MessagePage> page = this->store().ReadMessages(conv, 0, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(outcomes[i].inserted);
    EXPECT_TRUE(page->messages[i].body() == batch[i].message.body()) << i;
  }
}

TYPED_TEST(MessageStoreContractTest, ConcurrentAppendsToOneConversationAllLand) {
  const std::string conv = this->Group("busy");
  constexpr int kThreads = 4;
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 5;
  std::vector<std::vector<std::vector<NewMessage>>> work(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<NewMessage>& batch = work[t].emplace_back();
      for (int k = 0; k < kPerBatch; ++k) {
        // Threads interleave their seqs, so they write next to each other.
        const uint64_t seq = 1 + t + kThreads * (b * kPerBatch + k);
        batch.push_back(
            this->Msg(conv, seq, t % 2 == 0 ? "alice" : "bob", this->Uids({"alice", "bob"})));
      }
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const std::vector<NewMessage>& batch : work[t]) {
        if (!this->store().Append(batch).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const std::vector<uint64_t> seqs = this->Seqs(conv);
  ASSERT_EQ(seqs.size(), size_t{kThreads * kBatches * kPerBatch});
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_EQ(this->Entry(this->Uid("bob"), conv).max_seq(), seqs.size());
}

// One user's acks racing each other and the commits of new messages in the same conversations
// (as a busy device's acks do): every ack lands, none fails with a deadlock, and the cursors end
// where the last acks put them.
TYPED_TEST(MessageStoreContractTest, RacingAcksAndCommitsOfOneUserAllSucceed) {
  constexpr int kConversations = 8;
  constexpr int kRounds = 40;
  constexpr int kAckers = 3;
  std::vector<std::string> convs;
  for (int c = 0; c < kConversations; ++c) {
    convs.push_back(this->Single("carol", "peer" + std::to_string(c)));
    ASSERT_TRUE(this->store()
                    .Append({this->Msg(convs[c], 1, "carol",
                                       this->Uids({"carol", "peer" + std::to_string(c)}))})
                    .ok());
  }
  std::atomic<uint64_t> committed{1};
  std::atomic<int> ack_failures{0}, append_failures{0};
  std::string first_failure;
  std::mutex failure_mutex;
  std::thread writer([&] {
    for (uint64_t seq = 2; seq <= kRounds + 1; ++seq) {
      std::vector<NewMessage> batch;
      for (int c = 0; c < kConversations; ++c) {
        batch.push_back(this->Msg(convs[c], seq, "peer" + std::to_string(c),
                                  this->Uids({"carol", "peer" + std::to_string(c)})));
      }
      if (!this->store().Append(batch).ok()) ++append_failures;
      committed = seq;
    }
  });
  std::vector<std::thread> ackers;
  for (int a = 0; a < kAckers; ++a) {
    ackers.emplace_back([&, a] {
      std::mt19937 order(static_cast<unsigned>(a));
      for (int round = 0; round < kRounds; ++round) {
        std::vector<Cursor> cursors;
        for (const std::string& conv : convs) cursors.push_back(Cursor{conv, committed.load()});
        std::shuffle(cursors.begin(), cursors.end(), order);
        if (absl::Status status = this->store().AdvanceDelivered(this->Uid("carol"), cursors);
            !status.ok()) {
          ++ack_failures;
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (first_failure.empty()) first_failure = status.ToString();
        }
      }
    });
  }
  writer.join();
  for (std::thread& acker : ackers) acker.join();
  EXPECT_EQ(append_failures.load(), 0);
  EXPECT_EQ(ack_failures.load(), 0) << first_failure;
  // A last ack after every commit moves every cursor to the end.
  std::vector<Cursor> last;
  for (const std::string& conv : convs) last.push_back(Cursor{conv, kRounds + 1});
  ASSERT_TRUE(this->store().AdvanceDelivered(this->Uid("carol"), last).ok());
  for (const std::string& conv : convs) {
    EXPECT_EQ(this->Entry(this->Uid("carol"), conv).delivered_seq(), uint64_t{kRounds + 1});
  }
}

// A reader's read cursor and the sender's edits racing the commits of new messages in one chat
// (as bob reading while alice fixes a typo): every read and every edit lands, none fails with a
// deadlock, and the read cursor ends where the last read put it.
TYPED_TEST(MessageStoreContractTest, RacingReadsEditsAndCommitsOfOneChatAllSucceed) {
  constexpr uint64_t kMessages = 60;
  const std::string conv = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "alice")});
  std::atomic<uint64_t> committed{1};
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex failure_mutex;
  auto count_failure = [&](const absl::Status& status) {
    if (status.ok()) return;
    ++failures;
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (first_failure.empty()) first_failure = status.ToString();
  };
  // Every other new message edits the one before it, and the edit is applied as logic does.
  std::thread writer([&] {
    for (uint64_t seq = 2; seq <= kMessages; ++seq) {
      const NewMessage next = seq % 2 == 0
                                  ? this->Chat(seq, "alice")
                                  : this->Change(seq, "alice", im::v1::EDIT, seq - 1, "fixed");
      count_failure(this->store().Append({next}).status());
      if (next.message.type() == im::v1::EDIT)
        count_failure(this->store().ApplyChange(next.message));
      committed = seq;
    }
  });
  std::thread reader([&] {
    for (uint64_t round = 0; round < kMessages; ++round) {
      count_failure(this->store().AdvanceRead(this->Uid("bob"), conv, committed.load()).status());
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  ASSERT_TRUE(this->store().AdvanceRead(this->Uid("bob"), conv, kMessages).ok());
  EXPECT_EQ(this->Entry(this->Uid("bob"), conv).read_seq(), kMessages);
  EXPECT_EQ(this->At(conv, kMessages - 1).body(), "fixed");
}

TYPED_TEST(MessageStoreContractTest, GroupMessagesWithoutParticipantsReachMembersWhoJoined) {
  const std::string group = this->Group("team");
  const std::string carol = this->Uid("carol");
  std::vector<NewMessage> first = {this->Msg(group, 1, "alice", {}), this->Msg(group, 2, "bob", {}),
                                   this->Msg(group, 3, "bob", {})};
  this->AppendOk(first);
  EXPECT_EQ(*this->store().MaxSeq(group), 3u);
  EXPECT_TRUE(this->List(carol).empty());  // no participant rows were made

  // carol joins after seq 2: unread counts from there.
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 2, 3'500).ok());
  im::v1::Conversation entry = this->Entry(carol, group);
  EXPECT_EQ(entry.max_seq(), 3u);
  EXPECT_EQ(entry.updated_ms(), 3'000);  // a join does not move the conversation
  EXPECT_EQ(entry.delivered_seq(), 2u);
  EXPECT_EQ(entry.read_seq(), 2u);
  EXPECT_EQ(entry.unread(), 1u);
  this->ExpectSame(entry.last_message(), first[2].message);

  const NewMessage own = this->Msg(group, 4, "carol", {});
  const NewMessage next = this->Msg(group, 5, "alice", {});
  this->AppendOk({own, next});
  entry = this->Entry(carol, group);
  EXPECT_EQ(entry.max_seq(), 5u);
  EXPECT_EQ(entry.updated_ms(), 5'000);
  EXPECT_EQ(entry.unread(), 2u);  // 3 and 5; 4 is carol's own
  this->ExpectSame(entry.last_message(), next.message);
  EXPECT_EQ(*this->store().AdvanceRead(carol, group, 4), 4u);
  EXPECT_EQ(this->Entry(carol, group).unread(), 1u);
  ASSERT_TRUE(this->store().AdvanceDelivered(carol, {{group, 9}}).ok());
  EXPECT_EQ(this->Entry(carol, group).delivered_seq(), 5u);

  // Members who joined see each other's read cursors.
  ASSERT_TRUE(this->store().JoinConversation(this->Uid("dave"), group, 5, 6'000).ok());
  EXPECT_EQ(this->Entry(this->Uid("dave"), group).peer_read_seq(), 4u);
  EXPECT_EQ(this->Entry(this->Uid("dave"), group).unread(), 0u);
  EXPECT_EQ(this->Entry(carol, group).peer_read_seq(), 5u);
}

TYPED_TEST(MessageStoreContractTest, JoinConversationIsIdempotent) {
  const std::string group = this->Group("team");
  const std::string carol = this->Uid("carol");
  this->AppendOk({this->Msg(group, 1, "alice", {}), this->Msg(group, 2, "alice", {}),
                  this->Msg(group, 3, "alice", {})});
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 1, 4'000).ok());
  ASSERT_TRUE(this->store().AdvanceRead(carol, group, 2).ok());
  // A second join (a retry, or a join racing an earlier one) leaves the row as it is.
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 3, 5'000).ok());
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 0, 5'000).ok());
  const im::v1::Conversation entry = this->Entry(carol, group);
  EXPECT_EQ(entry.read_seq(), 2u);
  EXPECT_EQ(entry.delivered_seq(), 2u);
  EXPECT_EQ(entry.unread(), 1u);
  EXPECT_EQ(this->List(carol).size(), 1u);

  // A single chat's participant row is left alone too.
  const std::string chat = this->Single("alice", "bob");
  this->AppendOk({this->Chat(1, "bob"), this->Chat(2, "bob")});
  ASSERT_TRUE(this->store().JoinConversation(this->Uid("alice"), chat, 2, 9'000).ok());
  EXPECT_EQ(this->Entry(this->Uid("alice"), chat).read_seq(), 0u);
  EXPECT_EQ(this->Entry(this->Uid("alice"), chat).unread(), 2u);
}

TYPED_TEST(MessageStoreContractTest, AGroupIsListedFromTheJoinBeforeItsFirstMessage) {
  const std::string group = this->Group("new");
  const std::string alice = this->Uid("alice");
  ASSERT_TRUE(this->store().JoinConversation(alice, group, 0, 7'000).ok());
  im::v1::Conversation entry = this->Entry(alice, group);
  EXPECT_EQ(entry.max_seq(), 0u);
  EXPECT_EQ(entry.updated_ms(), 7'000);
  EXPECT_EQ(entry.unread(), 0u);
  EXPECT_FALSE(entry.has_last_message());
  EXPECT_EQ(*this->store().MaxSeq(group), 0u);
  EXPECT_EQ(this->ConvIds(this->List(alice, 6'999)), (std::vector<std::string>{group}));
  EXPECT_TRUE(this->List(alice, 7'000).empty());

  // The first message lands in the conversation the join made; clocks differ, and updated_ms
  // never goes back.
  const NewMessage first = this->Msg(group, 1, "bob", {});
  this->AppendOk({first});
  entry = this->Entry(alice, group);
  EXPECT_EQ(entry.max_seq(), 1u);
  EXPECT_EQ(entry.updated_ms(), 7'000);
  EXPECT_EQ(entry.unread(), 1u);
  this->ExpectSame(entry.last_message(), first.message);
  NewMessage later = this->Msg(group, 2, "bob", {});
  later.message.set_created_ms(8'000);
  this->AppendOk({later});
  EXPECT_EQ(this->Entry(alice, group).updated_ms(), 8'000);
  EXPECT_EQ(*this->store().MaxSeq(group), 2u);

  // A from_seq above what is stored yet (messages still on their way) is kept as given.
  ASSERT_TRUE(this->store().JoinConversation(this->Uid("bob"), group, 4, 8'500).ok());
  entry = this->Entry(this->Uid("bob"), group);
  EXPECT_EQ(entry.read_seq(), 4u);
  EXPECT_EQ(entry.unread(), 0u);
}

TYPED_TEST(MessageStoreContractTest, LeaveConversationDeletesOnlyTheUsersRow) {
  const std::string group = this->Group("team");
  const std::string alice = this->Uid("alice");
  const std::string carol = this->Uid("carol");
  this->AppendOk({this->Msg(group, 1, "alice", {}), this->Msg(group, 2, "carol", {})});
  ASSERT_TRUE(this->store().JoinConversation(alice, group, 0, 1'000).ok());
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 0, 1'000).ok());
  ASSERT_TRUE(this->store().AdvanceRead(carol, group, 2).ok());

  ASSERT_TRUE(this->store().LeaveConversation(carol, group).ok());
  EXPECT_TRUE(this->List(carol).empty());
  EXPECT_EQ(this->store().AdvanceRead(carol, group, 2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(this->Entry(alice, group).peer_read_seq(), 0u);  // carol's cursor left with her
  EXPECT_EQ(this->Entry(alice, group).max_seq(), 2u);
  EXPECT_EQ(this->Seqs(group), (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE(this->store().LeaveConversation(carol, group).ok());  // idempotent
  ASSERT_TRUE(this->store().LeaveConversation(carol, this->Group("none")).ok());

  // Coming back starts from the new join's seq, not the old cursors.
  this->AppendOk({this->Msg(group, 3, "alice", {})});
  ASSERT_TRUE(this->store().JoinConversation(carol, group, 1, 4'000).ok());
  const im::v1::Conversation entry = this->Entry(carol, group);
  EXPECT_EQ(entry.read_seq(), 1u);
  EXPECT_EQ(entry.unread(), 1u);  // 3; 2 is carol's own
  EXPECT_EQ(this->Entry(alice, group).peer_read_seq(), 1u);
}

TYPED_TEST(MessageStoreContractTest, JoinAndLeaveRejectArgumentsTheSchemaCannotHold) {
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const std::string long_conv(kMaxConvIdBytes + 1, 'c');
  const std::string long_uid(kMaxUidBytes + 1, 'u');
  const std::string group = this->Group("team");
  const std::string alice = this->Uid("alice");
  EXPECT_EQ(this->store().JoinConversation("", group, 0, 1).code(), invalid);
  EXPECT_EQ(this->store().JoinConversation(long_uid, group, 0, 1).code(), invalid);
  EXPECT_EQ(this->store().JoinConversation(alice, "", 0, 1).code(), invalid);
  EXPECT_EQ(this->store().JoinConversation(alice, long_conv, 0, 1).code(), invalid);
  EXPECT_EQ(this->store().LeaveConversation("", group).code(), invalid);
  EXPECT_EQ(this->store().LeaveConversation(long_uid, group).code(), invalid);
  EXPECT_EQ(this->store().LeaveConversation(alice, "").code(), invalid);
  EXPECT_EQ(this->store().LeaveConversation(alice, long_conv).code(), invalid);
  EXPECT_TRUE(this->List(alice).empty());
  EXPECT_EQ(*this->store().MaxSeq(group), 0u);
}

TEST(MySqlMessageStoreTest, ClosedPortIsUnavailableQuicklyNotACrash) {
  MySqlOptions options = testing::TestMySqlOptions();
  options.port = 1;  // nothing listens there
  options.connect_timeout = std::chrono::seconds(2);
  MySqlConnectionPool pool(options);
  MySqlMessageStore store(pool);
  const auto start = std::chrono::steady_clock::now();
  const auto unavailable = absl::StatusCode::kUnavailable;
  NewMessage entry;
  entry.message.set_conv_id("g:x");
  entry.message.set_seq(1);
  EXPECT_EQ(store.Append({entry}).status().code(), unavailable);
  EXPECT_EQ(store.MaxSeq("g:x").status().code(), unavailable);
  EXPECT_EQ(store.ReadMessages("g:x", 0, 10).status().code(), unavailable);
  EXPECT_EQ(store.AdvanceDelivered("u", {{"g:x", 1}}).code(), unavailable);
  EXPECT_EQ(store.AdvanceRead("u", "g:x", 1).status().code(), unavailable);
  EXPECT_EQ(store.JoinConversation("u", "g:x", 0, 1).code(), unavailable);
  EXPECT_EQ(store.LeaveConversation("u", "g:x").code(), unavailable);
  absl::Status listed = store.ListConversations("u", 0, std::nullopt, 10).status();
  EXPECT_EQ(listed.code(), unavailable);
  EXPECT_NE(listed.message().find("127.0.0.1:1"), std::string_view::npos) << listed;
  EXPECT_EQ(ApplyMigrations(pool).code(), unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(pool.open_connections(), 0u);
}

}  // namespace
}  // namespace im::store
