#include "logic/ingress/session_calls.h"

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/logging.h"
#include "logic/reply_status.h"

namespace im::logic {
namespace {

im::v1::Code AnsweredCode(const im::v1::LoginReply& reply) { return reply.resp().status().code(); }
template <typename Reply>
im::v1::Code AnsweredCode(const Reply&) {
  return im::v1::OK;
}

}  // namespace

SessionCalls::SessionCalls(SessionService* sessions, RequestDispatcher::Executors executors,
                           LogicMetrics* metrics)
    : sessions_(sessions),
      store_(AdmissionStage::Store(executors.store, metrics)),
      logins_(AdmissionStage::Logins(executors.logins, metrics)),
      metrics_(metrics) {}

template <typename Request, typename Reply, typename Handler>
void SessionCalls::Serve(const AdmissionStage& stage, const char* method, Request request,
                         Deadline deadline, Handler handler, Done<Reply> done) {
  const auto started = std::chrono::steady_clock::now();
  // The stage runs one of two paths (the call, or its refusal), each of which answers.
  auto shared_done = std::make_shared<Done<Reply>>(std::move(done));
  auto refuse = [this, method, shared_done](absl::Status status, prometheus::Counter& counter) {
    counter.Increment();
    metrics_->Requests(method, absl::StatusCodeToString(status.code())).Increment();
    std::move (*shared_done)(std::move(status));
  };
  stage.Submit(
      [this, method, started, deadline, request = std::move(request), handler, shared_done,
       refuse]() mutable {
        if (deadline <= std::chrono::system_clock::now()) {
          return refuse(absl::DeadlineExceededError(kExpiredInQueueReason),
                        metrics_->expired_in_queue);
        }
        std::string request_id;
        if constexpr (requires { request.caller(); }) request_id = request.caller().request_id();
        common::ScopedRequestId scope(request_id);
        absl::StatusOr<Reply> reply = handler(request);
        metrics_
            ->Requests(method, reply.ok()
                                   ? im::v1::Code_Name(AnsweredCode(*reply))
                                   : std::string(absl::StatusCodeToString(reply.status().code())))
            .Increment();
        metrics_->Latency(method).Observe(common::SecondsSince(started));
        std::move (*shared_done)(std::move(reply));
      },
      [refuse](const char* reason, prometheus::Counter& counter) {
        refuse(absl::ResourceExhaustedError(reason), counter);
      });
}

void SessionCalls::Login(im::v1::LoginRequest request, Deadline deadline,
                         Done<im::v1::LoginReply> done) {
  Serve(
      logins_, "Login", std::move(request), deadline,
      [this](const im::v1::LoginRequest& r) { return sessions_->Login(r); }, std::move(done));
}

void SessionCalls::Disconnect(im::v1::DisconnectRequest request, Deadline deadline,
                              Done<im::v1::DisconnectReply> done) {
  Serve(
      store_, "Disconnect", std::move(request), deadline,
      [this](const im::v1::DisconnectRequest& r) { return sessions_->Disconnect(r); },
      std::move(done));
}

void SessionCalls::DisconnectMany(im::v1::DisconnectManyRequest request, Deadline deadline,
                                  Done<im::v1::DisconnectManyReply> done) {
  Serve(
      store_, "DisconnectMany", std::move(request), deadline,
      [this](const im::v1::DisconnectManyRequest& r) { return sessions_->DisconnectMany(r); },
      std::move(done));
}

void SessionCalls::RefreshSessions(im::v1::RefreshSessionsRequest request, Deadline deadline,
                                   Done<im::v1::RefreshSessionsReply> done) {
  Serve(
      store_, "RefreshSessions", std::move(request), deadline,
      [this](const im::v1::RefreshSessionsRequest& r) { return sessions_->RefreshSessions(r); },
      std::move(done));
}

void SessionCalls::RegisterGateway(im::v1::RegisterGatewayRequest request, Deadline deadline,
                                   Done<im::v1::RegisterGatewayReply> done) {
  Serve(
      store_, "RegisterGateway", std::move(request), deadline,
      [this](const im::v1::RegisterGatewayRequest& r) { return sessions_->RegisterGateway(r); },
      std::move(done));
}

}  // namespace im::logic
