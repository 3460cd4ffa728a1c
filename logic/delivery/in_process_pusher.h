#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "common/bounded_executor.h"
#include "common/in_flight_calls.h"
#include "im/v1/gateway.pb.h"
#include "logic/delivery/pusher.h"
#include "logic/logic_metrics.h"
#include "store/session_registry.h"

namespace im::logic {

// Pushes to the gateway of this process (the embedded node, im-server): each Push or Kick is one
// PushBatchRequest handed to the gateway's delivery (GatewayServiceImpl::DeliverBatch there), with
// no network and no serialization of the batch. Connections the gateway no longer holds have their
// sessions dropped on `executor`, as GatewayPusher does with a gateway's reply. Pushes made before
// a gateway is attached, or after it was detached, are dropped (there is no connection to take
// them). Thread-safe.
class InProcessPusher final : public Pusher {
 public:
  using Delivered = absl::AnyInvocable<void(absl::Status, const im::v1::PushBatchReply&) &&>;
  // Hands `request` to the gateway; `done` runs exactly once, on any thread, once every push was
  // handed to its connections' loops (reply.replies(i) answers request.pushes(i)) or refused.
  using Deliver =
      std::function<void(std::shared_ptr<const im::v1::PushBatchRequest> request, Delivered done)>;

  InProcessPusher(store::SessionRegistry* sessions, common::BoundedExecutor* executor,
                  LogicMetrics* metrics);
  ~InProcessPusher() override;

  // The gateway to deliver to, from now on; an empty `deliver` detaches it (at shutdown, before
  // the gateway goes).
  void Attach(Deliver deliver);

  // Nothing to record: the only gateway is this process's.
  absl::Status RegisterGateway(const std::string& gateway_id,
                               const std::string& push_address) override;
  void Push(std::shared_ptr<const std::string> frame, const std::vector<PushTarget>& targets,
            std::function<void()> done = {}) override;
  void Kick(const PushTarget& target, im::v1::Kick::Reason reason,
            const std::string& message) override;
  bool WaitIdle(std::chrono::milliseconds timeout) override;

 private:
  void Send(const std::string& frame, const std::vector<PushTarget>& targets, bool close_after,
            std::function<void()> done);
  // Drops the sessions of the targets whose connections the gateway did not have.
  void DropDisowned(std::vector<PushTarget> targets, const im::v1::PushBatchReply& reply);

  store::SessionRegistry* sessions_;
  common::BoundedExecutor* executor_;
  LogicMetrics* metrics_;
  std::mutex deliver_mutex_;
  std::shared_ptr<const Deliver> deliver_;  // guarded by deliver_mutex_; null: detached
  common::InFlightCalls calls_;
};

}  // namespace im::logic
