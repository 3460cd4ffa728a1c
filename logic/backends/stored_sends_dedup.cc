#include "logic/backends/stored_sends_dedup.h"

#include "common/logging.h"
#include "logic/conversation/dedup_entry.h"

namespace im::logic {

absl::StatusOr<std::optional<std::string>> StoredSendsDedup::PutIfAbsent(std::string_view key,
                                                                         std::string_view value,
                                                                         int64_t ttl_ms) {
  absl::StatusOr<std::optional<std::string>> existing = entries_->PutIfAbsent(key, value, ttl_ms);
  if (!existing.ok() || existing->has_value()) return existing;
  const std::optional<SentBy> sent_by = ParseDedupKey(key);
  if (!sent_by) return existing;
  absl::StatusOr<std::optional<im::v1::Message>> stored =
      messages_->FindSent(sent_by->sender, sent_by->client_msg_id);
  if (!stored.ok()) {
    // The claim stands: the store's unique key still keeps the send to one copy.
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "looking up a resent message failed: {}",
                        stored.status().ToString());
    return existing;
  }
  if (!stored->has_value()) return existing;
  std::string coordinates = EncodeDedup(**stored);
  if (absl::Status put = entries_->Put(key, coordinates, stored_ttl_ms_); !put.ok()) return put;
  return coordinates;
}

}  // namespace im::logic
