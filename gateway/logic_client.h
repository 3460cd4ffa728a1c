#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "common/grpc_tls.h"
#include "common/in_flight_calls.h"
#include "gateway/gateway_metrics.h"
#include "gateway/logic_link.h"
#include "im/v1/logic.grpc.pb.h"

namespace im::gateway {

// The gateway's side of LogicService over gRPC: one channel shared by every worker loop. Client
// requests travel on each loop's LogicStream; logins and session housekeeping are unary calls.
// Every call has the configured deadline; callbacks run on a gRPC thread.
class LogicClient final : public LogicLink {
 public:
  LogicClient(const std::string& target, std::chrono::milliseconds timeout, GatewayMetrics* metrics,
              const common::GrpcCredentials& credentials = common::GrpcCredentials());
  ~LogicClient() override;

  void Login(im::v1::LoginRequest request, ReplyCallback<im::v1::LoginReply> done) override;
  void Disconnect(im::v1::DisconnectRequest request) override;
  // A logic node of an earlier version (UNIMPLEMENTED) gets one Disconnect each instead.
  void DisconnectMany(im::v1::DisconnectManyRequest request) override;
  void RefreshSessions(im::v1::RefreshSessionsRequest request,
                       ReplyCallback<im::v1::RefreshSessionsReply> done) override;
  void RegisterGateway(im::v1::RegisterGatewayRequest request,
                       ReplyCallback<im::v1::RegisterGatewayReply> done) override;
  // A LogicStream (LogicService.Stream) on this channel.
  std::unique_ptr<RequestStream> OpenStream(uv_loop_t* loop, RequestStream::Options options,
                                            GatewayMetrics* metrics,
                                            RequestStream::Post post) override;

  // Any thread: for LogicStream's calls.
  im::v1::LogicService::Stub* stub() { return stub_.get(); }

  bool WaitIdle(std::chrono::milliseconds timeout) override;
  size_t in_flight() const override { return calls_.count(); }

  // Ready when the channel is connected; an idle channel is asked to connect and reported not
  // ready meanwhile.
  common::HealthReport Reachable() override;

 private:
  template <typename Request, typename Response>
  struct UnaryCall;

  // `wait_for_ready`: a call made while the channel reconnects waits for it (up to the deadline)
  // instead of failing at once. Client requests wait; periodic housekeeping that retries anyway
  // does not, so that shutdown is not held up by it. `request_id` (may be empty) goes along as
  // x-request-id metadata.
  template <typename Request, typename Response, typename Invoke>
  void StartCall(Request request, Invoke invoke,
                 absl::AnyInvocable<void(const grpc::Status&, Response&&) &&> done,
                 bool wait_for_ready = true, const std::string& request_id = "");

  const std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<im::v1::LogicService::Stub> stub_;
  const std::chrono::milliseconds timeout_;
  GatewayMetrics* metrics_;

  common::InFlightCalls calls_;
};

}  // namespace im::gateway
