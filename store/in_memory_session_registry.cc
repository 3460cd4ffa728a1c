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

InMemorySessionRegistry::User* InMemorySessionRegistry::LiveAt(std::string_view uid,
                                                               std::string_view device,
                                                               std::string_view gateway_id,
                                                               uint64_t conn_id) {
  User* user = Live(uid);
  if (user == nullptr) return nullptr;
  auto it = user->devices.find(std::string(device));
  return it != user->devices.end() && it->second.IsAt(gateway_id, conn_id) ? user : nullptr;
}

absl::StatusOr<bool> InMemorySessionRegistry::Unregister(std::string_view uid,
                                                         std::string_view device,
                                                         std::string_view gateway_id,
                                                         uint64_t conn_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  User* user = LiveAt(uid, device, gateway_id, conn_id);
  if (user == nullptr) return false;
  user->devices.erase(std::string(device));
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

absl::StatusOr<std::vector<std::vector<Session>>> InMemorySessionRegistry::LookupMany(
    const std::vector<std::string>& uids) {
  std::vector<std::vector<Session>> all;
  all.reserve(uids.size());
  for (const std::string& uid : uids) all.push_back(*Lookup(uid));
  return all;
}

absl::StatusOr<std::vector<int64_t>> InMemorySessionRegistry::LapseInMs(
    const std::vector<std::string>& uids) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> lapse_in_ms;
  lapse_in_ms.reserve(uids.size());
  for (const std::string& uid : uids) {
    const User* user = Live(uid);
    lapse_in_ms.push_back(user == nullptr ? 0 : user->expires_ms - now_ms_());
  }
  return lapse_in_ms;
}

absl::StatusOr<std::vector<uint64_t>> InMemorySessionRegistry::Refresh(
    std::string_view gateway_id, const std::vector<SessionRef>& sessions) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint64_t> stale;
  for (const SessionRef& ref : sessions) {
    if (User* user = LiveAt(ref.uid, ref.device, gateway_id, ref.conn_id)) {
      user->expires_ms = now_ms_() + ttl_ms_;
    } else {
      stale.push_back(ref.conn_id);
    }
  }
  return stale;
}

}  // namespace im::store
