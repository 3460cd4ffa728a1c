#include "gateway/source_limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace im::gateway {
namespace {

// Sources with logins tracked at once; past it a new source's logins pass untracked (the
// gateway's own login limit still holds).
constexpr size_t kMaxTrackedLoginSources = 1'000'000;
// IPv4 sources are counted in a range no IPv6 /64 a client connects from can have (ff00::/8 is
// multicast).
constexpr uint64_t kIpv4Tag = 0xffff'ffff'0000'0000ULL;

uint64_t Ipv4Source(const uint8_t* bytes) {
  uint32_t address = 0;
  std::memcpy(&address, bytes, sizeof(address));
  return kIpv4Tag | ntohl(address);
}

bool IsIpv4Loopback(uint64_t source) { return (source & 0xff00'0000ULL) == 0x7f00'0000ULL; }

}  // namespace

SourceLimits::SourceLimits(const GatewayOptions& options)
    : max_connections_per_source_(options.max_connections_per_ip),
      limit_loopback_(options.limit_loopback),
      max_unauthenticated_(options.max_unauthenticated_connections),
      source_logins_(common::RateLimit{options.login_rate_per_ip, options.login_burst_per_ip},
                     kMaxTrackedLoginSources),
      gateway_login_limit_{options.login_rate, options.login_burst} {}

uint64_t SourceLimits::SourceOf(const sockaddr_storage& address) const {
  uint64_t source = kExempt;
  bool loopback = false;
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    source = Ipv4Source(reinterpret_cast<const uint8_t*>(&v4.sin_addr));
    loopback = IsIpv4Loopback(source);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    const uint8_t* bytes = v6.sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {  // a dual-stack socket's IPv4 client
      source = Ipv4Source(bytes + 12);
      loopback = IsIpv4Loopback(source);
    } else {
      for (int i = 0; i < 8; ++i) source = source << 8 | bytes[i];
      // ::/64 holds no client but loopback; it must not read as kExempt when that is limited.
      if (source == kExempt) source = 1;
      loopback = IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr);
    }
  }
  return loopback && !limit_loopback_ ? kExempt : source;
}

bool SourceLimits::Open(uint64_t source) {
  if (source == kExempt || max_connections_per_source_ == 0) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t& open = open_[source];
  if (open >= max_connections_per_source_) return false;
  ++open;
  return true;
}

void SourceLimits::Close(uint64_t source) {
  if (source == kExempt || max_connections_per_source_ == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = open_.find(source);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

int64_t SourceLimits::TakeLogin(uint64_t source, int64_t now_ms) {
  if (source != kExempt) {
    if (int64_t wait_ms = source_logins_.Take(source, now_ms); wait_ms > 0) return wait_ms;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return gateway_logins_.Take(gateway_login_limit_, now_ms);
}

size_t SourceLimits::tracked_sources() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_.size();
}

}  // namespace im::gateway
