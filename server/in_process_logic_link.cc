#include "server/in_process_logic_link.h"

#include "common/logging.h"
#include "server/in_process_request_stream.h"

namespace im::server {

InProcessLogicLink::InProcessLogicLink(logic::SessionCalls* calls,
                                       logic::RequestDispatcher* dispatcher,
                                       std::chrono::milliseconds timeout,
                                       gateway::GatewayMetrics* metrics)
    : calls_(calls), dispatcher_(dispatcher), timeout_(timeout), metrics_(metrics) {}

InProcessLogicLink::~InProcessLogicLink() { WaitIdle(timeout_ * 2); }

template <typename Reply>
gateway::LogicLink::ReplyCallback<Reply> InProcessLogicLink::Counted(ReplyCallback<Reply> done) {
  calls_in_flight_.Started();
  return [this, done = std::move(done)](absl::StatusOr<Reply> reply) mutable {
    std::move(done)(std::move(reply));
    calls_in_flight_.Finished();
  };
}

template <typename Reply>
gateway::LogicLink::ReplyCallback<Reply> InProcessLogicLink::LogFailure(const char* method) {
  return Counted<Reply>([this, method](absl::StatusOr<Reply> reply) {
    if (reply.ok()) return;
    metrics_->logic_errors.Increment();
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "logic {} failed: {}", method,
                        reply.status().ToString());
  });
}

void InProcessLogicLink::Login(im::v1::LoginRequest request,
                               ReplyCallback<im::v1::LoginReply> done) {
  calls_->Login(std::move(request), Deadline(), Counted(std::move(done)));
}

void InProcessLogicLink::Disconnect(im::v1::DisconnectRequest request) {
  calls_->Disconnect(std::move(request), Deadline(),
                     LogFailure<im::v1::DisconnectReply>("Disconnect"));
}

void InProcessLogicLink::DisconnectMany(im::v1::DisconnectManyRequest request) {
  calls_->DisconnectMany(std::move(request), Deadline(),
                         LogFailure<im::v1::DisconnectManyReply>("DisconnectMany"));
}

void InProcessLogicLink::RefreshSessions(im::v1::RefreshSessionsRequest request,
                                         ReplyCallback<im::v1::RefreshSessionsReply> done) {
  calls_->RefreshSessions(std::move(request), Deadline(), Counted(std::move(done)));
}

void InProcessLogicLink::RegisterGateway(im::v1::RegisterGatewayRequest request,
                                         ReplyCallback<im::v1::RegisterGatewayReply> done) {
  calls_->RegisterGateway(std::move(request), Deadline(), Counted(std::move(done)));
}

std::unique_ptr<gateway::RequestStream> InProcessLogicLink::OpenStream(
    uv_loop_t* loop, gateway::RequestStream::Options options, gateway::GatewayMetrics* metrics,
    gateway::RequestStream::Post post) {
  logic::RequestDispatcher* dispatcher = dispatcher_;
  return std::make_unique<InProcessRequestStream>(
      loop,
      [dispatcher](std::vector<im::v1::Ingress> batch,
                   const std::function<logic::RequestDispatcher::Respond(uint64_t)>& respond_to) {
        dispatcher->DispatchAll(std::move(batch), respond_to);
      },
      options, metrics, std::move(post));
}

bool InProcessLogicLink::WaitIdle(std::chrono::milliseconds timeout) {
  return calls_in_flight_.WaitIdle(timeout);
}

}  // namespace im::server
