#include "logic/group/unacked_records.h"

namespace im::logic {

UnackedRecords::UnackedRecords(std::chrono::milliseconds fallback_after, common::MillisClock now_ms)
    : fallback_after_ms_(fallback_after.count()),
      now_ms_(std::move(now_ms)),
      last_ack_ms_(now_ms_()) {}

uint64_t UnackedRecords::Add(Entry entry) {
  entry.added_ms = now_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_id_++;
  entries_.emplace(id, std::move(entry));
  return id;
}

std::optional<UnackedRecords::Entry> UnackedRecords::Take(uint64_t id, bool acknowledged) {
  const int64_t now = acknowledged ? now_ms_() : 0;
  std::lock_guard<std::mutex> lock(mutex_);
  if (acknowledged) last_ack_ms_ = std::max(last_ack_ms_, now);
  auto found = entries_.find(id);
  if (found == entries_.end()) return std::nullopt;
  Entry entry = std::move(found->second);
  entries_.erase(found);
  return entry;
}

std::vector<UnackedRecords::Entry> UnackedRecords::TakeStalled() {
  const int64_t now = now_ms_();
  std::vector<Entry> stalled;
  std::lock_guard<std::mutex> lock(mutex_);
  if (now - last_ack_ms_ < fallback_after_ms_) return stalled;
  while (!entries_.empty() && now - entries_.begin()->second.added_ms >= fallback_after_ms_) {
    stalled.push_back(std::move(entries_.begin()->second));
    entries_.erase(entries_.begin());
  }
  return stalled;
}

std::vector<UnackedRecords::Entry> UnackedRecords::TakeAll() {
  std::vector<Entry> all;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, entry] : entries_) all.push_back(std::move(entry));
  entries_.clear();
  return all;
}

size_t UnackedRecords::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace im::logic
