#pragma once

#include <memory>
#include <string>

#include "store/presence_store.h"
#include "store/redis_connection.h"

namespace im::store {

// PresenceStore on Redis:
// - im:presence:watchers:<target>: sorted set of "<uid>|<device>" scored by when the watch ends;
//   the key itself expires with its last watch;
// - im:presence:watching:<uid>|<device>: the set of targets that device watches (to undo a
//   replaced list), expiring with the watch;
// - im:seen:<uid>: the user's last-seen time (Unix ms), expiring after the time it is kept;
// - im:presence:checks: sorted set of uids scored by when each is due; TakeDueChecks pops with a
//   script, so of several logic nodes sweeping, each check goes to one.
// Neither uids nor devices hold '|' (checked at login and wherever a uid comes in).
class RedisPresenceStore final : public PresenceStore {
 public:
  // `checks_key`: where the checks are kept, kChecksKey for a cluster (one per Redis); a test
  // names its own, so that a cluster sweeping the same Redis meanwhile does not take its checks.
  explicit RedisPresenceStore(std::shared_ptr<RedisConnection> redis,
                              std::string checks_key = kChecksKey);

  absl::Status Watch(const Watcher& watcher, const std::vector<std::string>& targets,
                     int64_t now_ms, int64_t expires_ms) override;
  absl::StatusOr<std::vector<std::vector<Watcher>>> WatchersOf(
      const std::vector<std::string>& targets, int64_t now_ms) override;
  absl::StatusOr<std::vector<std::vector<Watcher>>> Changed(const std::vector<std::string>& uids,
                                                            const std::vector<std::string>& left,
                                                            int64_t now_ms,
                                                            int64_t seen_ttl_ms) override;
  absl::StatusOr<std::vector<int64_t>> LastSeen(const std::vector<std::string>& uids) override;
  absl::Status ScheduleChecks(const std::vector<Check>& checks) override;
  absl::Status CancelChecks(const std::vector<std::string>& uids) override;
  absl::StatusOr<std::vector<std::string>> TakeDueChecks(int64_t now_ms, size_t limit) override;

  static std::string WatchersKey(std::string_view target);
  static std::string LastSeenKey(std::string_view uid);
  static constexpr char kChecksKey[] = "im:presence:checks";

 private:
  // WatchersOf, its commands pipelined after `before` (whose replies are dropped).
  absl::StatusOr<std::vector<std::vector<Watcher>>> WatchersAfter(
      const std::vector<std::string>& targets, int64_t now_ms,
      std::vector<RedisConnection::Args> before);

  std::shared_ptr<RedisConnection> redis_;
  const std::string checks_key_;
  const std::string take_due_sha_;
};

}  // namespace im::store
