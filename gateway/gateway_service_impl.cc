#include "gateway/gateway_service_impl.h"

#include <atomic>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/frame_codec.h"
#include "gateway/gateway_push_stream.h"

namespace im::gateway {
namespace {

// Collects the per-loop results of one push batch; the last loop to report finishes it.
class PushCompletion {
 public:
  PushCompletion(im::v1::PushBatchReply* reply, int pushes, int parts,
                 GatewayServiceImpl::BatchDone done)
      : reply_(reply), done_(std::move(done)), remaining_(parts) {
    for (int i = 0; i < pushes; ++i) reply_->add_replies();
  }

  // What one loop (or the unknown ids) did with push `index` of the batch.
  void Add(int index, uint32_t delivered, const std::vector<common::ConnId>& unknown) {
    std::lock_guard<std::mutex> lock(mutex_);
    im::v1::PushReply* reply = reply_->mutable_replies(index);
    reply->set_delivered(reply->delivered() + delivered);
    for (common::ConnId id : unknown) reply->add_unknown_conn_ids(id);
  }
  // One part (a loop's task, or the unknown ids) has added all it had.
  void PartDone() {
    if (remaining_.fetch_sub(1) == 1) {
      std::move(done_)(grpc::Status::OK);
      delete this;
    }
  }

 private:
  im::v1::PushBatchReply* reply_;
  GatewayServiceImpl::BatchDone done_;
  std::mutex mutex_;
  std::atomic<int> remaining_;
};

// One loop's share of a batch: for each push (by index), its frame and the loop's connections.
struct LoopShare {
  struct Part {
    int index;
    std::shared_ptr<const std::string> encoded;
    std::vector<common::ConnId> ids;
    bool close_after = false;  // a kick
  };
  std::vector<Part> parts;
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
                                                   const im::v1::PushBatchRequest* request,
                                                   im::v1::PushBatchReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  DeliverBatch(*request, reply, [reactor](grpc::Status status) { reactor->Finish(status); });
  return reactor;
}

grpc::ServerBidiReactor<im::v1::PushBatchRequest, im::v1::PushBatchReply>*
GatewayServiceImpl::PushStream(grpc::CallbackServerContext* context) {
  {
    std::lock_guard<std::mutex> lock(push_streams_mutex_);
    push_streams_.insert(context);
  }
  return new GatewayPushStream(this, context);
}

void GatewayServiceImpl::ForgetPushStream(grpc::CallbackServerContext* context) {
  std::lock_guard<std::mutex> lock(push_streams_mutex_);
  push_streams_.erase(context);
}

void GatewayServiceImpl::EndPushStreams() {
  std::lock_guard<std::mutex> lock(push_streams_mutex_);
  // The stream's reads then fail, and it finishes through its usual path.
  for (grpc::CallbackServerContext* context : push_streams_) context->TryCancel();
}

void GatewayServiceImpl::DeliverBatch(const im::v1::PushBatchRequest& request,
                                      im::v1::PushBatchReply* reply, BatchDone done) {
  for (const im::v1::PushRequest& push : request.pushes()) {
    if (push.frame().empty() || push.frame().size() > options_.max_push_frame_bytes) {
      return std::move(done)(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat("push frame of ", push.frame().size(), " bytes; limit ",
                                    options_.max_push_frame_bytes)));
    }
  }
  std::vector<LoopShare> shares(workers_.size());
  std::vector<std::pair<int, std::vector<common::ConnId>>> unknown;
  for (int index = 0; index < request.pushes_size(); ++index) {
    const im::v1::PushRequest& push = request.pushes(index);
    // Serialized once, shared read-only by every connection's write queue.
    auto encoded = std::make_shared<const std::string>(common::EncodeSerializedFrame(push.frame()));
    std::vector<common::ConnId> unknown_here;
    for (common::ConnId id : push.conn_ids()) {
      if (OwnerOf(id) == nullptr) {
        unknown_here.push_back(id);
        continue;
      }
      std::vector<LoopShare::Part>& parts = shares[common::LoopIndexOf(id)].parts;
      if (parts.empty() || parts.back().index != index) {
        parts.push_back(LoopShare::Part{index, encoded, {}, push.close_after()});
      }
      parts.back().ids.push_back(id);
    }
    if (!unknown_here.empty()) unknown.emplace_back(index, std::move(unknown_here));
  }
  int loops = 0;
  for (const LoopShare& share : shares) loops += share.parts.empty() ? 0 : 1;
  // The unknown ids form one more part, reported last.
  auto* completion = new PushCompletion(reply, request.pushes_size(), loops + 1, std::move(done));

  for (size_t i = 0; i < shares.size(); ++i) {
    if (shares[i].parts.empty()) continue;
    WorkerLoop* worker = workers_[i];
    auto share = std::make_shared<LoopShare>(std::move(shares[i]));
    // One task per loop, its pushes in batch order: a connection gets them in the order made.
    const bool posted = worker->Post([worker, share, completion, metrics = metrics_] {
      for (const LoopShare::Part& part : share->parts) {
        uint32_t delivered = 0;
        std::vector<common::ConnId> gone;
        for (common::ConnId id : part.ids) {
          Connection* connection = worker->Find(id);
          if (connection != nullptr && connection->WritePush(part.encoded)) {
            ++delivered;
            if (part.close_after) connection->CloseAfterFlush(CloseReason::kKicked);
          } else {
            gone.push_back(id);
          }
        }
        metrics->pushes.Increment(delivered);
        metrics->pushes_unknown.Increment(static_cast<double>(gone.size()));
        completion->Add(part.index, delivered, gone);
      }
      completion->PartDone();
    });
    // An overloaded loop delivers nothing of this batch; those clients catch up by sync.
    if (!posted) completion->PartDone();
  }
  for (const auto& [index, ids] : unknown) {
    metrics_->pushes_unknown.Increment(static_cast<double>(ids.size()));
    completion->Add(index, 0, ids);
  }
  completion->PartDone();
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
