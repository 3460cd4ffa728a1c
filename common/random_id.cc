#include "common/random_id.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"

namespace im::common {

std::string RandomHexId() {
  thread_local std::mt19937_64 random{std::random_device{}() ^
                                      (uint64_t{std::random_device{}()} << 32)};
  return absl::StrFormat("%016x%016x", random(), random());
}

}  // namespace im::common
