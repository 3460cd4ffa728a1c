#include "store/mysql_message_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <utility>

#include "absl/functional/function_ref.h"
#include "fmt/format.h"
#include "store/message_rules.h"
#include "store/mysql_multi_row.h"
#include "store/mysql_retry.h"

namespace im::store {
namespace {

// Membership rows are small and a message has one per participant (two in a single chat).
constexpr size_t kMaxMemberRowsPerStatement = 4 * kMaxRowsPerStatement;
constexpr size_t kMaxConversationsPerStatsQuery = 64;
// Reads of ReadMessagesMany per statement; each returns up to its limit of messages.
constexpr size_t kMaxReadsPerStatement = 64;
// Attempts of a transaction InnoDB aborts (RetryIfAborted): a message batch is tried twice (its
// callers wait on it); a cursor move or a change applied, small and idempotent, four times.
constexpr int kAppendAttempts = 2;
constexpr int kCursorAttempts = 4;

constexpr char kMessageColumns[] =
    "conv_id, seq, msg_id, sender, client_msg_id, type, body, created_ms, ref_seq, recalled, "
    "edited_ms";
constexpr char kMessageRow[] = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

// The page of conversations, each with its last message: the last one that is not a RECALL or
// EDIT (those change an earlier one, which shows its current version). The inner query picks the
// page, so only the page's last messages are read, each found walking back from max_seq.
constexpr char kConversationPageSql[] =
    "SELECT p.conv_id, p.max_seq, p.updated_ms, p.delivered_seq, p.read_seq, m.conv_id, m.seq, "
    "m.msg_id, m.sender, m.client_msg_id, m.type, m.body, m.created_ms, m.ref_seq, m.recalled, "
    "m.edited_ms "
    "FROM (SELECT c.conv_id, c.max_seq, c.updated_ms, uc.delivered_seq, uc.read_seq "
    "FROM user_conversations uc JOIN conversations c ON c.conv_id = uc.conv_id "
    "WHERE uc.uid = ? AND c.updated_ms > ? "
    "AND (c.updated_ms > ? OR (c.updated_ms = ? AND c.conv_id > ?)) "
    "ORDER BY c.updated_ms, c.conv_id LIMIT ?) AS p "
    "LEFT JOIN messages m ON m.conv_id = p.conv_id AND m.seq = (SELECT l.seq FROM messages l "
    "WHERE l.conv_id = p.conv_id AND l.seq <= p.max_seq AND l.type NOT IN (6, 7) "
    "ORDER BY l.seq DESC LIMIT 1) "
    "ORDER BY p.updated_ms, p.conv_id";

// A padding row has the keys of the row before it, so it always hits a duplicate key (that row's
// or the one that row hit) and writes nothing; it need not carry the body again.
void BindMessage(MySqlParams& params, const im::v1::Message& m, bool padding) {
  params.Bytes(m.conv_id())
      .U64(m.seq())
      .U64(m.msg_id())
      .Bytes(m.sender())
      .BytesOrNull(m.client_msg_id())  // NULLs never collide in the unique key
      .I32(m.type())
      .Bytes(padding ? std::string_view() : std::string_view(m.body()))
      .I64(m.created_ms())
      .U64(m.ref_seq())
      .I32(m.recalled() ? 1 : 0)
      .I64(m.edited_ms());
}

size_t BytesOf(const im::v1::Message& m) {
  return m.conv_id().size() + m.sender().size() + m.client_msg_id().size() + m.body().size() + 64;
}

// The message in columns first..first+10 of the current row, in kMessageColumns order.
im::v1::Message ReadMessage(const sql::ResultSet& row, uint32_t first) {
  im::v1::Message m;
  m.set_conv_id(ColumnBytes(row, first));
  m.set_seq(row.getUInt64(first + 1));
  m.set_msg_id(row.getUInt64(first + 2));
  m.set_sender(ColumnBytes(row, first + 3));
  m.set_client_msg_id(ColumnBytes(row, first + 4));
  m.set_type(static_cast<im::v1::MessageType>(row.getInt(first + 5)));
  m.set_body(ColumnBytes(row, first + 6));
  m.set_created_ms(row.getInt64(first + 7));
  m.set_ref_seq(row.getUInt64(first + 8));
  m.set_recalled(row.getInt(first + 9) != 0);
  m.set_edited_ms(row.getInt64(first + 10));
  return m;
}

std::unique_ptr<sql::ResultSet> Query(sql::PreparedStatement& statement) {
  return std::unique_ptr<sql::ResultSet>(statement.executeQuery());
}

uint64_t QueryMaxSeq(MySqlConnection& connection, std::string_view conv_id) {
  sql::PreparedStatement& select =
      connection.Prepare("SELECT max_seq FROM conversations WHERE conv_id = ?");
  MySqlParams(select).Bytes(conv_id);
  std::unique_ptr<sql::ResultSet> row = Query(select);
  return row->next() ? row->getUInt64(1) : 0;
}

// uid's read cursor in conv_id; NOT_FOUND without a row. Throws like the connector.
absl::StatusOr<uint64_t> QueryReadCursor(MySqlConnection& connection, std::string_view uid,
                                         std::string_view conv_id) {
  sql::PreparedStatement& select =
      connection.Prepare("SELECT read_seq FROM user_conversations WHERE uid = ? AND conv_id = ?");
  MySqlParams(select).Bytes(uid).Bytes(conv_id);
  std::unique_ptr<sql::ResultSet> row = Query(select);
  if (!row->next()) return NoConversationRow(uid, conv_id);
  return row->getUInt64(1);
}

// After an insert that did not write every row of `chunk`: reads what is stored under each
// message's (conv_id, seq) and (sender, client_msg_id) and decides each outcome as
// InMemoryMessageStore::Append does. One lookup per key, each a list of row constructors, joined
// by UNION ALL: both stay range reads on their index, where one WHERE of ORed pairs makes the
// optimizer scan a whole index past a few dozen pairs (seconds on a table of a million rows).
absl::Status ResolveOutcomes(MySqlConnection& connection, const std::vector<NewMessage>& batch,
                             std::span<const size_t> chunk, std::vector<AppendOutcome>& outcomes) {
  sql::PreparedStatement& select = connection.Prepare(
      fmt::format("SELECT {0} FROM messages WHERE (conv_id, seq) IN ({1}) "
                  "UNION ALL SELECT {0} FROM messages WHERE (sender, client_msg_id) IN ({1})",
                  kMessageColumns, Repeat("(?, ?)", PaddedRows(chunk.size()), ", ")));
  MySqlParams params(select);
  BindRows(params, 0, chunk.size(), [&](MySqlParams& p, size_t r, bool) {
    const im::v1::Message& m = batch[chunk[r]].message;
    p.Bytes(m.conv_id()).U64(m.seq());
  });
  BindRows(params, 0, chunk.size(), [&](MySqlParams& p, size_t r, bool) {
    const im::v1::Message& m = batch[chunk[r]].message;
    p.Bytes(m.sender()).BytesOrNull(m.client_msg_id());
  });
  std::map<std::pair<std::string, uint64_t>, im::v1::Message> by_position;
  std::map<std::pair<std::string, std::string>, const im::v1::Message*> by_identity;
  std::unique_ptr<sql::ResultSet> rows = Query(select);
  while (rows->next()) {
    im::v1::Message stored = ReadMessage(*rows, 1);
    std::pair<std::string, uint64_t> position(stored.conv_id(), stored.seq());
    auto it = by_position.insert_or_assign(std::move(position), std::move(stored)).first;
    if (!it->second.client_msg_id().empty()) {
      by_identity[{it->second.sender(), it->second.client_msg_id()}] = &it->second;
    }
  }
  for (size_t i : chunk) {
    const im::v1::Message& m = batch[i].message;
    if (!m.client_msg_id().empty()) {
      auto it = by_identity.find({m.sender(), m.client_msg_id()});
      if (it != by_identity.end() && it->second->msg_id() != m.msg_id()) {
        outcomes[i] = AppendOutcome{false, *it->second};
        continue;
      }
    }
    auto at_seq = by_position.find({m.conv_id(), m.seq()});
    if (at_seq == by_position.end()) {
      return absl::InternalError(
          fmt::format("{} seq {}: neither inserted nor found", m.conv_id(), m.seq()));
    }
    if (at_seq->second.msg_id() != m.msg_id()) {
      outcomes[i] = AppendOutcome{false, m, /*seq_taken=*/true};
      continue;
    }
    outcomes[i] = AppendOutcome{true, at_seq->second};
  }
  return absl::OkStatus();
}

// Writes the messages batch[chunk[...]] and decides their outcomes.
absl::Status InsertMessages(MySqlConnection& connection, const std::vector<NewMessage>& batch,
                            std::span<const size_t> chunk, std::vector<AppendOutcome>& outcomes) {
  sql::PreparedStatement& insert = connection.Prepare(
      fmt::format("INSERT INTO messages ({}) VALUES {} ON DUPLICATE KEY UPDATE msg_id = msg_id",
                  kMessageColumns, Repeat(kMessageRow, PaddedRows(chunk.size()), ", ")));
  MySqlParams params(insert);
  BindRows(params, 0, chunk.size(), [&](MySqlParams& p, size_t r, bool padding) {
    BindMessage(p, batch[chunk[r]].message, padding);
  });
  // A row that hits either key is left as it is and counts 0, a new row counts 1 (the connection
  // does not set CLIENT_FOUND_ROWS): when every row counted, there is nothing to look up.
  if (static_cast<size_t>(insert.executeUpdate()) == chunk.size()) {
    for (size_t i : chunk) outcomes[i] = AppendOutcome{true, batch[i].message};
    return absl::OkStatus();
  }
  return ResolveOutcomes(connection, batch, chunk, outcomes);
}

// Moves the conversation rows of the inserted messages forward, in conv_id order.
void UpsertConversations(MySqlConnection& connection, const std::vector<NewMessage>& batch,
                         const std::vector<size_t>& first,
                         const std::vector<AppendOutcome>& outcomes) {
  struct Row {
    std::string_view conv_id;
    uint64_t max_seq = 0;
    int64_t updated_ms = std::numeric_limits<int64_t>::min();
  };
  std::map<std::string_view, Row> by_conv;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first[i] != i || !outcomes[i].inserted) continue;
    const im::v1::Message& m = batch[i].message;
    Row& row = by_conv[m.conv_id()];
    row.conv_id = m.conv_id();
    row.max_seq = std::max(row.max_seq, m.seq());
    row.updated_ms = std::max(row.updated_ms, m.created_ms());
  }
  std::vector<Row> rows;
  for (const auto& [conv_id, row] : by_conv) rows.push_back(row);
  for (const auto& [begin, end] : Chunks(rows.size(), kMaxRowsPerStatement)) {
    sql::PreparedStatement& upsert = connection.Prepare(
        fmt::format("INSERT INTO conversations (conv_id, max_seq, updated_ms) VALUES {} "
                    "ON DUPLICATE KEY UPDATE max_seq = GREATEST(max_seq, VALUES(max_seq)), "
                    "updated_ms = GREATEST(updated_ms, VALUES(updated_ms))",
                    Repeat("(?, ?, ?)", PaddedRows(end - begin), ", ")));
    MySqlParams params(upsert);
    BindRows(params, begin, end, [&](MySqlParams& p, size_t r, bool) {
      p.Bytes(rows[r].conv_id).U64(rows[r].max_seq).I64(rows[r].updated_ms);
    });
    upsert.executeUpdate();
  }
}

// Gives each participant of an inserted message a row in its conversation, in key order.
void UpsertMembers(MySqlConnection& connection, const std::vector<NewMessage>& batch,
                   const std::vector<size_t>& first, const std::vector<AppendOutcome>& outcomes) {
  std::map<std::pair<std::string_view, std::string_view>, int64_t> joined_ms;  // (uid, conv)
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first[i] != i || !outcomes[i].inserted) continue;
    const im::v1::Message& m = batch[i].message;
    for (const std::string& uid : batch[i].participants) {
      joined_ms.try_emplace({uid, m.conv_id()}, m.created_ms());
    }
  }
  std::vector<std::pair<std::pair<std::string_view, std::string_view>, int64_t>> rows(
      joined_ms.begin(), joined_ms.end());
  for (const auto& [begin, end] : Chunks(rows.size(), kMaxMemberRowsPerStatement)) {
    sql::PreparedStatement& upsert = connection.Prepare(
        fmt::format("INSERT INTO user_conversations (uid, conv_id, delivered_seq, read_seq, "
                    "joined_ms) VALUES {} ON DUPLICATE KEY UPDATE joined_ms = joined_ms",
                    Repeat("(?, ?, 0, 0, ?)", PaddedRows(end - begin), ", ")));
    MySqlParams params(upsert);
    BindRows(params, begin, end, [&](MySqlParams& p, size_t r, bool) {
      p.Bytes(rows[r].first.first).Bytes(rows[r].first.second).I64(rows[r].second);
    });
    upsert.executeUpdate();
  }
}

// Reads [begin, end) of ReadMessagesMany into `pages`. Padding rows read nothing (LIMIT 0).
// Throws like the connector.
absl::Status ReadMessagesChunk(MySqlConnection& connection,
                               const std::vector<MessageStore::MessageRead>& reads, size_t begin,
                               size_t end, std::vector<MessagePage>& pages) {
  const size_t rows = PaddedRows(end - begin);
  sql::PreparedStatement& select = connection.Prepare(Repeat(
      fmt::format("(SELECT CAST(? AS UNSIGNED), {} FROM messages WHERE conv_id = ? AND seq > ? "
                  "ORDER BY seq LIMIT ?)",
                  kMessageColumns),
      rows, " UNION ALL "));
  MySqlParams params(select);
  BindRows(params, begin, end, [&](MySqlParams& p, size_t i, bool padding) {
    p.U64(i).Bytes(reads[i].conv_id).U64(reads[i].after_seq).U64(padding ? 0 : reads[i].limit);
  });
  std::unique_ptr<sql::ResultSet> messages = Query(select);
  while (messages->next()) {
    const uint64_t i = messages->getUInt64(1);
    if (i < begin || i >= end) return absl::InternalError("message read out of step");
    pages[i].messages.push_back(ReadMessage(*messages, 2));
  }
  messages.reset();
  // Read after the messages, so that max_seq is never below the last of them.
  sql::PreparedStatement& max_seqs = connection.Prepare(fmt::format(
      "SELECT conv_id, max_seq FROM conversations WHERE conv_id IN ({})", Repeat("?", rows, ", ")));
  MySqlParams max_params(max_seqs);
  BindRows(max_params, begin, end,
           [&](MySqlParams& p, size_t i, bool) { p.Bytes(reads[i].conv_id); });
  std::unique_ptr<sql::ResultSet> found = Query(max_seqs);
  std::map<std::string, uint64_t, std::less<>> max_seq_of;
  while (found->next()) max_seq_of[ColumnBytes(*found, 1)] = found->getUInt64(2);
  for (size_t i = begin; i < end; ++i) {
    auto it = max_seq_of.find(reads[i].conv_id);
    pages[i].max_seq = it == max_seq_of.end() ? 0 : it->second;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<AppendOutcome>> MySqlMessageStore::Append(
    const std::vector<NewMessage>& batch) {
  if (absl::Status status = CheckBatch(batch); !status.ok()) return status;
  if (batch.empty()) return std::vector<AppendOutcome>();
  const std::vector<size_t> first = FirstOccurrences(batch);
  return RetryIfAborted([&] { return AppendOnce(batch, first); }, kAppendAttempts);
}

absl::StatusOr<std::vector<AppendOutcome>> MySqlMessageStore::AppendOnce(
    const std::vector<NewMessage>& batch, const std::vector<size_t>& first) {
  // Rows are written in key order (messages by (conv_id, seq), then conversations, then members)
  // so that concurrent batches take their locks in the same order and seldom deadlock.
  std::vector<size_t> order;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first[i] == i) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const im::v1::Message& x = batch[a].message;
    const im::v1::Message& y = batch[b].message;
    return x.conv_id() != y.conv_id() ? x.conv_id() < y.conv_id() : x.seq() < y.seq();
  });
  return pool_.Run<std::vector<AppendOutcome>>([&](MySqlConnection& connection)
                                                   -> absl::StatusOr<std::vector<AppendOutcome>> {
    std::vector<AppendOutcome> outcomes(batch.size());
    connection.Begin();
    for (const auto& [begin, end] : Chunks(order.size(), kMaxRowsPerStatement, [&](size_t i) {
           return BytesOf(batch[order[i]].message);
         })) {
      std::span<const size_t> chunk(order.data() + begin, end - begin);
      if (absl::Status status = InsertMessages(connection, batch, chunk, outcomes); !status.ok()) {
        return status;
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (first[i] != i) {
        outcomes[i] = AppendOutcome{false, outcomes[first[i]].stored, outcomes[first[i]].seq_taken};
      }
    }
    UpsertConversations(connection, batch, first, outcomes);
    UpsertMembers(connection, batch, first, outcomes);
    connection.Commit();
    return outcomes;
  });
}

absl::StatusOr<std::optional<im::v1::Message>> MySqlMessageStore::FindSent(
    std::string_view sender, std::string_view client_msg_id) {
  if (absl::Status status = CheckUid(sender); !status.ok()) return status;
  if (client_msg_id.empty()) return std::nullopt;
  return pool_.Run<std::optional<im::v1::Message>>(
      [&](MySqlConnection& connection) -> absl::StatusOr<std::optional<im::v1::Message>> {
        sql::PreparedStatement& select = connection.Prepare(fmt::format(
            "SELECT {} FROM messages WHERE sender = ? AND client_msg_id = ?", kMessageColumns));
        MySqlParams(select).Bytes(sender).Bytes(client_msg_id);
        std::unique_ptr<sql::ResultSet> rows = Query(select);
        if (!rows->next()) return std::nullopt;
        return ReadMessage(*rows, 1);
      });
}

absl::Status MySqlMessageStore::ApplyChange(const im::v1::Message& change) {
  if (absl::Status status = CheckChange(change); !status.ok()) return status;
  return RetryIfAborted([&] { return ApplyChangeOnce(change); }, kCursorAttempts);
}

absl::Status MySqlMessageStore::ApplyChangeOnce(const im::v1::Message& change) {
  return pool_.Run([&](MySqlConnection& connection) -> absl::Status {
    sql::PreparedStatement& update = connection.Prepare(
        change.type() == im::v1::RECALL
            ? "UPDATE messages SET body = '', recalled = 1, change_seq = GREATEST(change_seq, ?) "
              "WHERE conv_id = ? AND seq = ? AND recalled = 0"
            : "UPDATE messages SET body = ?, edited_ms = ?, change_seq = ? "
              "WHERE conv_id = ? AND seq = ? AND recalled = 0 AND change_seq < ?");
    MySqlParams params(update);
    if (change.type() == im::v1::RECALL) {
      params.U64(change.seq()).Bytes(change.conv_id()).U64(change.ref_seq());
    } else {
      params.Bytes(change.body()).I64(change.created_ms()).U64(change.seq());
      params.Bytes(change.conv_id()).U64(change.ref_seq()).U64(change.seq());
    }
    bool recalled = change.type() == im::v1::RECALL;
    if (update.executeUpdate() == 0) {
      // Nothing changed: a later version is there already (a recall, perhaps), or no message is.
      sql::PreparedStatement& select =
          connection.Prepare("SELECT recalled FROM messages WHERE conv_id = ? AND seq = ?");
      MySqlParams(select).Bytes(change.conv_id()).U64(change.ref_seq());
      std::unique_ptr<sql::ResultSet> original = Query(select);
      if (!original->next()) {
        return absl::NotFoundError(
            fmt::format("{} has no message {} to change", change.conv_id(), change.ref_seq()));
      }
      recalled = recalled || original->getInt(1) != 0;
    }
    // Every version of a recalled message goes: its edits' bodies too, those applied before the
    // recall and one racing it (applied after it, or before it with a higher seq). The range
    // scan is short: a recall comes within logic.recall_window_ms of the message.
    if (recalled) {
      sql::PreparedStatement& erase = connection.Prepare(
          "UPDATE messages SET body = '' "
          "WHERE conv_id = ? AND seq > ? AND type = ? AND ref_seq = ? AND body <> ''");
      MySqlParams(erase)
          .Bytes(change.conv_id())
          .U64(change.ref_seq())
          .I64(im::v1::EDIT)
          .U64(change.ref_seq());
      erase.executeUpdate();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> MySqlMessageStore::MaxSeq(std::string_view conv_id) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  return pool_.Run<uint64_t>([&](MySqlConnection& connection) -> absl::StatusOr<uint64_t> {
    return QueryMaxSeq(connection, conv_id);
  });
}

absl::StatusOr<MessagePage> MySqlMessageStore::ReadMessages(std::string_view conv_id,
                                                            uint64_t after_seq, uint32_t limit) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  return pool_.Run<MessagePage>([&](MySqlConnection& connection) -> absl::StatusOr<MessagePage> {
    MessagePage page;
    sql::PreparedStatement& select = connection.Prepare(
        fmt::format("SELECT {} FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    kMessageColumns));
    MySqlParams(select).Bytes(conv_id).U64(after_seq).U64(limit);
    std::unique_ptr<sql::ResultSet> rows = Query(select);
    while (rows->next()) page.messages.push_back(ReadMessage(*rows, 1));
    // Read after the messages, so that max_seq is never below the last of them.
    page.max_seq = QueryMaxSeq(connection, conv_id);
    return page;
  });
}

absl::StatusOr<std::vector<MessagePage>> MySqlMessageStore::ReadMessagesMany(
    const std::vector<MessageRead>& reads) {
  for (const MessageRead& read : reads) {
    if (absl::Status status = CheckConvId(read.conv_id); !status.ok()) return status;
    if (absl::Status status = CheckLimit(read.limit); !status.ok()) return status;
  }
  std::vector<MessagePage> pages(reads.size());
  if (reads.empty()) return pages;
  absl::Status status = pool_.Run([&](MySqlConnection& connection) {
    for (const auto& [begin, end] : Chunks(reads.size(), kMaxReadsPerStatement)) {
      if (absl::Status read = ReadMessagesChunk(connection, reads, begin, end, pages); !read.ok()) {
        return read;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return pages;
}

absl::Status MySqlMessageStore::AdvanceDelivered(std::string_view uid,
                                                 const std::vector<Cursor>& cursors) {
  if (absl::Status status = CheckCursors(uid, cursors); !status.ok()) return status;
  // One target per conversation, the highest asked for.
  std::map<std::string_view, uint64_t> highest;
  for (const Cursor& cursor : cursors) {
    uint64_t& seq = highest[cursor.conv_id];
    seq = std::max(seq, cursor.seq);
  }
  const std::vector<std::pair<std::string_view, uint64_t>> targets(highest.begin(), highest.end());
  // Acks of one user race each other and the writer's commits on the same rows (the join reads
  // conversations while a commit updates them): a deadlock here is expected now and then, and the
  // update, idempotent, is tried again rather than failing the ack.
  return RetryIfAborted([&] { return AdvanceDeliveredOnce(uid, targets); }, kCursorAttempts);
}

absl::Status MySqlMessageStore::AdvanceDeliveredOnce(
    std::string_view uid, const std::vector<std::pair<std::string_view, uint64_t>>& targets) {
  return pool_.Run([&](MySqlConnection& connection) {
    for (const auto& [begin, end] : Chunks(targets.size(), kMaxRowsPerStatement)) {
      const size_t rows = PaddedRows(end - begin);
      // Each conversation's highest stored seq caps its cursor. Read without locking the
      // conversations (a consistent read; an UPDATE joining them would share-lock the rows the
      // writer's commits update, and deadlock with them): a commit raising it meanwhile only
      // leaves the cursor lower than it could be, until the next ack.
      sql::PreparedStatement& select = connection.Prepare(
          fmt::format("SELECT conv_id, max_seq FROM conversations WHERE conv_id IN ({})",
                      Repeat("?", rows, ", ")));
      MySqlParams select_params(select);
      BindRows(select_params, begin, end,
               [&](MySqlParams& p, size_t r, bool) { p.Bytes(targets[r].first); });
      std::map<std::string, uint64_t, std::less<>> stored;
      for (std::unique_ptr<sql::ResultSet> found = Query(select); found->next();) {
        stored[std::string(found->getString(1))] = found->getUInt64(2);
      }
      auto capped = [&](size_t r) {
        auto it = stored.find(targets[r].first);
        return it == stored.end() ? uint64_t{0} : std::min(it->second, targets[r].second);
      };
      // The IN list makes it primary key lookups; the CASE picks each row's target.
      sql::PreparedStatement& update = connection.Prepare(
          fmt::format("UPDATE user_conversations SET delivered_seq = GREATEST(delivered_seq, "
                      "CASE conv_id {} ELSE 0 END) WHERE uid = ? AND conv_id IN ({})",
                      Repeat("WHEN ? THEN ?", rows, " "), Repeat("?", rows, ", ")));
      MySqlParams params(update);
      BindRows(params, begin, end,
               [&](MySqlParams& p, size_t r, bool) { p.Bytes(targets[r].first).U64(capped(r)); });
      params.Bytes(uid);
      BindRows(params, begin, end,
               [&](MySqlParams& p, size_t r, bool) { p.Bytes(targets[r].first); });
      update.executeUpdate();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> MySqlMessageStore::AdvanceRead(std::string_view uid,
                                                        std::string_view conv_id, uint64_t seq) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  return RetryIfAborted([&] { return AdvanceReadOnce(uid, conv_id, seq); }, kCursorAttempts);
}

absl::StatusOr<uint64_t> MySqlMessageStore::AdvanceReadOnce(std::string_view uid,
                                                            std::string_view conv_id,
                                                            uint64_t seq) {
  return pool_.Run<uint64_t>([&](MySqlConnection& connection) -> absl::StatusOr<uint64_t> {
    // The conversation's max_seq is read without a lock, apart from the update: an update joining
    // conversations would lock its row after the member's, the reverse of a commit's order, and
    // deadlock with the commits of the chat being read. A max_seq read just before a commit is
    // still at least any seq the reader was shown.
    sql::PreparedStatement& max_seq =
        connection.Prepare("SELECT max_seq FROM conversations WHERE conv_id = ?");
    MySqlParams(max_seq).Bytes(conv_id);
    std::unique_ptr<sql::ResultSet> rows = Query(max_seq);
    if (!rows->next()) return QueryReadCursor(connection, uid, conv_id);
    const uint64_t readable = std::min<uint64_t>(seq, rows->getUInt64(1));
    // Whether the assignments see each other's new values or not, delivered_seq ends at least at
    // the new read_seq.
    sql::PreparedStatement& update = connection.Prepare(
        "UPDATE user_conversations SET read_seq = GREATEST(read_seq, ?), "
        "delivered_seq = GREATEST(delivered_seq, read_seq, ?) WHERE uid = ? AND conv_id = ?");
    MySqlParams(update).U64(readable).U64(readable).Bytes(uid).Bytes(conv_id);
    update.executeUpdate();
    return QueryReadCursor(connection, uid, conv_id);
  });
}

absl::StatusOr<uint64_t> MySqlMessageStore::ReadCursor(std::string_view uid,
                                                       std::string_view conv_id) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  return pool_.Run<uint64_t>([&](MySqlConnection& connection) -> absl::StatusOr<uint64_t> {
    return QueryReadCursor(connection, uid, conv_id);
  });
}

absl::StatusOr<MessageStore::ReaderCount> MySqlMessageStore::CountReaders(std::string_view conv_id,
                                                                          uint64_t seq,
                                                                          std::string_view sender,
                                                                          int64_t joined_by_ms) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  return pool_.Run<ReaderCount>([&](MySqlConnection& connection) -> absl::StatusOr<ReaderCount> {
    sql::PreparedStatement& select = connection.Prepare(
        "SELECT COUNT(*), CAST(COALESCE(SUM(read_seq >= ?), 0) AS UNSIGNED) "
        "FROM user_conversations WHERE conv_id = ? AND uid <> ? AND joined_ms <= ?");
    MySqlParams(select).U64(seq).Bytes(conv_id).Bytes(sender).I64(joined_by_ms);
    std::unique_ptr<sql::ResultSet> row = Query(select);
    ReaderCount count;
    if (row->next()) {
      count.members = row->getUInt64(1);
      count.read = row->getUInt64(2);
    }
    return count;
  });
}

absl::StatusOr<std::vector<std::string>> MySqlMessageStore::ListReaders(
    std::string_view conv_id, uint64_t seq, std::string_view sender, int64_t joined_by_ms,
    std::string_view after_uid, uint32_t limit) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  using Page = std::vector<std::string>;
  return pool_.Run<Page>([&](MySqlConnection& connection) -> absl::StatusOr<Page> {
    sql::PreparedStatement& select = connection.Prepare(
        "SELECT uid FROM user_conversations WHERE conv_id = ? AND read_seq >= ? AND uid <> ? "
        "AND joined_ms <= ? AND uid > ? ORDER BY uid LIMIT ?");
    MySqlParams(select)
        .Bytes(conv_id)
        .U64(seq)
        .Bytes(sender)
        .I64(joined_by_ms)
        .Bytes(after_uid)
        .U64(limit);
    std::unique_ptr<sql::ResultSet> rows = Query(select);
    Page page;
    while (rows->next()) page.push_back(ColumnBytes(*rows, 1));
    return page;
  });
}

absl::StatusOr<std::vector<std::string>> MySqlMessageStore::ConversationPeers(
    std::string_view uid, const std::vector<std::string>& candidates) {
  if (absl::Status status = CheckPeerQuery(uid, candidates); !status.ok()) return status;
  using Peers = std::vector<std::string>;
  return pool_.Run<Peers>([&](MySqlConnection& connection) -> absl::StatusOr<Peers> {
    std::set<std::string> peers;
    for (const auto& [begin, end] : Chunks(candidates.size(), kMaxRowsPerStatement)) {
      // theirs is found by its primary key (uid, conv_id) for each conversation of uid.
      sql::PreparedStatement& select = connection.Prepare(fmt::format(
          "SELECT DISTINCT theirs.uid FROM user_conversations mine JOIN user_conversations theirs "
          "ON theirs.conv_id = mine.conv_id WHERE mine.uid = ? AND theirs.uid IN ({})",
          Repeat("?", PaddedRows(end - begin), ", ")));
      MySqlParams params(select);
      params.Bytes(uid);
      BindRows(params, begin, end, [&](MySqlParams& p, size_t i, bool) { p.Bytes(candidates[i]); });
      std::unique_ptr<sql::ResultSet> rows = Query(select);
      while (rows->next()) peers.insert(ColumnBytes(*rows, 1));
    }
    if (std::find(candidates.begin(), candidates.end(), uid) != candidates.end()) {
      peers.insert(std::string(uid));  // even with no conversation at all
    }
    return Peers(peers.begin(), peers.end());
  });
}

absl::Status MySqlMessageStore::JoinConversation(std::string_view uid, std::string_view conv_id,
                                                 uint64_t from_seq, int64_t now_ms) {
  if (absl::Status status = CheckMembership(uid, conv_id); !status.ok()) return status;
  return pool_.Run([&](MySqlConnection& connection) {
    // Two autocommitted statements in Append's lock order (conversation, then member). If the
    // second fails, the first has at most created an empty conversation row, which the next
    // attempt or message finds.
    sql::PreparedStatement& conversation = connection.Prepare(
        "INSERT INTO conversations (conv_id, max_seq, updated_ms) VALUES (?, 0, ?) "
        "ON DUPLICATE KEY UPDATE conv_id = conv_id");
    MySqlParams(conversation).Bytes(conv_id).I64(now_ms);
    conversation.executeUpdate();
    sql::PreparedStatement& member = connection.Prepare(
        "INSERT INTO user_conversations (uid, conv_id, delivered_seq, read_seq, joined_ms) "
        "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE joined_ms = joined_ms");
    MySqlParams(member).Bytes(uid).Bytes(conv_id).U64(from_seq).U64(from_seq).I64(now_ms);
    member.executeUpdate();
    return absl::OkStatus();
  });
}

absl::Status MySqlMessageStore::LeaveConversation(std::string_view uid, std::string_view conv_id) {
  if (absl::Status status = CheckMembership(uid, conv_id); !status.ok()) return status;
  return pool_.Run([&](MySqlConnection& connection) {
    sql::PreparedStatement& remove =
        connection.Prepare("DELETE FROM user_conversations WHERE uid = ? AND conv_id = ?");
    MySqlParams(remove).Bytes(uid).Bytes(conv_id);
    remove.executeUpdate();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<im::v1::Conversation>> MySqlMessageStore::ListConversations(
    std::string_view uid, int64_t updated_after_ms,
    const std::optional<ConversationPosition>& after, uint32_t limit) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  if (after) {
    if (absl::Status status = CheckConvId(after->conv_id); !status.ok()) return status;
  }
  // No position yet: before everything.
  const int64_t after_ms = after ? after->updated_ms : std::numeric_limits<int64_t>::min();
  const std::string_view after_conv = after ? std::string_view(after->conv_id) : "";
  using Page = std::vector<im::v1::Conversation>;
  return pool_.Run<Page>([&](MySqlConnection& connection) -> absl::StatusOr<Page> {
    Page page;
    sql::PreparedStatement& select = connection.Prepare(kConversationPageSql);
    MySqlParams(select)
        .Bytes(uid)
        .I64(updated_after_ms)
        .I64(after_ms)
        .I64(after_ms)
        .Bytes(after_conv)
        .U64(limit);
    std::unique_ptr<sql::ResultSet> rows = Query(select);
    while (rows->next()) {
      im::v1::Conversation& entry = page.emplace_back();
      entry.set_conv_id(ColumnBytes(*rows, 1));
      entry.set_max_seq(rows->getUInt64(2));
      entry.set_updated_ms(rows->getInt64(3));
      entry.set_delivered_seq(rows->getUInt64(4));
      entry.set_read_seq(rows->getUInt64(5));
      if (!rows->isNull(6)) *entry.mutable_last_message() = ReadMessage(*rows, 6);
    }
    rows.reset();
    // Unread counts and the peers' read cursor, for a slice of the page per round trip: each is
    // an index range scan of its own conversation.
    for (const auto& [begin, end] : Chunks(page.size(), kMaxConversationsPerStatsQuery)) {
      sql::PreparedStatement& stats = connection.Prepare(Repeat(
          fmt::format("SELECT CAST(? AS UNSIGNED), (SELECT COUNT(*) FROM (SELECT 1 FROM messages "
                      "WHERE conv_id = ? AND seq > ? AND sender <> ? AND type NOT IN (6, 7) "
                      "LIMIT {}) AS u), "
                      "COALESCE((SELECT read_seq FROM user_conversations WHERE conv_id = ? "
                      "AND uid <> ? ORDER BY read_seq DESC LIMIT 1), 0)",
                      kMaxUnreadCount),
          PaddedRows(end - begin), " UNION ALL "));
      MySqlParams params(stats);
      BindRows(params, begin, end, [&](MySqlParams& p, size_t i, bool) {
        const im::v1::Conversation& entry = page[i];
        p.U64(i).Bytes(entry.conv_id()).U64(entry.read_seq()).Bytes(uid);
        p.Bytes(entry.conv_id()).Bytes(uid);
      });
      std::unique_ptr<sql::ResultSet> counts = Query(stats);
      while (counts->next()) {
        const uint64_t i = counts->getUInt64(1);
        if (i >= page.size()) return absl::InternalError("conversation stats out of step");
        page[i].set_unread(counts->getUInt64(2));
        page[i].set_peer_read_seq(counts->getUInt64(3));
      }
    }
    return page;
  });
}

}  // namespace im::store
