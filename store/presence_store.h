#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace im::store {

// A device that watches other users' presence.
struct Watcher {
  std::string uid;
  std::string device;

  bool operator==(const Watcher&) const = default;
};

// Who watches whose presence, when each user was last seen, and when each watched user is next
// checked for sessions that lapsed (DESIGN.md section 7: im:presence:*, im:seen:*). Watches expire
// unless renewed, so the watches of a device that went away end by themselves. Thread-safe; calls
// may block (network), so they run on the presence worker, never on an event loop.
class PresenceStore {
 public:
  virtual ~PresenceStore() = default;

  // Replaces what `watcher` watches with `targets` (none: nothing), each watch lasting until
  // `expires_ms`. A target that no longer watched drops `watcher` at once.
  virtual absl::Status Watch(const Watcher& watcher, const std::vector<std::string>& targets,
                             int64_t now_ms, int64_t expires_ms) = 0;

  // The devices watching each of `targets` (in that order) at `now_ms`, in (uid, device) order.
  virtual absl::StatusOr<std::vector<std::vector<Watcher>>> WatchersOf(
      const std::vector<std::string>& targets, int64_t now_ms) = 0;

  // The devices of `uids` changed at `now_ms`, and a device of each of `left` (some of `uids`)
  // went: records `now_ms` as the last-seen time of `left` (kept `seen_ttl_ms`; what a watcher
  // is told of a user found offline) and answers WatchersOf(uids), in one round trip where the
  // backend is remote.
  virtual absl::StatusOr<std::vector<std::vector<Watcher>>> Changed(
      const std::vector<std::string>& uids, const std::vector<std::string>& left, int64_t now_ms,
      int64_t seen_ttl_ms) = 0;
  // The last-seen time of each of `uids` (0: none recorded).
  virtual absl::StatusOr<std::vector<int64_t>> LastSeen(const std::vector<std::string>& uids) = 0;

  // Asks for each (uid, due_ms) that uid be checked by then; a uid already due earlier keeps the
  // earlier time.
  using Check = std::pair<std::string, int64_t>;
  virtual absl::Status ScheduleChecks(const std::vector<Check>& checks) = 0;

  // Drops the checks of `uids` (they went offline: nothing left to lapse).
  virtual absl::Status CancelChecks(const std::vector<std::string>& uids) = 0;

  // Takes at most `limit` uids due by `now_ms`, earliest first. Each scheduled check is taken
  // once, by one caller, however many logic nodes sweep.
  virtual absl::StatusOr<std::vector<std::string>> TakeDueChecks(int64_t now_ms, size_t limit) = 0;
};

}  // namespace im::store
