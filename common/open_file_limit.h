#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace im::common {

// The process's limit on open files (RLIMIT_NOFILE): what caps how many client connections a
// gateway can hold, one descriptor each.
struct OpenFileLimit {
  uint64_t soft_before = 0;  // the soft limit the process started with
  uint64_t soft = 0;         // the soft limit now
  uint64_t hard = 0;         // the ceiling the soft limit may be raised to without privileges
};

// Raises the soft limit to the hard one (an unlimited hard limit means the kernel's nr_open).
// A container runtime or a login shell often starts processes with a soft limit of 1,024 under a
// far higher hard one; left alone, that would cap a gateway at about 1,000 clients.
absl::StatusOr<OpenFileLimit> RaiseOpenFileLimit();

}  // namespace im::common
