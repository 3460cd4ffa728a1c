#pragma once

#include <span>

#include "store/message_store.h"
#include "store/mysql_connection_pool.h"

namespace im::store {

// MessageStore on MySQL/MariaDB (tables messages, conversations, user_conversations: see
// store/migrations, applied by ApplyMigrations before this is used). Thread-safe: each call
// borrows a connection from `pool` for its duration, so calls run in parallel up to the pool size;
// they block, so they run on the logic tier's store executor.
//
// Round trips, once a connection has prepared its statements (the first use of each statement
// shape costs one more): Append takes 5 for a batch of up to 256 messages and 1024 participant
// rows (START TRANSACTION, one multi-row insert, two multi-row upserts, COMMIT), plus one when the
// insert did not write every row (a duplicate), plus a statement or two per further 256 messages or
// 4 MiB of bodies; a deadlock is retried once (a cursor move or an applied change, three times).
// AdvanceRead takes 3, ReadMessages and JoinConversation 2, MaxSeq and LeaveConversation 1,
// AdvanceDelivered 2 per 256 cursors, ListConversations 1 plus 1 per 64 conversations listed.
// Multi-row statements are prepared per row count rounded up to a power of two, so a connection
// holds a few dozen at most.
//
// Besides the contract: a message whose (sender, client_msg_id) is stored with the same msg_id is
// reported inserted (it is this very message, from an attempt whose reply was lost); a message
// whose (conv_id, seq) holds another message fails the batch with INTERNAL (a seq was reused);
// an empty client_msg_id is stored as NULL and never deduplicated; unread counts stop at
// kMaxUnreadCount.
class MySqlMessageStore final : public MessageStore {
 public:
  // `pool` must outlive the store.
  explicit MySqlMessageStore(MySqlConnectionPool& pool) : pool_(pool) {}

  absl::StatusOr<std::vector<AppendOutcome>> Append(const std::vector<NewMessage>& batch) override;
  absl::StatusOr<std::optional<im::v1::Message>> FindSent(std::string_view sender,
                                                          std::string_view client_msg_id) override;
  absl::Status ApplyChange(const im::v1::Message& change) override;
  absl::StatusOr<uint64_t> MaxSeq(std::string_view conv_id) override;
  absl::StatusOr<MessagePage> ReadMessages(std::string_view conv_id, uint64_t after_seq,
                                           uint32_t limit) override;
  // Two statements per 64 reads: their messages (one range read each, joined by UNION ALL), then
  // their conversations' max_seq.
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
  // One attempt of Append, in one transaction.
  absl::StatusOr<std::vector<AppendOutcome>> AppendOnce(const std::vector<NewMessage>& batch,
                                                        const std::vector<size_t>& first);
  // One attempt of AdvanceDelivered, the highest target per conversation given.
  absl::StatusOr<uint64_t> AdvanceReadOnce(std::string_view uid, std::string_view conv_id,
                                           uint64_t seq);
  absl::Status ApplyChangeOnce(const im::v1::Message& change);
  absl::Status AdvanceDeliveredOnce(
      std::string_view uid, const std::vector<std::pair<std::string_view, uint64_t>>& targets);

  MySqlConnectionPool& pool_;
};

}  // namespace im::store
