#include "store/member_list_cache.h"

#include <random>

#include "fmt/format.h"

namespace im::store {

std::string NewVersionToken() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", random(), random());
}

}  // namespace im::store
