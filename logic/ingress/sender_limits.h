#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/keyed_rate_limiter.h"
#include "common/token_bucket.h"

namespace im::logic {

// The abuse limits on sends that follow the sender rather than a connection (the gateway limits
// each connection): messages a second per user over all their devices, and per user in each
// group (a group send costs every member a push). Recalls and edits count as sends.
// Per logic node: a user whose devices reach k nodes may send up to k times the rate (a device's
// requests all go to one node, and a user has at most logic.max_devices_per_user devices).
// Thread-safe.
class SenderLimits {
 public:
  // Keys tracked at once per limit (a user, a user in a group); past them new ones pass
  // untracked (common::KeyedRateLimiter).
  static constexpr size_t kMaxTrackedSenders = 1'000'000;

  SenderLimits(common::RateLimit per_user, common::RateLimit per_user_in_group);

  enum class Limit { kNone, kUser, kUserInGroup };
  // Which limit uid's send to conv_id at now_ms is over, and for how long.
  struct Refusal {
    Limit limit = Limit::kNone;  // kNone: admitted (a token of each limit that applies taken)
    int64_t retry_after_ms = 0;
    const char* reason() const;
  };
  Refusal Take(std::string_view uid, std::string_view conv_id, int64_t now_ms);

 private:
  common::KeyedRateLimiter<std::string> per_user_;
  common::KeyedRateLimiter<std::string> per_user_in_group_;
};

}  // namespace im::logic
