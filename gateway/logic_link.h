#pragma once

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "common/admin_http_server.h"
#include "common/queue_wait_policy.h"
#include "gateway/gateway_metrics.h"
#include "im/v1/logic.pb.h"

namespace im::gateway {

// A status code (gRPC's or absl's) -> the protocol's code: they share values 0..16.
inline im::v1::Code CodeFromStatus(absl::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value >= 0 && value <= 16) return static_cast<im::v1::Code>(value);
  return im::v1::UNKNOWN;
}

// A worker loop's channel for client requests to logic (every request but login and ping): what
// the loop submits in one iteration leaves together when the loop is about to wait (Flush), and
// each request is answered exactly once, on the loop thread, by logic or by the stream when logic
// cannot answer in time. LogicStream over gRPC in a cluster; in process in the embedded node.
class RequestStream {
 public:
  using Answer = absl::AnyInvocable<void(std::optional<im::v1::Frame>) &&>;
  using Post = std::function<bool(absl::AnyInvocable<void() &&>)>;  // runs a task on the loop

  struct Options {
    std::chrono::milliseconds timeout{5'000};     // each request's deadline
    size_t max_waiting = 20'000;                  // requests submitted and not yet answered
    common::QueueWaitPolicy::Options queue_wait;  // for unsent requests (default: never shed)
    size_t max_batch_entries = 512;               // per IngressBatch
    int max_attempts = 4;                         // per request, over broken streams
  };

  virtual ~RequestStream() = default;

  // --- Loop thread.
  virtual void Start() = 0;
  // Queues a client request made on behalf of `caller`; `done` gets the response frame, or
  // nullopt for requests without one (AckReq).
  virtual void Submit(im::v1::Caller caller, im::v1::Frame request, Answer done) = 0;
  // Hands over what was submitted since the last flush.
  virtual void Flush() = 0;
  // Answers what waits UNAVAILABLE and stops; answers arriving later are dropped.
  virtual void Close() = 0;

  virtual size_t waiting() const = 0;

  // How often a stream checks its requests' deadlines: a few times per timeout.
  static uint64_t DeadlineCheckMs(const Options& options) {
    return std::clamp<uint64_t>(static_cast<uint64_t>(options.timeout.count()) / 20, 5, 100);
  }
};

// The gateway's side of logic, shared by every worker loop: the unary session calls and each
// loop's RequestStream. LogicClient over gRPC in a cluster; in process in the embedded node
// (im-server). Methods may be called from any thread; callbacks run on any thread, so they must
// only post to the owning loop (never touch a Connection).
class LogicLink {
 public:
  template <typename Reply>
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>) &&>;

  virtual ~LogicLink() = default;

  virtual void Login(im::v1::LoginRequest request, ReplyCallback<im::v1::LoginReply> done) = 0;
  // Fire and forget: failures are logged and counted.
  virtual void Disconnect(im::v1::DisconnectRequest request) = 0;
  // The same for a loop's batch, in one call.
  virtual void DisconnectMany(im::v1::DisconnectManyRequest request) = 0;
  virtual void RefreshSessions(im::v1::RefreshSessionsRequest request,
                               ReplyCallback<im::v1::RefreshSessionsReply> done) = 0;
  virtual void RegisterGateway(im::v1::RegisterGatewayRequest request,
                               ReplyCallback<im::v1::RegisterGatewayReply> done) = 0;

  // A worker loop's request stream; `post` runs a task on that loop.
  virtual std::unique_ptr<RequestStream> OpenStream(uv_loop_t* loop, RequestStream::Options options,
                                                    GatewayMetrics* metrics,
                                                    RequestStream::Post post) = 0;

  // Blocks until no call is in flight or `timeout` passes; returns whether idle.
  // Used at shutdown so that no callback outlives the objects it posts to.
  virtual bool WaitIdle(std::chrono::milliseconds timeout) = 0;
  virtual size_t in_flight() const = 0;

  // Any thread, never blocks: whether requests reach logic now (readiness).
  virtual common::HealthReport Reachable() = 0;
};

}  // namespace im::gateway
