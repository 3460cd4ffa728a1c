#include "store/sqlite_message_store.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/message_rules.h"

namespace im::store {
namespace {

// A message's columns, in the order ReadMessage reads them.
#define IM_MESSAGE_COLUMNS                                                                   \
  "conv_id, seq, msg_id, sender, client_msg_id, type, body, created_ms, ref_seq, recalled, " \
  "edited_ms"

constexpr char kInsertMessageSql[] = "INSERT INTO messages (" IM_MESSAGE_COLUMNS
                                     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                     "ON CONFLICT DO NOTHING";

constexpr char kMessageAtSql[] =
    "SELECT " IM_MESSAGE_COLUMNS " FROM messages WHERE conv_id = ? AND seq = ?";

constexpr char kMessageWithIdentitySql[] =
    "SELECT " IM_MESSAGE_COLUMNS " FROM messages WHERE sender = ? AND client_msg_id = ?";

constexpr char kMessagePageSql[] = "SELECT " IM_MESSAGE_COLUMNS
                                   " FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq "
                                   "LIMIT ?";

// ApplyChange's updates (see MessageStore::ApplyChange): a recall wins over everything, an edit
// over the versions of lower seqs.
constexpr char kApplyRecallSql[] =
    "UPDATE messages SET body = X'', recalled = 1, change_seq = max(change_seq, ?) "
    "WHERE conv_id = ? AND seq = ? AND recalled = 0";
constexpr char kApplyEditSql[] =
    "UPDATE messages SET body = ?, edited_ms = ?, change_seq = ?3 "
    "WHERE conv_id = ? AND seq = ? AND recalled = 0 AND change_seq < ?3";
// Every version of a recalled message goes: its edits' bodies too, those applied before the
// recall and one racing it. The range scan is short: a recall comes within
// logic.recall_window_ms of the message.
constexpr char kDeleteEditBodiesSql[] =
    "UPDATE messages SET body = X'' "
    "WHERE conv_id = ?1 AND seq > ?2 AND type = ?3 AND ref_seq = ?2 AND body <> X''";

// max_seq and updated_ms only move forward: a late write below max_seq, or a message from a node
// whose clock is behind, leaves them where they are.
constexpr char kMoveConversationSql[] =
    "INSERT INTO conversations (conv_id, max_seq, updated_ms) VALUES (?, ?, ?) "
    "ON CONFLICT (conv_id) DO UPDATE SET max_seq = max(max_seq, excluded.max_seq), "
    "updated_ms = max(updated_ms, excluded.updated_ms)";

constexpr char kAddParticipantSql[] =
    "INSERT INTO user_conversations (uid, conv_id, delivered_seq, read_seq, joined_ms) "
    "VALUES (?, ?, 0, 0, ?) ON CONFLICT DO NOTHING";

// The conversation's max_seq caps the cursor; a user without a row in it matches nothing.
constexpr char kAdvanceDeliveredSql[] =
    "UPDATE user_conversations AS uc SET delivered_seq = max(uc.delivered_seq, min(?, c.max_seq)) "
    "FROM conversations AS c WHERE c.conv_id = uc.conv_id AND uc.uid = ? AND uc.conv_id = ?";

// The assignments all see the row as it was, so delivered_seq is raised to the new read_seq as
// max(old read_seq, the capped target).
constexpr char kAdvanceReadSql[] =
    "UPDATE user_conversations AS uc SET read_seq = max(uc.read_seq, min(?1, c.max_seq)), "
    "delivered_seq = max(uc.delivered_seq, uc.read_seq, min(?1, c.max_seq)) "
    "FROM conversations AS c WHERE c.conv_id = uc.conv_id AND uc.uid = ?2 AND uc.conv_id = ?3 "
    "RETURNING read_seq";

// A conversation a user joins before its first message is listed from the join on.
constexpr char kJoinConversationSql[] =
    "INSERT INTO conversations (conv_id, max_seq, updated_ms) VALUES (?, 0, ?) "
    "ON CONFLICT DO NOTHING";

constexpr char kJoinMemberSql[] =
    "INSERT INTO user_conversations (uid, conv_id, delivered_seq, read_seq, joined_ms) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

// A page of uid's conversations (?1) changed after ?2 and after the position (?3, ?4), at most ?5,
// each with its unread count (stopping at ?6; changes not counted), its peers' highest read cursor
// and its last message (the last that is not a change, found walking back from max_seq). The inner
// query picks the page first, so the counts and last messages are read for the page's conversations
// only. The peers' cursor is read from the top of the (conv_id, read_seq) index down to the first
// other member, not over every member of a large group.
constexpr char kConversationPageSql[] =
    "SELECT p.conv_id, p.max_seq, p.updated_ms, p.delivered_seq, p.read_seq, "
    "(SELECT count(*) FROM (SELECT 1 FROM messages AS u WHERE u.conv_id = p.conv_id "
    "AND u.seq > p.read_seq AND u.sender <> ?1 AND u.type NOT IN (6, 7) LIMIT ?6)), "
    "coalesce((SELECT o.read_seq FROM user_conversations AS o WHERE o.conv_id = p.conv_id "
    "AND o.uid <> ?1 ORDER BY o.read_seq DESC LIMIT 1), 0), "
    "m.conv_id, m.seq, m.msg_id, m.sender, m.client_msg_id, m.type, m.body, m.created_ms, "
    "m.ref_seq, m.recalled, m.edited_ms "
    "FROM (SELECT c.conv_id, c.max_seq, c.updated_ms, uc.delivered_seq, uc.read_seq "
    "FROM user_conversations AS uc JOIN conversations AS c ON c.conv_id = uc.conv_id "
    "WHERE uc.uid = ?1 AND c.updated_ms > ?2 AND (c.updated_ms, c.conv_id) > (?3, ?4) "
    "ORDER BY c.updated_ms, c.conv_id LIMIT ?5) AS p "
    "LEFT JOIN messages AS m ON m.conv_id = p.conv_id AND m.seq = (SELECT l.seq FROM messages "
    "AS l WHERE l.conv_id = p.conv_id AND l.seq <= p.max_seq AND l.type NOT IN (6, 7) "
    "ORDER BY l.seq DESC LIMIT 1) "
    "ORDER BY p.updated_ms, p.conv_id";

// A seq used as a bound rather than stored: nothing stored is above INT64_MAX, so a larger bound
// means the same as INT64_MAX.
uint64_t SeqBound(uint64_t seq) {
  return std::min<uint64_t>(seq, std::numeric_limits<int64_t>::max());
}

// The message in columns first..first+10 of the current row, in IM_MESSAGE_COLUMNS order.
im::v1::Message ReadMessage(const SqliteStatement& row, int first) {
  im::v1::Message m;
  m.set_conv_id(row.ColumnBytes(first));
  m.set_seq(row.ColumnU64(first + 1));
  m.set_msg_id(row.ColumnU64(first + 2));
  m.set_sender(row.ColumnBytes(first + 3));
  m.set_client_msg_id(row.ColumnBytes(first + 4));  // NULL reads as empty
  m.set_type(static_cast<im::v1::MessageType>(row.ColumnI64(first + 5)));
  m.set_body(row.ColumnBytes(first + 6));
  m.set_created_ms(row.ColumnI64(first + 7));
  m.set_ref_seq(row.ColumnU64(first + 8));
  m.set_recalled(row.ColumnI64(first + 9) != 0);
  m.set_edited_ms(row.ColumnI64(first + 10));
  return m;
}

// The message the bound statement finds, if any.
absl::StatusOr<std::optional<im::v1::Message>> FirstMessage(SqliteStatement& select) {
  IM_ASSIGN_OR_RETURN(const bool found, select.Step());
  if (!found) return std::nullopt;
  return ReadMessage(select, 0);
}

// Writes the message unless a stored one holds its (conv_id, seq) or (sender, client_msg_id);
// true when it was written.
absl::StatusOr<bool> InsertMessage(SqliteConnection& connection, const im::v1::Message& m) {
  IM_ASSIGN_OR_RETURN(SqliteStatement insert, connection.Prepare(kInsertMessageSql));
  insert.Bytes(m.conv_id())
      .U64(m.seq())
      .U64(m.msg_id())
      .Bytes(m.sender())
      .BytesOrNull(m.client_msg_id())
      .I64(m.type())
      .Bytes(m.body())
      .I64(m.created_ms())
      .U64(m.ref_seq())
      .I64(m.recalled() ? 1 : 0)
      .I64(m.edited_ms());
  IM_RETURN_IF_ERROR(insert.Run());
  return connection.changes() == 1;
}

// The insert of `m` hit a stored message; decides as InMemoryMessageStore::Append does. The same
// (sender, client_msg_id) under another msg_id is an earlier send of it: not inserted, and the
// stored one is the answer. Otherwise the message at (conv_id, seq) must be this very message,
// from an attempt whose reply was lost (inserted); another one there means a seq was reused.
absl::StatusOr<AppendOutcome> ResolveConflict(SqliteConnection& connection,
                                              const im::v1::Message& m) {
  if (IdentityOf(m)) {
    IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMessageWithIdentitySql));
    select.Bytes(m.sender()).Bytes(m.client_msg_id());
    IM_ASSIGN_OR_RETURN(const std::optional<im::v1::Message> sent_before, FirstMessage(select));
    if (sent_before && sent_before->msg_id() != m.msg_id()) {
      return AppendOutcome{false, *sent_before};
    }
  }
  IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMessageAtSql));
  select.Bytes(m.conv_id()).U64(m.seq());
  IM_ASSIGN_OR_RETURN(const std::optional<im::v1::Message> at_seq, FirstMessage(select));
  if (!at_seq) {
    return absl::InternalError(
        fmt::format("{} seq {}: neither inserted nor found", m.conv_id(), m.seq()));
  }
  if (at_seq->msg_id() != m.msg_id()) return AppendOutcome{false, m, /*seq_taken=*/true};
  return AppendOutcome{true, *at_seq};
}

// Moves the conversation of an inserted message forward and gives its participants their rows.
absl::Status RecordInConversation(SqliteConnection& connection, const NewMessage& entry) {
  const im::v1::Message& m = entry.message;
  {
    IM_ASSIGN_OR_RETURN(SqliteStatement upsert, connection.Prepare(kMoveConversationSql));
    upsert.Bytes(m.conv_id()).U64(m.seq()).I64(m.created_ms());
    IM_RETURN_IF_ERROR(upsert.Run());
  }
  for (const std::string& uid : entry.participants) {
    IM_ASSIGN_OR_RETURN(SqliteStatement insert, connection.Prepare(kAddParticipantSql));
    insert.Bytes(uid).Bytes(m.conv_id()).I64(m.created_ms());
    IM_RETURN_IF_ERROR(insert.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<AppendOutcome> AppendOne(SqliteConnection& connection, const NewMessage& entry) {
  const im::v1::Message& m = entry.message;
  IM_ASSIGN_OR_RETURN(const bool written, InsertMessage(connection, m));
  AppendOutcome outcome{true, m};
  if (!written) {
    IM_ASSIGN_OR_RETURN(outcome, ResolveConflict(connection, m));
    if (!outcome.inserted) return outcome;
  }
  IM_RETURN_IF_ERROR(RecordInConversation(connection, entry));
  return outcome;
}

absl::StatusOr<uint64_t> QueryMaxSeq(SqliteConnection& connection, std::string_view conv_id) {
  IM_ASSIGN_OR_RETURN(SqliteStatement select,
                      connection.Prepare("SELECT max_seq FROM conversations WHERE conv_id = ?"));
  select.Bytes(conv_id);
  IM_ASSIGN_OR_RETURN(const bool found, select.Step());
  return found ? select.ColumnU64(0) : 0;
}

absl::StatusOr<MessagePage> ReadPage(SqliteConnection& connection, std::string_view conv_id,
                                     uint64_t after_seq, uint32_t limit) {
  MessagePage page;
  {
    IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMessagePageSql));
    select.Bytes(conv_id).U64(SeqBound(after_seq)).I64(limit);
    IM_RETURN_IF_ERROR(select.ForEachRow(
        [&](const SqliteStatement& row) { page.messages.push_back(ReadMessage(row, 0)); }));
  }
  IM_ASSIGN_OR_RETURN(page.max_seq, QueryMaxSeq(connection, conv_id));
  return page;
}

// The conversation in the current row of kConversationPageSql.
im::v1::Conversation ReadConversation(const SqliteStatement& row) {
  im::v1::Conversation entry;
  entry.set_conv_id(row.ColumnBytes(0));
  entry.set_max_seq(row.ColumnU64(1));
  entry.set_updated_ms(row.ColumnI64(2));
  entry.set_delivered_seq(row.ColumnU64(3));
  entry.set_read_seq(row.ColumnU64(4));
  entry.set_unread(row.ColumnU64(5));
  entry.set_peer_read_seq(row.ColumnU64(6));
  if (!row.ColumnIsNull(7)) *entry.mutable_last_message() = ReadMessage(row, 7);
  return entry;
}

}  // namespace

absl::StatusOr<std::vector<AppendOutcome>> SqliteMessageStore::Append(
    const std::vector<NewMessage>& batch) {
  IM_RETURN_IF_ERROR(CheckBatch(batch));
  if (batch.empty()) return std::vector<AppendOutcome>();
  const std::vector<size_t> first = FirstOccurrences(batch);
  using Outcomes = std::vector<AppendOutcome>;
  return database_.Write<Outcomes>([&](SqliteConnection& connection) -> absl::StatusOr<Outcomes> {
    Outcomes outcomes(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (first[i] != i) {
        // A later copy in the batch gets the first one's answer, as a retry would.
        outcomes[i] = AppendOutcome{false, outcomes[first[i]].stored, outcomes[first[i]].seq_taken};
        continue;
      }
      IM_ASSIGN_OR_RETURN(outcomes[i], AppendOne(connection, batch[i]));
    }
    return outcomes;
  });
}

absl::StatusOr<std::optional<im::v1::Message>> SqliteMessageStore::FindSent(
    std::string_view sender, std::string_view client_msg_id) {
  IM_RETURN_IF_ERROR(CheckUid(sender));
  if (client_msg_id.empty()) return std::nullopt;
  return database_.Read<std::optional<im::v1::Message>>(
      [&](SqliteConnection& connection) -> absl::StatusOr<std::optional<im::v1::Message>> {
        IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMessageWithIdentitySql));
        select.Bytes(sender).Bytes(client_msg_id);
        return FirstMessage(select);
      });
}

absl::Status SqliteMessageStore::ApplyChange(const im::v1::Message& change) {
  IM_RETURN_IF_ERROR(CheckChange(change));
  return database_
      .Write<bool>([&](SqliteConnection& connection) -> absl::StatusOr<bool> {
        {
          const bool recall = change.type() == im::v1::RECALL;
          IM_ASSIGN_OR_RETURN(SqliteStatement update,
                              connection.Prepare(recall ? kApplyRecallSql : kApplyEditSql));
          if (recall) {
            update.U64(change.seq()).Bytes(change.conv_id()).U64(change.ref_seq());
          } else {
            update.Bytes(change.body()).I64(change.created_ms()).U64(change.seq());
            update.Bytes(change.conv_id()).U64(change.ref_seq());
          }
          IM_RETURN_IF_ERROR(update.Run());
          if (connection.changes() > 0 && !recall) return true;
        }
        // A recall, or nothing changed: a later version is there already (a recall, perhaps),
        // or no message is.
        IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kMessageAtSql));
        select.Bytes(change.conv_id()).U64(change.ref_seq());
        IM_ASSIGN_OR_RETURN(const std::optional<im::v1::Message> original, FirstMessage(select));
        if (!original) {
          return absl::NotFoundError(
              fmt::format("{} has no message {} to change", change.conv_id(), change.ref_seq()));
        }
        if (original->recalled()) {
          IM_ASSIGN_OR_RETURN(SqliteStatement erase, connection.Prepare(kDeleteEditBodiesSql));
          erase.Bytes(change.conv_id()).U64(change.ref_seq()).I64(im::v1::EDIT);
          IM_RETURN_IF_ERROR(erase.Run());
        }
        return false;
      })
      .status();
}

absl::StatusOr<uint64_t> SqliteMessageStore::MaxSeq(std::string_view conv_id) {
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  return database_.Read<uint64_t>(
      [&](SqliteConnection& connection) { return QueryMaxSeq(connection, conv_id); });
}

absl::StatusOr<MessagePage> SqliteMessageStore::ReadMessages(std::string_view conv_id,
                                                             uint64_t after_seq, uint32_t limit) {
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  IM_RETURN_IF_ERROR(CheckLimit(limit));
  return database_.Read<MessagePage>([&](SqliteConnection& connection) {
    return ReadPage(connection, conv_id, after_seq, limit);
  });
}

absl::StatusOr<std::vector<MessagePage>> SqliteMessageStore::ReadMessagesMany(
    const std::vector<MessageRead>& reads) {
  for (const MessageRead& read : reads) {
    IM_RETURN_IF_ERROR(CheckConvId(read.conv_id));
    IM_RETURN_IF_ERROR(CheckLimit(read.limit));
  }
  using Pages = std::vector<MessagePage>;
  return database_.Read<Pages>([&](SqliteConnection& connection) -> absl::StatusOr<Pages> {
    Pages pages;
    pages.reserve(reads.size());
    for (const MessageRead& read : reads) {
      IM_ASSIGN_OR_RETURN(MessagePage page,
                          ReadPage(connection, read.conv_id, read.after_seq, read.limit));
      pages.push_back(std::move(page));
    }
    return pages;
  });
}

absl::Status SqliteMessageStore::AdvanceDelivered(std::string_view uid,
                                                  const std::vector<Cursor>& cursors) {
  IM_RETURN_IF_ERROR(CheckCursors(uid, cursors));
  if (cursors.empty()) return absl::OkStatus();
  // Each update only raises a cursor, so applying them in any order ends at the highest.
  return database_.Write([&](SqliteConnection& connection) -> absl::Status {
    for (const Cursor& cursor : cursors) {
      IM_ASSIGN_OR_RETURN(SqliteStatement update, connection.Prepare(kAdvanceDeliveredSql));
      update.U64(SeqBound(cursor.seq)).Bytes(uid).Bytes(cursor.conv_id);
      IM_RETURN_IF_ERROR(update.Run());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> SqliteMessageStore::ReadCursor(std::string_view uid,
                                                        std::string_view conv_id) {
  IM_RETURN_IF_ERROR(CheckUid(uid));
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  return database_.Read<uint64_t>([&](SqliteConnection& connection) -> absl::StatusOr<uint64_t> {
    IM_ASSIGN_OR_RETURN(
        SqliteStatement select,
        connection.Prepare(
            "SELECT read_seq FROM user_conversations WHERE uid = ? AND conv_id = ?"));
    select.Bytes(uid).Bytes(conv_id);
    IM_ASSIGN_OR_RETURN(const bool found, select.Step());
    if (!found) return NoConversationRow(uid, conv_id);
    return select.ColumnU64(0);
  });
}

absl::StatusOr<MessageStore::ReaderCount> SqliteMessageStore::CountReaders(std::string_view conv_id,
                                                                           uint64_t seq,
                                                                           std::string_view sender,
                                                                           int64_t joined_by_ms) {
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  return database_.Read<ReaderCount>(
      [&](SqliteConnection& connection) -> absl::StatusOr<ReaderCount> {
        IM_ASSIGN_OR_RETURN(SqliteStatement select,
                            connection.Prepare("SELECT count(*), coalesce(sum(read_seq >= ?), 0) "
                                               "FROM user_conversations WHERE conv_id = ? AND "
                                               "uid <> ? AND joined_ms <= ?"));
        select.U64(SeqBound(seq)).Bytes(conv_id).Bytes(sender).I64(joined_by_ms);
        IM_ASSIGN_OR_RETURN(const bool found, select.Step());
        ReaderCount count;
        if (found) {
          count.members = select.ColumnU64(0);
          count.read = select.ColumnU64(1);
        }
        return count;
      });
}

absl::StatusOr<std::vector<std::string>> SqliteMessageStore::ListReaders(
    std::string_view conv_id, uint64_t seq, std::string_view sender, int64_t joined_by_ms,
    std::string_view after_uid, uint32_t limit) {
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  IM_RETURN_IF_ERROR(CheckLimit(limit));
  using Page = std::vector<std::string>;
  return database_.Read<Page>([&](SqliteConnection& connection) -> absl::StatusOr<Page> {
    IM_ASSIGN_OR_RETURN(
        SqliteStatement select,
        connection.Prepare("SELECT uid FROM user_conversations WHERE conv_id = ? AND read_seq >= ? "
                           "AND uid <> ? AND joined_ms <= ? AND uid > ? ORDER BY uid LIMIT ?"));
    select.Bytes(conv_id)
        .U64(SeqBound(seq))
        .Bytes(sender)
        .I64(joined_by_ms)
        .Bytes(after_uid)
        .I64(limit);
    Page page;
    IM_RETURN_IF_ERROR(
        select.ForEachRow([&](const SqliteStatement& row) { page.push_back(row.ColumnBytes(0)); }));
    return page;
  });
}

absl::StatusOr<std::vector<std::string>> SqliteMessageStore::ConversationPeers(
    std::string_view uid, const std::vector<std::string>& candidates) {
  IM_RETURN_IF_ERROR(CheckPeerQuery(uid, candidates));
  using Peers = std::vector<std::string>;
  return database_.Read<Peers>([&](SqliteConnection& connection) -> absl::StatusOr<Peers> {
    // One lookup per candidate: local, and each an index probe per conversation of uid.
    std::set<std::string> peers;
    for (const std::string& candidate : candidates) {
      if (candidate == uid) {
        peers.insert(candidate);
        continue;
      }
      IM_ASSIGN_OR_RETURN(
          SqliteStatement shares,
          connection.Prepare("SELECT 1 FROM user_conversations mine JOIN user_conversations "
                             "theirs ON theirs.uid = ? AND theirs.conv_id = mine.conv_id "
                             "WHERE mine.uid = ? LIMIT 1"));
      shares.Bytes(candidate).Bytes(uid);
      IM_ASSIGN_OR_RETURN(const bool shared, shares.Step());
      if (shared) peers.insert(candidate);
    }
    return Peers(peers.begin(), peers.end());
  });
}

absl::StatusOr<uint64_t> SqliteMessageStore::AdvanceRead(std::string_view uid,
                                                         std::string_view conv_id, uint64_t seq) {
  IM_RETURN_IF_ERROR(CheckUid(uid));
  IM_RETURN_IF_ERROR(CheckConvId(conv_id));
  return database_.Write<uint64_t>([&](SqliteConnection& connection) -> absl::StatusOr<uint64_t> {
    IM_ASSIGN_OR_RETURN(SqliteStatement update, connection.Prepare(kAdvanceReadSql));
    update.U64(SeqBound(seq)).Bytes(uid).Bytes(conv_id);
    IM_ASSIGN_OR_RETURN(const bool updated, update.Step());
    if (!updated) {
      return NoConversationRow(uid, conv_id);
    }
    const uint64_t read_seq = update.ColumnU64(0);
    IM_RETURN_IF_ERROR(update.Run());
    return read_seq;
  });
}

absl::Status SqliteMessageStore::JoinConversation(std::string_view uid, std::string_view conv_id,
                                                  uint64_t from_seq, int64_t now_ms) {
  IM_RETURN_IF_ERROR(CheckMembership(uid, conv_id));
  // The conversation's row first: the member's row refers to it.
  return database_.Write([&](SqliteConnection& connection) -> absl::Status {
    {
      IM_ASSIGN_OR_RETURN(SqliteStatement conversation, connection.Prepare(kJoinConversationSql));
      conversation.Bytes(conv_id).I64(now_ms);
      IM_RETURN_IF_ERROR(conversation.Run());
    }
    IM_ASSIGN_OR_RETURN(SqliteStatement member, connection.Prepare(kJoinMemberSql));
    member.Bytes(uid).Bytes(conv_id).U64(from_seq).U64(from_seq).I64(now_ms);
    return member.Run();
  });
}

absl::Status SqliteMessageStore::LeaveConversation(std::string_view uid, std::string_view conv_id) {
  IM_RETURN_IF_ERROR(CheckMembership(uid, conv_id));
  return database_.Write([&](SqliteConnection& connection) -> absl::Status {
    IM_ASSIGN_OR_RETURN(
        SqliteStatement remove,
        connection.Prepare("DELETE FROM user_conversations WHERE uid = ? AND conv_id = ?"));
    remove.Bytes(uid).Bytes(conv_id);
    return remove.Run();
  });
}

absl::StatusOr<std::vector<im::v1::Conversation>> SqliteMessageStore::ListConversations(
    std::string_view uid, int64_t updated_after_ms,
    const std::optional<ConversationPosition>& after, uint32_t limit) {
  IM_RETURN_IF_ERROR(CheckUid(uid));
  IM_RETURN_IF_ERROR(CheckLimit(limit));
  if (after) IM_RETURN_IF_ERROR(CheckConvId(after->conv_id));
  // No position yet: before everything.
  const int64_t after_ms = after ? after->updated_ms : std::numeric_limits<int64_t>::min();
  const std::string_view after_conv = after ? std::string_view(after->conv_id) : "";
  using Page = std::vector<im::v1::Conversation>;
  return database_.Read<Page>([&](SqliteConnection& connection) -> absl::StatusOr<Page> {
    IM_ASSIGN_OR_RETURN(SqliteStatement select, connection.Prepare(kConversationPageSql));
    select.Bytes(uid)
        .I64(updated_after_ms)
        .I64(after_ms)
        .Bytes(after_conv)
        .I64(limit)
        .U64(kMaxUnreadCount);
    Page page;
    IM_RETURN_IF_ERROR(select.ForEachRow(
        [&](const SqliteStatement& row) { page.push_back(ReadConversation(row)); }));
    return page;
  });
}

}  // namespace im::store
