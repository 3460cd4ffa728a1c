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

// The gateway's side of LogicService: one gRPC channel shared by every worker loop. Client
// requests travel on each loop's LogicStream; logins and session housekeeping are unary calls.
// Every call has the configured deadline. Methods may be called from any thread; callbacks run
// on a gRPC thread, so they must only post to the owning loop (never touch a Connection).
class LogicClient {
 public:
  template <typename Reply>
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>) &&>;

  LogicClient(const std::string& target, std::chrono::milliseconds timeout,
              GatewayMetrics* metrics);
  ~LogicClient();

  void Login(im::v1::LoginRequest request, ReplyCallback<im::v1::LoginReply> done);
  // Fire and forget: failures are logged and counted.
  void Disconnect(im::v1::DisconnectRequest request);
  // The same for a loop's batch, in one call; a logic node of an earlier version (UNIMPLEMENTED)
  // gets one Disconnect each instead.
  void DisconnectMany(im::v1::DisconnectManyRequest request);
  void RefreshSessions(im::v1::RefreshSessionsRequest request,
                       ReplyCallback<im::v1::RefreshSessionsReply> done);
  void RegisterGateway(im::v1::RegisterGatewayRequest request,
                       ReplyCallback<im::v1::RegisterGatewayReply> done);

  // Any thread: for LogicStream's calls.
  im::v1::LogicService::Stub* stub() { return stub_.get(); }

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

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<im::v1::LogicService::Stub> stub_;
  const std::chrono::milliseconds timeout_;
  GatewayMetrics* metrics_;

  common::InFlightCalls calls_;
};

// gRPC status code -> the protocol's code (they share values 0..16).
im::v1::Code CodeFromGrpc(grpc::StatusCode code);

}  // namespace im::gateway
