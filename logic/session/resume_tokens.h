#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace im::logic {

// Session resume tokens (client.proto, ResumeReq): base64url(json{uid, dev, since, exp, id}) "."
// base64url(HMAC-SHA256). `since` is the baseline (Unix ms) up to which the session reconciled
// its conversations; `exp` (Unix ms) ends the token; `id` makes each token single-use (the caller
// records it). The MAC key is derived from the login token secret, so a resume token is never a
// login token and a login token is never a resume token. Immutable: thread-safe.
class ResumeTokens {
 public:
  struct Claims {
    std::string uid;
    std::string device;
    int64_t since_ms = 0;
    int64_t expires_ms = 0;
    std::string id;  // random, 128 bits, hex
  };

  ResumeTokens(std::string_view login_secret, int64_t window_ms);

  // A token for uid's `device` with baseline since_ms, good for the window from now_ms.
  std::string Issue(const std::string& uid, const std::string& device, int64_t since_ms,
                    int64_t now_ms) const;
  // The same claims (the same id) with a new expiry: the window from now_ms.
  std::string Renew(const Claims& claims, int64_t now_ms) const;
  // The claims of a token that is genuine, unexpired and uid's on `device`. INVALID_ARGUMENT for
  // one that is not genuine (bad format or signature), FAILED_PRECONDITION for an expired one or
  // one of another user or device.
  absl::StatusOr<Claims> Verify(std::string_view token, std::string_view uid,
                                std::string_view device, int64_t now_ms) const;

  int64_t window_ms() const { return window_ms_; }

 private:
  std::string Sign(const Claims& claims) const;

  std::string key_;
  int64_t window_ms_;
};

}  // namespace im::logic
