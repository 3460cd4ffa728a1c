#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/delivery/pusher.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/session/session_service.h"
#include "store/message_store.h"
#include "store/presence_store.h"
#include "store/session_registry.h"

namespace im::logic {

// Where PresenceService keeps and finds things. Every pointer outlives the service.
struct PresenceDependencies {
  store::SessionRegistry* sessions;  // who is online, on which devices
  store::PresenceStore* watches;     // who watches whom, last seen, the lapse checks
  store::MessageStore* messages;     // who shares a conversation with whom
  Pusher* pusher;
  LogicMetrics* metrics;
};

// Presence (DESIGN.md section 6): a device watches the users it names (PresenceSubscribeReq),
// among those it shares a conversation with, and gets their state at once and PresencePush on
// every change. A change is a login or a disconnect (DevicesChanged, from SessionService) or
// sessions that lapsed because their gateway died (found by the sweep). Changes are published
// from one worker thread: each user at most once per presence_push_interval_ms, with its state
// when the push goes, so a flapping connection costs its watchers one push per interval.
class PresenceService {
 public:
  template <typename Response>
  using Respond = absl::AnyInvocable<void(Response) &&>;
  using Clock = common::MillisClock;  // Unix milliseconds

  PresenceService(const LogicOptions& options, PresenceDependencies deps, Clock now_ms);
  ~PresenceService();  // Stop()

  // Starts the worker that publishes changes and sweeps for lapsed sessions.
  void Start();
  // Ends the worker; changes not yet published are dropped (their watchers see the state on
  // their next PresenceSubscribeReq). Idempotent.
  void Stop();

  // Replaces the calling device's watch list; answers the watched users' states. Blocks on the
  // stores: on the store executor.
  void Subscribe(const im::v1::PresenceSubscribeRequest& request,
                 Respond<im::v1::PresenceSubscribeResp> respond);
  // The devices of `uids` changed (a login, a disconnect): their watchers hear of it, and a
  // departure is their last-seen time. Never blocks; any thread.
  void DevicesChanged(const std::vector<std::string>& uids, DeviceChange change);

  // One round of the worker's work at `now_ms`, on the caller's thread: publishes the changes
  // whose time has come and, when `sweep`, takes the due lapse checks. For tests.
  void RunOnce(int64_t now_ms, bool sweep);

 private:
  // The states of `uids` now: their sessions' devices, and last seen for those offline.
  absl::StatusOr<std::vector<im::v1::Presence>> StatesOf(const std::vector<std::string>& uids);
  // Users whose devices changed, and those of them a device of which left.
  struct Changes {
    std::vector<std::string> uids;
    std::vector<std::string> left;
  };
  // Records `now_ms` as the last-seen time of `changes.left` and publishes the state of the
  // watched ones among `changes.uids` to their watchers: one round trip for the batch, and the
  // sessions of the watched ones. Schedules lapse checks for the watched online ones.
  void Publish(const Changes& changes, int64_t now_ms);
  // Pushes each watcher device the states of the users it watches among `states`.
  void PushToWatchers(const std::vector<im::v1::Presence>& states,
                      const std::vector<std::vector<store::Watcher>>& watchers);
  // Checks the due users whose sessions may have lapsed; publishes those that did, and checks
  // the others again when theirs would lapse.
  void Sweep(int64_t now_ms);
  // Takes the pending changes due by `now_ms` (at most a batch).
  Changes TakeDueChanges(int64_t now_ms);
  void Work();

  const LogicOptions& options_;
  const PresenceDependencies deps_;
  Clock now_ms_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  // Changes waiting for their publish: uid -> when it may go (and whether a device left), and
  // the same by time. mutex_.
  struct Pending {
    int64_t due_ms = 0;
    bool left = false;
  };
  std::map<std::string, Pending> pending_;
  std::set<std::pair<int64_t, std::string>> pending_by_time_;
  std::map<std::string, int64_t> published_ms_;  // uid -> its last publish, lately; mutex_
  int64_t next_sweep_ms_ = 0;                    // the worker's only
  std::thread worker_;
};

}  // namespace im::logic
