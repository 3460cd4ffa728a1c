#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/group_store.h"

namespace im::store {

// The shared cache of group member lists (DESIGN.md section 7), in front of GroupStore.
// Each group's list has a version token; every membership change replaces the token
// (Invalidate), and a list is only ever saved under the token read before it was loaded, so a
// list loaded before a change can never be saved after it. Logic nodes keep their own copy per
// token, so a send costs one Version read rather than a member list read.
// Thread-safe; calls may block (network), so they run on logic's executor.
class MemberListCache {
 public:
  virtual ~MemberListCache() = default;

  // The group's current version token, created when it has none (first use, expiry, data loss).
  virtual absl::StatusOr<std::string> Version(std::string_view group_id) = 0;

  // The list saved under `version`, nullopt when none is (never saved, or changed since).
  virtual absl::StatusOr<std::optional<std::vector<GroupMember>>> Get(std::string_view group_id,
                                                                      std::string_view version) = 0;

  // Saves `members` as the list of `version`, unless the token has moved on (then: no-op).
  virtual absl::Status Put(std::string_view group_id, std::string_view version,
                           const std::vector<GroupMember>& members) = 0;

  // Gives the group a new token and drops its saved list: call after every membership change.
  virtual absl::Status Invalidate(std::string_view group_id) = 0;
};

// MemberListCache::Version for a batch's groups without blocking, for code on a logic event loop
// (which owns the client; used on its thread only). `done` runs on that thread.
class AsyncMemberListVersions {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>) &&>;

  virtual ~AsyncMemberListVersions() = default;
  // The current version token of each of `group_ids` (in that order, created where there is
  // none), in one round trip.
  virtual void VersionMany(const std::vector<std::string>& group_ids, Done done) = 0;
};

// A version token no other call returns (random, 128 bits as hex).
std::string NewVersionToken();

}  // namespace im::store
