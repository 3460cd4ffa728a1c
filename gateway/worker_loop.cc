#include "gateway/worker_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>

#include "common/logging.h"

namespace im::gateway {
namespace {

// The sweep runs often enough that a timeout fires within a quarter of its length.
uint64_t SweepIntervalMs(const GatewayOptions& o) {
  const uint64_t shortest =
      std::min<uint64_t>({o.login_timeout_ms, o.idle_timeout_ms(), o.close_linger_ms});
  return std::clamp<uint64_t>(shortest / 4, 5, 1000);
}

// The peer of an accepted socket; of no family (AF_UNSPEC) when it cannot be had.
sockaddr_storage PeerOfSocket(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    address.ss_family = AF_UNSPEC;
  }
  return address;
}

}  // namespace

WorkerLoop::WorkerLoop(uint32_t index, const GatewayOptions& options, GatewayMetrics* metrics,
                       LogicLink* logic, common::AdmissionLimit* logins, SourceLimits* sources,
                       uint64_t instance_seed)
    : index_(index),
      options_(options),
      websocket_options_{{options.ws_allowed_origins}, options.max_frame_bytes},
      metrics_(metrics),
      logic_(logic),
      logins_(logins),
      sources_(sources),
      tasks_(&loop_, options.loop_queue_capacity),
      ids_(index, instance_seed),
      read_buffer_(64 * 1024),
      queue_depth_(metrics->loop_queue_depth.Add({{"loop", std::to_string(index)}})) {
  uv_loop_init(&loop_);
  loop_.data = this;
  uv_timer_init(&loop_, &sweep_timer_);
  sweep_timer_.data = this;
  uv_timer_init(&loop_, &refresh_timer_);
  refresh_timer_.data = this;
  uv_prepare_init(&loop_, &flush_prepare_);
  flush_prepare_.data = this;
  tasks_.Start();
  RequestStream::Options stream_options;
  stream_options.timeout = std::chrono::milliseconds(options.logic_timeout_ms);
  stream_options.max_waiting = options.logic_stream_max_waiting;
  stream_options.queue_wait = {std::chrono::milliseconds(options.logic_queue_wait_target_ms),
                               std::chrono::milliseconds(options.logic_queue_wait_interval_ms)};
  logic_stream_ = logic->OpenStream(&loop_, stream_options, metrics,
                                    [this](Task task) { return Post(std::move(task)); });
}

WorkerLoop::~WorkerLoop() {
  Join();
  if (started_) return;  // the thread closed the loop when it ended
  CloseHandles();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void WorkerLoop::Start() {
  const uint64_t sweep_ms = SweepIntervalMs(options_);
  uv_timer_start(
      &sweep_timer_, [](uv_timer_t* t) { static_cast<WorkerLoop*>(t->data)->Sweep(); }, sweep_ms,
      sweep_ms);
  uv_timer_start(
      &refresh_timer_, [](uv_timer_t* t) { static_cast<WorkerLoop*>(t->data)->RefreshSessions(); },
      options_.session_refresh_ms, options_.session_refresh_ms);
  // Prepare callbacks run right before the loop polls (and may sleep): Redis' beforeSleep.
  uv_prepare_start(&flush_prepare_,
                   [](uv_prepare_t* p) { static_cast<WorkerLoop*>(p->data)->FlushScheduled(); });
  logic_stream_->Start();
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void WorkerLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  uv_run(&loop_, UV_RUN_DEFAULT);
  FlushDisconnects();  // any queued after the last iteration's flush
  loop_thread_ = std::thread::id();
  const int rc = uv_loop_close(&loop_);
  if (rc != 0) spdlog::error("worker {}: loop closed with live handles ({})", index_, rc);
}

void WorkerLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

bool WorkerLoop::Post(Task task) {
  if (tasks_.Post(std::move(task))) return true;
  metrics_->loop_queue_full.Increment();
  return false;
}

bool WorkerLoop::AdoptSocket(int fd, std::shared_ptr<const tls::ServerContext> tls,
                             bool websocket) {
  if (Post([this, fd, tls = std::move(tls), websocket] { Accept(fd, tls.get(), websocket); })) {
    return true;
  }
  ::close(fd);
  return false;
}

bool WorkerLoop::PostToConnection(common::ConnId id, ConnectionTask task, Task on_missing) {
  return Post([this, id, task = std::move(task), on_missing = std::move(on_missing)]() mutable {
    if (Connection* connection = Find(id)) {
      std::move(task)(*connection);
    } else if (on_missing) {
      std::move(on_missing)();
    }
  });
}

bool WorkerLoop::BeginDrain(uint32_t reconnect_after_ms, uint32_t spread_ms) {
  return Post([this, reconnect_after_ms, spread_ms] {
    draining_ = true;
    std::minstd_rand random(std::random_device{}());
    std::uniform_int_distribution<uint32_t> jitter(0, spread_ms);
    for (auto& [id, connection] : connections_) {
      if (connection->logged_in()) {
        connection->GoAway(reconnect_after_ms + jitter(random));
        metrics_->goaways.Increment();
      } else {
        connection->CloseAfterFlush(CloseReason::kDrain);
      }
    }
  });
}

void WorkerLoop::Shutdown() {
  if (!started_) return;  // never ran: the destructor closes the handles on this thread
  // Posting cannot be refused for lack of room forever, but a full queue must not leave the
  // thread running: retry until the loop takes it.
  while (!tasks_.Post([this] {
    shutting_down_ = true;
    CloseAll(CloseReason::kDrain);
    CloseHandles();
  })) {
    if (!thread_.joinable()) return;
    std::this_thread::yield();
  }
}

void WorkerLoop::FlushScheduled() {
  // A flush can close a connection, whose callbacks may queue more: take the list first.
  flushing_.swap(to_flush_);
  for (common::ConnId id : flushing_) {
    if (Connection* connection = Find(id)) connection->FlushScheduled();
  }
  flushing_.clear();
  logic_stream_->Flush();
  FlushDisconnects();
}

void WorkerLoop::QueueDisconnect(im::v1::DisconnectRequest request) {
  if (std::this_thread::get_id() != loop_thread_.load()) {
    logic_->Disconnect(std::move(request));
    return;
  }
  *disconnects_.add_disconnects() = std::move(request);
}

void WorkerLoop::FlushDisconnects() {
  if (disconnects_.disconnects().empty()) return;
  im::v1::DisconnectManyRequest batch;
  batch.Swap(&disconnects_);
  logic_->DisconnectMany(std::move(batch));
}

void WorkerLoop::CloseAll(CloseReason reason) {
  std::vector<Connection*> all;
  all.reserve(connections_.size());
  for (auto& [id, connection] : connections_) all.push_back(connection.get());
  for (Connection* connection : all) connection->Close(reason);
}

void WorkerLoop::CloseHandles() {
  auto close = [](uv_timer_t* timer) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(timer))) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
    }
  };
  close(&sweep_timer_);
  close(&refresh_timer_);
  FlushDisconnects();  // of the connections just closed
  logic_stream_->Close();
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&flush_prepare_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_prepare_), nullptr);
  }
  tasks_.Close([] {});
}

void WorkerLoop::Accept(int fd, const tls::ServerContext* tls, bool websocket) {
  if (draining_ || shutting_down_) {
    ::close(fd);
    return;
  }
  const uint64_t source = sources_->SourceOf(PeerOfSocket(fd));
  const char* refusal = AcceptRefusal(source);
  const common::ConnId id = ids_.Next();
  auto owned = std::make_unique<Connection>(this, id);
  Connection* connection = owned.get();
  if (refusal == nullptr) connection->set_source(source);
  connections_.emplace(id, std::move(owned));
  connection_count_.fetch_add(1, std::memory_order_relaxed);
  metrics_->connections.Increment();
  metrics_->accepted.Increment();
  Touch(connection, Connection::Timeline::kUnauthenticated);
  if (int rc = connection->Open(fd, tls, websocket ? &websocket_options_ : nullptr); rc != 0) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "worker {}: cannot open accepted socket: {}", index_,
                        uv_strerror(rc));
    connection->Close(CloseReason::kPeer);
    return;
  }
  // Refused with a word of why (and the retry hint), so that an honest client backs off. A TLS
  // or WebSocket client does not get to read it: nothing is written before its handshake, and the
  // connection stops reading at once.
  if (refusal != nullptr) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "worker {}: connection refused: {}", index_, refusal);
    connection->CloseWithError(im::v1::RESOURCE_EXHAUSTED, refusal, CloseReason::kLimited);
  }
}

const char* WorkerLoop::AcceptRefusal(uint64_t source) {
  if (!sources_->RoomForUnauthenticated()) {
    metrics_->limited_unauthenticated.Increment();
    return "too many connections are waiting to log in on this gateway";
  }
  if (!sources_->Open(source)) {
    metrics_->limited_connections_per_ip.Increment();
    return "too many connections from this address";
  }
  return nullptr;
}

Connection* WorkerLoop::Find(common::ConnId id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return nullptr;
  const Connection::State state = it->second->state();
  // A closing connection only flushes what it has; to everyone else it is gone.
  if (state == Connection::State::kClosing || state == Connection::State::kClosed) return nullptr;
  return it->second.get();
}

uv_buf_t WorkerLoop::ReadBuffer() {
  return uv_buf_init(read_buffer_.data(), static_cast<unsigned int>(read_buffer_.size()));
}

std::list<Connection*>& WorkerLoop::ListOf(Connection::Timeline timeline) {
  switch (timeline) {
    case Connection::Timeline::kUnauthenticated:
      return unauthenticated_;
    case Connection::Timeline::kClosing:
      return closing_;
    case Connection::Timeline::kLive:
    case Connection::Timeline::kNone:
      break;
  }
  return live_;
}

void WorkerLoop::Touch(Connection* connection, Connection::Timeline timeline) {
  const Connection::Timeline current = connection->timeline();
  if (current != timeline) {
    if (current == Connection::Timeline::kUnauthenticated) sources_->LeftUnauthenticated();
    if (timeline == Connection::Timeline::kUnauthenticated) sources_->EnteredUnauthenticated();
  }
  if (timeline == Connection::Timeline::kNone) {
    if (current != Connection::Timeline::kNone) {
      ListOf(current).erase(connection->timeline_position());
    }
    connection->set_timeline(timeline, {}, now_ms());
    return;
  }
  std::list<Connection*>& target = ListOf(timeline);
  if (current == Connection::Timeline::kNone) {
    target.push_back(connection);
  } else {
    // splice moves the node without allocating.
    target.splice(target.end(), ListOf(current), connection->timeline_position());
  }
  connection->set_timeline(timeline, std::prev(target.end()), now_ms());
}

void WorkerLoop::Forget(Connection* connection) {
  Touch(connection, Connection::Timeline::kNone);
  sources_->Close(connection->source());
  connections_.erase(connection->id());
  connection_count_.fetch_sub(1, std::memory_order_relaxed);
  metrics_->connections.Decrement();
}

void WorkerLoop::Sweep() {
  queue_depth_.Set(static_cast<double>(tasks_.depth()));
  const uint64_t now = now_ms();
  auto expire = [now](std::list<Connection*>& list, uint64_t timeout_ms, auto&& on_expired) {
    while (!list.empty()) {
      Connection* oldest = list.front();
      if (now - oldest->timeline_since_ms() < timeout_ms) return;
      on_expired(oldest);  // always moves `oldest` off this list
    }
  };
  expire(unauthenticated_, options_.login_timeout_ms, [](Connection* c) {
    c->CloseWithError(im::v1::LOGIN_TIMEOUT, "no LoginReq in time", CloseReason::kLoginTimeout);
  });
  expire(live_, options_.idle_timeout_ms(), [](Connection* c) {
    c->CloseWithError(im::v1::IDLE_TIMEOUT, "no frame for three heartbeats",
                      CloseReason::kIdleTimeout);
  });
  expire(closing_, options_.close_linger_ms, [](Connection* c) { c->Close(CloseReason::kLinger); });
}

void WorkerLoop::RefreshSessions() {
  im::v1::RefreshSessionsRequest batch;
  auto send = [this](im::v1::RefreshSessionsRequest request) {
    logic_->RefreshSessions(
        std::move(request), [this](absl::StatusOr<im::v1::RefreshSessionsReply> reply) mutable {
          if (!reply.ok()) {
            IM_LOG_RATE_LIMITED(spdlog::level::warn, "worker {}: session refresh failed: {}",
                                index_, reply.status().ToString());
            return;
          }
          for (common::ConnId stale : reply->stale_conn_ids()) {
            PostToConnection(stale, [](Connection& c) {
              c.CloseWithError(im::v1::UNAUTHENTICATED, "session is no longer registered",
                               CloseReason::kUnauthenticated);
            });
          }
        });
  };
  for (Connection* connection : live_) {
    if (!connection->logged_in()) continue;
    im::v1::SessionRef* ref = batch.add_sessions();
    ref->set_uid(connection->uid());
    ref->set_device(connection->device());
    ref->set_conn_id(connection->id());
    if (static_cast<uint32_t>(batch.sessions_size()) >= options_.session_refresh_batch) {
      batch.set_gateway_id(options_.gateway_id);
      send(std::move(batch));
      batch = im::v1::RefreshSessionsRequest();
    }
  }
  if (batch.sessions_size() > 0) {
    batch.set_gateway_id(options_.gateway_id);
    send(std::move(batch));
  }
}

}  // namespace im::gateway
