#include "store/redis_tls_bridge.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/block_sigpipe.h"
#include "common/logging.h"
#include "common/tls/tls_channel.h"
#include "fmt/format.h"

namespace im::store {
namespace {

constexpr int kListenBacklog = 128;
// Bytes one side of a link may have waiting to be sent before the bridge stops reading the other
// side (see PaceReading).
constexpr size_t kMaxQueuedBytes = 4 * 1024 * 1024;
// How long a failed link waits for hiredis to close its side after the bridge said goodbye (see
// SayGoodbye) before closing anyway.
constexpr std::chrono::milliseconds kFailedLinkLinger{2000};

// One read at a time on the bridge's loop: every read lands here, and is consumed before the
// next (libuv pairs each alloc with its read callback).
std::array<char, 64 * 1024>& ReadBuffer() {
  static thread_local std::array<char, 64 * 1024> buffer;
  return buffer;
}

void AllocRead(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(ReadBuffer().data(), static_cast<unsigned>(ReadBuffer().size()));
}

template <typename Handle>
uv_stream_t* Stream(Handle* handle) {
  return reinterpret_cast<uv_stream_t*>(handle);
}

// Stops reading `source` while `sink` has more than kMaxQueuedBytes waiting, starts it again once
// they went.
void Pace(uv_stream_t* source, uv_stream_t* sink, bool* paused, uv_read_cb on_read) {
  const bool backed_up = uv_stream_get_write_queue_size(sink) > kMaxQueuedBytes;
  if (backed_up && !*paused) uv_read_stop(source);
  if (!backed_up && *paused) uv_read_start(source, AllocRead, on_read);
  *paused = backed_up;
}

struct WriteRequest {
  uv_write_t request;
  std::string data;
  bool towards_redis;
};

std::string KeyOf(const RedisTlsBridge::Options& options) {  // one bridge per distinct key
  return absl::StrCat(options.host, ":", options.port, "|", options.tls.ca_file, "|",
                      options.tls.server_name, "|", absl::StrJoin(options.tls.pinned_keys, ","),
                      "|", options.connect_timeout.count());
}

}  // namespace

// One connection hiredis made to the bridge, and its connection to Redis.
struct RedisTlsBridge::Link {
  RedisTlsBridge* bridge = nullptr;
  uv_pipe_t plain{};
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_getaddrinfo_t resolve{};
  uv_connect_t connect{};
  uv_shutdown_t goodbye{};
  std::unique_ptr<tls::TlsChannel> channel;
  std::string before_connect;  // hiredis's bytes from before Redis was connected
  int handles_open = 0;
  bool tcp_open = false;      // `tcp` initialized (it needs closing too)
  bool plain_paused = false;  // not reading hiredis's side (PaceReading)
  bool tls_paused = false;    // not reading Redis's side
  bool resolving = false;
  bool failed = false;  // done with Redis's side; waiting for hiredis to close (SayGoodbye)
  bool closing = false;
};

absl::StatusOr<std::shared_ptr<RedisTlsBridge>> RedisTlsBridge::Shared(const Options& options) {
  // Never destroyed: a bridge may outlive static destruction in a process that exits with
  // clients still open.
  static auto* mutex = new std::mutex;
  static auto* bridges = new std::map<std::string, std::weak_ptr<RedisTlsBridge>>;
  std::lock_guard<std::mutex> lock(*mutex);
  std::weak_ptr<RedisTlsBridge>& slot = (*bridges)[KeyOf(options)];
  if (std::shared_ptr<RedisTlsBridge> live = slot.lock()) return live;
  absl::StatusOr<std::shared_ptr<tls::ClientContext>> context =
      tls::ClientContext::Create(options.tls);
  if (!context.ok()) {
    return absl::Status(context.status().code(),
                        absl::StrCat("redis TLS: ", context.status().message()));
  }
  std::shared_ptr<RedisTlsBridge> bridge(new RedisTlsBridge(options, *std::move(context)));
  if (absl::Status started = bridge->Start(); !started.ok()) return started;
  slot = bridge;
  return bridge;
}

RedisTlsBridge::RedisTlsBridge(Options options, std::shared_ptr<tls::ClientContext> context)
    : options_(std::move(options)), context_(std::move(context)) {}

absl::Status RedisTlsBridge::Start() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/im-redis-tls-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {  // mode 0700: this user's only
    return absl::InternalError(
        fmt::format("redis TLS: cannot make a directory for the bridge's "
                    "socket ({}): {}",
                    pattern, std::strerror(errno)));
  }
  directory_ = pattern;
  socket_path_ = directory_ + "/redis.sock";
  uv_loop_init(&loop_);
  uv_pipe_init(&loop_, &listener_, 0);
  listener_.data = this;
  int rc = uv_pipe_bind(&listener_, socket_path_.c_str());
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog, OnAccept);
  uv_async_init(&loop_, &stop_, OnStopRequested);
  stop_.data = this;
  thread_ = std::thread([this] { Run(); });
  if (rc != 0) {
    return absl::InternalError(
        fmt::format("redis TLS: cannot listen on {}: {}", socket_path_, uv_strerror(rc)));
  }
  return absl::OkStatus();
}

void RedisTlsBridge::Run() {
  common::BlockSigpipeInThisThread();  // a reply written to a hiredis that is gone: EPIPE
  uv_run(&loop_, UV_RUN_DEFAULT);
}

RedisTlsBridge::~RedisTlsBridge() {
  if (thread_.joinable()) {  // Start got as far as the loop (not when mkdtemp failed)
    Stop();
    thread_.join();
    uv_loop_close(&loop_);
  }
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
  if (!directory_.empty()) rmdir(directory_.c_str());
}

void RedisTlsBridge::Stop() { uv_async_send(&stop_); }

void RedisTlsBridge::OnStopRequested(uv_async_t* async) {
  auto* self = static_cast<RedisTlsBridge*>(async->data);
  for (Link* link : std::vector<Link*>(self->links_.begin(), self->links_.end())) {
    self->Close(link);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&self->listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
}

std::string RedisTlsBridge::last_error() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return last_error_;
}

void RedisTlsBridge::NoteSuccess() {
  std::lock_guard<std::mutex> lock(error_mutex_);
  last_error_.clear();
}

void RedisTlsBridge::OnAccept(uv_stream_t* server, int status) {
  if (status == 0) static_cast<RedisTlsBridge*>(server->data)->Accept();
}

void RedisTlsBridge::Accept() {
  auto* link = new Link;
  link->bridge = this;
  uv_pipe_init(&loop_, &link->plain, 0);
  uv_timer_init(&loop_, &link->timer);
  link->plain.data = link->timer.data = link->resolve.data = link->connect.data =
      link->goodbye.data = link;
  link->handles_open = 2;
  links_.insert(link);
  if (uv_accept(Stream(&listener_), Stream(&link->plain)) != 0) return Close(link);
  uv_timer_start(&link->timer, OnTimeout, static_cast<uint64_t>(options_.connect_timeout.count()),
                 0);
  uv_read_start(Stream(&link->plain), AllocRead, OnPlainRead);
  ConnectToRedis(link);
}

void RedisTlsBridge::ConnectToRedis(Link* link) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(options_.port);
  link->resolving = true;
  const int rc = uv_getaddrinfo(&loop_, &link->resolve, OnResolved, options_.host.c_str(),
                                port.c_str(), &hints);
  if (rc != 0) {
    link->resolving = false;
    Fail(link, fmt::format("cannot resolve {}: {}", options_.host, uv_strerror(rc)));
  }
}

void RedisTlsBridge::OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
  auto* link = static_cast<Link*>(request->data);
  RedisTlsBridge* self = link->bridge;
  link->resolving = false;
  if (link->closing || link->failed) {  // failed: timed out meanwhile
    uv_freeaddrinfo(result);
    // Closing: frees the link once its handles are closed too. Failed: hiredis's close ends it.
    if (link->closing) self->Close(link);
    return;
  }
  if (status != 0) {
    return self->Fail(
        link, fmt::format("cannot resolve {}: {}", self->options_.host, uv_strerror(status)));
  }
  uv_tcp_init(&self->loop_, &link->tcp);
  link->tcp.data = link;
  link->tcp_open = true;
  ++link->handles_open;
  uv_tcp_nodelay(&link->tcp, 1);
  const int rc = uv_tcp_connect(&link->connect, &link->tcp, result->ai_addr, OnConnected);
  uv_freeaddrinfo(result);
  if (rc != 0) self->Fail(link, fmt::format("connect: {}", uv_strerror(rc)));
}

void RedisTlsBridge::OnConnected(uv_connect_t* request, int status) {
  auto* link = static_cast<Link*>(request->data);
  RedisTlsBridge* self = link->bridge;
  if (link->closing || link->failed) return;
  if (status != 0) return self->Fail(link, fmt::format("connect: {}", uv_strerror(status)));
  link->channel = tls::TlsChannel::ForClient(*self->context_, self->options_.host);
  if (!link->before_connect.empty()) {
    link->channel->Write(link->before_connect);  // held until the handshake is done
    link->before_connect.clear();
  }
  self->SendToRedis(link);
  uv_read_start(Stream(&link->tcp), AllocRead, OnTlsRead);
}

void RedisTlsBridge::OnTimeout(uv_timer_t* timer) {
  auto* link = static_cast<Link*>(timer->data);
  if (link->failed) return link->bridge->Close(link);  // hiredis did not close within the linger
  if (link->channel != nullptr && link->channel->handshake_done()) return;
  const Options& options = link->bridge->options_;
  link->bridge->Fail(link,
                     fmt::format("no TLS session within {} ms (connect and handshake); is "
                                 "{}:{} Redis's TLS port?",
                                 options.connect_timeout.count(), options.host, options.port));
}

void RedisTlsBridge::OnPlainRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* link = static_cast<Link*>(stream->data);
  RedisTlsBridge* self = link->bridge;
  if (nread < 0) return self->Close(link);  // hiredis closed its connection
  if (nread == 0 || link->failed) return;   // after a failure, read only to see hiredis close
  const std::string_view bytes(buf->base, static_cast<size_t>(nread));
  if (link->channel == nullptr) {
    link->before_connect.append(bytes);
    if (link->before_connect.size() > kMaxQueuedBytes) {  // until the handshake is done
      uv_read_stop(stream);
      link->plain_paused = true;
    }
    return;
  }
  if (link->channel->Write(bytes) == tls::TlsChannel::Status::kFailed) {
    return self->Fail(link, link->channel->error());
  }
  self->SendToRedis(link);
}

void RedisTlsBridge::OnTlsRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* link = static_cast<Link*>(stream->data);
  RedisTlsBridge* self = link->bridge;
  if (nread < 0) {
    if (link->channel->handshake_done()) return self->Close(link);
    return self->Fail(link, fmt::format("Redis closed the connection during the TLS handshake "
                                        "({}); is {}:{} its TLS port?",
                                        uv_strerror(static_cast<int>(nread)), self->options_.host,
                                        self->options_.port));
  }
  if (nread == 0) return;
  const bool was_done = link->channel->handshake_done();
  const tls::TlsChannel::Status status = link->channel->Feed(
      std::string_view(buf->base, static_cast<size_t>(nread)), [&](std::string_view plain) {
        self->SendToClient(link, plain);
        return !link->closing;
      });
  if (status == tls::TlsChannel::Status::kFailed) return self->Fail(link, link->channel->error());
  self->SendToRedis(link);
  if (!was_done && link->channel->handshake_done()) {
    uv_timer_stop(&link->timer);
    self->NoteSuccess();
    self->PaceReading(link);  // reads hiredis's side again if it waited for the session
  }
  if (status == tls::TlsChannel::Status::kClosedByPeer) self->Close(link);
}

void RedisTlsBridge::SendToRedis(Link* link) {
  if (link->closing || link->failed || link->channel == nullptr || !link->channel->has_output())
    return;
  Write(link, /*towards_redis=*/true, link->channel->TakeOutput());
}

void RedisTlsBridge::SendToClient(Link* link, std::string_view plain) {
  if (!link->closing) Write(link, /*towards_redis=*/false, std::string(plain));
}

void RedisTlsBridge::Write(Link* link, bool towards_redis, std::string data) {
  auto* write = new WriteRequest{{}, std::move(data), towards_redis};
  write->request.data = link;
  uv_buf_t buf = uv_buf_init(write->data.data(), static_cast<unsigned>(write->data.size()));
  uv_stream_t* sink = towards_redis ? Stream(&link->tcp) : Stream(&link->plain);
  const int rc = uv_write(&write->request, sink, &buf, 1, OnWritten);
  if (rc != 0) {
    delete write;
    return WriteFailed(link, towards_redis, rc);
  }
  PaceReading(link);
}

void RedisTlsBridge::OnWritten(uv_write_t* request, int status) {
  auto* write = reinterpret_cast<WriteRequest*>(request);
  auto* link = static_cast<Link*>(request->data);
  const bool towards_redis = write->towards_redis;
  delete write;
  if (link->closing || link->failed) return;
  if (status != 0) return link->bridge->WriteFailed(link, towards_redis, status);
  link->bridge->PaceReading(link);
}

void RedisTlsBridge::WriteFailed(Link* link, bool towards_redis, int status) {
  if (towards_redis) return Fail(link, fmt::format("write: {}", uv_strerror(status)));
  Close(link);  // hiredis went away: not a failure of Redis's
}

void RedisTlsBridge::PaceReading(Link* link) {
  // Before the session hiredis's bytes are held (OnPlainRead caps them), not queued.
  if (link->closing || link->channel == nullptr || !link->channel->handshake_done()) return;
  Pace(Stream(&link->plain), Stream(&link->tcp), &link->plain_paused, OnPlainRead);
  Pace(Stream(&link->tcp), Stream(&link->plain), &link->tls_paused, OnTlsRead);
}

void RedisTlsBridge::Fail(Link* link, const std::string& why) {
  if (link->closing || link->failed) return;
  const std::string error = fmt::format("redis TLS {}:{}: {}", options_.host, options_.port, why);
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "{}", error);
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    last_error_ = error;
  }
  SayGoodbye(link);
}

void RedisTlsBridge::SayGoodbye(Link* link) {
  // Closing hiredis's socket at once would reset it when hiredis's first bytes are still unread
  // there (a certificate refused before they were read), and hiredis would see a reset or a
  // broken pipe instead of the end: SIGPIPE kills a process that does not ignore it, and
  // Debian's hiredis 0.14 libuv adapter ignores the poll error (see hiredis_libuv_events.h). A
  // FIN reads as "server closed the connection"; what hiredis still writes is read and dropped
  // until it closes its side.
  link->failed = true;
  if (link->tcp_open) uv_read_stop(Stream(&link->tcp));
  if (link->plain_paused) uv_read_start(Stream(&link->plain), AllocRead, OnPlainRead);
  link->plain_paused = false;
  link->before_connect.clear();
  uv_timer_start(&link->timer, OnTimeout, static_cast<uint64_t>(kFailedLinkLinger.count()), 0);
  if (uv_shutdown(&link->goodbye, Stream(&link->plain), [](uv_shutdown_t*, int) {}) != 0) {
    Close(link);
  }
}

void RedisTlsBridge::Close(Link* link) {
  auto handle_closed = [](uv_handle_t* handle) {
    auto* owner = static_cast<Link*>(handle->data);
    if (--owner->handles_open == 0 && !owner->resolving) delete owner;
  };
  if (!link->closing) {
    link->closing = true;
    links_.erase(link);
    uv_close(reinterpret_cast<uv_handle_t*>(&link->plain), handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&link->timer), handle_closed);
    if (link->tcp_open) uv_close(reinterpret_cast<uv_handle_t*>(&link->tcp), handle_closed);
    return;
  }
  // Called again from OnResolved once the lookup of a link closed meanwhile came back.
  if (link->handles_open == 0 && !link->resolving) delete link;
}

std::string WithBridgeError(std::string detail,
                            const absl::StatusOr<std::shared_ptr<RedisTlsBridge>>& bridge) {
  if (!bridge.ok() || *bridge == nullptr) return detail;
  const std::string why = (*bridge)->last_error();
  return why.empty() ? detail : absl::StrCat(detail, " (", why, ")");
}

absl::StatusOr<std::shared_ptr<RedisTlsBridge>> RedisTlsBridgeFor(const RedisOptions& options) {
  if (!options.tls) return nullptr;
  RedisTlsBridge::Options bridge;
  bridge.host = options.host;
  bridge.port = options.port;
  bridge.tls.ca_file = options.tls_ca_file;
  bridge.tls.server_name = options.tls_server_name;
  // Shorter than the clients' command timeout, which is just as long: a link that never gets its
  // TLS session is closed, with the reason recorded, before the command on it times out, so that
  // the command's error names the reason rather than a bare timeout.
  bridge.connect_timeout = options.timeout * 3 / 4;
  return RedisTlsBridge::Shared(bridge);
}

}  // namespace im::store
