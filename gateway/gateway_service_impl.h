#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "gateway/gateway_metrics.h"
#include "gateway/gateway_options.h"
#include "gateway/worker_loop.h"
#include "im/v1/gateway.grpc.pb.h"

namespace im::gateway {

// GatewayService as logic sees it. Handlers run on gRPC threads and never touch a connection:
// they post one task per owning loop and finish the call when the last loop has answered, so a
// reply says what really happened to each connection.
class GatewayServiceImpl final : public im::v1::GatewayService::CallbackService {
 public:
  // Begins the same drain as SIGTERM, with the GoAway hint given (0: the configured one).
  // Must be callable from any thread.
  using DrainStarter = std::function<void(uint32_t reconnect_after_ms)>;

  GatewayServiceImpl(const GatewayOptions& options, GatewayMetrics* metrics,
                     std::vector<WorkerLoop*> workers, DrainStarter start_drain);

  // What became of one push batch, once every loop has reported (OK), or why it was refused.
  using BatchDone = absl::AnyInvocable<void(grpc::Status) &&>;

  // Hands each push of `request` to the loops owning its connections and fills `reply` (which
  // must live until `done`); `done` runs once, on a loop thread or here.
  void DeliverBatch(const im::v1::PushBatchRequest& request, im::v1::PushBatchReply* reply,
                    BatchDone done);

  grpc::ServerBidiReactor<im::v1::PushBatchRequest, im::v1::PushBatchReply>* PushStream(
      grpc::CallbackServerContext* context) override;
  // Cancels every open push stream. At shutdown, once the connections are closed, they carry
  // nothing more, and gRPC's server shutdown would otherwise wait out its whole deadline for them.
  void EndPushStreams();
  // Called by a push stream when gRPC is done with it (its context is gone after this).
  void ForgetPushStream(grpc::CallbackServerContext* context);

  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* context,
                                 const im::v1::PushBatchRequest* request,
                                 im::v1::PushBatchReply* reply) override;
  grpc::ServerUnaryReactor* Kick(grpc::CallbackServerContext* context,
                                 const im::v1::KickRequest* request,
                                 im::v1::KickReply* reply) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const im::v1::DrainRequest* request,
                                  im::v1::DrainReply* reply) override;

 private:
  WorkerLoop* OwnerOf(common::ConnId id) const;

  const GatewayOptions& options_;
  GatewayMetrics* metrics_;
  std::vector<WorkerLoop*> workers_;
  DrainStarter start_drain_;
  std::mutex push_streams_mutex_;
  absl::flat_hash_set<grpc::CallbackServerContext*> push_streams_;  // guarded by the mutex
};

}  // namespace im::gateway
