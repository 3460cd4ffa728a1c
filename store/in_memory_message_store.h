#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "store/message_store.h"

namespace im::store {

// MessageStore in process memory, for unit tests and the single-node mode. Same contract as
// MySqlMessageStore, including its limits (store/message_rules.h), so tests written against one
// hold for the other. Thread-safe: every call holds one mutex; nothing blocks.
class InMemoryMessageStore final : public MessageStore {
 public:
  absl::StatusOr<std::vector<AppendOutcome>> Append(const std::vector<NewMessage>& batch) override;
  absl::StatusOr<std::optional<im::v1::Message>> FindSent(std::string_view sender,
                                                          std::string_view client_msg_id) override;
  absl::Status ApplyChange(const im::v1::Message& change) override;
  absl::StatusOr<uint64_t> MaxSeq(std::string_view conv_id) override;
  absl::StatusOr<MessagePage> ReadMessages(std::string_view conv_id, uint64_t after_seq,
                                           uint32_t limit) override;
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
  struct Member {
    uint64_t delivered_seq = 0;
    uint64_t read_seq = 0;
    int64_t joined_ms = 0;
  };
  struct ConversationState {
    std::map<uint64_t, im::v1::Message> messages;  // by seq
    // seq -> the seq of the change that made the message's current version (ApplyChange).
    std::map<uint64_t, uint64_t> change_seqs;
    uint64_t max_seq = 0;
    int64_t updated_ms = 0;
    std::map<std::string, Member, std::less<>> members;  // by uid
  };

  // Requires mutex_. The member row of (uid, conv_id) and its conversation, or nulls.
  std::pair<ConversationState*, Member*> FindMember(std::string_view uid, std::string_view conv_id);
  // Requires mutex_. The stored message at (conv_id, seq), or null.
  const im::v1::Message* FindStored(std::string_view conv_id, uint64_t seq) const;
  // Requires mutex_. The readers CountReaders counts, in uid order (null: no such conversation).
  std::vector<const std::string*> Readers(std::string_view conv_id, uint64_t seq,
                                          std::string_view sender, int64_t joined_by_ms,
                                          uint64_t* members);
  // Requires mutex_. Writes one checked message and moves its conversation rows.
  void Store(const NewMessage& entry);
  // Requires mutex_. Deletes the bodies of the EDITs of the message at ref_seq (it is recalled).
  static void DeleteEditBodies(std::map<uint64_t, im::v1::Message>& messages, uint64_t ref_seq);

  std::mutex mutex_;
  std::map<std::string, ConversationState, std::less<>> conversations_;
  // (sender, client_msg_id) -> (conv_id, seq) of the message stored under it.
  std::map<std::pair<std::string, std::string>, std::pair<std::string, uint64_t>> identities_;
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> user_conversations_;
};

}  // namespace im::store
