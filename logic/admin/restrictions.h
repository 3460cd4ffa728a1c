#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "store/restriction_store.h"

namespace im::logic {

// The mutes and token revocations in force, as this node knows them: a snapshot in memory, so
// that checking one costs no round trip on the send and login paths. It is reloaded from the
// RestrictionStore whenever the store's version moves (looked at every `reload_every`), and the
// admin API calls this node serves change it at once. A change made through another node is in
// force here within `reload_every`; while the store does not answer, the last snapshot stays.
class Restrictions {
 public:
  // `store` outlives this.
  Restrictions(store::RestrictionStore* store, common::MillisClock now_ms,
               std::chrono::milliseconds reload_every);
  ~Restrictions();
  Restrictions(const Restrictions&) = delete;
  Restrictions& operator=(const Restrictions&) = delete;

  // Loads what is in force (a failure is logged: the reloader tries again), then reloads in the
  // background until Stop.
  void Start();
  void Stop();

  // Any thread, without blocking. 0: none in force.
  int64_t UserMutedUntil(const std::string& uid) const;
  int64_t GroupMutedUntil(const std::string& group_id) const;
  // Tokens of uid issued before this (Unix ms) are refused.
  int64_t TokensRevokedBefore(const std::string& uid) const;

  // The admin API's changes: written to the store (blocks), then in force here.
  absl::Status Put(const store::Restriction& restriction);
  absl::StatusOr<bool> Remove(store::RestrictionKind kind, const std::string& subject);

 private:
  using Key = std::pair<store::RestrictionKind, std::string>;
  using Snapshot = std::map<Key, store::Restriction>;

  // The restriction (kind, subject) while in force.
  std::optional<store::Restriction> Find(store::RestrictionKind kind,
                                         const std::string& subject) const;
  // Loads every restriction in force when the store's version moved since the last load.
  void ReloadIfChanged();
  void ReloadLoop();
  std::shared_ptr<const Snapshot> Current() const;
  // A copy of the snapshot changed by `change`, put in force.
  template <typename Change>
  void Edit(Change change);

  store::RestrictionStore* const store_;
  const common::MillisClock now_ms_;
  const std::chrono::milliseconds reload_every_;

  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by mutex_; never null
  // Whether snapshot_ is empty (the usual case): every send and login asks, so this answers
  // without the mutex.
  std::atomic<bool> none_{true};
  std::optional<uint64_t> loaded_version_;  // guarded by mutex_; none: nothing loaded yet
  bool stopping_ = false;                   // guarded by mutex_
  std::condition_variable wake_;
  std::thread reloader_;
};

}  // namespace im::logic
