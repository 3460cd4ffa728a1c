#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "store/session_registry.h"

struct redisContext;
struct redisReply;

namespace im::store {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{1000};  // connect and per-command
};

// SessionRegistry on Redis (hiredis): hash im:sess:<uid>, field device, value
// "<gateway_id>|<conn_id>|<login_ms>", the whole hash expiring after the TTL unless refreshed.
// Compare-and-delete and compare-and-refresh run as Lua scripts so they are atomic in Redis.
// One blocking connection guarded by a mutex; after an I/O error it reconnects on the next call,
// and the failed call returns UNAVAILABLE.
class RedisSessionRegistry final : public SessionRegistry {
 public:
  RedisSessionRegistry(RedisOptions options, int64_t ttl_ms);
  ~RedisSessionRegistry() override;

  absl::StatusOr<std::optional<Session>> Register(std::string_view uid,
                                                  const Session& session) override;
  absl::StatusOr<bool> Unregister(std::string_view uid, std::string_view device,
                                  std::string_view gateway_id, uint64_t conn_id) override;
  absl::StatusOr<std::vector<Session>> Lookup(std::string_view uid) override;
  absl::StatusOr<std::vector<uint64_t>> Refresh(std::string_view gateway_id,
                                                const std::vector<SessionRef>& sessions) override;

  static std::string KeyOf(std::string_view uid);

 private:
  struct ReplyDeleter {
    void operator()(redisReply* reply) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  // Connects if needed. Requires mutex_.
  absl::Status EnsureConnected();
  // Runs one command given as arguments. Requires mutex_.
  absl::StatusOr<Reply> Command(const std::vector<std::string>& args);
  // Sends every command, then reads every reply (one round trip). Requires mutex_.
  absl::StatusOr<std::vector<Reply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);
  absl::Status Fail(std::string_view what);

  const RedisOptions options_;
  const int64_t ttl_ms_;
  std::mutex mutex_;
  redisContext* context_ = nullptr;
};

}  // namespace im::store
