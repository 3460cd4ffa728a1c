#include "logic/delivery/in_process_pusher.h"

#include <set>

#include "common/logging.h"

namespace im::logic {

InProcessPusher::InProcessPusher(store::SessionRegistry* sessions,
                                 common::BoundedExecutor* executor, LogicMetrics* metrics)
    : sessions_(sessions), executor_(executor), metrics_(metrics) {}

InProcessPusher::~InProcessPusher() { WaitIdle(std::chrono::seconds(5)); }

void InProcessPusher::Attach(Deliver deliver) {
  std::shared_ptr<const Deliver> attached;
  if (deliver) attached = std::make_shared<const Deliver>(std::move(deliver));
  std::lock_guard<std::mutex> lock(deliver_mutex_);
  deliver_ = std::move(attached);
}

absl::Status InProcessPusher::RegisterGateway(const std::string& /*gateway_id*/,
                                              const std::string& /*push_address*/) {
  return absl::OkStatus();
}

void InProcessPusher::Push(std::shared_ptr<const std::string> frame,
                           const std::vector<PushTarget>& targets, std::function<void()> done) {
  metrics_->push_connections.Increment(static_cast<double>(targets.size()));
  Send(*frame, targets, /*close_after=*/false, std::move(done));
}

void InProcessPusher::Kick(const PushTarget& target, im::v1::Kick::Reason reason,
                           const std::string& message) {
  metrics_->kicks.Increment();
  Send(*SerializedKick(reason, message), {target}, /*close_after=*/true, {});
}

void InProcessPusher::Send(const std::string& frame, const std::vector<PushTarget>& targets,
                           bool close_after, std::function<void()> done) {
  std::shared_ptr<const Deliver> deliver;
  {
    std::lock_guard<std::mutex> lock(deliver_mutex_);
    deliver = deliver_;
  }
  if (targets.empty() || deliver == nullptr) {
    if (deliver == nullptr) metrics_->push_unknown_gateway.Increment(targets.size());
    if (done) done();
    return;
  }
  auto request = std::make_shared<im::v1::PushBatchRequest>();
  im::v1::PushRequest* push = request->add_pushes();
  push->set_frame(frame);
  push->set_close_after(close_after);
  for (const PushTarget& target : targets) push->add_conn_ids(target.session.conn_id);
  calls_.Started();
  (*deliver)(
      std::move(request),
      [this, targets = close_after ? std::vector<PushTarget>() : targets, done = std::move(done)](
          absl::Status status, const im::v1::PushBatchReply& reply) mutable {
        if (status.ok()) {
          metrics_->push_rpcs_ok.Increment();
          DropDisowned(std::move(targets), reply);
        } else {
          metrics_->push_rpcs_failed.Increment();
          IM_LOG_RATE_LIMITED(spdlog::level::warn, "push refused by the gateway: {}",
                              status.ToString());
        }
        if (done) done();
        calls_.Finished();
      });
}

void InProcessPusher::DropDisowned(std::vector<PushTarget> targets,
                                   const im::v1::PushBatchReply& reply) {
  if (targets.empty() || reply.replies_size() == 0 || reply.replies(0).unknown_conn_ids().empty()) {
    return;
  }
  const std::set<uint64_t> unknown(reply.replies(0).unknown_conn_ids().begin(),
                                   reply.replies(0).unknown_conn_ids().end());
  std::erase_if(targets,
                [&unknown](const PushTarget& t) { return unknown.count(t.session.conn_id) == 0; });
  // The gateway no longer holds these connections: drop their sessions now rather than pushing
  // into the void until they expire. Best effort; expiry removes them anyway.
  executor_->TrySubmit([this, targets = std::move(targets)] {
    for (const PushTarget& target : targets) {
      absl::StatusOr<bool> removed = sessions_->Unregister(
          target.uid, target.session.device, target.session.gateway_id, target.session.conn_id);
      if (removed.ok() && *removed) metrics_->push_stale_sessions.Increment();
    }
  });
}

bool InProcessPusher::WaitIdle(std::chrono::milliseconds timeout) {
  return calls_.WaitIdle(timeout);
}

}  // namespace im::logic
