#include "logic/presence/presence_service.h"

#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/reply_status.h"

namespace im::logic {
namespace {

// Users published, or checked for lapsed sessions, per round trip.
constexpr size_t kBatch = 500;
// A lapse check goes this long after the sessions' expiry, so that Redis has expired them.
constexpr int64_t kLapseMarginMs = 100;

im::v1::Presence PresenceOf(const std::string& uid, const std::vector<store::Session>& sessions) {
  im::v1::Presence presence;
  presence.set_uid(uid);
  presence.set_online(!sessions.empty());
  for (const store::Session& session : sessions) {
    presence.add_devices(session.device);
    presence.add_platforms(session.platform);
  }
  return presence;
}

}  // namespace

PresenceService::PresenceService(const LogicOptions& options, PresenceDependencies deps,
                                 Clock now_ms)
    : options_(options), deps_(deps), now_ms_(std::move(now_ms)) {}

PresenceService::~PresenceService() { Stop(); }

void PresenceService::Start() {
  next_sweep_ms_ = now_ms_() + options_.presence_sweep_interval_ms;
  worker_ = std::thread([this] { Work(); });
}

void PresenceService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void PresenceService::Subscribe(const im::v1::PresenceSubscribeRequest& request,
                                Respond<im::v1::PresenceSubscribeResp> respond) {
  const im::v1::Caller& caller = request.caller();
  im::v1::PresenceSubscribeResp resp;
  auto refuse = [&](im::v1::Code code, std::string message) {
    SetStatus(resp.mutable_status(), code, std::move(message));
    std::move(respond)(std::move(resp));
  };
  if (static_cast<size_t>(request.req().uids_size()) > options_.presence_max_watch) {
    return refuse(im::v1::INVALID_ARGUMENT,
                  fmt::format("at most {} users may be watched", options_.presence_max_watch));
  }
  for (const std::string& uid : request.req().uids()) {
    if (!IsValidUid(uid)) return refuse(im::v1::INVALID_ARGUMENT, "uids holds an invalid uid");
  }
  std::vector<std::string> candidates(request.req().uids().begin(), request.req().uids().end());
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

  absl::StatusOr<std::vector<std::string>> peers =
      candidates.empty() ? std::vector<std::string>()
                         : deps_.messages->ConversationPeers(caller.uid(), candidates);
  if (!peers.ok()) return refuse(CodeOf(peers.status()), std::string(peers.status().message()));
  std::set_difference(candidates.begin(), candidates.end(), peers->begin(), peers->end(),
                      google::protobuf::RepeatedFieldBackInserter(resp.mutable_refused()));
  const int64_t now_ms = now_ms_();
  const int64_t ttl_ms = int64_t{options_.presence_watch_ttl_sec} * 1000;
  if (absl::Status status =
          deps_.watches->Watch({caller.uid(), caller.device()}, *peers, now_ms, now_ms + ttl_ms);
      !status.ok()) {
    return refuse(CodeOf(status), std::string(status.message()));
  }
  absl::StatusOr<std::vector<im::v1::Presence>> states = StatesOf(*peers);
  if (!states.ok()) return refuse(CodeOf(states.status()), std::string(states.status().message()));
  std::vector<store::PresenceStore::Check> checks;
  for (im::v1::Presence& state : *states) {
    if (state.online()) {
      checks.emplace_back(state.uid(), now_ms + int64_t{options_.session_ttl_sec} * 1000);
    }
    *resp.add_presences() = std::move(state);
  }
  if (absl::Status status = deps_.watches->ScheduleChecks(checks); !status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence lapse checks not scheduled: {}",
                        status.ToString());
  }
  SetStatus(resp.mutable_status(), im::v1::OK);
  resp.set_ttl_sec(options_.presence_watch_ttl_sec);
  std::move(respond)(std::move(resp));
}

absl::StatusOr<std::vector<im::v1::Presence>> PresenceService::StatesOf(
    const std::vector<std::string>& uids) {
  std::vector<im::v1::Presence> states;
  if (uids.empty()) return states;
  absl::StatusOr<std::vector<std::vector<store::Session>>> sessions =
      deps_.sessions->LookupMany(uids);
  if (!sessions.ok()) return sessions.status();
  std::vector<std::string> offline;
  for (size_t i = 0; i < uids.size(); ++i) {
    states.push_back(PresenceOf(uids[i], (*sessions)[i]));
    if (!states.back().online()) offline.push_back(uids[i]);
  }
  if (offline.empty()) return states;
  absl::StatusOr<std::vector<int64_t>> seen = deps_.watches->LastSeen(offline);
  if (!seen.ok()) return seen.status();
  auto next_seen = seen->begin();
  for (im::v1::Presence& state : states) {
    if (!state.online()) state.set_last_seen_ms(*next_seen++);
  }
  return states;
}

void PresenceService::DevicesChanged(const std::vector<std::string>& uids, DeviceChange change) {
  const int64_t now_ms = now_ms_();
  const bool left = change == DeviceChange::kLeft;
  bool added = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& uid : uids) {
      auto waiting = pending_.find(uid);
      if (waiting != pending_.end()) {  // its publish will carry the latest state
        waiting->second.left |= left;
        continue;
      }
      if (pending_.size() >= options_.presence_max_pending) {
        deps_.metrics->presence_dropped.Increment();
        continue;
      }
      auto published = published_ms_.find(uid);
      const int64_t due_ms =
          published == published_ms_.end()
              ? now_ms
              : std::max(now_ms, published->second + options_.presence_push_interval_ms);
      pending_.emplace(uid, Pending{due_ms, left});
      pending_by_time_.emplace(due_ms, uid);
      added = true;
    }
  }
  if (added) wake_.notify_one();
}

PresenceService::Changes PresenceService::TakeDueChanges(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  Changes due;
  while (!pending_by_time_.empty() && due.uids.size() < kBatch &&
         pending_by_time_.begin()->first <= now_ms) {
    const std::string& uid = pending_by_time_.begin()->second;
    auto pending = pending_.find(uid);
    if (pending->second.left) due.left.push_back(uid);
    due.uids.push_back(uid);
    published_ms_[uid] = now_ms;
    pending_.erase(pending);
    pending_by_time_.erase(pending_by_time_.begin());
  }
  return due;
}

void PresenceService::Publish(const Changes& changes, int64_t now_ms) {
  const std::vector<std::string>& uids = changes.uids;
  const int64_t seen_ttl_ms = int64_t{options_.presence_last_seen_days} * 86'400'000;
  absl::StatusOr<std::vector<std::vector<store::Watcher>>> all_watchers =
      deps_.watches->Changed(uids, changes.left, now_ms, seen_ttl_ms);
  if (!all_watchers.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence of {} users not recorded: {}", uids.size(),
                        all_watchers.status().ToString());
    return;
  }
  deps_.metrics->presence_published.Increment(static_cast<double>(uids.size()));
  // Only the watched ones cost more: their sessions, their pushes, their checks.
  std::vector<std::string> watched;
  std::vector<std::vector<store::Watcher>> watchers;
  for (size_t i = 0; i < uids.size(); ++i) {
    if ((*all_watchers)[i].empty()) continue;
    watched.push_back(uids[i]);
    watchers.push_back(std::move((*all_watchers)[i]));
  }
  if (watched.empty()) return;
  absl::StatusOr<std::vector<std::vector<store::Session>>> sessions =
      deps_.sessions->LookupMany(watched);
  if (!sessions.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence of {} users not published: {}",
                        watched.size(), sessions.status().ToString());
    return;
  }
  std::vector<im::v1::Presence> states;
  std::vector<std::string> offline;
  std::vector<store::PresenceStore::Check> checks;
  const int64_t check_ms = now_ms + int64_t{options_.session_ttl_sec} * 1000 + kLapseMarginMs;
  for (size_t i = 0; i < watched.size(); ++i) {
    states.push_back(PresenceOf(watched[i], (*sessions)[i]));
    if (states.back().online()) {
      checks.emplace_back(watched[i], check_ms);  // to notice if its gateway dies
    } else {
      states.back().set_last_seen_ms(now_ms);
      offline.push_back(watched[i]);  // nothing left to lapse
    }
  }
  absl::Status status = deps_.watches->CancelChecks(offline);
  if (status.ok()) status = deps_.watches->ScheduleChecks(checks);
  if (!status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence lapse checks not kept: {}",
                        status.ToString());
  }
  PushToWatchers(states, watchers);
}

void PresenceService::PushToWatchers(const std::vector<im::v1::Presence>& states,
                                     const std::vector<std::vector<store::Watcher>>& watchers) {
  // Each watching device gets one frame with every state it watches among these.
  std::map<std::pair<std::string, std::string>, im::v1::Frame> frames;
  for (size_t i = 0; i < states.size(); ++i) {
    for (const store::Watcher& watcher : watchers[i]) {
      *frames[{watcher.uid, watcher.device}].mutable_presence_push()->add_presences() = states[i];
    }
  }
  if (frames.empty()) return;
  std::vector<std::string> watcher_uids;
  for (const auto& [device, frame] : frames) {
    if (watcher_uids.empty() || watcher_uids.back() != device.first) {
      watcher_uids.push_back(device.first);
    }
  }
  absl::StatusOr<std::vector<std::vector<store::Session>>> sessions =
      deps_.sessions->LookupMany(watcher_uids);
  if (!sessions.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence pushes not sent: {}",
                        sessions.status().ToString());
    return;
  }
  size_t next_uid = 0;
  for (const auto& [device, frame] : frames) {
    while (watcher_uids[next_uid] != device.first) ++next_uid;
    for (const store::Session& session : (*sessions)[next_uid]) {
      if (session.device != device.second) continue;
      deps_.pusher->Push(SerializePush(frame), {PushTarget{device.first, session}});
      deps_.metrics->presence_pushes.Increment();
    }
  }
}

void PresenceService::Sweep(int64_t now_ms) {
  absl::StatusOr<std::vector<std::string>> due = deps_.watches->TakeDueChecks(now_ms, kBatch);
  if (!due.ok() || due->empty()) {
    if (!due.ok()) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence lapse checks not taken: {}",
                          due.status().ToString());
    }
    return;
  }
  absl::StatusOr<std::vector<int64_t>> lapse_in_ms = deps_.sessions->LapseInMs(*due);
  if (!lapse_in_ms.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence lapse checks failed: {}",
                        lapse_in_ms.status().ToString());
    return;  // dropped: those users are checked again at their next change or subscribe
  }
  std::vector<std::string> lapsed;
  std::vector<store::PresenceStore::Check> later;
  for (size_t i = 0; i < due->size(); ++i) {
    if ((*lapse_in_ms)[i] == 0) {
      lapsed.push_back((*due)[i]);
    } else {
      later.emplace_back((*due)[i], now_ms + (*lapse_in_ms)[i] + kLapseMarginMs);
    }
  }
  if (absl::Status status = deps_.watches->ScheduleChecks(later); !status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "presence lapse checks not rescheduled: {}",
                        status.ToString());
  }
  if (lapsed.empty()) return;
  // A check outlives the watch that made it: a user no longer watched who left normally (its
  // last-seen time then right) is dropped here, not published as leaving now.
  absl::StatusOr<std::vector<std::vector<store::Watcher>>> watchers =
      deps_.watches->WatchersOf(lapsed, now_ms);
  if (!watchers.ok()) return;  // checked again at their next change
  std::vector<std::string> watched;
  for (size_t i = 0; i < lapsed.size(); ++i) {
    if (!(*watchers)[i].empty()) watched.push_back(lapsed[i]);
  }
  if (watched.empty()) return;
  deps_.metrics->presence_lapsed.Increment(static_cast<double>(watched.size()));
  spdlog::debug("presence: {} watched users' sessions lapsed", watched.size());
  Publish({watched, watched}, now_ms);  // the lapse is when they left, as near as known
}

void PresenceService::RunOnce(int64_t now_ms, bool sweep) {
  for (Changes due = TakeDueChanges(now_ms); !due.uids.empty(); due = TakeDueChanges(now_ms)) {
    Publish(due, now_ms);
  }
  if (!sweep) return;
  Sweep(now_ms);
  // Publishes older than the interval no longer hold a change back.
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(published_ms_, [&](const auto& entry) {
    return entry.second + options_.presence_push_interval_ms <= now_ms;
  });
}

void PresenceService::Work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const int64_t now_ms = now_ms_();
    int64_t wake_ms = next_sweep_ms_;
    if (!pending_by_time_.empty()) wake_ms = std::min(wake_ms, pending_by_time_.begin()->first);
    if (wake_ms > now_ms) {
      wake_.wait_for(lock, std::chrono::milliseconds(wake_ms - now_ms));
      continue;  // woken early by a change, or on time: look again
    }
    const bool sweep = now_ms >= next_sweep_ms_;
    if (sweep) next_sweep_ms_ = now_ms + options_.presence_sweep_interval_ms;
    lock.unlock();
    RunOnce(now_ms, sweep);
    lock.lock();
  }
}

}  // namespace im::logic
