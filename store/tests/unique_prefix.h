#pragma once

#include <random>
#include <string>

namespace im::store::testing {

// A prefix no other test run uses, so that tests sharing one Redis or MariaDB, which are never
// wiped, never see each other's keys and rows.
inline std::string UniquePrefix() {
  std::random_device random;
  return "t" + std::to_string(random()) + std::to_string(random()) + "-";
}

}  // namespace im::store::testing
