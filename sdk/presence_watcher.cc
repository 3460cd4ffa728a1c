#include "sdk/presence_watcher.h"

#include <limits>
#include <utility>

namespace im::sdk {
namespace {

// A send_at_ms_ that any time has reached.
constexpr int64_t kNow = std::numeric_limits<int64_t>::min();

}  // namespace

uint64_t PresenceWatcher::Watch(std::vector<std::string> uids) {
  uids_ = std::move(uids);
  watched_ = std::set<std::string>(uids_.begin(), uids_.end());
  std::erase_if(reported_, [this](const auto& entry) { return !watched_.contains(entry.first); });
  send_at_ms_ = kNow;
  return ++generation_;
}

void PresenceWatcher::OnLoggedIn() {
  answered_in_session_ = false;
  if (!uids_.empty() || answered_generation_ != generation_) send_at_ms_ = kNow;
}

std::optional<PresenceWatcher::Request> PresenceWatcher::TakeDue(int64_t now_ms) {
  if (on_wire_generation_ != 0 || !send_at_ms_ || now_ms < *send_at_ms_) return std::nullopt;
  send_at_ms_.reset();
  on_wire_generation_ = generation_;
  return Request{generation_, uids_};
}

std::vector<Presence> PresenceWatcher::OnAnswered(const std::vector<Presence>& presences,
                                                  uint32_t ttl_sec, int64_t now_ms) {
  const uint64_t generation = std::exchange(on_wire_generation_, 0);
  // A list given since is due already, and the first answer to it reports.
  if (generation != generation_) return {};
  const bool first = generation != answered_generation_;
  const bool renewal = !first && answered_in_session_;
  answered_generation_ = generation;
  answered_in_session_ = true;
  if (!uids_.empty() && ttl_sec > 0) send_at_ms_ = now_ms + int64_t{ttl_sec} * 1000 / 2;
  // On a live connection the pushes bring every change; and a renewal's answer, which travels
  // apart from them, may hold a state older than a push that overtook it.
  if (renewal) return {};
  return Report(presences, first);
}

void PresenceWatcher::OnFailed(bool retry, int64_t retry_at_ms) {
  const uint64_t generation = std::exchange(on_wire_generation_, 0);
  if (generation != generation_) return;
  if (retry) send_at_ms_ = retry_at_ms;
}

std::vector<Presence> PresenceWatcher::OnPush(const std::vector<Presence>& presences) {
  return Report(presences, false);
}

std::vector<Presence> PresenceWatcher::Report(const std::vector<Presence>& presences, bool all) {
  std::vector<Presence> report;
  for (const Presence& presence : presences) {
    if (!watched_.contains(presence.uid)) continue;
    Presence& last = reported_[presence.uid];
    if (!all && last == presence) continue;
    last = presence;
    report.push_back(presence);
  }
  return report;
}

}  // namespace im::sdk
