#include "gateway/gateway.h"

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/logging.h"

namespace im::gateway {
namespace {

constexpr uint64_t kDrainCheckMs = 50;
constexpr size_t kMainQueueCapacity = 1024;
constexpr uint64_t kRegisterRetryMs = 1000;
constexpr auto kLivenessWait = std::chrono::seconds(1);

}  // namespace

Gateway::Gateway(const GatewayOptions& options, prometheus::Registry& registry)
    : options_(options),
      metrics_(registry),
      logins_(options.max_logins_in_flight),
      sources_(options) {
  uv_loop_init(&loop_);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  uv_timer_init(&loop_, &drain_timer_);
  uv_timer_init(&loop_, &register_timer_);
  sigterm_.data = sigint_.data = sighup_.data = drain_timer_.data = register_timer_.data = this;
  main_tasks_ = std::make_unique<common::LoopTaskQueue>(&loop_, kMainQueueCapacity);
  main_tasks_->Start();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(const GatewayOptions& options,
                                                         prometheus::Registry& registry) {
  // A peer that resets its socket must cost us an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Gateway> gateway(new Gateway(options, registry));
  gateway->logic_ = std::make_unique<LogicClient>(
      options.logic_target, std::chrono::milliseconds(options.logic_timeout_ms), &gateway->metrics_,
      options.grpc_credentials);
  if (absl::Status status = gateway->Init(/*serve_grpc=*/true); !status.ok()) return status;
  // Before anyone is told the gateway is up: a SIGTERM from then on drains it (handled once Run
  // runs the loop), never kills it.
  gateway->WatchSignals();
  return gateway;
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::CreateInProcess(const GatewayOptions& options,
                                                                  prometheus::Registry& registry,
                                                                  const MakeLink& link) {
  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Gateway> gateway(new Gateway(options, registry));
  gateway->logic_ = link(&gateway->metrics_);
  if (absl::Status status = gateway->Init(/*serve_grpc=*/false); !status.ok()) return status;
  gateway->WatchSignals();
  return gateway;
}

absl::Status Gateway::Init(bool serve_grpc) {
  if (options_.workers == 0) {
    options_.workers = std::max(1u, std::thread::hardware_concurrency());
  }
  const uint64_t instance_seed = static_cast<uint64_t>(common::UnixMillis()) / 1000;
  std::vector<WorkerLoop*> raw_workers;
  for (uint32_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<WorkerLoop>(i, options_, &metrics_, logic_.get(), &logins_,
                                                    &sources_, instance_seed));
    raw_workers.push_back(workers_.back().get());
  }

  absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
      Acceptor::Listen(&loop_, options_.listen_address, options_.listen_backlog, &metrics_,
                       [this](int fd) { HandOut(fd, nullptr, /*websocket=*/false); });
  if (!acceptor.ok()) return acceptor.status();
  acceptor_ = std::move(*acceptor);
  if (absl::Status status = ListenTlsAndWebSocket(); !status.ok()) return status;

  service_ = std::make_unique<GatewayServiceImpl>(
      options_, &metrics_, raw_workers,
      [this](uint32_t reconnect_after_ms) { RequestDrain(reconnect_after_ms); });
  if (serve_grpc) {
    if (absl::Status status = ServeGrpc(); !status.ok()) return status;
  }
  for (auto& worker : workers_) worker->Start();
  return absl::OkStatus();
}

absl::Status Gateway::ListenTlsAndWebSocket() {
  if (!options_.tls_listen_address.empty() || !options_.wss_listen_address.empty()) {
    absl::StatusOr<std::unique_ptr<ReloadableTlsContext>> tls = ReloadableTlsContext::Load(
        {options_.tls_cert_file, options_.tls_key_file, options_.tls_ticket_key_file}, &metrics_);
    if (!tls.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("gateway.tls_listen / wss_listen: ", tls.status().message()));
    }
    tls_ = std::move(*tls);
  }
  struct Port {
    const std::string& address;
    bool tls;
    bool websocket;
    std::unique_ptr<Acceptor>* acceptor;
  };
  const Port ports[] = {{options_.tls_listen_address, true, false, &tls_acceptor_},
                        {options_.ws_listen_address, false, true, &ws_acceptor_},
                        {options_.wss_listen_address, true, true, &wss_acceptor_}};
  for (const Port& port : ports) {
    if (port.address.empty()) continue;
    absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
        ListenFor(port.address, port.tls, port.websocket);
    if (!acceptor.ok()) return acceptor.status();
    *port.acceptor = std::move(*acceptor);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Acceptor>> Gateway::ListenFor(const std::string& address, bool tls,
                                                             bool websocket) {
  return Acceptor::Listen(
      &loop_, address, options_.listen_backlog, &metrics_,
      [this, tls, websocket](int fd) { HandOut(fd, tls ? tls_->current() : nullptr, websocket); });
}

void Gateway::HandOut(int fd, std::shared_ptr<const tls::ServerContext> tls, bool websocket) {
  workers_[next_worker_++ % workers_.size()]->AdoptSocket(fd, std::move(tls), websocket);
}

absl::Status Gateway::ReloadTls() {
  if (!tls_) return absl::FailedPreconditionError("no TLS port (gateway.tls_listen is not set)");
  return tls_->Reload();
}

void Gateway::CloseAcceptors() {
  acceptor_->Close([] {});
  for (auto* acceptor : {&tls_acceptor_, &ws_acceptor_, &wss_acceptor_}) {
    if (*acceptor) (*acceptor)->Close([] {});
  }
}

absl::Status Gateway::ServeGrpc() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address, options_.grpc_credentials.Server(), &grpc_port_);
  builder.RegisterService(service_.get());
  // A Push batch holds what logic gathered for this gateway while its previous call was in
  // flight (logic keeps a batch near 4 MiB; a single push may be up to max_push_frame_bytes).
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::max<uint64_t>(64 * 1024 * 1024, 2 * options_.max_push_frame_bytes)));
  // Pushes arrive on one PushStream per logic node: a window of a few batches lets logic write a
  // fan-out's 256 KiB batches back to back instead of waiting for window updates (groups of 1,000
  // at 1,000 msgs/s: last-member p50 194 ms with the default window, 61-62 ms with this).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4 * 1024 * 1024);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve GatewayService on ", options_.grpc_address));
  }
  return absl::OkStatus();
}

Gateway::~Gateway() {
  // Run() normally leaves everything closed; this covers a gateway that never ran or failed in
  // Init(), so that no thread or handle outlives the object.
  FinishShutdown();
  if (main_loop_closed_) return;
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void Gateway::WatchSignals() {
  auto on_signal = [](uv_signal_t* handle, int signum) {
    auto* self = static_cast<Gateway*>(handle->data);
    spdlog::info("received signal {}: {}", signum,
                 self->draining_ ? "closing remaining connections now" : "draining");
    self->BeginDrain(0);
  };
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_signal_start(
      &sighup_,
      [](uv_signal_t* handle, int) {
        auto* self = static_cast<Gateway*>(handle->data);
        if (!self->tls_) {
          spdlog::info("received SIGHUP: nothing to reload (no TLS port)");
          return;
        }
        spdlog::info("received SIGHUP: reloading the TLS certificate");
        self->ReloadTls().IgnoreError();  // logged; the certificate in use stays
      },
      SIGHUP);
}

absl::Status Gateway::Run() {
  uv_timer_start(
      &register_timer_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->RegisterIfDue(); }, 0,
      kRegisterRetryMs);
  uv_run(&loop_, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop_);
  main_loop_closed_ = rc == 0;
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("main loop closed with live handles: ", rc));
  }
  return absl::OkStatus();
}

void Gateway::RequestDrain(uint32_t reconnect_after_ms) {
  main_tasks_->Post([this, reconnect_after_ms] { BeginDrain(reconnect_after_ms); });
}

std::string Gateway::PushAddress() const {
  if (!options_.advertise_address.empty()) return options_.advertise_address;
  std::string host = options_.grpc_address.substr(0, options_.grpc_address.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
  return absl::StrCat(host, ":", grpc_port_);
}

void Gateway::RegisterIfDue() {
  if (grpc_server_ == nullptr) return;  // in process: logic pushes to this gateway, no address
  const bool due = registered_ms_ == 0 || uv_now(&loop_) - registered_ms_ >= options_.register_ms;
  if (registering_ || shutting_down_ || !due) return;
  registering_ = true;
  im::v1::RegisterGatewayRequest request;
  request.set_gateway_id(options_.gateway_id);
  request.set_push_address(PushAddress());
  logic_->RegisterGateway(
      std::move(request), [this](absl::StatusOr<im::v1::RegisterGatewayReply> reply) {
        if (!reply.ok()) {
          IM_LOG_RATE_LIMITED(spdlog::level::warn, "gateway {}: registration with logic failed: {}",
                              options_.gateway_id, reply.status().ToString());
        }
        main_tasks_->Post([this, ok = reply.ok()] { OnRegistered(ok); });
      });
}

void Gateway::OnRegistered(bool ok) {
  registering_ = false;
  if (!ok) return;
  if (registered_ms_ == 0) {
    spdlog::info("gateway {}: registered with logic, push address {}", options_.gateway_id,
                 PushAddress());
  }
  registered_ms_ = uv_now(&loop_);
}

size_t Gateway::connection_count() const {
  size_t total = 0;
  for (const auto& worker : workers_) total += worker->connection_count();
  return total;
}

common::HealthReport Gateway::Liveness() {
  // Shared with the posted tasks: a loop that answers late must not touch a finished call.
  struct Answers {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<bool> answered;
  };
  auto answers = std::make_shared<Answers>();
  const size_t loops = workers_.size() + 1;  // the main loop is 0, worker i is i + 1
  answers->answered.assign(loops, false);
  auto answer = [answers](size_t index) {
    return [answers, index] {
      std::lock_guard<std::mutex> lock(answers->mutex);
      answers->answered[index] = true;
      answers->changed.notify_all();
    };
  };
  std::vector<bool> posted(loops);
  posted[0] = main_tasks_->Post(answer(0));
  for (size_t i = 0; i < workers_.size(); ++i) posted[i + 1] = workers_[i]->Post(answer(i + 1));

  std::unique_lock<std::mutex> lock(answers->mutex);
  answers->changed.wait_for(lock, kLivenessWait, [&] {
    for (size_t i = 0; i < loops; ++i) {
      if (posted[i] && !answers->answered[i]) return false;
    }
    return true;
  });
  common::HealthReport report;
  for (size_t i = 0; i < loops; ++i) {
    if (answers->answered[i]) continue;
    report.ok = false;
    const std::string loop = i == 0 ? "main loop" : absl::StrCat("worker loop ", i - 1);
    absl::StrAppend(&report.detail, loop,
                    posted[i] ? ": no answer within 1 s\n" : ": queue full or closed\n");
  }
  return report;
}

common::HealthReport Gateway::Readiness() {
  if (!accepting_.load()) return {false, "draining: not accepting clients\n"};
  return logic_->Reachable();
}

void Gateway::BeginDrain(uint32_t reconnect_after_ms) {
  if (shutting_down_) return;
  if (draining_) {  // asked twice: stop waiting for clients
    FinishShutdown();
    return;
  }
  draining_ = true;
  accepting_.store(false);
  metrics_.draining.Set(1);
  const uint32_t hint = reconnect_after_ms != 0 ? reconnect_after_ms : options_.goaway_reconnect_ms;
  // The last client told to move must still find this gateway draining, not closed.
  const uint64_t room = uint64_t{options_.drain_timeout_ms} * 3 / 4;
  const uint32_t spread = static_cast<uint32_t>(
      std::min<uint64_t>(options_.goaway_spread_ms, room > hint ? room - hint : 0));
  spdlog::info(
      "gateway {}: draining {} connections (GoAway, reconnect after {}-{} ms, wait up to {} ms)",
      options_.gateway_id, connection_count(), hint, uint64_t{hint} + spread,
      options_.drain_timeout_ms);
  CloseAcceptors();
  for (auto& worker : workers_) worker->BeginDrain(hint, spread);
  drain_started_ms_ = uv_now(&loop_);
  uv_timer_start(
      &drain_timer_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->CheckDrained(); },
      kDrainCheckMs, kDrainCheckMs);
}

void Gateway::CheckDrained() {
  const size_t remaining = connection_count();
  const bool timed_out = uv_now(&loop_) - drain_started_ms_ >= options_.drain_timeout_ms;
  if (remaining == 0 || timed_out) {
    if (remaining > 0) {
      spdlog::warn("gateway {}: drain timeout, closing {} connections", options_.gateway_id,
                   remaining);
    }
    FinishShutdown();
  }
}

void Gateway::FinishShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  for (auto& worker : workers_) worker->Shutdown();
  for (auto& worker : workers_) worker->Join();
  // Disconnects sent while closing, and responses on their way to the (now closed) loops.
  if (logic_ && !logic_->WaitIdle(std::chrono::milliseconds(options_.logic_timeout_ms + 1000))) {
    spdlog::warn("gateway {}: {} calls to logic still in flight at exit", options_.gateway_id,
                 logic_->in_flight());
  }
  if (grpc_server_) {
    service_->EndPushStreams();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (acceptor_ && !draining_) CloseAcceptors();
  auto close = [](auto* handle) {
    auto* h = reinterpret_cast<uv_handle_t*>(handle);
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  };
  close(&sigterm_);
  close(&sigint_);
  close(&sighup_);
  close(&drain_timer_);
  close(&register_timer_);
  main_tasks_->Close([] {});
  spdlog::info("gateway {}: stopped", options_.gateway_id);
}

}  // namespace im::gateway
