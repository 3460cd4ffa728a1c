#include "gateway/gateway_service_impl.h"

#include <atomic>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/frame_codec.h"

namespace im::gateway {
namespace {

// Collects the per-loop results of one Push; the last loop to report finishes the call.
class PushCompletion {
 public:
  PushCompletion(grpc::ServerUnaryReactor* reactor, im::v1::PushReply* reply, int parts)
      : reactor_(reactor), reply_(reply), remaining_(parts) {}

  void Report(uint32_t delivered, const std::vector<common::ConnId>& unknown) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reply_->set_delivered(reply_->delivered() + delivered);
      for (common::ConnId id : unknown) reply_->add_unknown_conn_ids(id);
    }
    if (remaining_.fetch_sub(1) == 1) {
      reactor_->Finish(grpc::Status::OK);
      delete this;
    }
  }

 private:
  grpc::ServerUnaryReactor* reactor_;
  im::v1::PushReply* reply_;
  std::mutex mutex_;
  std::atomic<int> remaining_;
};

}  // namespace

GatewayServiceImpl::GatewayServiceImpl(const GatewayOptions& options, GatewayMetrics* metrics,
                                       std::vector<WorkerLoop*> workers, DrainStarter start_drain)
    : options_(options),
      metrics_(metrics),
      workers_(std::move(workers)),
      start_drain_(std::move(start_drain)) {}

WorkerLoop* GatewayServiceImpl::OwnerOf(common::ConnId id) const {
  const uint32_t index = common::LoopIndexOf(id);
  return index < workers_.size() ? workers_[index] : nullptr;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Push(grpc::CallbackServerContext* context,
                                                   const im::v1::PushRequest* request,
                                                   im::v1::PushReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->frame().empty() || request->frame().size() > options_.max_push_frame_bytes) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("push frame of ", request->frame().size(),
                                              " bytes; limit ", options_.max_push_frame_bytes)));
    return reactor;
  }
  // Serialized once, shared read-only by every connection's write queue.
  auto encoded =
      std::make_shared<const std::string>(common::EncodeSerializedFrame(request->frame()));

  std::vector<std::vector<common::ConnId>> by_loop(workers_.size());
  std::vector<common::ConnId> unknown;
  for (common::ConnId id : request->conn_ids()) {
    if (OwnerOf(id) == nullptr) {
      unknown.push_back(id);
    } else {
      by_loop[common::LoopIndexOf(id)].push_back(id);
    }
  }
  int parts = 1;  // the unknown ids form the first part
  for (const auto& ids : by_loop) parts += ids.empty() ? 0 : 1;
  auto* completion = new PushCompletion(reactor, reply, parts);

  for (size_t i = 0; i < by_loop.size(); ++i) {
    if (by_loop[i].empty()) continue;
    WorkerLoop* worker = workers_[i];
    auto ids = std::make_shared<std::vector<common::ConnId>>(std::move(by_loop[i]));
    const bool posted = worker->Post([worker, ids, encoded, completion, metrics = metrics_] {
      uint32_t delivered = 0;
      std::vector<common::ConnId> gone;
      for (common::ConnId id : *ids) {
        Connection* connection = worker->Find(id);
        if (connection != nullptr && connection->WritePush(encoded)) {
          ++delivered;
        } else {
          gone.push_back(id);
        }
      }
      metrics->pushes.Increment(delivered);
      metrics->pushes_unknown.Increment(static_cast<double>(gone.size()));
      completion->Report(delivered, gone);
    });
    // An overloaded loop delivers nothing of this batch; those clients catch up by sync.
    if (!posted) completion->Report(0, {});
  }
  metrics_->pushes_unknown.Increment(static_cast<double>(unknown.size()));
  completion->Report(0, unknown);
  return reactor;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Kick(grpc::CallbackServerContext* context,
                                                   const im::v1::KickRequest* request,
                                                   im::v1::KickReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  WorkerLoop* worker = OwnerOf(request->conn_id());
  if (worker == nullptr) {
    reply->set_found(false);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  const auto reason = static_cast<im::v1::Kick::Reason>(request->reason());
  const bool posted = worker->PostToConnection(
      request->conn_id(),
      [reactor, reply, reason, message = request->message()](Connection& connection) {
        connection.Kick(reason, message);
        reply->set_found(true);
        reactor->Finish(grpc::Status::OK);
      },
      [reactor, reply] {
        reply->set_found(false);
        reactor->Finish(grpc::Status::OK);
      });
  if (!posted) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "gateway loop overloaded"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* GatewayServiceImpl::Drain(grpc::CallbackServerContext* context,
                                                    const im::v1::DrainRequest* request,
                                                    im::v1::DrainReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  size_t connections = 0;
  for (WorkerLoop* worker : workers_) connections += worker->connection_count();
  reply->set_connections(static_cast<uint32_t>(connections));
  start_drain_(request->reconnect_after_ms());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace im::gateway
