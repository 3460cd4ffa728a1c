#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "common/keyed_rate_limiter.h"
#include "common/token_bucket.h"
#include "gateway/gateway_options.h"

namespace im::gateway {

// The abuse limits that depend on where connections come from, shared by the gateway's worker
// loops: connections open per source address, logins per source address, and logins of the whole
// gateway. A source is an IPv4 address or an IPv6 /64 (a host is commonly given a whole /64, so
// counting its addresses one by one would limit nothing). Thread-safe.
class SourceLimits {
 public:
  // The source a connection from a loopback address is counted as unless
  // gateway.limit_loopback: none, exempt from the per-source and per-connection limits (a
  // benchmark or a proxy on the same host is not one client).
  static constexpr uint64_t kExempt = 0;

  explicit SourceLimits(const GatewayOptions& options);

  // The source `address` (a connected peer) is counted under; kExempt for loopback (unless
  // limited) or an address of no known family.
  uint64_t SourceOf(const sockaddr_storage& address) const;

  // Counts a connection from `source`: false (counting nothing) when the source has
  // gateway.max_connections_per_ip open already. Every true is matched by one Close.
  bool Open(uint64_t source);
  void Close(uint64_t source);

  // A login from `source` at `now_ms`: 0 when admitted (a token of the source's bucket and of
  // the gateway's taken), else how many milliseconds until one would be.
  int64_t TakeLogin(uint64_t source, int64_t now_ms);

  size_t tracked_sources() const;

  // Connections of the process not logged in yet (the loops' login timelines), against
  // gateway.max_unauthenticated_connections: whether there is room for one more.
  bool RoomForUnauthenticated() const {
    return max_unauthenticated_ == 0 ||
           unauthenticated_.load(std::memory_order_relaxed) < max_unauthenticated_;
  }
  void EnteredUnauthenticated() { unauthenticated_.fetch_add(1, std::memory_order_relaxed); }
  void LeftUnauthenticated() { unauthenticated_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const uint32_t max_connections_per_source_;
  const bool limit_loopback_;
  const uint32_t max_unauthenticated_;
  std::atomic<uint32_t> unauthenticated_{0};
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, uint32_t> open_;  // by source; none at zero
  common::KeyedRateLimiter<uint64_t> source_logins_;
  common::RateLimit gateway_login_limit_;
  common::TokenBucket gateway_logins_;  // guarded by mutex_
};

}  // namespace im::gateway
