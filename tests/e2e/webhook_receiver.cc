#include "tests/e2e/webhook_receiver.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace im::e2e {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(5);
constexpr const char* kHooks[] = {"before_send", "after_send",   "offline_message",
                                  "user_online", "user_offline", "group_events"};

}  // namespace

std::unique_ptr<WebhookReceiver> WebhookReceiver::Start() {
  const std::string dir = std::string(IM_SOURCE_DIR) + "/tests";
  auto process = im::testing::Subprocess::Start(
      {dir + "/admin_api/run-python.sh", dir + "/webhooks/receiver.py", "--secret", kSecret});
  if (!process.ok()) {
    ADD_FAILURE() << "webhook receiver: " << process.status();
    return nullptr;
  }
  const std::optional<std::string> line =
      (*process)->ReadLineStartingWith("receiver_port=", kStartTimeout);
  uint32_t port = 0;
  if (!line || !absl::SimpleAtoi(line->substr(line->find('=') + 1), &port) || port == 0) {
    ADD_FAILURE() << "webhook receiver did not say its port (is the venv of "
                     "tests/admin_api/setup-venv.sh there?)";
    return nullptr;
  }
  return std::unique_ptr<WebhookReceiver>(
      new WebhookReceiver(*std::move(process), static_cast<uint16_t>(port)));
}

WebhookReceiver::~WebhookReceiver() {
  process_->Signal(SIGTERM);
  EXPECT_EQ(process_->Wait(kStopTimeout), 0) << "the webhook receiver's exit";
}

std::string WebhookReceiver::Url(const std::string& name) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/" + name;
}

std::map<std::string, std::string> WebhookReceiver::Env() const {
  std::map<std::string, std::string> env = {{"IM_WEBHOOKS_SECRET", kSecret}};
  for (const char* hook : kHooks) {
    env["IM_WEBHOOKS_" + absl::AsciiStrToUpper(hook) + "_URL"] = Url(hook);
  }
  return env;
}

std::optional<nlohmann::json> WebhookReceiver::Get(const std::string& path) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(std::chrono::seconds(10));
  httplib::Result result = client.Get(path);
  if (!result || result->status != 200) return std::nullopt;
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  if (body.is_discarded()) return std::nullopt;
  return body;
}

std::vector<nlohmann::json> WebhookReceiver::Events(const std::string& hook) const {
  std::optional<nlohmann::json> body = Get("/control/events?hook=" + hook);
  if (!body) {
    ADD_FAILURE() << "the webhook receiver did not list its events";
    return {};
  }
  return (*body)["events"].get<std::vector<nlohmann::json>>();
}

nlohmann::json WebhookReceiver::Stats() const {
  std::optional<nlohmann::json> body = Get("/control/stats");
  if (!body) {
    ADD_FAILURE() << "the webhook receiver did not give its stats";
  }
  return body.value_or(nlohmann::json::object());
}

bool WebhookReceiver::AnswerWith(const std::string& hook, std::optional<int> status) const {
  httplib::Client client("127.0.0.1", port_);
  const nlohmann::json body = {{"hook", hook},
                               {"status", status ? nlohmann::json(*status) : nlohmann::json()}};
  httplib::Result result = client.Post("/control/status", body.dump(), "application/json");
  return result && result->status == 200;
}

}  // namespace im::e2e
