#include "store/restriction_rules.h"

#include "fmt/format.h"
#include "store/group_rules.h"
#include "store/message_rules.h"

namespace im::store {

static_assert(kMaxGroupIdBytes <= kMaxUidBytes, "a group id must fit where a subject goes");

bool IsKnownRestrictionKind(int64_t value) {
  // Compared as integers: a stored value beyond int must not wrap onto a known kind.
  for (RestrictionKind kind : {RestrictionKind::kUserMute, RestrictionKind::kGroupMute,
                               RestrictionKind::kTokenRevocation}) {
    if (value == static_cast<int64_t>(kind)) return true;
  }
  return false;
}

absl::Status CheckRestrictionKey(RestrictionKind kind, std::string_view subject) {
  if (!IsKnownRestrictionKind(static_cast<int64_t>(kind))) {
    return absl::InvalidArgumentError(
        fmt::format("unknown restriction kind {}", static_cast<int>(kind)));
  }
  if (subject.empty() || subject.size() > kMaxUidBytes) {
    return absl::InvalidArgumentError(fmt::format(
        "restriction subject is {} bytes, must be 1 to {}", subject.size(), kMaxUidBytes));
  }
  return absl::OkStatus();
}

}  // namespace im::store
