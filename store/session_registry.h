#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace im::store {

// Where one device of a user is connected.
struct Session {
  std::string device;
  std::string gateway_id;
  uint64_t conn_id = 0;
  int64_t login_ms = 0;
  std::string platform;  // as the device said at login ("ios", "android", "web", ...; may be "")

  bool IsAt(std::string_view gateway, uint64_t conn) const {
    return gateway_id == gateway && conn_id == conn;
  }
  bool SameConnection(const Session& other) const { return IsAt(other.gateway_id, other.conn_id); }
};

// A session a gateway still holds, as it reports it in a refresh.
struct SessionRef {
  std::string uid;
  std::string device;
  uint64_t conn_id = 0;
};

// Which connection each device of each user is on (DESIGN.md section 7: im:sess:<uid>).
// Sessions expire unless refreshed, so the sessions of a gateway that died go away by themselves.
// Implementations are thread-safe; calls may block (network), so callers run them on the logic
// tier's store executor, never on an event loop or in a gRPC reaction.
class SessionRegistry {
 public:
  virtual ~SessionRegistry() = default;

  // Records `session` for (uid, session.device), replacing any older one, and (re)arms the
  // user's expiry. Returns the replaced session when it was on another connection, so the
  // caller can kick it.
  virtual absl::StatusOr<std::optional<Session>> Register(std::string_view uid,
                                                          const Session& session) = 0;

  // One login's registration: `session` for `uid`.
  struct Registration {
    std::string uid;
    Session session;
  };
  // A registration as it landed: the session it replaced when that was on another connection
  // (the caller kicks it), and every session of the user right after it (for the device cap).
  struct Registered {
    std::optional<Session> replaced;
    std::vector<Session> all;  // in device order
  };
  // Register, then Lookup, for each of `registrations` in order (so each sees the ones before
  // it, a user's two logins in one batch included), in one round trip where the backend is
  // remote; each has its own outcome. This default calls Register and Lookup for each.
  virtual std::vector<absl::StatusOr<Registered>> RegisterAndList(
      const std::vector<Registration>& registrations) {
    std::vector<absl::StatusOr<Registered>> outcomes;
    outcomes.reserve(registrations.size());
    for (const auto& [uid, session] : registrations) {
      absl::StatusOr<std::optional<Session>> replaced = Register(uid, session);
      absl::StatusOr<std::vector<Session>> all =
          replaced.ok() ? Lookup(uid) : absl::StatusOr<std::vector<Session>>(replaced.status());
      if (!all.ok()) {
        outcomes.push_back(all.status());
      } else {
        outcomes.push_back(Registered{std::move(*replaced), std::move(*all)});
      }
    }
    return outcomes;
  }

  // Removes (uid, device) only if it still points at (gateway_id, conn_id): a late disconnect from
  // an old connection never removes a newer login. Returns whether it removed anything.
  virtual absl::StatusOr<bool> Unregister(std::string_view uid, std::string_view device,
                                          std::string_view gateway_id, uint64_t conn_id) = 0;

  // Unregister for each of `sessions` (all on `gateway_id`), in one round trip where the backend
  // is remote; returns how many were removed. This default calls Unregister for each.
  virtual absl::StatusOr<size_t> UnregisterMany(std::string_view gateway_id,
                                                const std::vector<SessionRef>& sessions) {
    size_t removed = 0;
    for (const SessionRef& ref : sessions) {
      absl::StatusOr<bool> one = Unregister(ref.uid, ref.device, gateway_id, ref.conn_id);
      if (!one.ok()) return one.status();
      removed += *one ? 1 : 0;
    }
    return removed;
  }

  // Every live session of `uid`, in device order.
  virtual absl::StatusOr<std::vector<Session>> Lookup(std::string_view uid) = 0;

  // The live sessions of each of `uids` (in that order), in one round trip: group fan-out looks
  // up hundreds of members at once.
  virtual absl::StatusOr<std::vector<std::vector<Session>>> LookupMany(
      const std::vector<std::string>& uids) = 0;

  // How long each of `uids` (in that order) keeps its sessions unless a gateway refreshes them,
  // in ms; 0: it has none. Presence checks use it to notice, soon after, a user whose only
  // gateway died (its sessions lapse instead of being removed).
  virtual absl::StatusOr<std::vector<int64_t>> LapseInMs(const std::vector<std::string>& uids) = 0;

  // Re-arms the expiry of each listed session that still points at (gateway_id, conn_id);
  // returns the conn ids of those that do not (expired or taken over).
  virtual absl::StatusOr<std::vector<uint64_t>> Refresh(
      std::string_view gateway_id, const std::vector<SessionRef>& sessions) = 0;
};

// The SessionRegistry calls a logic event loop makes without blocking (it owns the client; used
// on its thread only): the batch lookup of a delivery and the registrations of a batch of logins.
// Every `done` runs on that thread.
class AsyncSessionRegistry {
 public:
  using Registration = SessionRegistry::Registration;
  using Registered = SessionRegistry::Registered;
  using LookupDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::vector<Session>>>) &&>;
  using RegisterDone = absl::AnyInvocable<void(std::vector<absl::StatusOr<Registered>>) &&>;
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~AsyncSessionRegistry() = default;
  // SessionRegistry::LookupMany.
  virtual void LookupMany(const std::vector<std::string>& uids, LookupDone done) = 0;
  // SessionRegistry::RegisterAndList.
  virtual void RegisterAndList(const std::vector<Registration>& registrations,
                               RegisterDone done) = 0;
  // SessionRegistry::Unregister for each of `sessions` (a session is removed only while it still
  // points at that connection); `done` says whether every command was answered.
  virtual void UnregisterAll(const std::vector<Registration>& sessions, Done done) = 0;
};

}  // namespace im::store
