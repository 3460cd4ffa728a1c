#include "logic/webhooks/webhook_signer.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/hmac.h"

namespace im::logic {
namespace {
constexpr std::string_view kSecretPrefix = "whsec_";
constexpr size_t kMinKeyBytes = 24;
constexpr size_t kMaxKeyBytes = 64;
}  // namespace

absl::StatusOr<WebhookSigner> WebhookSigner::FromSecret(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) {
    return absl::InvalidArgumentError("a signing secret starts with whsec_");
  }
  std::string key;
  const std::string_view encoded = secret.substr(kSecretPrefix.size());
  if (!absl::Base64Unescape(absl::string_view(encoded.data(), encoded.size()), &key)) {
    return absl::InvalidArgumentError("a signing secret is whsec_ then base64");
  }
  if (key.size() < kMinKeyBytes || key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a signing secret's key is ", kMinKeyBytes,
                                                   " to ", kMaxKeyBytes, " bytes, this one ",
                                                   key.size()));
  }
  return WebhookSigner(std::move(key));
}

WebhookSigner::Headers WebhookSigner::Sign(std::string_view id, int64_t unix_seconds,
                                           std::string_view body) const {
  const std::string timestamp = std::to_string(unix_seconds);
  // HmacSha256 fails only when OpenSSL cannot allocate: the request then goes unsigned-looking
  // ("v1," with nothing) and the app refuses it, which the dispatcher retries.
  std::string signed_text;
  signed_text.reserve(id.size() + timestamp.size() + body.size() + 2);
  signed_text.append(id).append(".").append(timestamp).append(".").append(body);
  const std::string mac = common::HmacSha256(key_, signed_text).value_or("");
  return {{"webhook-id", std::string(id)},
          {"webhook-timestamp", timestamp},
          {"webhook-signature", absl::StrCat("v1,", absl::Base64Escape(mac))}};
}

}  // namespace im::logic
