#pragma once

#include <memory>

#include "store/message_store.h"
#include "store/ttl_map.h"

namespace im::logic {

// The send dedup entries of a node whose memory does not outlive a restart while its messages
// do (the embedded node: entries in memory, messages in SQLite). A claim that finds no entry asks
// the message store whether the send was stored before (FindSent, the key Append is idempotent on)
// and, if it was, answers with its coordinates as a stored entry would: a device that sends again
// after a restart what it holds unacknowledged gets the original seq, and no new seq is taken for
// it (which would leave a hole that Sync waits out). Thread-safe, as `entries` is.
class StoredSendsDedup final : public store::TtlMap {
 public:
  // `messages` outlives this; `stored_ttl_ms`: how long an entry found in the store is kept.
  StoredSendsDedup(std::unique_ptr<store::TtlMap> entries, store::MessageStore* messages,
                   int64_t stored_ttl_ms)
      : entries_(std::move(entries)), messages_(messages), stored_ttl_ms_(stored_ttl_ms) {}

  absl::Status PutMany(const Entries& entries, int64_t ttl_ms) override {
    return entries_->PutMany(entries, ttl_ms);
  }
  absl::StatusOr<std::optional<std::string>> PutIfAbsent(std::string_view key,
                                                         std::string_view value,
                                                         int64_t ttl_ms) override;
  absl::Status Delete(std::string_view key) override { return entries_->Delete(key); }
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override {
    return entries_->Get(keys);
  }

 private:
  std::unique_ptr<store::TtlMap> entries_;
  store::MessageStore* messages_;
  const int64_t stored_ttl_ms_;
};

}  // namespace im::logic
