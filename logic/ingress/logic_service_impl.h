#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <string>
#include <unordered_set>

#include "im/v1/logic.grpc.pb.h"
#include "logic/ingress/ingress_stream.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/ingress/session_calls.h"
#include "logic/logic_metrics.h"

namespace im::logic {

// The LogicService gRPC server (callback API). A reaction never blocks: each unary call (logins and
// session housekeeping) is served by SessionCalls, which hands it to an executor and refuses it at
// once when that is full. Client requests arrive on Stream (see IngressStream).
class LogicServiceImpl final : public im::v1::LogicService::CallbackService {
 public:
  LogicServiceImpl(SessionCalls* calls, RequestDispatcher* dispatcher, LogicMetrics* metrics,
                   IngressStream::Limits stream_limits)
      : calls_(calls), dispatcher_(dispatcher), metrics_(metrics), stream_limits_(stream_limits) {}

  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* context,
                                  const im::v1::LoginRequest* request,
                                  im::v1::LoginReply* reply) override;
  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context,
                                       const im::v1::DisconnectRequest* request,
                                       im::v1::DisconnectReply* reply) override;
  grpc::ServerUnaryReactor* DisconnectMany(grpc::CallbackServerContext* context,
                                           const im::v1::DisconnectManyRequest* request,
                                           im::v1::DisconnectManyReply* reply) override;
  grpc::ServerUnaryReactor* RefreshSessions(grpc::CallbackServerContext* context,
                                            const im::v1::RefreshSessionsRequest* request,
                                            im::v1::RefreshSessionsReply* reply) override;
  grpc::ServerUnaryReactor* RegisterGateway(grpc::CallbackServerContext* context,
                                            const im::v1::RegisterGatewayRequest* request,
                                            im::v1::RegisterGatewayReply* reply) override;
  grpc::ServerBidiReactor<im::v1::IngressBatch, im::v1::EgressBatch>* Stream(
      grpc::CallbackServerContext* context) override;

  // Any thread: every open stream stops reading and ends once it has answered what it read, and
  // streams opened from now on end at once; gateways take their requests to other nodes.
  void DrainStreams();

 private:
  SessionCalls* calls_;
  RequestDispatcher* dispatcher_;
  LogicMetrics* metrics_;
  const IngressStream::Limits stream_limits_;

  std::mutex streams_mutex_;
  std::unordered_set<IngressStream*> streams_;  // open streams; guarded by streams_mutex_
  bool draining_ = false;                       // guarded by streams_mutex_
};

}  // namespace im::logic
