#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/bounded_executor.h"
#include "im/v1/logic.grpc.pb.h"
#include "logic/chat_service.h"
#include "logic/group_service.h"
#include "logic/logic_metrics.h"
#include "logic/session_service.h"

namespace im::logic {

// The LogicService gRPC server (callback API). A reaction never blocks: each call is handed to
// the store executor, and a full executor answers RESOURCE_EXHAUSTED at once.
class LogicServiceImpl final : public im::v1::LogicService::CallbackService {
 public:
  LogicServiceImpl(SessionService* sessions, ChatService* chat, GroupService* groups,
                   common::BoundedExecutor* executor, LogicMetrics* metrics)
      : sessions_(sessions), chat_(chat), groups_(groups), executor_(executor), metrics_(metrics) {}

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
  grpc::ServerUnaryReactor* GroupCreate(grpc::CallbackServerContext* context,
                                        const im::v1::GroupCreateRequest* request,
                                        im::v1::GroupCreateResp* reply) override;
  grpc::ServerUnaryReactor* GroupJoin(grpc::CallbackServerContext* context,
                                      const im::v1::GroupJoinRequest* request,
                                      im::v1::GroupJoinResp* reply) override;
  grpc::ServerUnaryReactor* GroupLeave(grpc::CallbackServerContext* context,
                                       const im::v1::GroupLeaveRequest* request,
                                       im::v1::GroupLeaveResp* reply) override;
  grpc::ServerUnaryReactor* GroupMembers(grpc::CallbackServerContext* context,
                                         const im::v1::GroupMembersRequest* request,
                                         im::v1::GroupMembersResp* reply) override;
  grpc::ServerUnaryReactor* GroupSetRole(grpc::CallbackServerContext* context,
                                         const im::v1::GroupSetRoleRequest* request,
                                         im::v1::GroupSetRoleResp* reply) override;

 private:
  // Runs `handler(request, respond)` on the executor; `respond(response)` stores the response,
  // counts it and finishes the call.
  template <typename Request, typename Response, typename Handler>
  grpc::ServerUnaryReactor* Serve(const char* method, grpc::CallbackServerContext* context,
                                  const Request* request, Response* response, Handler handler);

  SessionService* sessions_;
  ChatService* chat_;
  GroupService* groups_;
  common::BoundedExecutor* executor_;
  LogicMetrics* metrics_;
};

}  // namespace im::logic
