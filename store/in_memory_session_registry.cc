#include "store/in_memory_session_registry.h"

#include <utility>

namespace im::store {

InMemorySessionRegistry::InMemorySessionRegistry(int64_t ttl_ms, Clock now_ms)
    : ttl_ms_(ttl_ms), now_ms_(std::move(now_ms)) {}

InMemorySessionRegistry::User* InMemorySessionRegistry::Live(std::string_view uid) {
  auto it = users_.find(uid);
  if (it == users_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms_()) {
    users_.erase(it);
    return nullptr;
  }
  return &it->second;
}

absl::StatusOr<std::optional<Session>> InMemorySessionRegistry::Register(std::string_view uid,
                                                                         const Session& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Live(uid) == nullptr) users_.erase(std::string(uid));
  User& user = users_[std::string(uid)];
  std::optional<Session> replaced;
  auto it = user.devices.find(session.device);
  if (it != user.devices.end() && !it->second.SameConnection(session)) replaced = it->second;
  user.devices[session.device] = session;
  user.expires_ms = now_ms_() + ttl_ms_;
  return replaced;
}

absl::StatusOr<bool> InMemorySessionRegistry::Unregister(std::string_view uid,
                                                         std::string_view device,
                                                         std::string_view gateway_id,
                                                         uint64_t conn_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  User* user = Live(uid);
  if (user == nullptr) return false;
  auto it = user->devices.find(std::string(device));
  if (it == user->devices.end() || it->second.gateway_id != gateway_id ||
      it->second.conn_id != conn_id) {
    return false;
  }
  user->devices.erase(it);
  if (user->devices.empty()) users_.erase(users_.find(uid));
  return true;
}

absl::StatusOr<std::vector<Session>> InMemorySessionRegistry::Lookup(std::string_view uid) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Session> sessions;
  if (User* user = Live(uid)) {
    for (const auto& [device, session] : user->devices) sessions.push_back(session);
  }
  return sessions;
}

absl::StatusOr<std::vector<uint64_t>> InMemorySessionRegistry::Refresh(
    std::string_view gateway_id, const std::vector<SessionRef>& sessions) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint64_t> stale;
  for (const SessionRef& ref : sessions) {
    User* user = Live(ref.uid);
    auto it = user ? user->devices.find(ref.device) : decltype(user->devices.end()){};
    if (user == nullptr || it == user->devices.end() || it->second.gateway_id != gateway_id ||
        it->second.conn_id != ref.conn_id) {
      stale.push_back(ref.conn_id);
      continue;
    }
    user->expires_ms = now_ms_() + ttl_ms_;
  }
  return stale;
}

}  // namespace im::store
