#pragma once

#include <cstdint>
#include <string>

// What request_handler_fuzz and the generator of its seed corpus share.
namespace im::fuzz {

// The node's token secret (logins in the corpus carry tokens signed with it).
inline constexpr char kTokenSecret[] = "request-fuzz-secret-0123456789abcdef";
inline constexpr int64_t kDeadlineMs = 5'000;
inline constexpr int kCallers = 4;

// The user an input's first byte names.
inline std::string CallerUid(uint8_t selector) {
  static const char* const kUids[kCallers] = {"alice", "bob", "carol", "dave"};
  return kUids[selector % kCallers];
}

}  // namespace im::fuzz
