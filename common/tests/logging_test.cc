#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace im::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class InitLoggingTest : public ::testing::Test {
 protected:
  // Later tests in the binary expect the ordinary logger back.
  void TearDown() override { ASSERT_TRUE(InitLogging("info", "text").ok()); }
};

TEST_F(InitLoggingTest, AcceptsEveryLevelAndFormat) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "INFO", "warning"}) {
    for (const char* format : {"text", "json"}) {
      EXPECT_TRUE(InitLogging(level, format).ok()) << level << " " << format;
    }
  }
}

TEST_F(InitLoggingTest, RejectsUnknownLevelOrFormat) {
  EXPECT_EQ(InitLogging("verbose", "text").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InitLogging("", "text").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InitLogging("info", "xml").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InitLogging("info", "").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(InitLoggingTest, RejectedCallKeepsTheCurrentLogger) {
  ASSERT_TRUE(InitLogging("error", "text").ok());
  ASSERT_FALSE(InitLogging("trace", "xml").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::err);
}

TEST_F(InitLoggingTest, TextFormat) {
  ASSERT_TRUE(InitLogging("info", "text").ok());
  ::testing::internal::CaptureStderr();
  spdlog::info("hello {}", 42);
  spdlog::debug("below the level");
  const std::vector<std::string> lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("info"));
  EXPECT_THAT(lines[0], HasSubstr("hello 42"));
  EXPECT_THAT(lines[0], Not(HasSubstr("\x1b[")));  // no colour codes
}

TEST_F(InitLoggingTest, JsonFormatWritesOneValidObjectPerLine) {
  ASSERT_TRUE(InitLogging("debug", "json").ok());
  const std::string awkward = "say \"hi\"\n\tback\\slash \x01 done";
  ::testing::internal::CaptureStderr();
  spdlog::warn("{}", awkward);
  spdlog::debug("second");
  spdlog::trace("below the level");
  const std::vector<std::string> lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);

  const nlohmann::json first = nlohmann::json::parse(lines[0], nullptr, false);
  ASSERT_TRUE(first.is_object()) << lines[0];
  EXPECT_EQ(first.value("msg", ""), awkward);
  EXPECT_EQ(first.value("level", ""), "warning");
  EXPECT_THAT(first.value("ts", ""),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z"));
  EXPECT_TRUE(first.contains("tid"));

  const nlohmann::json second = nlohmann::json::parse(lines[1], nullptr, false);
  ASSERT_TRUE(second.is_object()) << lines[1];
  EXPECT_EQ(second.value("msg", ""), "second");
  EXPECT_EQ(second.value("level", ""), "debug");
}

TEST_F(InitLoggingTest, RequestIdIsAFieldWhileScoped) {
  ASSERT_TRUE(InitLogging("info", "json").ok());
  ::testing::internal::CaptureStderr();
  spdlog::info("before");
  {
    ScopedRequestId outer("gw-1-1a-7");
    spdlog::info("outer");
    {
      ScopedRequestId inner("gw-2-\"odd\"-1");
      spdlog::info("inner");
    }
    spdlog::info("outer again");
  }
  spdlog::info("after");
  const std::vector<std::string> lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 5u);
  std::vector<std::string> ids;
  for (const std::string& line : lines) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << line;
    ids.push_back(object.value("request_id", "-"));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"-", "gw-1-1a-7", "gw-2-\"odd\"-1", "gw-1-1a-7", "-"}));
}

TEST_F(InitLoggingTest, RequestIdPrefixesTextLines) {
  ASSERT_TRUE(InitLogging("info", "text").ok());
  ::testing::internal::CaptureStderr();
  {
    ScopedRequestId id("gw-1-1a-7");
    spdlog::info("scoped");
  }
  spdlog::info("plain");
  const std::vector<std::string> lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("] [gw-1-1a-7] scoped"));
  EXPECT_THAT(lines[1], Not(HasSubstr("gw-1-1a-7")));
}

TEST_F(InitLoggingTest, RateLimitedMacroLogsOncePerSecond) {
  ASSERT_TRUE(InitLogging("info", "text").ok());
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 50; ++i) IM_LOG_RATE_LIMITED(spdlog::level::warn, "flood {}", i);
  const std::vector<std::string> lines = Lines(::testing::internal::GetCapturedStderr());
  // The limiter is static per call site, so under --gtest_repeat it may still be closed from
  // the previous run; and a loaded machine may let the loop straddle one interval.
  int flood_lines = 0;
  for (const std::string& line : lines) {
    if (line.find("flood") != std::string::npos) ++flood_lines;
  }
  EXPECT_LE(flood_lines, 2);
  EXPECT_LE(lines.size(), 3u);
}

// The deadlines below are generous enough never to expire while a test runs.
constexpr std::chrono::hours kForever{1};

TEST(LogRateLimiterTest, FirstCallPasses) {
  LogRateLimiter limiter(kForever);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(LogRateLimiterTest, RefusesWithinTheInterval) {
  LogRateLimiter limiter(kForever);
  uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.Allow(&suppressed));
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(limiter.Allow(&suppressed));
  EXPECT_FALSE(limiter.Allow(nullptr));
}

// Calls Allow() until it passes, for at most five seconds; spins with short pauses rather than
// sleeping through the interval so that there are refusals to count.
bool CallUntilPassed(LogRateLimiter& limiter, uint64_t* refused, uint64_t* suppressed) {
  *refused = 0;
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < std::chrono::seconds(5)) {
    if (limiter.Allow(suppressed)) return true;
    ++*refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(LogRateLimiterTest, PassesAgainAfterTheIntervalAndReportsTheSuppressed) {
  LogRateLimiter limiter(std::chrono::milliseconds(20));
  const auto started = std::chrono::steady_clock::now();
  uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.Allow(&suppressed));
  uint64_t refused = 0;
  ASSERT_TRUE(CallUntilPassed(limiter, &refused, &suppressed));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(19));
  EXPECT_EQ(suppressed, refused);
  // The count was handed over: the next window reports only its own refusals.
  ASSERT_TRUE(CallUntilPassed(limiter, &refused, &suppressed));
  EXPECT_EQ(suppressed, refused);
}

TEST(LogRateLimiterTest, ExactlyOneThreadPassesPerInterval) {
  LogRateLimiter limiter(kForever);
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      uint64_t suppressed = 0;
      for (int i = 0; i < 1000; ++i) {
        if (limiter.Allow(&suppressed)) passed.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(passed.load(), 1);
}

// Under contention every call is either passed or reported as suppressed exactly once.
TEST(LogRateLimiterTest, NoCallIsLostUnderContention) {
  LogRateLimiter limiter(std::chrono::milliseconds(2));
  std::atomic<uint64_t> passed{0};
  std::atomic<uint64_t> reported{0};
  constexpr uint64_t kThreads = 4;
  constexpr uint64_t kCalls = 20000;
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = 0; i < kCalls; ++i) {
        uint64_t suppressed = 0;
        if (limiter.Allow(&suppressed)) {
          passed.fetch_add(1);
          reported.fetch_add(suppressed);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  // Collect what is still pending by passing once more.
  uint64_t refused_after = 0;
  uint64_t suppressed = 0;
  ASSERT_TRUE(CallUntilPassed(limiter, &refused_after, &suppressed));
  EXPECT_GE(passed.load(), 1u);
  EXPECT_EQ(kThreads * kCalls + refused_after + 1,
            passed.load() + 1 + reported.load() + suppressed);
}

}  // namespace
}  // namespace im::common
