#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"

namespace im::e2e {

// The test app's end of the webhooks: tests/webhooks/receiver.py in the admin API tests' venv,
// which checks every callback's signature with the PyPI standardwebhooks library, records what
// it got and answers as told (tests/webhooks/receiver.py says how).
class WebhookReceiver {
 public:
  // A signing secret for the deployment and the receiver ("whsec_" + base64 of 32 bytes).
  static constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0hKqJ0cD9v0=";

  // Starts the receiver; nullptr (and an ADD_FAILURE) when it does not come up.
  static std::unique_ptr<WebhookReceiver> Start();
  ~WebhookReceiver();

  // The URL of hook `name` ("before_send", "after_send", ...).
  std::string Url(const std::string& name) const;
  // The IM_WEBHOOKS_* variables that send every event to this receiver (a hook each), signed
  // with kSecret.
  std::map<std::string, std::string> Env() const;

  // Callbacks of `hook` received with a good signature, in arrival order: {"hook", "id",
  // "timestamp", "payload", "status" (what was answered), "received_at"}.
  std::vector<nlohmann::json> Events(const std::string& hook) const;
  // {"bad_signatures", "bad_signature_reasons", "bad_json", "received": {hook: count}}.
  nlohmann::json Stats() const;
  // From now on `hook` is answered `status` (nullopt: as usual again).
  bool AnswerWith(const std::string& hook, std::optional<int> status) const;

 private:
  explicit WebhookReceiver(std::unique_ptr<im::testing::Subprocess> process, uint16_t port)
      : process_(std::move(process)), port_(port) {}
  std::optional<nlohmann::json> Get(const std::string& path) const;

  std::unique_ptr<im::testing::Subprocess> process_;
  uint16_t port_;
};

}  // namespace im::e2e
