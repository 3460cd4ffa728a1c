#include "common/open_file_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "fmt/format.h"

namespace im::common {
namespace {

// What an unlimited hard limit allows: the kernel's per-process ceiling (fs.nr_open).
rlim_t KernelCeiling() {
  std::ifstream nr_open("/proc/sys/fs/nr_open");
  uint64_t value = 0;
  if (nr_open >> value && value > 0) return static_cast<rlim_t>(value);
  return 1 << 20;  // the kernel's default nr_open
}

}  // namespace

absl::StatusOr<OpenFileLimit> RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(fmt::format("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno)));
  }
  OpenFileLimit result;
  result.soft_before = limit.rlim_cur;
  const rlim_t ceiling = limit.rlim_max == RLIM_INFINITY ? KernelCeiling() : limit.rlim_max;
  result.hard = ceiling;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= ceiling) {
    result.soft = result.soft_before == RLIM_INFINITY ? ceiling : limit.rlim_cur;
    return result;
  }
  limit.rlim_cur = ceiling;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(
        fmt::format("setrlimit(RLIMIT_NOFILE, {}): {}", ceiling, std::strerror(errno)));
  }
  result.soft = ceiling;
  return result;
}

}  // namespace im::common
