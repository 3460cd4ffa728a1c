#include "store/in_memory_message_store.h"

#include <algorithm>
#include <tuple>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/message_rules.h"

namespace im::store {

std::pair<InMemoryMessageStore::ConversationState*, InMemoryMessageStore::Member*>
InMemoryMessageStore::FindMember(std::string_view uid, std::string_view conv_id) {
  auto conversation = conversations_.find(conv_id);
  if (conversation == conversations_.end()) return {nullptr, nullptr};
  auto member = conversation->second.members.find(uid);
  if (member == conversation->second.members.end()) return {&conversation->second, nullptr};
  return {&conversation->second, &member->second};
}

const im::v1::Message* InMemoryMessageStore::FindStored(std::string_view conv_id,
                                                        uint64_t seq) const {
  auto conversation = conversations_.find(conv_id);
  if (conversation == conversations_.end()) return nullptr;
  auto message = conversation->second.messages.find(seq);
  return message == conversation->second.messages.end() ? nullptr : &message->second;
}

void InMemoryMessageStore::Store(const NewMessage& entry) {
  const im::v1::Message& m = entry.message;
  auto [it, created] = conversations_.try_emplace(m.conv_id());
  ConversationState& conversation = it->second;
  // A message an earlier attempt stored stays as it was, as in MySQL.
  conversation.messages.try_emplace(m.seq(), m);
  if (const auto identity = IdentityOf(m)) {
    identities_.try_emplace(std::pair<std::string, std::string>(identity->first, identity->second),
                            std::pair<std::string, uint64_t>(m.conv_id(), m.seq()));
  }
  if (created) {
    conversation.max_seq = m.seq();
    conversation.updated_ms = m.created_ms();
  } else {
    conversation.max_seq = std::max(conversation.max_seq, m.seq());
    conversation.updated_ms = std::max(conversation.updated_ms, m.created_ms());
  }
  for (const std::string& uid : entry.participants) {
    conversation.members.try_emplace(uid, Member{0, 0, m.created_ms()});
    user_conversations_[uid].insert(m.conv_id());
  }
}

absl::StatusOr<std::vector<AppendOutcome>> InMemoryMessageStore::Append(
    const std::vector<NewMessage>& batch) {
  if (absl::Status status = CheckBatch(batch); !status.ok()) return status;
  const std::vector<size_t> first = FirstOccurrences(batch);
  std::vector<AppendOutcome> outcomes(batch.size());
  std::lock_guard<std::mutex> lock(mutex_);
  // Decide every outcome before writing anything, so that a failing message leaves no trace of
  // the batch (MySQL rolls the transaction back).
  std::map<std::pair<std::string_view, uint64_t>, uint64_t> claimed;  // (conv, seq) -> msg_id
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first[i] != i) continue;
    const im::v1::Message& m = batch[i].message;
    if (const auto identity = IdentityOf(m)) {
      auto it = identities_.find({std::string(identity->first), std::string(identity->second)});
      const im::v1::Message* stored =
          it == identities_.end() ? nullptr : FindStored(it->second.first, it->second.second);
      // The same msg_id is this very message, written by an earlier attempt whose reply was lost:
      // it counts as inserted, so that the caller still delivers it.
      if (stored != nullptr && stored->msg_id() != m.msg_id()) {
        outcomes[i] = AppendOutcome{false, *stored};
        continue;
      }
    }
    const im::v1::Message* at_seq = FindStored(m.conv_id(), m.seq());
    auto claim = claimed
                     .emplace(std::pair(std::string_view(m.conv_id()), m.seq()),
                              at_seq != nullptr ? at_seq->msg_id() : m.msg_id())
                     .first;
    if (claim->second != m.msg_id()) {
      outcomes[i] = AppendOutcome{false, m, /*seq_taken=*/true};
      continue;
    }
    outcomes[i] = AppendOutcome{true, at_seq != nullptr ? *at_seq : m};
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first[i] != i) {
      outcomes[i] = AppendOutcome{false, outcomes[first[i]].stored, outcomes[first[i]].seq_taken};
    } else if (outcomes[i].inserted) {
      Store(batch[i]);
    }
  }
  return outcomes;
}

absl::StatusOr<std::optional<im::v1::Message>> InMemoryMessageStore::FindSent(
    std::string_view sender, std::string_view client_msg_id) {
  if (absl::Status status = CheckUid(sender); !status.ok()) return status;
  if (client_msg_id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = identities_.find({std::string(sender), std::string(client_msg_id)});
  if (it == identities_.end()) return std::nullopt;
  const im::v1::Message* stored = FindStored(it->second.first, it->second.second);
  if (stored == nullptr) return std::nullopt;
  return *stored;
}

void InMemoryMessageStore::DeleteEditBodies(std::map<uint64_t, im::v1::Message>& messages,
                                            uint64_t ref_seq) {
  for (auto it = messages.upper_bound(ref_seq); it != messages.end(); ++it) {
    if (it->second.type() == im::v1::EDIT && it->second.ref_seq() == ref_seq) {
      it->second.clear_body();
    }
  }
}

absl::Status InMemoryMessageStore::ApplyChange(const im::v1::Message& change) {
  if (absl::Status status = CheckChange(change); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto conversation = conversations_.find(change.conv_id());
  im::v1::Message* original = nullptr;
  if (conversation != conversations_.end()) {
    auto it = conversation->second.messages.find(change.ref_seq());
    if (it != conversation->second.messages.end()) original = &it->second;
  }
  if (original == nullptr) {
    return absl::NotFoundError(
        fmt::format("{} has no message {} to change", change.conv_id(), change.ref_seq()));
  }
  if (change.type() == im::v1::RECALL || original->recalled()) {
    DeleteEditBodies(conversation->second.messages, change.ref_seq());
  }
  if (original->recalled()) return absl::OkStatus();
  uint64_t& change_seq = conversation->second.change_seqs[change.ref_seq()];
  if (change.type() == im::v1::RECALL) {
    original->clear_body();
    original->set_recalled(true);
  } else if (change_seq < change.seq()) {
    original->set_body(change.body());
    original->set_edited_ms(change.created_ms());
  }
  change_seq = std::max(change_seq, change.seq());
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> InMemoryMessageStore::MaxSeq(std::string_view conv_id) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = conversations_.find(conv_id);
  return it == conversations_.end() ? 0 : it->second.max_seq;
}

absl::StatusOr<MessagePage> InMemoryMessageStore::ReadMessages(std::string_view conv_id,
                                                               uint64_t after_seq, uint32_t limit) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  MessagePage page;
  auto conversation = conversations_.find(conv_id);
  if (conversation == conversations_.end()) return page;
  const auto& messages = conversation->second.messages;
  for (auto it = messages.upper_bound(after_seq);
       it != messages.end() && page.messages.size() < limit; ++it) {
    page.messages.push_back(it->second);
  }
  page.max_seq = conversation->second.max_seq;
  return page;
}

absl::Status InMemoryMessageStore::AdvanceDelivered(std::string_view uid,
                                                    const std::vector<Cursor>& cursors) {
  if (absl::Status status = CheckCursors(uid, cursors); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Cursor& cursor : cursors) {
    auto [conversation, member] = FindMember(uid, cursor.conv_id);
    if (member == nullptr) continue;
    member->delivered_seq =
        std::max(member->delivered_seq, std::min(cursor.seq, conversation->max_seq));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> InMemoryMessageStore::AdvanceRead(std::string_view uid,
                                                           std::string_view conv_id, uint64_t seq) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [conversation, member] = FindMember(uid, conv_id);
  if (member == nullptr) {
    return NoConversationRow(uid, conv_id);
  }
  member->read_seq = std::max(member->read_seq, std::min(seq, conversation->max_seq));
  member->delivered_seq = std::max(member->delivered_seq, member->read_seq);
  return member->read_seq;
}

absl::StatusOr<uint64_t> InMemoryMessageStore::ReadCursor(std::string_view uid,
                                                          std::string_view conv_id) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [conversation, member] = FindMember(uid, conv_id);
  if (member == nullptr) {
    return NoConversationRow(uid, conv_id);
  }
  return member->read_seq;
}

std::vector<const std::string*> InMemoryMessageStore::Readers(std::string_view conv_id,
                                                              uint64_t seq, std::string_view sender,
                                                              int64_t joined_by_ms,
                                                              uint64_t* members) {
  std::vector<const std::string*> readers;
  *members = 0;
  auto conversation = conversations_.find(conv_id);
  if (conversation == conversations_.end()) return readers;
  for (const auto& [uid, member] : conversation->second.members) {
    if (uid == sender || member.joined_ms > joined_by_ms) continue;
    ++*members;
    if (member.read_seq >= seq) readers.push_back(&uid);
  }
  return readers;
}

absl::StatusOr<MessageStore::ReaderCount> InMemoryMessageStore::CountReaders(
    std::string_view conv_id, uint64_t seq, std::string_view sender, int64_t joined_by_ms) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  ReaderCount count;
  count.read = Readers(conv_id, seq, sender, joined_by_ms, &count.members).size();
  return count;
}

absl::StatusOr<std::vector<std::string>> InMemoryMessageStore::ListReaders(
    std::string_view conv_id, uint64_t seq, std::string_view sender, int64_t joined_by_ms,
    std::string_view after_uid, uint32_t limit) {
  if (absl::Status status = CheckConvId(conv_id); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t members = 0;
  std::vector<std::string> page;
  for (const std::string* uid : Readers(conv_id, seq, sender, joined_by_ms, &members)) {
    if (*uid <= after_uid) continue;
    if (page.size() == limit) break;
    page.push_back(*uid);
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> InMemoryMessageStore::ConversationPeers(
    std::string_view uid, const std::vector<std::string>& candidates) {
  IM_RETURN_IF_ERROR(CheckPeerQuery(uid, candidates));
  std::lock_guard<std::mutex> lock(mutex_);
  std::set<std::string> peers;
  auto mine = user_conversations_.find(uid);
  for (const std::string& candidate : candidates) {
    if (candidate == uid) {
      peers.insert(candidate);
      continue;
    }
    auto theirs = user_conversations_.find(candidate);
    if (mine == user_conversations_.end() || theirs == user_conversations_.end()) continue;
    const bool shared =
        std::any_of(mine->second.begin(), mine->second.end(),
                    [&](const std::string& conv_id) { return theirs->second.count(conv_id) > 0; });
    if (shared) peers.insert(candidate);
  }
  return std::vector<std::string>(peers.begin(), peers.end());
}

absl::Status InMemoryMessageStore::JoinConversation(std::string_view uid, std::string_view conv_id,
                                                    uint64_t from_seq, int64_t now_ms) {
  if (absl::Status status = CheckMembership(uid, conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, created] = conversations_.try_emplace(std::string(conv_id));
  if (created) it->second.updated_ms = now_ms;
  it->second.members.try_emplace(std::string(uid), Member{from_seq, from_seq, now_ms});
  user_conversations_[std::string(uid)].insert(std::string(conv_id));
  return absl::OkStatus();
}

absl::Status InMemoryMessageStore::LeaveConversation(std::string_view uid,
                                                     std::string_view conv_id) {
  if (absl::Status status = CheckMembership(uid, conv_id); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [conversation, member] = FindMember(uid, conv_id);
  if (member == nullptr) return absl::OkStatus();
  conversation->members.erase(conversation->members.find(uid));
  auto mine = user_conversations_.find(uid);
  mine->second.erase(mine->second.find(conv_id));
  if (mine->second.empty()) user_conversations_.erase(mine);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<im::v1::Conversation>> InMemoryMessageStore::ListConversations(
    std::string_view uid, int64_t updated_after_ms,
    const std::optional<ConversationPosition>& after, uint32_t limit) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  if (absl::Status status = CheckLimit(limit); !status.ok()) return status;
  if (after) {
    if (absl::Status status = CheckConvId(after->conv_id); !status.ok()) return status;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<int64_t, const std::string*>> positions;
  auto mine = user_conversations_.find(uid);
  if (mine != user_conversations_.end()) {
    for (const std::string& conv_id : mine->second) {
      const int64_t updated_ms = conversations_.find(conv_id)->second.updated_ms;
      if (updated_ms <= updated_after_ms) continue;
      if (after && std::tie(updated_ms, conv_id) <= std::tie(after->updated_ms, after->conv_id)) {
        continue;
      }
      positions.emplace_back(updated_ms, &conv_id);
    }
  }
  std::sort(positions.begin(), positions.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, *a.second) < std::tie(b.first, *b.second);
  });
  if (positions.size() > limit) positions.resize(limit);

  std::vector<im::v1::Conversation> page;
  for (const auto& [updated_ms, conv_id] : positions) {
    const ConversationState& state = conversations_.find(*conv_id)->second;
    const Member& member = state.members.find(uid)->second;
    im::v1::Conversation& entry = page.emplace_back();
    entry.set_conv_id(*conv_id);
    entry.set_max_seq(state.max_seq);
    entry.set_delivered_seq(member.delivered_seq);
    entry.set_read_seq(member.read_seq);
    entry.set_updated_ms(updated_ms);
    uint64_t unread = 0;
    for (auto it = state.messages.upper_bound(member.read_seq);
         it != state.messages.end() && unread < kMaxUnreadCount; ++it) {
      if (it->second.sender() != uid && !IsChange(it->second.type())) ++unread;
    }
    entry.set_unread(unread);
    for (auto last = state.messages.upper_bound(state.max_seq); last != state.messages.begin();) {
      --last;
      if (IsChange(last->second.type())) continue;
      *entry.mutable_last_message() = last->second;
      break;
    }
    uint64_t peer_read_seq = 0;
    for (const auto& [other, cursors] : state.members) {
      if (other != uid) peer_read_seq = std::max(peer_read_seq, cursors.read_seq);
    }
    entry.set_peer_read_seq(peer_read_seq);
  }
  return page;
}

}  // namespace im::store
