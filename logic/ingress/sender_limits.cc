#include "logic/ingress/sender_limits.h"

#include "fmt/format.h"

namespace im::logic {

SenderLimits::SenderLimits(common::RateLimit per_user, common::RateLimit per_user_in_group)
    : per_user_(per_user, kMaxTrackedSenders),
      per_user_in_group_(per_user_in_group, kMaxTrackedSenders) {}

const char* SenderLimits::Refusal::reason() const {
  switch (limit) {
    case Limit::kNone:
      return "";
    case Limit::kUser:
      return "the sender is sending faster than a user may";
    case Limit::kUserInGroup:
      return "the sender is sending to this group faster than a member may";
  }
  return "";
}

SenderLimits::Refusal SenderLimits::Take(std::string_view uid, std::string_view conv_id,
                                         int64_t now_ms) {
  // The group's limit first: a sender over it in one group keeps the rest of its rate for others.
  if (conv_id.starts_with("g:") && per_user_in_group_.limit().enabled()) {
    // '\n' appears in neither a uid nor a group's id (ConversationId).
    const std::string key = fmt::format("{}\n{}", uid, conv_id);
    if (const int64_t wait_ms = per_user_in_group_.Take(key, now_ms); wait_ms > 0) {
      return Refusal{Limit::kUserInGroup, wait_ms};
    }
  }
  if (const int64_t wait_ms = per_user_.Take(std::string(uid), now_ms); wait_ms > 0) {
    return Refusal{Limit::kUser, wait_ms};
  }
  return Refusal{};
}

}  // namespace im::logic
