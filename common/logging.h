#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace im::common {

// Configures the process-wide spdlog logger: level (trace, debug, info, warn, error) and format
// ("text" for people, "json" for log pipelines: one object per line). Call once from main().
absl::Status InitLogging(std::string_view level, std::string_view format);

// Names the request the calling thread works for (the gateway's request id, Caller.request_id)
// while it lives: JSON lines logged meanwhile on this thread carry it as "request_id", text lines
// as "[<id>] " before the message. Scopes nest (the previous id comes back). Stack only.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string_view request_id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

// libprotobuf logs every invalid UTF-8 string it parses, and clients control those strings: its
// messages go to spdlog, rate-limited.
void RouteProtobufLogs();

// Lets one call site log at most once per interval, from any thread; the number of suppressed
// lines is reported with the next one that passes. Untrusted input must not flood the logs.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(std::chrono::milliseconds interval) : interval_ms_(interval.count()) {}
  // True when this call may log; *suppressed receives how many calls were refused since.
  bool Allow(uint64_t* suppressed);

 private:
  const int64_t interval_ms_;
  std::atomic<int64_t> next_allowed_ms_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace im::common

// Logs at `level` at most once per second from this call site.
#define IM_LOG_RATE_LIMITED(level, ...)                                           \
  do {                                                                            \
    static ::im::common::LogRateLimiter im_log_limiter_{std::chrono::seconds(1)}; \
    uint64_t im_log_suppressed_ = 0;                                              \
    if (im_log_limiter_.Allow(&im_log_suppressed_)) {                             \
      if (im_log_suppressed_ > 0) {                                               \
        spdlog::log(level, "({} similar lines suppressed)", im_log_suppressed_);  \
      }                                                                           \
      spdlog::log(level, __VA_ARGS__);                                            \
    }                                                                             \
  } while (0)
