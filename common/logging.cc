#include "common/logging.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
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

thread_local std::string current_request_id;

// Writes `text` as the body of a JSON string. Bytes above 0x7F pass through as they are: invalid
// UTF-8 stays invalid.
void AppendJsonEscaped(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
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

// %v copies the message verbatim, so a quote, backslash or newline in it (user input often ends
// up there) would break the one-object-per-line contract; this flag writes it as a JSON string
// body instead.
class JsonEscapedMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm_time*/,
              spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessageFlag>();
  }
};

// The logging thread's request id (ScopedRequestId): `,"request_id":"<id>"` in JSON lines,
// `[<id>] ` in text lines, nothing when the thread works for no request. The sink formats on the
// logging thread (synchronous logger), so the thread-local is the caller's.
class RequestIdFlag : public spdlog::custom_flag_formatter {
 public:
  explicit RequestIdFlag(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& /*msg*/, const std::tm& /*tm_time*/,
              spdlog::memory_buf_t& dest) override {
    if (current_request_id.empty()) return;
    if (json_) {
      static constexpr std::string_view kKey = R"(,"request_id":")";
      dest.append(kKey.data(), kKey.data() + kKey.size());
      AppendJsonEscaped(current_request_id, dest);
      dest.push_back('"');
    } else {
      dest.push_back('[');
      dest.append(current_request_id.data(), current_request_id.data() + current_request_id.size());
      static constexpr std::string_view kEnd = "] ";
      dest.append(kEnd.data(), kEnd.data() + kEnd.size());
    }
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RequestIdFlag>(json_);
  }

 private:
  const bool json_;
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
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::local);
    formatter->add_flag<RequestIdFlag>('&', false).set_pattern("%Y-%m-%d %H:%M:%S.%e %l [%t] %&%v");
  } else if (format == "json") {
    // UTC with a Z suffix so that pipelines need not know the host's zone.
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessageFlag>('*').add_flag<RequestIdFlag>('&', true).set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","tid":%t%&,"msg":"%*"})");
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

ScopedRequestId::ScopedRequestId(std::string_view request_id)
    : previous_(std::exchange(current_request_id, std::string(request_id))) {}

ScopedRequestId::~ScopedRequestId() { current_request_id = std::move(previous_); }

bool LogRateLimiter::Allow(uint64_t* suppressed) {
  const int64_t now_ms = SteadyMillis();
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
