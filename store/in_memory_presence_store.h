#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/presence_store.h"

namespace im::store {

// PresenceStore in process memory, for unit tests and the single-node mode.
class InMemoryPresenceStore final : public PresenceStore {
 public:
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

 private:
  using WatcherKey = std::pair<std::string, std::string>;  // uid, device
  struct Watching {
    std::set<std::string> targets;
    int64_t expires_ms = 0;
  };

  std::mutex mutex_;
  std::map<WatcherKey, Watching> watching_;
  // target -> watcher -> until when
  std::map<std::string, std::map<WatcherKey, int64_t>> watchers_;
  std::map<std::string, int64_t> last_seen_ms_;  // kept as long as the process (tests, one node)
  std::map<std::string, int64_t> due_by_uid_;
  std::set<std::pair<int64_t, std::string>> due_;  // (due_ms, uid), earliest first
};

}  // namespace im::store
