#include "logic/webhooks/webhooks.h"

#include "common/after_all.h"
#include "common/logging.h"
#include "logic/webhooks/webhook_payloads.h"

namespace im::logic {
namespace {

WebhookSigner SignerOf(const WebhookOptions& options) {
  // FromConfig refused a configuration with an endpoint and no usable secret.
  return *WebhookSigner::FromSecret(options.secret);
}

}  // namespace

Webhooks::Webhooks(const WebhookOptions& options, WebhookBus* bus, LogicMetrics* metrics,
                   common::MillisClock unix_ms)
    : options_(options), bus_(bus), unix_ms_(std::move(unix_ms)) {
  if (options_.AnyAsyncEnabled()) {
    event_http_ = std::make_unique<common::HttpClient>(common::HttpClient::Options{
        "webhooks", options_.concurrency, options_.queue, 64 * 1024, 32, options_.ca_file});
    delivery_ = std::make_unique<WebhookDelivery>(options_, SignerOf(options_), event_http_.get(),
                                                  metrics, unix_ms_);
  }
  if (options_.before_send.enabled()) {
    check_http_ = std::make_unique<common::HttpClient>(common::HttpClient::Options{
        "before-send", options_.before_send.max_in_flight, options_.before_send.max_in_flight,
        64 * 1024, 256, options_.ca_file});
    before_send_ = std::make_unique<BeforeSendHook>(options_.before_send, SignerOf(options_),
                                                    check_http_.get(), metrics, unix_ms_,
                                                    common::SteadyMillis);
  }
}

Webhooks::~Webhooks() { Stop(); }

absl::Status Webhooks::Start() {
  if (!delivery_) return absl::OkStatus();
  if (absl::Status status = bus_->Start(delivery_.get()); !status.ok()) return status;
  started_ = true;
  return absl::OkStatus();
}

void Webhooks::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (started_) bus_->Stop();
  if (event_http_) event_http_->Stop();
  if (check_http_) check_http_->Stop();
}

Webhooks::Respond Webhooks::PublishThenAnswer(std::function<im::v1::WebhookEvent()> make_event,
                                              Respond respond) {
  // HandedOver is copyable, the answer is not: it is shared.
  return [this, make_event = std::move(make_event),
          respond = std::move(respond)](im::v1::SendResp resp) mutable {
    auto answer =
        std::make_shared<std::pair<Respond, im::v1::SendResp>>(std::move(respond), std::move(resp));
    bus_->Publish(make_event(), [answer] { std::move(answer->first)(std::move(answer->second)); });
  };
}

Webhooks::Respond Webhooks::AfterSend(std::shared_ptr<const im::v1::Message> message,
                                      Respond respond) {
  if (!options_.after_send.enabled()) return respond;
  return PublishThenAnswer([this, message] { return AfterSendEvent(*message, unix_ms_()); },
                           std::move(respond));
}

Webhooks::Respond Webhooks::Offline(std::shared_ptr<const im::v1::Message> message,
                                    std::vector<std::string> offline_uids, Respond respond) {
  if (!options_.offline_message.enabled() || offline_uids.empty()) return respond;
  return PublishThenAnswer(
      [this, message, offline_uids = std::move(offline_uids)] {
        return OfflineMessageEvent(*message, offline_uids, unix_ms_());
      },
      std::move(respond));
}

void Webhooks::GroupMembersOffline(const im::v1::Message& message,
                                   const std::vector<std::string>& offline_uids,
                                   std::function<void()> handed_over) {
  if (!options_.offline_message.enabled() || offline_uids.empty()) return handed_over();
  std::vector<im::v1::WebhookEvent> events =
      GroupOfflineMessageEvents(message, offline_uids, unix_ms_());
  const std::function<void()> event_handed_over =
      common::AfterAll(events.size(), std::move(handed_over));
  for (im::v1::WebhookEvent& event : events) bus_->Publish(std::move(event), event_handed_over);
}

void Webhooks::DevicesChanged(const std::vector<ChangedDevice>& devices, bool online) {
  if (!(online ? options_.user_online : options_.user_offline).enabled()) return;
  const int64_t now_ms = unix_ms_();
  for (const ChangedDevice& device : devices) {
    bus_->Publish(DeviceEvent(online, {device.uid, device.device, device.platform}, now_ms), {});
  }
}

void Webhooks::GroupChanged(const std::string& notice_json, const std::string& notice_id,
                            const im::v1::SendResp& posted, absl::AnyInvocable<void() &&> then) {
  if (!options_.group_events.enabled()) return std::move(then)();
  const nlohmann::json notice = nlohmann::json::parse(notice_json, nullptr, false);
  auto shared_then = std::make_shared<absl::AnyInvocable<void() &&>>(std::move(then));
  bus_->Publish(GroupEvent(notice.is_object() ? notice : nlohmann::json::object(), notice_id,
                           posted, unix_ms_()),
                [shared_then] { std::move (*shared_then)(); });
}

}  // namespace im::logic
