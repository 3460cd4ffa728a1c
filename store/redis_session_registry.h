#pragma once

#include <memory>
#include <string>

#include "store/redis_async_client.h"
#include "store/redis_connection.h"
#include "store/session_registry.h"

namespace im::store {

// SessionRegistry on Redis (hiredis): hash im:sess:<uid>, field device, value
// "<gateway_id>|<conn_id>|<login_ms>", the whole hash expiring after the TTL unless refreshed.
// Compare-and-delete and compare-and-refresh run as Lua scripts so they are atomic in Redis.
// Calls block on Redis (see RedisConnection).
class RedisSessionRegistry final : public SessionRegistry {
 public:
  RedisSessionRegistry(std::shared_ptr<RedisConnection> redis, int64_t ttl_ms);
  ~RedisSessionRegistry() override;

  absl::StatusOr<std::optional<Session>> Register(std::string_view uid,
                                                  const Session& session) override;
  std::vector<absl::StatusOr<Registered>> RegisterAndList(
      const std::vector<Registration>& registrations) override;
  absl::StatusOr<bool> Unregister(std::string_view uid, std::string_view device,
                                  std::string_view gateway_id, uint64_t conn_id) override;
  absl::StatusOr<std::vector<Session>> Lookup(std::string_view uid) override;
  absl::StatusOr<std::vector<std::vector<Session>>> LookupMany(
      const std::vector<std::string>& uids) override;
  absl::StatusOr<size_t> UnregisterMany(std::string_view gateway_id,
                                        const std::vector<SessionRef>& sessions) override;
  absl::StatusOr<std::vector<int64_t>> LapseInMs(const std::vector<std::string>& uids) override;
  absl::StatusOr<std::vector<uint64_t>> Refresh(std::string_view gateway_id,
                                                const std::vector<SessionRef>& sessions) override;

  static std::string KeyOf(std::string_view uid);

 private:
  const int64_t ttl_ms_;
  std::shared_ptr<RedisConnection> redis_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string register_sha_;
  const std::string unregister_sha_;
  const std::string refresh_sha_;
};

// The same hashes, with the same scripts, on a logic event loop's RedisAsyncClient: a batch's
// commands leave in one write with whatever else the loop issues in that iteration. `redis`
// outlives it.
class RedisAsyncSessionRegistry final : public AsyncSessionRegistry {
 public:
  RedisAsyncSessionRegistry(RedisAsyncClient* redis, int64_t ttl_ms);

  void LookupMany(const std::vector<std::string>& uids, LookupDone done) override;
  void RegisterAndList(const std::vector<Registration>& registrations, RegisterDone done) override;
  void UnregisterAll(const std::vector<Registration>& sessions, Done done) override;

 private:
  RedisAsyncClient* redis_;
  const int64_t ttl_ms_;
  const std::string register_sha_;
  const std::string unregister_sha_;
};

}  // namespace im::store
