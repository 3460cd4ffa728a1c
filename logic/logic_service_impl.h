#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/bounded_executor.h"
#include "im/v1/logic.grpc.pb.h"
#include "logic/chat_service.h"
#include "logic/logic_metrics.h"
#include "logic/session_service.h"

namespace im::logic {

// The LogicService gRPC server (callback API). A reaction never blocks: each call is handed to
// the store executor, and a full executor answers RESOURCE_EXHAUSTED at once.
class LogicServiceImpl final : public im::v1::LogicService::CallbackService {
 public:
  LogicServiceImpl(SessionService* sessions, ChatService* chat, common::BoundedExecutor* executor,
                   LogicMetrics* metrics)
      : sessions_(sessions), chat_(chat), executor_(executor), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* context,
                                  const im::v1::LoginRequest* request,
                                  im::v1::LoginReply* reply) override;
  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context,
                                       const im::v1::DisconnectRequest* request,
                                       im::v1::DisconnectReply* reply) override;
  grpc::ServerUnaryReactor* RefreshSessions(grpc::CallbackServerContext* context,
                                            const im::v1::RefreshSessionsRequest* request,
                                            im::v1::RefreshSessionsReply* reply) override;
  grpc::ServerUnaryReactor* RegisterGateway(grpc::CallbackServerContext* context,
                                            const im::v1::RegisterGatewayRequest* request,
                                            im::v1::RegisterGatewayReply* reply) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const im::v1::SendRequest* request,
                                 im::v1::SendResp* reply) override;
  grpc::ServerUnaryReactor* Ack(grpc::CallbackServerContext* context,
                                const im::v1::AckRequest* request,
                                im::v1::AckReply* reply) override;
  grpc::ServerUnaryReactor* Sync(grpc::CallbackServerContext* context,
                                 const im::v1::SyncRequest* request,
                                 im::v1::SyncResp* reply) override;
  grpc::ServerUnaryReactor* Conversations(grpc::CallbackServerContext* context,
                                          const im::v1::ConversationsRequest* request,
                                          im::v1::ConversationsResp* reply) override;
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* context,
                                 const im::v1::ReadRequest* request,
                                 im::v1::ReadResp* reply) override;

 private:
  // Runs `handler(request, respond)` on the executor; `respond(response)` stores the response,
  // counts it and finishes the call.
  template <typename Request, typename Response, typename Handler>
  grpc::ServerUnaryReactor* Serve(const char* method, grpc::CallbackServerContext* context,
                                  const Request* request, Response* response, Handler handler);

  SessionService* sessions_;
  ChatService* chat_;
  common::BoundedExecutor* executor_;
  LogicMetrics* metrics_;
};

}  // namespace im::logic
