#pragma once

#include <chrono>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "im/v1/logic.pb.h"
#include "logic/ingress/admission_stage.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/logic_metrics.h"
#include "logic/session/session_service.h"

namespace im::logic {

// The unary session calls a gateway makes (login, disconnects, session refresh, registration),
// served the same whatever carries them (LogicServiceImpl over gRPC, the embedded node's link in
// process): each is admitted to its executor (logins to their own), refused RESOURCE_EXHAUSTED at
// once when that is full or once it waited longer than its queue policy allows, DEADLINE_EXCEEDED
// without running when its deadline passed in the queue, and counted by method and code.
// `done` runs exactly once, on an executor thread or in the call itself. Thread-safe.
class SessionCalls {
 public:
  template <typename Reply>
  using Done = absl::AnyInvocable<void(absl::StatusOr<Reply>) &&>;
  using Deadline = std::chrono::system_clock::time_point;

  SessionCalls(SessionService* sessions, RequestDispatcher::Executors executors,
               LogicMetrics* metrics);

  void Login(im::v1::LoginRequest request, Deadline deadline, Done<im::v1::LoginReply> done);
  void Disconnect(im::v1::DisconnectRequest request, Deadline deadline,
                  Done<im::v1::DisconnectReply> done);
  void DisconnectMany(im::v1::DisconnectManyRequest request, Deadline deadline,
                      Done<im::v1::DisconnectManyReply> done);
  void RefreshSessions(im::v1::RefreshSessionsRequest request, Deadline deadline,
                       Done<im::v1::RefreshSessionsReply> done);
  void RegisterGateway(im::v1::RegisterGatewayRequest request, Deadline deadline,
                       Done<im::v1::RegisterGatewayReply> done);

 private:
  // Runs `handler(request)` (which returns the Reply or a StatusOr of it) on `stage`.
  template <typename Request, typename Reply, typename Handler>
  void Serve(const AdmissionStage& stage, const char* method, Request request, Deadline deadline,
             Handler handler, Done<Reply> done);

  SessionService* sessions_;
  const AdmissionStage store_;  // every call but logins
  const AdmissionStage logins_;
  LogicMetrics* metrics_;
};

}  // namespace im::logic
