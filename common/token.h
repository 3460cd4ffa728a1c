#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base64url.h"
#include "im/v1/client.pb.h"

namespace im::common {

// Independent-account tokens (DESIGN.md section 4): the app's backend signs
//   base64url(json{"uid":..., "exp":<unix seconds>, "iat":<unix seconds>?, "dev":...?}) "."
//   base64url(HMAC-SHA256(secret, first part))
// with a secret it shares with the cluster. base64url is unpadded.
struct TokenClaims {
  std::string uid;
  int64_t exp_unix_sec = 0;
  std::string device;  // empty: the token is valid on any device
  // When it was issued: a revocation of the user's tokens issued before a time refuses it when
  // this is earlier. 0 (no "iat"): issued at an unknown time, so any revocation refuses it.
  int64_t iat_unix_sec = 0;
};

std::string SignToken(const TokenClaims& claims, std::string_view secret);

struct TokenVerdict {
  im::v1::Code code = im::v1::OK;  // OK, TOKEN_INVALID or TOKEN_EXPIRED
  std::string detail;              // why, for logs (never echoes the secret or the signature)
  TokenClaims claims;              // set when code is OK
  bool ok() const { return code == im::v1::OK; }
};

// Thread-safe (immutable after construction).
class TokenVerifier {
 public:
  explicit TokenVerifier(std::string secret) : secret_(std::move(secret)) {}

  // Checks the signature in constant time, then expiry against `now_unix_sec`, then, when the
  // token names a device, that it is `device`.
  TokenVerdict Verify(std::string_view token, std::string_view device, int64_t now_unix_sec) const;

 private:
  std::string secret_;
};

}  // namespace im::common
