#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "logic/logic_metrics.h"
#include "logic/session/session_service.h"
#include "logic/webhooks/before_send_hook.h"
#include "logic/webhooks/webhook_bus.h"
#include "logic/webhooks/webhook_delivery.h"
#include "logic/webhooks/webhook_options.h"
#include "nlohmann/json.hpp"

namespace im::logic {

// A logic node's business callbacks (docs/callbacks.md): the before-send check, and the events
// it publishes on the webhook bus for delivery. Every event method does nothing (and answers at
// once) when its endpoint is not configured. Thread-safe.
class Webhooks {
 public:
  using Respond = absl::AnyInvocable<void(im::v1::SendResp) &&>;

  // `options` and `bus` outlive this object; options were checked (WebhookOptions::FromConfig).
  Webhooks(const WebhookOptions& options, WebhookBus* bus, LogicMetrics* metrics,
           common::MillisClock unix_ms);
  ~Webhooks();  // Stop()

  // Starts the bus's delivery when an asynchronous endpoint is set.
  absl::Status Start();
  // Stops the bus, then abandons what is still being delivered (on Kafka it stays for the other
  // nodes). Idempotent.
  void Stop();

  // Null when webhooks.before_send.url is empty.
  BeforeSendHook* before_send() { return before_send_.get(); }

  // A Respond that, given the answer to a stored message's send, first publishes the message's
  // "message.after_send" event and answers once the bus holds it: an acknowledged send's event
  // survives this node's death. `respond` itself when the endpoint is off.
  Respond AfterSend(std::shared_ptr<const im::v1::Message> message, Respond respond);
  // The same for "message.offline", for `offline_uids` (none: `respond` itself).
  Respond Offline(std::shared_ptr<const im::v1::Message> message,
                  std::vector<std::string> offline_uids, Respond respond);
  bool WantsOffline() const { return options_.offline_message.enabled(); }
  // "message.offline" for a group message's members with no online device (sorted; the sender
  // not among them), in events of at most kOfflineUidsPerEvent uids. `handed_over` runs once the
  // bus holds every one of them (at once when there are none or the endpoint is off).
  void GroupMembersOffline(const im::v1::Message& message,
                           const std::vector<std::string>& offline_uids,
                           std::function<void()> handed_over);
  // "user.online" or "user.offline" for each device.
  void DevicesChanged(const std::vector<ChangedDevice>& devices, bool online);
  // "group.<event>" for a group notice posted as `posted`; `then` runs once the bus holds it.
  void GroupChanged(const std::string& notice_json, const std::string& notice_id,
                    const im::v1::SendResp& posted, absl::AnyInvocable<void() &&> then);

 private:
  // Publishes `event`, then answers `resp` through `respond` once the bus holds it.
  Respond PublishThenAnswer(std::function<im::v1::WebhookEvent()> make_event, Respond respond);

  const WebhookOptions& options_;
  WebhookBus* bus_;
  common::MillisClock unix_ms_;
  std::unique_ptr<common::HttpClient> event_http_;  // null without an asynchronous endpoint
  std::unique_ptr<common::HttpClient> check_http_;  // null without before_send
  std::unique_ptr<WebhookDelivery> delivery_;
  std::unique_ptr<BeforeSendHook> before_send_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im::logic
