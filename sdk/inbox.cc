#include "sdk/inbox.h"

#include <algorithm>
#include <utility>

namespace im::sdk {

void Inbox::Restore(const std::map<std::string, uint64_t>& cursors) {
  for (const auto& [conv_id, cursor] : cursors) {
    Conversation& conversation = conversations_[conv_id];
    if (!conversation.stream) Start(conversation, cursor);
    conversation.acked = std::max(conversation.acked, cursor);
  }
}

void Inbox::Start(Conversation& conversation, uint64_t cursor) {
  conversation.stream.emplace(cursor);
  conversation.acked = cursor;
}

std::optional<Inbox::Delivery> Inbox::Receive(const std::string& conv_id,
                                              std::vector<Message> messages, int64_t now_ms) {
  Conversation& conversation = conversations_[conv_id];
  for (const Message& message : messages) {
    conversation.target_seq = std::max(conversation.target_seq, message.seq);
  }
  if (!conversation.stream) {
    if (!bound_) {
      for (Message& message : messages) conversation.unbound.push_back(std::move(message));
      return std::nullopt;
    }
    Start(conversation, 0);
  }
  return Deliver(conv_id, conversation, conversation.stream->Add(std::move(messages)), now_ms);
}

std::vector<Inbox::Delivery> Inbox::Bind(const std::vector<sdk::Conversation>& server_view,
                                         int64_t now_ms) {
  std::vector<Delivery> deliveries;
  auto deliver_unbound = [&](const std::string& conv_id, Conversation& conversation) {
    std::optional<Delivery> delivery = Deliver(
        conv_id, conversation, conversation.stream->Add(std::move(conversation.unbound)), now_ms);
    conversation.unbound.clear();
    if (delivery) deliveries.push_back(std::move(*delivery));
  };
  for (const sdk::Conversation& view : server_view) {
    Conversation& conversation = conversations_[view.conv_id];
    conversation.target_seq = std::max(conversation.target_seq, view.max_seq);
    conversation.closed = false;
    if (!conversation.stream) {
      Start(conversation, view.delivered_seq);
      deliver_unbound(view.conv_id, conversation);
    }
    if (NeedsSync(conversation)) conversation.next_sync_ms = now_ms;
  }
  // Seen only in pushes and not in the server's list: new since the list was read.
  for (auto& [conv_id, conversation] : conversations_) {
    if (conversation.stream) continue;
    Start(conversation, 0);
    deliver_unbound(conv_id, conversation);
  }
  bound_ = true;
  return deliveries;
}

std::optional<Inbox::Delivery> Inbox::Deliver(const std::string& conv_id,
                                              Conversation& conversation,
                                              std::vector<Message> ready, int64_t now_ms) {
  if (conversation.stream->has_gap()) {
    // A new gap first waits a moment: the missing message is usually a push just behind.
    if (conversation.gap_since_ms == 0) {
      conversation.gap_since_ms = now_ms;
      conversation.next_sync_ms = std::max(conversation.next_sync_ms, now_ms + gap_wait_ms_);
    }
  } else {
    conversation.gap_since_ms = 0;
  }
  if (ready.empty()) return std::nullopt;
  return Delivery{conv_id, std::move(ready)};
}

bool Inbox::NeedsSync(const Conversation& conversation) const {
  if (!conversation.stream || conversation.closed) return false;
  return conversation.stream->delivered() < conversation.target_seq;
}

std::vector<Inbox::SyncRequest> Inbox::TakeDueSyncs(int64_t now_ms) {
  std::vector<SyncRequest> due;
  for (auto& [conv_id, conversation] : conversations_) {
    if (conversation.syncing || !NeedsSync(conversation)) continue;
    if (now_ms < conversation.next_sync_ms) continue;
    conversation.syncing = true;
    due.push_back(SyncRequest{conv_id, conversation.stream->delivered()});
  }
  return due;
}

std::optional<Inbox::Delivery> Inbox::OnSynced(const std::string& conv_id, SyncPage page,
                                               int64_t now_ms) {
  Conversation& conversation = conversations_[conv_id];
  conversation.syncing = false;
  if (!conversation.stream) return std::nullopt;
  const uint64_t before = conversation.stream->delivered();
  conversation.target_seq = std::max(conversation.target_seq, page.max_seq);
  std::vector<Message> ready = conversation.stream->Add(std::move(page.messages));
  for (const auto& [first, last] : page.holes) {
    std::vector<Message> after_hole = conversation.stream->AddHole(first, last);
    for (Message& message : after_hole) ready.push_back(std::move(message));
  }
  const bool progressed = conversation.stream->delivered() > before;
  // More to fetch right away when this page moved the cursor; otherwise the server is waiting
  // out a write in progress (or the gap is a push still on its way): ask again a little later.
  conversation.next_sync_ms = progressed && page.has_more ? now_ms : now_ms + gap_wait_ms_;
  return Deliver(conv_id, conversation, std::move(ready), now_ms);
}

void Inbox::OnSyncFailed(const std::string& conv_id, bool retry, int64_t now_ms,
                         int64_t retry_in_ms) {
  Conversation& conversation = conversations_[conv_id];
  conversation.syncing = false;
  conversation.closed = !retry;
  conversation.next_sync_ms = now_ms + (retry_in_ms > 0 ? retry_in_ms : 4 * gap_wait_ms_);
}

void Inbox::AbortSyncs() {
  for (auto& [conv_id, conversation] : conversations_) conversation.syncing = false;
}

std::map<std::string, uint64_t> Inbox::TakeMovedCursors() {
  std::map<std::string, uint64_t> moved;
  for (auto& [conv_id, conversation] : conversations_) {
    if (!conversation.stream || conversation.stream->delivered() <= conversation.acked) continue;
    conversation.acked = conversation.stream->delivered();
    moved[conv_id] = conversation.acked;
  }
  return moved;
}

std::map<std::string, uint64_t> Inbox::Cursors() const {
  std::map<std::string, uint64_t> cursors;
  for (const auto& [conv_id, conversation] : conversations_) {
    if (conversation.stream) cursors[conv_id] = conversation.stream->delivered();
  }
  return cursors;
}

uint64_t Inbox::delivered(const std::string& conv_id) const {
  auto it = conversations_.find(conv_id);
  if (it == conversations_.end() || !it->second.stream) return 0;
  return it->second.stream->delivered();
}

}  // namespace im::sdk
