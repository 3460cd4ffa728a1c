#include "logic/session/resume_tokens.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base64url.h"
#include "common/hmac.h"
#include "common/random_id.h"
#include "nlohmann/json.hpp"

namespace im::logic {
namespace {

// Derives the resume MAC key from the login secret: a different key for a different token kind.
constexpr char kKeyLabel[] = "im.v1 session resume token";

absl::Status NotGenuine(const char* why) {
  return absl::InvalidArgumentError(absl::StrCat("resume token invalid: ", why));
}

}  // namespace

ResumeTokens::ResumeTokens(std::string_view login_secret, int64_t window_ms)
    : key_(common::HmacSha256(login_secret, kKeyLabel).value_or("")), window_ms_(window_ms) {}

std::string ResumeTokens::Issue(const std::string& uid, const std::string& device, int64_t since_ms,
                                int64_t now_ms) const {
  return Sign(Claims{uid, device, since_ms, now_ms + window_ms_, common::RandomHexId()});
}

std::string ResumeTokens::Renew(const Claims& claims, int64_t now_ms) const {
  Claims renewed = claims;
  renewed.expires_ms = now_ms + window_ms_;
  return Sign(renewed);
}

std::string ResumeTokens::Sign(const Claims& claims) const {
  const nlohmann::json json = {{"uid", claims.uid},
                               {"dev", claims.device},
                               {"since", claims.since_ms},
                               {"exp", claims.expires_ms},
                               {"id", claims.id}};
  std::string text;
  try {
    text = json.dump();  // throws on invalid UTF-8 in a uid or device (they are bytes)
  } catch (const nlohmann::json::exception&) {
    text = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const std::string payload = common::Base64UrlEncode(text);
  return payload + "." + common::Base64UrlEncode(common::HmacSha256(key_, payload).value_or(""));
}

absl::StatusOr<ResumeTokens::Claims> ResumeTokens::Verify(std::string_view token,
                                                          std::string_view uid,
                                                          std::string_view device,
                                                          int64_t now_ms) const {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || key_.empty()) return NotGenuine("no separator");
  const std::string_view payload = token.substr(0, dot);
  std::string signature;
  if (!common::Base64UrlDecode(token.substr(dot + 1), &signature)) {
    return NotGenuine("signature is not base64url");
  }
  const std::optional<std::string> expected = common::HmacSha256(key_, payload);
  if (!expected || !common::SameMac(signature, *expected)) return NotGenuine("bad signature");
  std::string text;
  if (!common::Base64UrlDecode(payload, &text)) return NotGenuine("payload is not base64url");
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("uid") || !json["uid"].is_string() ||
      !json.contains("dev") || !json["dev"].is_string() || !json.contains("since") ||
      !json["since"].is_number_integer() || !json.contains("exp") ||
      !json["exp"].is_number_integer() || !json.contains("id") || !json["id"].is_string()) {
    return NotGenuine("claims missing");
  }
  Claims claims{json["uid"].get<std::string>(), json["dev"].get<std::string>(),
                json["since"].get<int64_t>(), json["exp"].get<int64_t>(),
                json["id"].get<std::string>()};
  if (claims.uid != uid || claims.device != device) {
    return absl::FailedPreconditionError("resume token of another user or device");
  }
  if (claims.expires_ms <= now_ms) {
    return absl::FailedPreconditionError("resume token expired: the resume window has passed");
  }
  return claims;
}

}  // namespace im::logic
