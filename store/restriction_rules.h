#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "store/restriction_store.h"

namespace im::store {

// What every RestrictionStore backend checks and reads back the same way, so that the in-process
// store never accepts what the others would refuse.

// Whether `value` is a RestrictionKind this build knows. A backend skips a stored restriction of
// another kind (written by a newer build) rather than failing the whole load.
bool IsKnownRestrictionKind(int64_t value);

// A known kind and a subject as uids and group ids are: 1 to kMaxUidBytes bytes (a group id is
// at most kMaxGroupIdBytes, which is no more). INVALID_ARGUMENT otherwise.
absl::Status CheckRestrictionKey(RestrictionKind kind, std::string_view subject);

}  // namespace im::store
