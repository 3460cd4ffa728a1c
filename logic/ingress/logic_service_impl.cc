#include "logic/ingress/logic_service_impl.h"

#include <string>

namespace im::logic {

// A unary call served by SessionCalls: the reply, or its status as the call's.
#define IM_SESSION_METHOD(Method, Request, Reply)                                               \
  grpc::ServerUnaryReactor* LogicServiceImpl::Method(grpc::CallbackServerContext* context,      \
                                                     const im::v1::Request* request,            \
                                                     im::v1::Reply* reply) {                    \
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();                              \
    calls_->Method(                                                                             \
        *request, context->deadline(), [reactor, reply](absl::StatusOr<im::v1::Reply> answer) { \
          if (!answer.ok()) {                                                                   \
            reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(answer.status().code()), \
                                         std::string(answer.status().message())));              \
            return;                                                                             \
          }                                                                                     \
          *reply = std::move(*answer);                                                          \
          reactor->Finish(grpc::Status::OK);                                                    \
        });                                                                                     \
    return reactor;                                                                             \
  }

IM_SESSION_METHOD(Login, LoginRequest, LoginReply)
IM_SESSION_METHOD(Disconnect, DisconnectRequest, DisconnectReply)
IM_SESSION_METHOD(DisconnectMany, DisconnectManyRequest, DisconnectManyReply)
IM_SESSION_METHOD(RefreshSessions, RefreshSessionsRequest, RefreshSessionsReply)
IM_SESSION_METHOD(RegisterGateway, RegisterGatewayRequest, RegisterGatewayReply)
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

}  // namespace im::logic
