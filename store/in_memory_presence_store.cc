#include "store/in_memory_presence_store.h"

namespace im::store {

absl::Status InMemoryPresenceStore::Watch(const Watcher& watcher,
                                          const std::vector<std::string>& targets,
                                          int64_t /*now_ms*/, int64_t expires_ms) {
  const WatcherKey key{watcher.uid, watcher.device};
  std::lock_guard<std::mutex> lock(mutex_);
  Watching& watching = watching_[key];
  for (const std::string& target : watching.targets) {
    auto it = watchers_.find(target);
    if (it == watchers_.end()) continue;
    it->second.erase(key);
    if (it->second.empty()) watchers_.erase(it);
  }
  watching.targets = std::set<std::string>(targets.begin(), targets.end());
  watching.expires_ms = expires_ms;
  for (const std::string& target : watching.targets) watchers_[target][key] = expires_ms;
  if (watching.targets.empty()) watching_.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<Watcher>>> InMemoryPresenceStore::WatchersOf(
    const std::vector<std::string>& targets, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::vector<Watcher>> all(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    auto it = watchers_.find(targets[i]);
    if (it == watchers_.end()) continue;
    for (auto watch = it->second.begin(); watch != it->second.end();) {
      if (watch->second <= now_ms) {  // lapsed: not renewed in time
        watch = it->second.erase(watch);
        continue;
      }
      all[i].push_back(Watcher{watch->first.first, watch->first.second});
      ++watch;
    }
  }
  return all;
}

absl::StatusOr<std::vector<std::vector<Watcher>>> InMemoryPresenceStore::Changed(
    const std::vector<std::string>& uids, const std::vector<std::string>& left, int64_t now_ms,
    int64_t /*seen_ttl_ms*/) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& uid : left) last_seen_ms_[uid] = now_ms;
  }
  return WatchersOf(uids, now_ms);
}

absl::StatusOr<std::vector<int64_t>> InMemoryPresenceStore::LastSeen(
    const std::vector<std::string>& uids) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> seen;
  seen.reserve(uids.size());
  for (const std::string& uid : uids) {
    auto it = last_seen_ms_.find(uid);
    seen.push_back(it == last_seen_ms_.end() ? 0 : it->second);
  }
  return seen;
}

absl::Status InMemoryPresenceStore::ScheduleChecks(const std::vector<Check>& checks) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [uid, due_ms] : checks) {
    auto [it, added] = due_by_uid_.emplace(uid, due_ms);
    if (!added) {
      if (it->second <= due_ms) continue;
      due_.erase({it->second, uid});
      it->second = due_ms;
    }
    due_.emplace(due_ms, uid);
  }
  return absl::OkStatus();
}

absl::Status InMemoryPresenceStore::CancelChecks(const std::vector<std::string>& uids) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& uid : uids) {
    auto it = due_by_uid_.find(uid);
    if (it == due_by_uid_.end()) continue;
    due_.erase({it->second, uid});
    due_by_uid_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> InMemoryPresenceStore::TakeDueChecks(int64_t now_ms,
                                                                              size_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> taken;
  while (!due_.empty() && taken.size() < limit && due_.begin()->first <= now_ms) {
    taken.push_back(due_.begin()->second);
    due_by_uid_.erase(due_.begin()->second);
    due_.erase(due_.begin());
  }
  return taken;
}

}  // namespace im::store
