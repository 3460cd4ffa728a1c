#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "common/bounded_executor.h"
#include "logic/admin/admin_api.h"
#include "logic/admin/admin_operations.h"
#include "logic/admin/restrictions.h"
#include "logic/backends/logic_stores.h"
#include "logic/conversation/chat_service.h"
#include "logic/conversation/message_writer.h"
#include "logic/conversation/msg_id_generator.h"
#include "logic/delivery/in_process_pusher.h"
#include "logic/delivery/recipient_lookup.h"
#include "logic/group/group_fanout.h"
#include "logic/group/group_service.h"
#include "logic/group/member_lists.h"
#include "logic/ingress/logic_service_impl.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/ingress/session_calls.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/loop/logic_loop.h"
#include "logic/presence/presence_service.h"
#include "logic/session/session_service.h"
#include "logic/webhooks/webhooks.h"

namespace im::logic {

// One im-logic node: the stores, the executor, the group-commit writer, the push client, the
// group fan-out and the LogicService gRPC server, wired together and torn down in order.
class LogicServer {
 public:
  // `stores` come from ClusterStores or InProcessStores, every one set; `metrics` outlives the
  // server. Serves LogicService over gRPC on options.grpc_address and pushes to the gateways
  // over gRPC.
  static absl::StatusOr<std::unique_ptr<LogicServer>> Start(const LogicOptions& options,
                                                            LogicStores stores,
                                                            LogicMetrics* metrics);
  // The same node for the gateway of this process (the embedded node): no gRPC server, requests
  // come in through session_calls() and dispatcher(), pushes leave through in_process_pusher().
  static absl::StatusOr<std::unique_ptr<LogicServer>> StartInProcess(const LogicOptions& options,
                                                                     LogicStores stores,
                                                                     LogicMetrics* metrics);
  ~LogicServer();

  int grpc_port() const { return grpc_port_; }
  // The admin API's port; 0 when it is off (admin_api.listen empty).
  uint16_t admin_api_port() const { return admin_api_ ? admin_api_->port() : 0; }

  // StartInProcess only (null otherwise). Thread-safe; valid until the server is destroyed.
  SessionCalls* session_calls() { return session_calls_.get(); }
  RequestDispatcher* dispatcher() { return dispatcher_.get(); }
  InProcessPusher* in_process_pusher() { return in_process_pusher_; }

  // Whether the fan-out bus's broker answers (readiness); see FanoutBus::CheckReachable. Any
  // thread, before Shutdown.
  absl::Status CheckFanoutBus(std::chrono::milliseconds timeout) {
    return stores_.fanout->CheckReachable(timeout);
  }

  // Stops accepting calls, lets calls in flight finish (bounded by `grace`), persists what is
  // queued, waits for pushes in flight. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  enum class Transport { kGrpc, kInProcess };
  LogicServer(const LogicOptions& options, LogicStores stores, LogicMetrics* metrics,
              Transport transport);
  // Starts the fan-out bus's consumers (and, with kGrpc, the gRPC server).
  static absl::StatusOr<std::unique_ptr<LogicServer>> StartWith(const LogicOptions& options,
                                                                LogicStores stores,
                                                                LogicMetrics* metrics,
                                                                Transport transport);
  absl::Status ServeGrpc();
  absl::Status ServeAdminApi();
  // GroupService's notices, sent as the system through the chat service.
  void PostGroupNotice(const std::string& group_id, const std::string& notice_id, std::string body,
                       absl::AnyInvocable<void(im::v1::SendResp) &&> done);

  const LogicOptions options_;
  LogicStores stores_;
  LogicMetrics* const metrics_;
  MsgIdGenerator msg_ids_;
  SenderLimits sender_limits_;
  std::unique_ptr<common::BoundedExecutor> executor_;
  std::unique_ptr<common::BoundedExecutor> login_executor_;  // logins only
  std::unique_ptr<common::BoundedExecutor> send_executor_;   // sends, without a send loop
  std::unique_ptr<MessageWriter> writer_;
  std::unique_ptr<LogicLoop> send_loop_;   // null in process
  std::unique_ptr<LogicLoop> login_loop_;  // null in process
  std::unique_ptr<Pusher> pusher_;
  InProcessPusher* in_process_pusher_ = nullptr;  // pusher_, when in process
  std::unique_ptr<RecipientLookup> recipients_;   // single chat's and group fan-out's
  std::unique_ptr<Restrictions> restrictions_;
  std::unique_ptr<PresenceService> presence_service_;
  std::unique_ptr<Webhooks> webhooks_;
  std::unique_ptr<SessionService> session_service_;
  std::unique_ptr<MemberLists> member_lists_;
  std::unique_ptr<GroupFanout> group_fanout_;
  std::unique_ptr<ChatService> chat_service_;
  std::unique_ptr<GroupService> group_service_;
  std::unique_ptr<RequestDispatcher> dispatcher_;
  std::unique_ptr<SessionCalls> session_calls_;
  std::unique_ptr<LogicServiceImpl> service_;  // null in process
  std::unique_ptr<AdminOperations> admin_operations_;
  std::unique_ptr<AdminApi> admin_api_;  // null when off
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace im::logic
