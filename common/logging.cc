#include "common/logging.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace im::common {
namespace {

// Debian builds abseil with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::string_view is its own
// type and std::string_view does not convert to it implicitly.
absl::string_view Absl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(Absl(name));
  if (lower == "trace") return spdlog::level::trace;
  if (lower == "debug") return spdlog::level::debug;
  if (lower == "info") return spdlog::level::info;
  if (lower == "warn" || lower == "warning") return spdlog::level::warn;
  if (lower == "error") return spdlog::level::err;
  if (lower == "critical") return spdlog::level::critical;
  if (lower == "off") return spdlog::level::off;
  return std::nullopt;
}

// %v copies the message verbatim, so a quote, backslash or newline in it (user input often ends
// up there) would break the one-object-per-line contract; this flag writes it as a JSON string
// body instead. Bytes above 0x7F pass through as they are: invalid UTF-8 stays invalid.
class JsonEscapedMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm_time*/,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    const char* begin = msg.payload.data();
    const char* end = begin + msg.payload.size();
    for (const char* p = begin; p != end; ++p) {
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"' || c == '\\') {
        const char escaped[2] = {'\\', static_cast<char>(c)};
        dest.append(escaped, escaped + 2);
      } else if (c < 0x20) {
        const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        dest.append(escaped, escaped + 6);
      } else {
        dest.push_back(static_cast<char>(c));
      }
    }
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessageFlag>();
  }
};

}  // namespace

absl::Status InitLogging(std::string_view level, std::string_view format) {
  const std::optional<spdlog::level::level_enum> parsed_level = ParseLevel(level);
  if (!parsed_level.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("log level \"", Absl(level),
                     "\": expected trace, debug, info, warn, error, critical or off"));
  }
  std::unique_ptr<spdlog::pattern_formatter> formatter;
  if (format == "text") {
    formatter = std::make_unique<spdlog::pattern_formatter>("%Y-%m-%d %H:%M:%S.%e %l [%t] %v",
                                                            spdlog::pattern_time_type::local);
  } else if (format == "json") {
    // UTC with a Z suffix so that pipelines need not know the host's zone.
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","tid":%t,"msg":"%*"})");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log format \"", Absl(format), "\": expected text or json"));
  }

  // A plain stderr sink: colour codes would end up in files and log pipelines.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>("im", std::move(sink));
  logger->set_level(*parsed_level);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

bool LogRateLimiter::Allow(uint64_t* suppressed) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  int64_t next_allowed = next_allowed_ms_.load(std::memory_order_relaxed);
  while (now_ms >= next_allowed) {
    // Of the callers that find the window open, exactly one wins the exchange; the others see
    // the new deadline and are counted below.
    if (next_allowed_ms_.compare_exchange_weak(next_allowed, now_ms + interval_ms_,
                                               std::memory_order_relaxed)) {
      const uint64_t count = suppressed_.exchange(0, std::memory_order_relaxed);
      if (suppressed != nullptr) *suppressed = count;
      return true;
    }
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  if (suppressed != nullptr) *suppressed = 0;
  return false;
}

void RouteProtobufLogs() {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string& message) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "protobuf: {}", message);
      });
}

}  // namespace im::common
