#pragma once

#include <chrono>
#include <memory>

#include "common/in_flight_calls.h"
#include "gateway/gateway_metrics.h"
#include "gateway/logic_link.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/ingress/session_calls.h"

namespace im::server {

// The embedded node's gateway-to-logic link: the session calls go to logic's SessionCalls and
// each worker loop's requests to its RequestDispatcher, in this process, with the deadlines,
// admission and refusals they have over gRPC in a cluster, and no serialization, network or gRPC
// thread between them.
class InProcessLogicLink final : public gateway::LogicLink {
 public:
  // `calls`, `dispatcher` and `metrics` outlive the link.
  InProcessLogicLink(logic::SessionCalls* calls, logic::RequestDispatcher* dispatcher,
                     std::chrono::milliseconds timeout, gateway::GatewayMetrics* metrics);
  ~InProcessLogicLink() override;

  void Login(im::v1::LoginRequest request, ReplyCallback<im::v1::LoginReply> done) override;
  void Disconnect(im::v1::DisconnectRequest request) override;
  void DisconnectMany(im::v1::DisconnectManyRequest request) override;
  void RefreshSessions(im::v1::RefreshSessionsRequest request,
                       ReplyCallback<im::v1::RefreshSessionsReply> done) override;
  void RegisterGateway(im::v1::RegisterGatewayRequest request,
                       ReplyCallback<im::v1::RegisterGatewayReply> done) override;
  std::unique_ptr<gateway::RequestStream> OpenStream(uv_loop_t* loop,
                                                     gateway::RequestStream::Options options,
                                                     gateway::GatewayMetrics* metrics,
                                                     gateway::RequestStream::Post post) override;
  bool WaitIdle(std::chrono::milliseconds timeout) override;
  size_t in_flight() const override { return calls_in_flight_.count(); }
  // Logic is in this process: always reachable.
  common::HealthReport Reachable() override { return {}; }

 private:
  // `done`, counted in flight until it ran.
  template <typename Reply>
  ReplyCallback<Reply> Counted(ReplyCallback<Reply> done);
  // A callback for fire-and-forget calls: logs and counts a failure.
  template <typename Reply>
  ReplyCallback<Reply> LogFailure(const char* method);
  logic::SessionCalls::Deadline Deadline() const {
    return std::chrono::system_clock::now() + timeout_;
  }

  logic::SessionCalls* calls_;
  logic::RequestDispatcher* dispatcher_;
  const std::chrono::milliseconds timeout_;
  gateway::GatewayMetrics* metrics_;
  common::InFlightCalls calls_in_flight_;
};

}  // namespace im::server
