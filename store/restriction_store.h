#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace im::store {

// What an administrator put on a user or a group (the admin API): a mute, or a revocation of
// tokens.
enum class RestrictionKind {
  kUserMute = 1,   // the user's sends are refused until `until_ms`
  kGroupMute = 2,  // the group's MEMBERs (not its OWNER or ADMINs) may not send until `until_ms`
  // Tokens of the user issued before `since_ms` are refused until `until_ms` (by then they
  // have expired: the revocation is kept as long as a token may live).
  kTokenRevocation = 3,
};

struct Restriction {
  RestrictionKind kind = RestrictionKind::kUserMute;
  std::string subject;   // a uid, or a group id for kGroupMute
  int64_t since_ms = 0;  // Unix ms: when it was put (kTokenRevocation: tokens issued before it)
  int64_t until_ms = 0;  // Unix ms: it lapses then
};

// Restrictions every logic node applies (logic/admin/restrictions.h keeps them in memory and
// reloads them whenever Version moves), so that checking one costs no round trip on the send or
// login path. Few (an app mutes hundreds, not millions), so each node loads them all.
// Backends: Redis (a cluster), SQLite (the embedded node: revocations survive a restart),
// memory (tests). Thread-safe; calls may block, so they run off event loops.
class RestrictionStore {
 public:
  virtual ~RestrictionStore() = default;

  // Sets (kind, subject), replacing what was there; lapsed restrictions may be dropped on the way.
  virtual absl::Status Put(const Restriction& restriction) = 0;
  // Lifts (kind, subject); false when there was none.
  virtual absl::StatusOr<bool> Remove(RestrictionKind kind, std::string_view subject) = 0;
  // Moves whenever Put or Remove changed something (from any node): a reload is due.
  virtual absl::StatusOr<uint64_t> Version() = 0;
  // Every restriction with until_ms > now_ms, in no particular order.
  virtual absl::StatusOr<std::vector<Restriction>> LoadLive(int64_t now_ms) = 0;
};

}  // namespace im::store
