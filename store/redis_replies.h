#pragma once

#include <hiredis/hiredis.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace im::store {

// What the blocking and the asynchronous Redis clients share about replies and scripts.

inline std::string_view TextOfReply(const redisReply* reply) {
  return std::string_view(reply->str, reply->len);
}

// The status an error reply means: UNAVAILABLE when the server will serve again soon and the
// caller may retry (LOADING, BUSY, MASTERDOWN, TRYAGAIN, and NOSCRIPT: the scripts are loaded
// again), INTERNAL otherwise.
absl::Status StatusOfErrorReply(std::string_view text);

// The server lost its scripts (SCRIPT FLUSH, a restart behind a proxy).
inline bool IsNoScript(std::string_view error_text) { return error_text.starts_with("NOSCRIPT"); }

// The SHA1 that EVALSHA names `script` by (hex, as Redis prints it).
std::string ScriptSha1(std::string_view script);

}  // namespace im::store
