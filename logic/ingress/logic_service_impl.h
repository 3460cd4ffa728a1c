#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <string>
#include <unordered_set>

#include "common/bounded_executor.h"
#include "im/v1/logic.grpc.pb.h"
#include "logic/ingress/admission_stage.h"
#include "logic/ingress/ingress_stream.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/logic_metrics.h"
#include "logic/session/session_service.h"

namespace im::logic {

// The LogicService gRPC server (callback API). A reaction never blocks: each call is handed to
// the store executor, and a full executor answers RESOURCE_EXHAUSTED at once. Client requests
// arrive on Stream (see IngressStream); logins and session housekeeping are unary calls.
class LogicServiceImpl final : public im::v1::LogicService::CallbackService {
 public:
  LogicServiceImpl(SessionService* sessions, RequestDispatcher* dispatcher,
                   RequestDispatcher::Executors executors, LogicMetrics* metrics,
                   IngressStream::Limits stream_limits)
      : sessions_(sessions),
        dispatcher_(dispatcher),
        executors_(executors),
        store_(AdmissionStage::Store(executors.store, metrics)),
        logins_(AdmissionStage::Logins(executors.logins, metrics)),
        metrics_(metrics),
        stream_limits_(stream_limits) {}

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
  // Runs `handler(request, respond)` on `stage`; `respond(response)` stores the response,
  // counts it and finishes the call. A call whose deadline passed while it was queued ends
  // DEADLINE_EXCEEDED, and one the stage refuses (full, or shed after waiting too long)
  // RESOURCE_EXHAUSTED, without running.
  template <typename Request, typename Response, typename Handler>
  grpc::ServerUnaryReactor* Serve(const AdmissionStage& stage, const char* method,
                                  grpc::CallbackServerContext* context, const Request* request,
                                  Response* response, Handler handler);

  SessionService* sessions_;
  RequestDispatcher* dispatcher_;
  const RequestDispatcher::Executors executors_;
  const AdmissionStage store_;  // every call but logins
  const AdmissionStage logins_;
  LogicMetrics* metrics_;
  const IngressStream::Limits stream_limits_;

  std::mutex streams_mutex_;
  std::unordered_set<IngressStream*> streams_;  // open streams; guarded by streams_mutex_
  bool draining_ = false;                       // guarded by streams_mutex_
};

}  // namespace im::logic
