// libFuzzer target for the token parser (common/token.h).
//
// The input is tried twice: as a token as a client sends it (almost always refused at the
// signature, which is checked first), and as the JSON payload of a token signed with the secret,
// so that the claim parser behind the signature is reached too. A verdict must be one of OK,
// TOKEN_INVALID and TOKEN_EXPIRED; an OK one must carry a uid, a positive expiry and the device
// asked for (or none), and its claims signed again must verify to the same claims.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/base64url.h"
#include "common/hmac.h"
#include "common/token.h"

namespace {

constexpr char kSecret[] = "token-fuzz-secret-0123456789abcdef";
constexpr char kDevice[] = "phone";
constexpr int64_t kNowUnixSec = 1'700'000'000;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "token_fuzz: %s\n", what);
  std::abort();
}

void CheckVerdict(const im::common::TokenVerifier& verifier,
                  const im::common::TokenVerdict& verdict) {
  Check(verdict.code == im::v1::OK || verdict.code == im::v1::TOKEN_INVALID ||
            verdict.code == im::v1::TOKEN_EXPIRED,
        "a verdict other than OK, TOKEN_INVALID or TOKEN_EXPIRED");
  if (!verdict.ok()) return;
  Check(!verdict.claims.uid.empty(), "accepted without a uid");
  Check(verdict.claims.exp_unix_sec > kNowUnixSec, "accepted after its expiry");
  Check(verdict.claims.device.empty() || verdict.claims.device == kDevice,
        "accepted for another device");
  const std::string again = im::common::SignToken(verdict.claims, kSecret);
  const im::common::TokenVerdict reverified = verifier.Verify(again, kDevice, kNowUnixSec);
  Check(reverified.ok(), "accepted claims, signed again, are refused");
  Check(reverified.claims.uid == verdict.claims.uid &&
            reverified.claims.exp_unix_sec == verdict.claims.exp_unix_sec &&
            reverified.claims.device == verdict.claims.device,
        "accepted claims change when signed again");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const im::common::TokenVerifier verifier(kSecret);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckVerdict(verifier, verifier.Verify(input, kDevice, kNowUnixSec));

  const std::string payload = im::common::Base64UrlEncode(input);
  const std::optional<std::string> mac = im::common::HmacSha256(kSecret, payload);
  Check(mac.has_value(), "HMAC failed");
  const std::string signed_token = payload + "." + im::common::Base64UrlEncode(*mac);
  CheckVerdict(verifier, verifier.Verify(signed_token, kDevice, kNowUnixSec));
  return 0;
}
