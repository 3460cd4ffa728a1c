#include "common/token.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/hmac.h"
#include "nlohmann/json.hpp"

namespace im::common {
namespace {

TokenVerdict Invalid(std::string detail) {
  TokenVerdict verdict;
  verdict.code = im::v1::TOKEN_INVALID;
  verdict.detail = std::move(detail);
  return verdict;
}

// The positive integer `json[name]`, nullopt when absent; an error saying what is wrong with it.
absl::StatusOr<std::optional<int64_t>> ReadUnixSeconds(const nlohmann::json& json,
                                                       const char* name) {
  const auto field = json.find(name);
  if (field == json.end()) return std::nullopt;
  if (!field->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " not an integer"));
  }
  int64_t value = 0;
  if (field->is_number_unsigned()) {
    // Non-negative literals parse as unsigned; get<int64_t>() would wrap the huge ones.
    const uint64_t unsigned_value = field->get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(name, " out of range"));
    }
    value = static_cast<int64_t>(unsigned_value);
  } else {
    value = field->get<int64_t>();
  }
  if (value <= 0) return absl::InvalidArgumentError(absl::StrCat(name, " not positive"));
  return value;
}

}  // namespace

// The header gives no error channel, so failure is an empty string: it never verifies.
std::string SignToken(const TokenClaims& claims, std::string_view secret) {
  nlohmann::json json = {{"uid", claims.uid}, {"exp", claims.exp_unix_sec}};
  if (!claims.device.empty()) json["dev"] = claims.device;
  if (claims.iat_unix_sec > 0) json["iat"] = claims.iat_unix_sec;
  std::string json_text;
  // nlohmann reports invalid UTF-8 only by throwing. Its lenient modes would instead map
  // different byte strings to one uid, letting two users share an account, so refuse to sign.
  try {
    json_text = json.dump();
  } catch (const nlohmann::json::exception&) {
    return std::string();
  }
  const std::string payload = Base64UrlEncode(json_text);
  std::optional<std::string> mac = HmacSha256(secret, payload);
  if (!mac.has_value()) return std::string();
  return payload + "." + Base64UrlEncode(*mac);
}

TokenVerdict TokenVerifier::Verify(std::string_view token, std::string_view device,
                                   int64_t now_unix_sec) const {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos) return Invalid("no separator");
  if (token.find('.', dot + 1) != std::string_view::npos) return Invalid("too many separators");
  const std::string_view payload_text = token.substr(0, dot);
  const std::string_view signature_text = token.substr(dot + 1);
  if (payload_text.empty() || signature_text.empty()) return Invalid("empty part");

  std::string payload;
  if (!Base64UrlDecode(payload_text, &payload)) return Invalid("payload is not base64url");
  std::string signature;
  if (!Base64UrlDecode(signature_text, &signature)) return Invalid("signature is not base64url");

  // The signature is checked before the payload is parsed, so only the secret's holder can
  // feed anything to the JSON parser.
  std::optional<std::string> expected = HmacSha256(secret_, payload_text);
  if (!expected.has_value()) return Invalid("hmac failed");
  if (!SameMac(signature, *expected)) return Invalid("bad signature");

  const nlohmann::json json = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return Invalid("payload is not a JSON object");

  TokenClaims claims;
  const auto uid = json.find("uid");
  if (uid == json.end() || !uid->is_string()) return Invalid("uid missing or not a string");
  claims.uid = uid->get<std::string>();
  if (claims.uid.empty()) return Invalid("empty uid");

  const auto exp = ReadUnixSeconds(json, "exp");
  if (!exp.ok()) return Invalid(std::string(exp.status().message()));
  if (!exp->has_value()) return Invalid("exp missing");
  claims.exp_unix_sec = **exp;
  const auto iat = ReadUnixSeconds(json, "iat");
  if (!iat.ok()) return Invalid(std::string(iat.status().message()));
  claims.iat_unix_sec = iat->value_or(0);

  const auto dev = json.find("dev");
  if (dev != json.end()) {
    if (!dev->is_string()) return Invalid("dev not a string");
    claims.device = dev->get<std::string>();
  }

  if (claims.exp_unix_sec <= now_unix_sec) {
    TokenVerdict verdict;
    verdict.code = im::v1::TOKEN_EXPIRED;
    verdict.detail = "expired";
    return verdict;
  }
  if (!claims.device.empty() && claims.device != device) return Invalid("device mismatch");

  TokenVerdict verdict;
  verdict.claims = std::move(claims);
  return verdict;
}

}  // namespace im::common
