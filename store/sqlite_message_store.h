#pragma once

#include "store/message_store.h"
#include "store/sqlite_database.h"

namespace im::store {

// MessageStore on SQLite, for the embedded single-node mode (tables messages, conversations,
// user_conversations: see store/sqlite_migrations, applied when the database opens). Thread-safe:
// writes (Append, the cursor moves, JoinConversation, LeaveConversation) take turns on the
// database's write connection, each in one transaction that is on disk when the call returns;
// reads (MaxSeq, ReadMessages, ReadMessagesMany, ListConversations) run beside them on read
// connections, each call on one snapshot. Calls block on the disk, so they run on the store
// executor. Nothing is retried here: with one writer there are no deadlocks to retry.
//
// Besides the contract, as MySqlMessageStore: a message whose (sender, client_msg_id) is stored
// with the same msg_id is reported inserted (it is this very message, from an attempt whose reply
// was lost); a message whose (conv_id, seq) holds another message fails the batch with INTERNAL (a
// seq was reused); an empty client_msg_id is stored as NULL and never deduplicated; unread counts
// stop at kMaxUnreadCount. SQLite integers are signed: Append refuses a seq or msg_id above
// INT64_MAX, JoinConversation a from_seq above it (INVALID_ARGUMENT); a read or cursor bound above
// it counts as INT64_MAX.
class SqliteMessageStore final : public MessageStore {
 public:
  // `database` must outlive the store.
  explicit SqliteMessageStore(SqliteDatabase& database) : database_(database) {}

  absl::StatusOr<std::vector<AppendOutcome>> Append(const std::vector<NewMessage>& batch) override;
  absl::StatusOr<std::optional<im::v1::Message>> FindSent(std::string_view sender,
                                                          std::string_view client_msg_id) override;
  absl::Status ApplyChange(const im::v1::Message& change) override;
  absl::StatusOr<uint64_t> MaxSeq(std::string_view conv_id) override;
  absl::StatusOr<MessagePage> ReadMessages(std::string_view conv_id, uint64_t after_seq,
                                           uint32_t limit) override;
  // Every read on one read connection and one snapshot.
  absl::StatusOr<std::vector<MessagePage>> ReadMessagesMany(
      const std::vector<MessageRead>& reads) override;
  absl::Status AdvanceDelivered(std::string_view uid, const std::vector<Cursor>& cursors) override;
  absl::StatusOr<uint64_t> AdvanceRead(std::string_view uid, std::string_view conv_id,
                                       uint64_t seq) override;
  absl::StatusOr<uint64_t> ReadCursor(std::string_view uid, std::string_view conv_id) override;
  absl::StatusOr<ReaderCount> CountReaders(std::string_view conv_id, uint64_t seq,
                                           std::string_view sender, int64_t joined_by_ms) override;
  absl::StatusOr<std::vector<std::string>> ListReaders(std::string_view conv_id, uint64_t seq,
                                                       std::string_view sender,
                                                       int64_t joined_by_ms,
                                                       std::string_view after_uid,
                                                       uint32_t limit) override;
  absl::StatusOr<std::vector<std::string>> ConversationPeers(
      std::string_view uid, const std::vector<std::string>& candidates) override;
  absl::Status JoinConversation(std::string_view uid, std::string_view conv_id, uint64_t from_seq,
                                int64_t now_ms) override;
  absl::Status LeaveConversation(std::string_view uid, std::string_view conv_id) override;
  absl::StatusOr<std::vector<im::v1::Conversation>> ListConversations(
      std::string_view uid, int64_t updated_after_ms,
      const std::optional<ConversationPosition>& after, uint32_t limit) override;

 private:
  SqliteDatabase& database_;
};

}  // namespace im::store
