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
#include "common/in_flight_calls.h"
#include "gateway/gateway_metrics.h"
#include "im/v1/logic.grpc.pb.h"

namespace im::gateway {

// The gateway's side of LogicService: one gRPC channel shared by every worker loop.
// Every call has the configured deadline. Methods may be called from any thread; callbacks run
// on a gRPC thread, so they must only post to the owning loop (never touch a Connection).
class LogicClient {
 public:
  // A response frame for the client (same id as the request), or nullopt for requests that
  // have no response (AckReq).
  using FrameCallback = absl::AnyInvocable<void(std::optional<im::v1::Frame>) &&>;
  template <typename Reply>
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>) &&>;

  LogicClient(const std::string& target, std::chrono::milliseconds timeout,
              GatewayMetrics* metrics);
  ~LogicClient();

  void Login(im::v1::LoginRequest request, ReplyCallback<im::v1::LoginReply> done);
  // Fire and forget: failures are logged and counted.
  void Disconnect(im::v1::DisconnectRequest request);
  void RefreshSessions(im::v1::RefreshSessionsRequest request,
                       ReplyCallback<im::v1::RefreshSessionsReply> done);
  void RegisterGateway(im::v1::RegisterGatewayRequest request,
                       ReplyCallback<im::v1::RegisterGatewayReply> done);

  // Forwards a client request (any body but login_req and ping) as the matching LogicService
  // call made on behalf of `caller`. A failed call becomes the response's Status (logic's gRPC
  // code mapped 1:1), so the client always gets an answer. A body logic does not serve is answered
  // with UNEXPECTED_FRAME without a call.
  void Forward(const im::v1::Caller& caller, im::v1::Frame request, FrameCallback done);

  // Blocks until no call is in flight or `timeout` passes; returns whether idle.
  // Used at shutdown so that no callback outlives the objects it posts to.
  bool WaitIdle(std::chrono::milliseconds timeout);

  size_t in_flight() const { return calls_.count(); }

  // Any thread, never blocks: the channel's state; an idle channel is asked to connect.
  grpc_connectivity_state ChannelState() { return channel_->GetState(/*try_to_connect=*/true); }

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

  template <typename Request, typename Response, typename ClientRequest, typename Invoke>
  void ForwardUnary(const im::v1::Caller& caller, uint64_t frame_id, ClientRequest* client_request,
                    Response* (im::v1::Frame::*mutable_response)(), Invoke invoke,
                    FrameCallback done);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<im::v1::LogicService::Stub> stub_;
  const std::chrono::milliseconds timeout_;
  GatewayMetrics* metrics_;

  common::InFlightCalls calls_;
};

// gRPC status code -> the protocol's code (they share values 0..16).
im::v1::Code CodeFromGrpc(grpc::StatusCode code);

}  // namespace im::gateway
