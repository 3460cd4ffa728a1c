#include "sdk/outbox.h"

#include <utility>

namespace im::sdk {

bool Outbox::Add(PendingSend send) {
  const uint64_t order = next_order_++;
  if (!order_of_.emplace(send.client_msg_id, order).second) return false;
  entries_.emplace(order, Entry{std::move(send), false, 0});
  return true;
}

std::vector<PendingSend> Outbox::TakeReady(int64_t now_ms, size_t limit) {
  std::vector<PendingSend> ready;
  for (auto& [order, entry] : entries_) {
    if (ready.size() >= limit) break;
    if (entry.in_flight || entry.not_before_ms > now_ms) continue;
    entry.in_flight = true;
    ++in_flight_;
    ready.push_back(entry.send);
  }
  return ready;
}

std::optional<PendingSend> Outbox::Remove(const std::string& client_msg_id) {
  auto order = order_of_.find(client_msg_id);
  if (order == order_of_.end()) return std::nullopt;
  auto entry = entries_.find(order->second);
  if (entry->second.in_flight) --in_flight_;
  PendingSend send = std::move(entry->second.send);
  entries_.erase(entry);
  order_of_.erase(order);
  return send;
}

void Outbox::Requeue(const std::string& client_msg_id, int64_t not_before_ms) {
  auto order = order_of_.find(client_msg_id);
  if (order == order_of_.end()) return;
  Entry& entry = entries_.at(order->second);
  if (entry.in_flight) --in_flight_;
  entry.in_flight = false;
  entry.not_before_ms = not_before_ms;
}

void Outbox::RequeueAll() {
  for (auto& [order, entry] : entries_) entry.in_flight = false;
  in_flight_ = 0;
}

std::vector<PendingSend> Outbox::TakeExpired(int64_t now_ms) {
  std::vector<PendingSend> expired;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& entry = it->second;
    if (entry.in_flight || entry.send.deadline_ms == 0 || entry.send.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    order_of_.erase(entry.send.client_msg_id);
    expired.push_back(std::move(it->second.send));
    it = entries_.erase(it);
  }
  return expired;
}

bool Outbox::in_flight(const std::string& client_msg_id) const {
  auto order = order_of_.find(client_msg_id);
  return order != order_of_.end() && entries_.at(order->second).in_flight;
}

}  // namespace im::sdk
