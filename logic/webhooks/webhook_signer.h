#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace im::logic {

// Signs webhook requests as Standard Webhooks specifies (standardwebhooks.com), so that an app
// verifies them with a stock library: headers webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" under the secret's key.
class WebhookSigner {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // `secret` is "whsec_" + base64 of a 24 to 64 byte key, the form the libraries take;
  // INVALID_ARGUMENT otherwise.
  static absl::StatusOr<WebhookSigner> FromSecret(std::string_view secret);

  // The three headers of a request with this body, sent at `unix_seconds`.
  Headers Sign(std::string_view id, int64_t unix_seconds, std::string_view body) const;

 private:
  explicit WebhookSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace im::logic
