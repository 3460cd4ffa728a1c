#include "gateway/logic_client.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "gateway/logic_stream.h"

namespace im::gateway {

namespace {

const char* ChannelStateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "idle";
    case GRPC_CHANNEL_CONNECTING:
      return "connecting";
    case GRPC_CHANNEL_READY:
      return "ready";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "unreachable (transient failure)";
    case GRPC_CHANNEL_SHUTDOWN:
      return "shut down";
  }
  return "unknown";
}

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// A call that fails UNAVAILABLE did not reach logic, or reached a node that went away mid-call
// (a rolling update, a crash): it is tried again, and round robin picks another node. These
// methods are safe to repeat: sessions are keyed by connection. (Client requests travel on
// LogicStream, which resends what is safe itself.) gRPC itself replays calls a server refused
// before processing (GOAWAY) without counting them. CANCELLED is retried too: the gateway never
// cancels these calls itself (its own deadline ends them DEADLINE_EXCEEDED), so a CANCELLED comes
// from a logic node shutting down, which cancels the calls it had received but not yet started
// (seen in the rolling-update drill, 1 run in 10).
constexpr char kServiceConfig[] = R"json({
  "methodConfig": [{
    "name": [
      {"service": "im.v1.LogicService", "method": "Login"},
      {"service": "im.v1.LogicService", "method": "Disconnect"},
      {"service": "im.v1.LogicService", "method": "DisconnectMany"},
      {"service": "im.v1.LogicService", "method": "RefreshSessions"},
      {"service": "im.v1.LogicService", "method": "RegisterGateway"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.05s",
      "maxBackoff": "0.5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"]
    }
  }]
})json";

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const common::GrpcCredentials& credentials) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kServiceConfig);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  // A headless Service resolves to every logic pod; spread calls over all of them.
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly after a logic restart instead of backing off for up to two minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  // An EgressBatch holds many answers (Sync pages among them).
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  return credentials.Channel(target, std::move(args));
}

// Each LogicService method as a callable taking the generated async stub.
#define IM_ASYNC_METHOD(Method)                                          \
  [](auto* stub_async, auto* ctx, auto* req, auto* resp, auto on_done) { \
    stub_async->Method(ctx, req, resp, std::move(on_done));              \
  }

}  // namespace

template <typename Request, typename Response>
struct LogicClient::UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  absl::AnyInvocable<void(const grpc::Status&, Response&&) &&> done;
};

LogicClient::LogicClient(const std::string& target, std::chrono::milliseconds timeout,
                         GatewayMetrics* metrics, const common::GrpcCredentials& credentials)
    : target_(target),
      channel_(MakeChannel(target, credentials)),
      stub_(im::v1::LogicService::NewStub(channel_)),
      timeout_(timeout),
      metrics_(metrics) {}

LogicClient::~LogicClient() { WaitIdle(timeout_ * 2); }

std::unique_ptr<RequestStream> LogicClient::OpenStream(uv_loop_t* loop,
                                                       RequestStream::Options options,
                                                       GatewayMetrics* metrics,
                                                       RequestStream::Post post) {
  return std::make_unique<LogicStream>(loop, this, options, metrics, std::move(post));
}

common::HealthReport LogicClient::Reachable() {
  const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  if (state == GRPC_CHANNEL_READY) return {};
  return {false, absl::StrCat("logic (", target_, "): ", ChannelStateName(state), "\n")};
}

template <typename Request, typename Response, typename Invoke>
void LogicClient::StartCall(Request request, Invoke invoke,
                            absl::AnyInvocable<void(const grpc::Status&, Response&&) &&> done,
                            bool wait_for_ready, const std::string& request_id) {
  auto* call = new UnaryCall<Request, Response>();
  call->request = std::move(request);
  call->done = std::move(done);
  call->context.set_deadline(std::chrono::system_clock::now() + timeout_);
  // Also in Caller for logic; as metadata, proxies and gRPC tooling see it without the schema.
  if (!request_id.empty()) call->context.AddMetadata("x-request-id", request_id);
  // A logic node restarting (a rolling update) makes the channel reconnect: a client's request
  // waits for it within the deadline instead of failing at once.
  call->context.set_wait_for_ready(wait_for_ready);
  calls_.Started();
  // gRPC wants a copyable std::function: it captures only the raw call, which owns the rest.
  invoke(stub_->async(), &call->context, &call->request, &call->response,
         [this, call](grpc::Status status) {
           std::unique_ptr<UnaryCall<Request, Response>> owned(call);
           metrics_->logic_latency.Observe(
               std::chrono::duration<double>(std::chrono::steady_clock::now() - owned->started)
                   .count());
           if (!status.ok()) metrics_->logic_errors.Increment();
           // A call that waited for a connection until its deadline never reached logic: say
           // UNAVAILABLE (not sent), not DEADLINE_EXCEEDED (which leaves the outcome open).
           if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
               channel_->GetState(false) != GRPC_CHANNEL_READY) {
             status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "logic is unreachable");
           }
           std::move(owned->done)(status, std::move(owned->response));
           owned.reset();
           calls_.Finished();
         });
}

bool LogicClient::WaitIdle(std::chrono::milliseconds timeout) { return calls_.WaitIdle(timeout); }

void LogicClient::Disconnect(im::v1::DisconnectRequest request) {
  StartCall<im::v1::DisconnectRequest, im::v1::DisconnectReply>(
      std::move(request), IM_ASYNC_METHOD(Disconnect),
      [](const grpc::Status& status, im::v1::DisconnectReply&&) {
        if (!status.ok()) {
          IM_LOG_RATE_LIMITED(spdlog::level::warn, "logic Disconnect failed: {} {}",
                              static_cast<int>(status.error_code()), status.error_message());
        }
      });
}

void LogicClient::DisconnectMany(im::v1::DisconnectManyRequest request) {
  if (request.disconnects().empty()) return;
  // Kept for the fallback; the call takes its own copy.
  auto batch = std::make_shared<im::v1::DisconnectManyRequest>(request);
  StartCall<im::v1::DisconnectManyRequest, im::v1::DisconnectManyReply>(
      std::move(request), IM_ASYNC_METHOD(DisconnectMany),
      [this, batch](const grpc::Status& status, im::v1::DisconnectManyReply&&) {
        if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          for (im::v1::DisconnectRequest& one : *batch->mutable_disconnects()) {
            Disconnect(std::move(one));
          }
        } else if (!status.ok()) {
          IM_LOG_RATE_LIMITED(spdlog::level::warn, "logic DisconnectMany of {} failed: {} {}",
                              batch->disconnects_size(), static_cast<int>(status.error_code()),
                              status.error_message());
        }
      });
}

// A call whose reply goes to `done` as it is (no mapping into a client frame).
#define IM_PLAIN_CALL(Method, wait_for_ready)                             \
  void LogicClient::Method(im::v1::Method##Request request,               \
                           ReplyCallback<im::v1::Method##Reply> done) {   \
    StartCall<im::v1::Method##Request, im::v1::Method##Reply>(            \
        std::move(request), IM_ASYNC_METHOD(Method),                      \
        [done = std::move(done)](const grpc::Status& status,              \
                                 im::v1::Method##Reply&& reply) mutable { \
          if (!status.ok()) return std::move(done)(ToAbsl(status));       \
          std::move(done)(std::move(reply));                              \
        },                                                                \
        wait_for_ready);                                                  \
  }

IM_PLAIN_CALL(Login, true)
IM_PLAIN_CALL(RefreshSessions, false)
IM_PLAIN_CALL(RegisterGateway, false)
#undef IM_PLAIN_CALL

}  // namespace im::gateway
