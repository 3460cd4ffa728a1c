#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "store/session_registry.h"

namespace im::store {

// SessionRegistry in process memory, for unit tests and the single-node mode. Expiry follows an
// injected clock (milliseconds), so tests need no sleeps.
class InMemorySessionRegistry final : public SessionRegistry {
 public:
  using Clock = common::MillisClock;

  InMemorySessionRegistry(int64_t ttl_ms, Clock now_ms);

  absl::StatusOr<std::optional<Session>> Register(std::string_view uid,
                                                  const Session& session) override;
  absl::StatusOr<bool> Unregister(std::string_view uid, std::string_view device,
                                  std::string_view gateway_id, uint64_t conn_id) override;
  absl::StatusOr<std::vector<Session>> Lookup(std::string_view uid) override;
  absl::StatusOr<std::vector<std::vector<Session>>> LookupMany(
      const std::vector<std::string>& uids) override;
  absl::StatusOr<std::vector<int64_t>> LapseInMs(const std::vector<std::string>& uids) override;
  absl::StatusOr<std::vector<uint64_t>> Refresh(std::string_view gateway_id,
                                                const std::vector<SessionRef>& sessions) override;

 private:
  struct User {
    std::map<std::string, Session> devices;
    int64_t expires_ms = 0;
  };
  // The user's entry if it has not expired (an expired one is erased). Requires mutex_.
  User* Live(std::string_view uid);
  // The live session of (uid, device) if it is at (gateway_id, conn_id). Requires mutex_.
  User* LiveAt(std::string_view uid, std::string_view device, std::string_view gateway_id,
               uint64_t conn_id);

  const int64_t ttl_ms_;
  Clock now_ms_;
  std::mutex mutex_;
  std::map<std::string, User, std::less<>> users_;
};

}  // namespace im::store
