#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "im/v1/client.pb.h"

namespace im::store {

// A message ready to persist: logic has assigned its seq, msg_id and created_ms.
struct NewMessage {
  im::v1::Message message;
  // Users who get a conversation row in message.conv_id if they have none: both sides of a single
  // chat. Empty for a group message: a member got its row when it joined (JoinConversation).
  std::vector<std::string> participants;
};

// What Append did with one message of a batch.
struct AppendOutcome {
  // False when (sender, client_msg_id) was already stored, earlier or earlier in the same batch:
  // nothing was written and `stored` is the message stored first (its seq, msg_id, created_ms).
  bool inserted = false;
  im::v1::Message stored;
  // Another message holds this one's (conv_id, seq): nothing was written (`stored` is the message
  // as given). The seq counter handed out a number the store had already used: it is behind the
  // store (its Redis lost writes), and must be restored from the store before the next send. The
  // other messages of the batch are stored as usual.
  bool seq_taken = false;
};

// A user's delivered cursor in one conversation, as the device acks it.
struct Cursor {
  std::string conv_id;
  uint64_t seq = 0;
};

// Where a page of conversations ends; the next page starts after it. Conversations are listed
// in (updated_ms, conv_id) order, oldest change first, so that a client that pages with
// `updated_after_ms` never misses one that moves while it pages.
struct ConversationPosition {
  int64_t updated_ms = 0;
  std::string conv_id;
};

struct MessagePage {
  std::vector<im::v1::Message> messages;  // in seq order
  uint64_t max_seq = 0;                   // highest persisted seq of the conversation (0: none)
};

// Messages, conversation rows and per-user cursors (DESIGN.md section 7).
// Implementations are thread-safe; calls block (network), so they run on the logic tier's store
// executor, never on an event loop or in a gRPC reaction. Errors: UNAVAILABLE when the database
// cannot be reached (the call may be retried), INVALID_ARGUMENT for values the schema cannot hold.
class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Persists a batch atomically (one transaction: all or nothing), so that throughput is not one
  // round trip per message. Idempotent on (sender, client_msg_id). For each inserted message the
  // conversation's max_seq and updated_ms move forward (the conversation's row is created if it
  // has none, whether or not the message has participants) and each participant gets a
  // conversation row if it had none. Outcomes are in the order of `batch`.
  virtual absl::StatusOr<std::vector<AppendOutcome>> Append(
      const std::vector<NewMessage>& batch) = 0;

  // The message `sender` sent with `client_msg_id`, if one is stored: the key Append is
  // idempotent on, read without writing. nullopt when none is (always, for an empty
  // client_msg_id: such messages are never deduplicated).
  virtual absl::StatusOr<std::optional<im::v1::Message>> FindSent(
      std::string_view sender, std::string_view client_msg_id) = 0;

  // Applies `change`, a RECALL or EDIT as stored (conv_id, seq, type, ref_seq, body, created_ms),
  // to the message at (change.conv_id, change.ref_seq), which then shows its current version: a
  // recall deletes its body and marks it recalled, and deletes the bodies of its EDITs too (every
  // version of it is gone, an edit racing the recall's included); an edit replaces its body and
  // sets edited_ms to change.created_ms. A recalled message stays recalled, and an edit whose seq
  // is not above the change that made the current version changes nothing, so a replay or two
  // changes landing out of order leave the latest. NOT_FOUND when no message is there;
  // INVALID_ARGUMENT when `change` fails CheckChange (store/message_rules.h).
  virtual absl::Status ApplyChange(const im::v1::Message& change) = 0;

  // The highest persisted seq of `conv_id`, 0 if none: the floor a seq counter restores from.
  virtual absl::StatusOr<uint64_t> MaxSeq(std::string_view conv_id) = 0;

  // Up to `limit` (>= 1) messages with seq > after_seq, in seq order.
  virtual absl::StatusOr<MessagePage> ReadMessages(std::string_view conv_id, uint64_t after_seq,
                                                   uint32_t limit) = 0;

  // ReadMessages for each of `reads` (pages[i] answers reads[i]), in a few round trips whatever
  // their number where the backend is remote: the syncs of a reconnect storm come by the
  // hundred. One failure fails them all. This default calls ReadMessages for each.
  struct MessageRead {
    std::string conv_id;
    uint64_t after_seq = 0;
    uint32_t limit = 1;
  };
  virtual absl::StatusOr<std::vector<MessagePage>> ReadMessagesMany(
      const std::vector<MessageRead>& reads) {
    std::vector<MessagePage> pages;
    pages.reserve(reads.size());
    for (const MessageRead& read : reads) {
      absl::StatusOr<MessagePage> page = ReadMessages(read.conv_id, read.after_seq, read.limit);
      if (!page.ok()) return page.status();
      pages.push_back(std::move(*page));
    }
    return pages;
  }

  // The message at (conv_id, seq), if one is stored (nullopt for seq 0).
  absl::StatusOr<std::optional<im::v1::Message>> MessageAt(std::string_view conv_id, uint64_t seq) {
    if (seq == 0) return std::nullopt;
    absl::StatusOr<MessagePage> page = ReadMessages(conv_id, seq - 1, 1);
    if (!page.ok()) return page.status();
    if (page->messages.empty() || page->messages[0].seq() != seq) return std::nullopt;
    return std::move(page->messages[0]);
  }

  // Moves uid's delivered cursors forward (never back, never past the conversation's max_seq).
  // Cursors of conversations the user has no row in are ignored.
  virtual absl::Status AdvanceDelivered(std::string_view uid,
                                        const std::vector<Cursor>& cursors) = 0;

  // Moves uid's read cursor in `conv_id` forward to min(seq, max_seq), never back; the delivered
  // cursor is raised to it too. Returns the stored read cursor. NOT_FOUND when the user has no row
  // in that conversation.
  virtual absl::StatusOr<uint64_t> AdvanceRead(std::string_view uid, std::string_view conv_id,
                                               uint64_t seq) = 0;

  // uid's read cursor in conv_id. NOT_FOUND when the user has no row in that conversation.
  virtual absl::StatusOr<uint64_t> ReadCursor(std::string_view uid, std::string_view conv_id) = 0;

  // Group read receipts, by the members' read cursors. The members of conv_id other than
  // `sender` whose row was made by `joined_by_ms` (the message's created_ms: who joined later
  // never saw it; a group member's row is made when it joins), and of those the readers: the ones
  // whose read cursor is at or past `seq`. A scan of the conversation's member rows.
  struct ReaderCount {
    uint64_t members = 0;
    uint64_t read = 0;
  };
  virtual absl::StatusOr<ReaderCount> CountReaders(std::string_view conv_id, uint64_t seq,
                                                   std::string_view sender,
                                                   int64_t joined_by_ms) = 0;
  // The readers CountReaders counts with a uid above `after_uid`, in uid order, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> ListReaders(
      std::string_view conv_id, uint64_t seq, std::string_view sender, int64_t joined_by_ms,
      std::string_view after_uid, uint32_t limit) = 0;

  // Those of `candidates` that share a conversation with uid (have a row in a conversation uid has
  // a row in), in uid order without repeats; uid itself only if it is a candidate. Presence lets a
  // user watch only the users it talks with. INVALID_ARGUMENT for an invalid uid or candidate.
  virtual absl::StatusOr<std::vector<std::string>> ConversationPeers(
      std::string_view uid, const std::vector<std::string>& candidates) = 0;

  // Gives uid a row in conv_id (the conversation of a group uid has just joined) with its delivered
  // and read cursors at from_seq, joined at now_ms, so that the conversation is listed for uid
  // with unread counted from from_seq. from_seq is stored as given, even above max_seq: messages
  // below it may still be on their way. Creates the conversation's row (max_seq 0, updated_ms
  // now_ms) if it has none, so that a group is listed before its first message; an existing
  // conversation keeps its updated_ms, so a client that lists with updated_after_ms sees one it
  // joined once a message moves it. Idempotent: a row uid already has is left as it is, cursors
  // included. INVALID_ARGUMENT for an empty uid or conv_id.
  virtual absl::Status JoinConversation(std::string_view uid, std::string_view conv_id,
                                        uint64_t from_seq, int64_t now_ms) = 0;

  // Deletes uid's row in conv_id, if any (idempotent): the conversation is no longer listed for
  // uid and its cursors there are gone. The messages and the conversation's row stay.
  // INVALID_ARGUMENT for an empty uid or conv_id.
  virtual absl::Status LeaveConversation(std::string_view uid, std::string_view conv_id) = 0;

  // The user's conversations changed after `updated_after_ms` (0: all) and after `after` (the
  // previous page's last position), at most `limit` (>= 1). Each entry carries max_seq, the user's
  // delivered and read cursors, unread (messages above read_seq sent by others, changes not
  // counted), the last message (the last that is not a change, in its current version),
  // updated_ms, and peer_read_seq (the highest read cursor among the other participants).
  virtual absl::StatusOr<std::vector<im::v1::Conversation>> ListConversations(
      std::string_view uid, int64_t updated_after_ms,
      const std::optional<ConversationPosition>& after, uint32_t limit) = 0;
};

}  // namespace im::store
