#include "logic/ingress/logic_service_impl.h"

#include <chrono>
#include <string>

#include "common/logging.h"
#include "logic/reply_status.h"

namespace im::logic {
namespace {

im::v1::Code AnsweredCode(const im::v1::LoginReply& reply) { return reply.resp().status().code(); }
im::v1::Code AnsweredCode(const im::v1::DisconnectReply&) { return im::v1::OK; }
im::v1::Code AnsweredCode(const im::v1::DisconnectManyReply&) { return im::v1::OK; }
im::v1::Code AnsweredCode(const im::v1::RefreshSessionsReply&) { return im::v1::OK; }

}  // namespace

template <typename Request, typename Response, typename Handler>
grpc::ServerUnaryReactor* LogicServiceImpl::Serve(const AdmissionStage& stage, const char* method,
                                                  grpc::CallbackServerContext* context,
                                                  const Request* request, Response* response,
                                                  Handler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const auto started = std::chrono::steady_clock::now();
  auto respond = [this, method, reactor, response, started](Response answer) {
    const im::v1::Code code = AnsweredCode(answer);
    *response = std::move(answer);
    metrics_->Requests(method, im::v1::Code_Name(code)).Increment();
    metrics_->Latency(method).Observe(common::SecondsSince(started));
    reactor->Finish(grpc::Status::OK);
  };
  auto refuse = [this, method, reactor](grpc::StatusCode code, const char* reason,
                                        prometheus::Counter& counter) {
    counter.Increment();
    metrics_
        ->Requests(method, code == grpc::StatusCode::DEADLINE_EXCEEDED ? "DEADLINE_EXCEEDED"
                                                                       : "RESOURCE_EXHAUSTED")
        .Increment();
    reactor->Finish(grpc::Status(code, reason));
  };
  stage.Submit(
      [this, context, handler = std::move(handler), request, respond = std::move(respond),
       refuse]() mutable {
        if (context->deadline() <= std::chrono::system_clock::now()) {
          return refuse(grpc::StatusCode::DEADLINE_EXCEEDED, kExpiredInQueueReason,
                        metrics_->expired_in_queue);
        }
        std::string request_id;
        if constexpr (requires { request->caller(); }) request_id = request->caller().request_id();
        common::ScopedRequestId scope(request_id);
        handler(*request, std::move(respond));
      },
      [refuse](const char* reason, prometheus::Counter& counter) {
        refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, reason, counter);
      });
  return reactor;
}

// Handlers of the session service answer synchronously.
#define IM_SESSION_METHOD(Stage, Method, Request, Reply)                                   \
  grpc::ServerUnaryReactor* LogicServiceImpl::Method(grpc::CallbackServerContext* context, \
                                                     const im::v1::Request* request,       \
                                                     im::v1::Reply* reply) {               \
    return Serve(Stage, #Method, context, request, reply,                                  \
                 [this](const im::v1::Request& r, auto respond) {                          \
                   std::move(respond)(sessions_->Method(r));                               \
                 });                                                                       \
  }

IM_SESSION_METHOD(logins_, Login, LoginRequest, LoginReply)
IM_SESSION_METHOD(store_, Disconnect, DisconnectRequest, DisconnectReply)
IM_SESSION_METHOD(store_, DisconnectMany, DisconnectManyRequest, DisconnectManyReply)
IM_SESSION_METHOD(store_, RefreshSessions, RefreshSessionsRequest, RefreshSessionsReply)
#undef IM_SESSION_METHOD

grpc::ServerBidiReactor<im::v1::IngressBatch, im::v1::EgressBatch>* LogicServiceImpl::Stream(
    grpc::CallbackServerContext* context) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  auto* stream = new IngressStream(context, dispatcher_, stream_limits_, draining_,
                                   [this](IngressStream* done) {
                                     std::lock_guard<std::mutex> forget(streams_mutex_);
                                     streams_.erase(done);
                                     metrics_->ingress_streams.Decrement();
                                   });
  streams_.insert(stream);
  metrics_->ingress_streams.Increment();
  return stream;
}

void LogicServiceImpl::DrainStreams() {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  draining_ = true;
  for (IngressStream* stream : streams_) stream->Drain();
}

grpc::ServerUnaryReactor* LogicServiceImpl::RegisterGateway(
    grpc::CallbackServerContext* context, const im::v1::RegisterGatewayRequest* request,
    im::v1::RegisterGatewayReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued = executors_.store->TrySubmit([this, reactor, request, reply] {
    absl::StatusOr<im::v1::RegisterGatewayReply> result = sessions_->RegisterGateway(*request);
    if (!result.ok()) {
      reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(result.status().code()),
                                   std::string(result.status().message())));
      return;
    }
    *reply = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) {
    metrics_->overloaded_executor.Increment();
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "logic is overloaded"));
  }
  return reactor;
}

}  // namespace im::logic
