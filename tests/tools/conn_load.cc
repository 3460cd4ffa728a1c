// im-connload: opens many client connections to one gateway from a separate process, logs each in
// and pings it once, then reports how many became ready and how long logins took. With --hold it
// keeps them open (pinging) to measure how many connections one gateway holds.
//
// stdout carries exactly two JSON lines: {"event":"ready",...} once every connection is ready or
// has failed (or the timeout passed), and {"event":"done",...} at the end. Progress goes to stderr.
// Exit status: 0 when every connection became ready, 1 when some did not, 2 when the tool itself
// could not run (bad options, open-file limit, a handle left open at the end).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/frame_codec.h"
#include "common/open_file_limit.h"
#include "common/token.h"
#include "fmt/core.h"
#include "im/v1/client.pb.h"
#include "nlohmann/json.hpp"

namespace im::tools {
namespace {

// ordered_json keeps "event" first on the line, which is what people grep for.
using Json = nlohmann::ordered_json;
using im::v1::Frame;

constexpr size_t kReadBufferBytes = 64 * 1024;
// Pushes are not expected for load users; the limit only bounds what garbage can make us buffer.
constexpr uint32_t kMaxFrameBytes = 1024 * 1024;
constexpr uint64_t kRateTickMs = 10;
constexpr uint64_t kPingTickMs = 100;
constexpr uint64_t kProgressMs = 1000;
constexpr uint64_t kHoldProgressEvery = 10;  // progress ticks between lines while holding
constexpr size_t kMaxSamples = 5;            // failures reported with their code and message
constexpr uint64_t kLoginFrameId = 1;
constexpr uint64_t kFirstPingFrameId = 2;
constexpr int64_t kTokenLifetimeSec = 3600;
constexpr uint64_t kReservedFds = 64;  // the loop, stdio, signals, ...

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint32_t connections = 1000;
  uint32_t rate = 2000;
  std::string secret = "dev-secret-change-me";  // the local cluster's
  std::string uid_prefix = "load";
  std::vector<std::string> source_addresses;
  uint64_t timeout_ms = 30000;
  bool hold = false;
  uint64_t hold_ms = 0;  // 0: hold until a signal (or stdin EOF)
  bool hold_until_stdin_eof = false;
  uint64_t ping_interval_ms = 10000;
};

enum class ConnState { kNotStarted, kConnecting, kLoggingIn, kPinging, kReady, kClosed };

// Why a connection ended. Every connection that started ends exactly once.
enum class EndReason {
  kConnectError,  // init, bind or connect failed
  kLoginFailed,   // LoginResp with a status other than OK
  kGoAway,        // the gateway is draining; we close as a client would
  kKicked,
  kServerError,   // an Error frame (the gateway closes after it)
  kServerClosed,  // EOF without a frame saying why
  kIoError,       // a read or write error (ECONNRESET included)
  kBadFrame,      // bytes that do not decode, or a frame that makes no sense in this state
  kTimedOut,      // not ready when the report was due
  kStopped,       // closed by us at the end of the run
};

class LoadRun;

struct Conn {
  explicit Conn(LoadRun* r, uint32_t i) : run(r), index(i), decoder(kMaxFrameBytes) {}

  LoadRun* run;
  uint32_t index;
  ConnState state = ConnState::kNotStarted;
  bool handle_open = false;  // initialized and not yet handed to uv_close
  bool resolved = false;     // counted as ready or failed toward the report
  uint64_t start_ns = 0;     // when the connect was issued
  uint64_t next_frame_id = kFirstPingFrameId + 1;
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  common::FrameDecoder decoder;
};

struct WriteReq {
  uv_write_t req{};
  std::string bytes;
};

struct Counters {
  uint64_t started = 0;
  uint64_t connected = 0;
  uint64_t connect_errors = 0;
  uint64_t login_ok = 0;
  uint64_t login_failed = 0;
  uint64_t ready = 0;
  uint64_t timed_out = 0;
  uint64_t closed_by_server = 0;  // goaway + kicked + error_frames + eof
  uint64_t goaway = 0;
  uint64_t kicked = 0;
  uint64_t error_frames = 0;
  uint64_t eof = 0;
  uint64_t io_errors = 0;
  uint64_t bad_frames = 0;
  uint64_t pings_sent = 0;
  uint64_t pongs = 0;
  uint64_t pushes = 0;
  std::map<std::string, uint64_t> connect_error_names;
  std::map<std::string, uint64_t> io_error_names;
  std::map<std::string, uint64_t> login_failure_codes;
  Json login_failures = Json::array();
  Json server_frames = Json::array();  // Error, Kick
  Json bad_frame_samples = Json::array();
};

std::string BodyName(const Frame& frame) {
  const google::protobuf::FieldDescriptor* field =
      Frame::descriptor()->FindFieldByNumber(frame.body_case());
  return field != nullptr ? field->name() : "frame without body";
}

std::string CodeName(int code) {
  std::string name(im::v1::Code_Name(static_cast<im::v1::Code>(code)));
  return name.empty() ? std::to_string(code) : name;
}

// Keeps the first few distinct samples: a thousand identical failures need one line.
void AddSample(Json* samples, Json sample) {
  if (samples->size() >= kMaxSamples) return;
  for (const Json& seen : *samples) {
    if (seen == sample) return;
  }
  samples->push_back(std::move(sample));
}

// Nearest-rank percentile of sorted samples; 0 when there are none.
uint64_t Percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

int64_t UnixNowMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Owns the loop and every connection; everything runs on the one loop thread. Connections live
// until the run object is destroyed (after uv_loop_close), so no callback can outlive its Conn.
class LoadRun {
 public:
  LoadRun(Options options, const sockaddr_storage& target, std::vector<sockaddr_storage> sources)
      : options_(std::move(options)),
        target_(target),
        sources_(std::move(sources)),
        read_buffer_(new char[kReadBufferBytes]) {}

  // Runs to the end and returns the exit status.
  int Run() {
    if (int rc = uv_loop_init(&loop_); rc != 0) {
      std::fprintf(stderr, "im-connload: uv_loop_init: %s\n", uv_strerror(rc));
      return 2;
    }
    conns_.reserve(options_.connections);
    for (uint32_t i = 0; i < options_.connections; ++i) {
      conns_.push_back(std::make_unique<Conn>(this, i));
    }
    login_us_.reserve(options_.connections);
    connect_us_.reserve(options_.connections);

    for (uv_timer_t* timer : {&rate_timer_, &ping_timer_, &progress_timer_, &deadline_timer_,
                              &hold_timer_, &settle_timer_}) {
      uv_timer_init(&loop_, timer);
      timer->data = this;
    }
    for (auto [handle, signum] : {std::pair{&sigint_, SIGINT}, std::pair{&sigterm_, SIGTERM}}) {
      uv_signal_init(&loop_, handle);
      handle->data = this;
      uv_signal_start(handle, &LoadRun::OnSignal, signum);
    }
    if (options_.hold_until_stdin_eof && !WatchStdin()) {
      Finish("stdin unusable");
    } else {
      start_ns_ = uv_hrtime();
      last_rate_ns_ = start_ns_;
      uv_timer_start(&rate_timer_, &LoadRun::OnRateTick, 0, kRateTickMs);
      uv_timer_start(&ping_timer_, &LoadRun::OnPingTick, kPingTickMs, kPingTickMs);
      uv_timer_start(&progress_timer_, &LoadRun::OnProgressTick, kProgressMs, kProgressMs);
      uv_timer_start(&deadline_timer_, &LoadRun::OnDeadline, options_.timeout_ms, 0);
    }

    uv_run(&loop_, UV_RUN_DEFAULT);
    const int close_rc = uv_loop_close(&loop_);
    if (close_rc != 0) {
      std::fprintf(stderr, "im-connload: uv_loop_close: %s; handles still open:\n",
                   uv_strerror(close_rc));
      uv_walk(
          &loop_,
          [](uv_handle_t* handle, void*) {
            std::fprintf(stderr, "  %s%s\n", uv_handle_type_name(uv_handle_get_type(handle)),
                         uv_is_closing(handle) ? " (closing)" : "");
          },
          nullptr);
    }
    PrintDone(close_rc);
    if (close_rc != 0) return 2;
    return counters_.ready == options_.connections ? 0 : 1;
  }

 private:
  // ---- pacing and reporting (timer callbacks: never inside a connection's callback) ----

  static void OnRateTick(uv_timer_t* timer) {
    auto* self = static_cast<LoadRun*>(timer->data);
    // A token bucket holding at most two ticks' worth: a late tick does not turn into a burst
    // above --rate.
    const uint64_t now_ns = uv_hrtime();
    const double rate = self->options_.rate;
    const double capacity = std::max(1.0, rate * 2 * kRateTickMs / 1000.0);
    self->tokens_ = std::min(
        capacity, self->tokens_ + rate * static_cast<double>(now_ns - self->last_rate_ns_) / 1e9);
    self->last_rate_ns_ = now_ns;
    while (self->tokens_ >= 1.0 && self->next_index_ < self->options_.connections) {
      self->tokens_ -= 1.0;
      self->StartConn(*self->conns_[self->next_index_++]);
    }
    if (self->next_index_ == self->options_.connections) uv_timer_stop(timer);
  }

  // Spreads pings over the interval: each tick pings one slot of the connections.
  static void OnPingTick(uv_timer_t* timer) {
    auto* self = static_cast<LoadRun*>(timer->data);
    const uint64_t slots = std::max<uint64_t>(1, self->options_.ping_interval_ms / kPingTickMs);
    const uint64_t slot = self->ping_ticks_++ % slots;
    for (uint64_t i = slot; i < self->conns_.size(); i += slots) {
      Conn& c = *self->conns_[i];
      if (c.state == ConnState::kReady) self->SendPing(c);
    }
  }

  static void OnProgressTick(uv_timer_t* timer) {
    auto* self = static_cast<LoadRun*>(timer->data);
    if (self->holding_ && ++self->hold_progress_ticks_ % kHoldProgressEvery != 0) return;
    const Counters& k = self->counters_;
    fmt::print(stderr,
               "im-connload: {:.1f}s started={} connected={} login_ok={} ready={} failed={} "
               "open={} goaway={} closed_by_server={} pongs={}{}\n",
               static_cast<double>(self->ElapsedMs()) / 1000.0, k.started, k.connected, k.login_ok,
               k.ready, self->resolved_ - k.ready, self->open_, k.goaway, k.closed_by_server,
               k.pongs, self->holding_ ? " (holding)" : "");
  }

  static void OnDeadline(uv_timer_t* timer) {
    auto* self = static_cast<LoadRun*>(timer->data);
    self->Report("timeout");
    self->AfterReport();
  }

  static void OnHoldDone(uv_timer_t* timer) {
    static_cast<LoadRun*>(timer->data)->Finish("hold time over");
  }

  // Runs at a safe point after a connection callback changed the totals.
  static void OnSettle(uv_timer_t* timer) {
    auto* self = static_cast<LoadRun*>(timer->data);
    if (!self->reported_ && self->resolved_ == self->options_.connections) {
      self->Report("all_settled");
      self->AfterReport();
    } else if (self->holding_ && self->ready_open_ == 0) {
      self->Finish("no held connection left");
    }
  }

  static void OnSignal(uv_signal_t* handle, int signum) {
    static_cast<LoadRun*>(handle->data)->Finish(signum == SIGINT ? "SIGINT" : "SIGTERM");
  }

  void ScheduleSettleCheck() {
    if (finishing_) return;
    if ((!reported_ && resolved_ == options_.connections) || (holding_ && ready_open_ == 0)) {
      uv_timer_start(&settle_timer_, &LoadRun::OnSettle, 0, 0);
    }
  }

  // Prints the ready line once; connections that are not ready by now are closed as timed out.
  void Report(const char* cause) {
    if (reported_) return;
    reported_ = true;
    report_ms_ = ElapsedMs();
    uv_timer_stop(&rate_timer_);
    uv_timer_stop(&deadline_timer_);
    for (auto& conn : conns_) {
      if (!conn->resolved && conn->state != ConnState::kNotStarted) {
        End(*conn, EndReason::kTimedOut);
      }
    }
    std::sort(login_us_.begin(), login_us_.end());
    std::sort(connect_us_.begin(), connect_us_.end());
    const Counters& k = counters_;
    Json line;
    line["event"] = "ready";
    line["cause"] = cause;
    line["connections"] = options_.connections;
    line["ready"] = k.ready;
    line["started"] = k.started;
    line["not_started"] = options_.connections - k.started;
    line["connected"] = k.connected;
    line["login_ok"] = k.login_ok;
    line["login_failed"] = k.login_failed;
    line["connect_errors"] = k.connect_errors;
    line["timed_out"] = k.timed_out;
    line["closed_by_server"] = k.closed_by_server;
    line["goaway"] = k.goaway;
    line["io_errors"] = k.io_errors;
    line["bad_frames"] = k.bad_frames;
    // Login latency runs from the connect call to LoginResp OK, so it includes the handshake.
    line["login_p50_us"] = Percentile(login_us_, 0.50);
    line["login_p99_us"] = Percentile(login_us_, 0.99);
    line["login_max_us"] = login_us_.empty() ? 0 : login_us_.back();
    line["connect_p50_us"] = Percentile(connect_us_, 0.50);
    line["connect_p99_us"] = Percentile(connect_us_, 0.99);
    line["connect_max_us"] = connect_us_.empty() ? 0 : connect_us_.back();
    line["elapsed_ms"] = report_ms_;
    AddDetails(&line);
    PrintLine(line);
  }

  void AfterReport() {
    if (finishing_) return;
    if (!options_.hold) {
      Finish("report printed");
      return;
    }
    if (ready_open_ == 0) {
      Finish("nothing to hold");
      return;
    }
    holding_ = true;
    fmt::print(stderr, "im-connload: holding {} connections, a ping every {} ms each{}\n",
               ready_open_, options_.ping_interval_ms,
               options_.hold_ms > 0            ? ""
               : options_.hold_until_stdin_eof ? "; SIGTERM, SIGINT or the end of stdin stops"
                                               : "; SIGTERM or SIGINT stops");
    if (options_.hold_ms > 0) {
      uv_timer_start(&hold_timer_, &LoadRun::OnHoldDone, options_.hold_ms, 0);
    }
  }

  // Closes every handle; uv_run returns once their close callbacks have run.
  void Finish(const char* why) {
    if (finishing_) return;
    std::fprintf(stderr, "im-connload: stopping (%s)\n", why);
    if (!reported_) Report("interrupted");
    finishing_ = true;
    held_at_end_ = ready_open_;
    for (auto& conn : conns_) End(*conn, EndReason::kStopped);
    for (uv_timer_t* timer : {&rate_timer_, &ping_timer_, &progress_timer_, &deadline_timer_,
                              &hold_timer_, &settle_timer_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    if (stdin_ != nullptr) uv_close(reinterpret_cast<uv_handle_t*>(stdin_), nullptr);
    stdin_ = nullptr;
  }

  void PrintDone(int loop_close_rc) {
    const Counters& k = counters_;
    Json line;
    line["event"] = "done";
    line["connections"] = options_.connections;
    line["ready"] = k.ready;
    line["held_at_end"] = held_at_end_;  // ready connections still open when we stopped
    line["goaway"] = k.goaway;
    line["kicked"] = k.kicked;
    line["error_frames"] = k.error_frames;
    line["eof"] = k.eof;
    line["closed_by_server"] = k.closed_by_server;
    line["login_failed"] = k.login_failed;
    line["connect_errors"] = k.connect_errors;
    line["timed_out"] = k.timed_out;
    line["io_errors"] = k.io_errors;
    line["bad_frames"] = k.bad_frames;
    line["pings_sent"] = k.pings_sent;
    line["pongs"] = k.pongs;
    line["pushes"] = k.pushes;
    line["elapsed_ms"] = ElapsedMs();
    line["loop_closed"] = loop_close_rc == 0;
    AddDetails(&line);
    PrintLine(line);
  }

  void AddDetails(Json* line) const {
    const Counters& k = counters_;
    if (!k.connect_error_names.empty()) (*line)["connect_error_names"] = k.connect_error_names;
    if (!k.io_error_names.empty()) (*line)["io_error_names"] = k.io_error_names;
    if (!k.login_failure_codes.empty()) (*line)["login_failure_codes"] = k.login_failure_codes;
    if (!k.login_failures.empty()) (*line)["login_failures"] = k.login_failures;
    if (!k.server_frames.empty()) (*line)["server_frames"] = k.server_frames;
    if (!k.bad_frame_samples.empty()) (*line)["bad_frame_samples"] = k.bad_frame_samples;
  }

  static void PrintLine(const Json& line) {
    const std::string text = line.dump();
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  uint64_t ElapsedMs() const { return start_ns_ == 0 ? 0 : (uv_hrtime() - start_ns_) / 1'000'000; }

  // ---- stdin ----

  // Returns false when fd 0 cannot be watched for EOF (a file or /dev/null is always at EOF).
  bool WatchStdin() {
    const uv_handle_type type = uv_guess_handle(0);
    int rc = UV_EINVAL;
    if (type == UV_TTY) {
      rc = uv_tty_init(&loop_, &stdin_tty_, 0, 0);
      if (rc == 0) stdin_ = reinterpret_cast<uv_stream_t*>(&stdin_tty_);
    } else if (type == UV_NAMED_PIPE) {
      rc = uv_pipe_init(&loop_, &stdin_pipe_, 0);
      if (rc == 0) {
        stdin_ = reinterpret_cast<uv_stream_t*>(&stdin_pipe_);
        rc = uv_pipe_open(&stdin_pipe_, 0);
      }
    }
    if (rc == 0) {
      stdin_->data = this;
      rc = uv_read_start(
          stdin_,
          [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
            auto* self = static_cast<LoadRun*>(handle->data);
            *buf = uv_buf_init(self->read_buffer_.get(), kReadBufferBytes);
          },
          [](uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
            if (nread < 0) static_cast<LoadRun*>(stream->data)->Finish("stdin closed");
          });
    }
    if (rc != 0) {
      std::fprintf(stderr, "im-connload: cannot watch stdin: %s\n", uv_strerror(rc));
      return false;
    }
    return true;
  }

  // ---- connections ----

  void StartConn(Conn& c) {
    c.state = ConnState::kConnecting;
    c.start_ns = uv_hrtime();
    counters_.started++;
    open_++;
    const sockaddr_storage* source =
        sources_.empty() ? nullptr : &sources_[c.index % sources_.size()];
    int rc = source == nullptr ? uv_tcp_init(&loop_, &c.tcp)
                               : uv_tcp_init_ex(&loop_, &c.tcp, source->ss_family);
    if (rc != 0) {
      End(c, EndReason::kConnectError, rc);
      return;
    }
    c.handle_open = true;
    c.tcp.data = &c;
    c.connect_req.data = &c;
    if (source != nullptr) {
      // Without this, bind() picks the port before the destination is known and each source
      // address runs out after the ephemeral range instead of per destination.
#ifdef IP_BIND_ADDRESS_NO_PORT
      uv_os_fd_t fd;
      if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c.tcp), &fd) == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      }
#endif
      rc = uv_tcp_bind(&c.tcp, reinterpret_cast<const sockaddr*>(source), 0);
    }
    if (rc == 0) rc = uv_tcp_nodelay(&c.tcp, 1);
    if (rc == 0) {
      rc = uv_tcp_connect(&c.connect_req, &c.tcp, reinterpret_cast<const sockaddr*>(&target_),
                          &LoadRun::OnConnect);
    }
    if (rc != 0) End(c, EndReason::kConnectError, rc);
  }

  static void OnConnect(uv_connect_t* req, int status) {
    Conn& c = *static_cast<Conn*>(req->data);
    LoadRun& self = *c.run;
    if (c.state != ConnState::kConnecting) return;  // closed meanwhile (status is UV_ECANCELED)
    if (status < 0) {
      self.End(c, EndReason::kConnectError, status);
      return;
    }
    self.counters_.connected++;
    self.connect_us_.push_back((uv_hrtime() - c.start_ns) / 1000);
    c.state = ConnState::kLoggingIn;
    if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), &LoadRun::OnAlloc,
                               &LoadRun::OnRead);
        rc != 0) {
      self.End(c, EndReason::kIoError, rc);
      return;
    }
    Frame frame;
    frame.set_id(kLoginFrameId);
    common::TokenClaims claims;
    claims.uid = self.options_.uid_prefix + std::to_string(c.index);
    claims.exp_unix_sec = static_cast<int64_t>(std::time(nullptr)) + kTokenLifetimeSec;
    frame.mutable_login_req()->set_token(common::SignToken(claims, self.options_.secret));
    frame.mutable_login_req()->set_device("d1");
    frame.mutable_login_req()->set_platform("load");
    self.Send(c, frame);
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    LoadRun& self = *static_cast<Conn*>(handle->data)->run;
    *buf = uv_buf_init(self.read_buffer_.get(), kReadBufferBytes);
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    Conn& c = *static_cast<Conn*>(stream->data);
    LoadRun& self = *c.run;
    if (c.state == ConnState::kClosed) return;
    if (nread > 0) {
      const common::DecodeError error =
          c.decoder.Feed(std::string_view(buf->base, static_cast<size_t>(nread)),
                         [&self, &c](Frame&& frame) { return self.OnFrame(c, std::move(frame)); });
      if (error != common::DecodeError::kNone && c.state != ConnState::kClosed) {
        self.BadFrame(c, std::string(common::DecodeErrorName(error)));
      }
      return;
    }
    if (nread == 0) return;
    if (nread == UV_EOF) {
      self.End(c, EndReason::kServerClosed);
    } else {
      self.End(c, EndReason::kIoError, static_cast<int>(nread));
    }
  }

  // Returns false once the connection is closed, which stops the decoder.
  bool OnFrame(Conn& c, Frame&& frame) {
    switch (frame.body_case()) {
      case Frame::kGoAway:
        End(c, EndReason::kGoAway);
        return false;
      case Frame::kKick: {
        const im::v1::Kick& kick = frame.kick();
        AddSample(&counters_.server_frames,
                  Json{{"frame", "kick"},
                       {"reason", im::v1::Kick::Reason_Name(kick.reason())},
                       {"message", kick.message()}});
        End(c, EndReason::kKicked);
        return false;
      }
      case Frame::kError:
        AddSample(&counters_.server_frames, Json{{"frame", "error"},
                                                 {"code", CodeName(frame.error().code())},
                                                 {"message", frame.error().message()}});
        End(c, EndReason::kServerError);
        return false;
      case Frame::kMessagePush:
      case Frame::kReadPush:
        if (c.state == ConnState::kLoggingIn) break;  // no push before login
        counters_.pushes++;
        return true;
      default:
        break;
    }
    switch (c.state) {
      case ConnState::kLoggingIn:
        if (frame.body_case() != Frame::kLoginResp || frame.id() != kLoginFrameId) break;
        return OnLoginResp(c, frame.login_resp());
      case ConnState::kPinging:
        if (frame.body_case() != Frame::kPong || frame.id() != kFirstPingFrameId) break;
        c.state = ConnState::kReady;
        counters_.ready++;
        ready_open_++;
        Resolve(c);
        return true;
      case ConnState::kReady:
        if (frame.body_case() != Frame::kPong) break;
        counters_.pongs++;
        return true;
      default:
        return false;
    }
    BadFrame(c, "unexpected " + BodyName(frame) + " id " + std::to_string(frame.id()) + " while " +
                    StateName(c.state));
    return false;
  }

  bool OnLoginResp(Conn& c, const im::v1::LoginResp& resp) {
    if (resp.status().code() != im::v1::OK) {
      counters_.login_failed++;
      counters_.login_failure_codes[CodeName(resp.status().code())]++;
      AddSample(&counters_.login_failures, Json{{"code", CodeName(resp.status().code())},
                                                {"message", resp.status().message()}});
      End(c, EndReason::kLoginFailed);
      return false;
    }
    counters_.login_ok++;
    login_us_.push_back((uv_hrtime() - c.start_ns) / 1000);
    if (!warned_heartbeat_ && resp.heartbeat_sec() > 0 && options_.hold &&
        options_.ping_interval_ms > uint64_t{resp.heartbeat_sec()} * 1000) {
      warned_heartbeat_ = true;
      fmt::print(stderr,
                 "im-connload: warning: --ping-interval-ms {} is longer than the gateway's "
                 "heartbeat ({} s); it may close held connections as idle\n",
                 options_.ping_interval_ms, resp.heartbeat_sec());
    }
    c.state = ConnState::kPinging;
    Frame ping;
    ping.set_id(kFirstPingFrameId);
    ping.mutable_ping()->set_client_time_ms(UnixNowMs());
    return Send(c, ping);
  }

  void SendPing(Conn& c) {
    Frame ping;
    ping.set_id(c.next_frame_id++);
    ping.mutable_ping()->set_client_time_ms(UnixNowMs());
    if (Send(c, ping)) counters_.pings_sent++;
  }

  // Returns false (and closes the connection) when the write cannot be queued.
  bool Send(Conn& c, const Frame& frame) {
    auto write = std::make_unique<WriteReq>();
    write->bytes = common::EncodeFrame(frame);
    uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
    const int rc =
        uv_write(&write->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, &LoadRun::OnWrite);
    if (rc != 0) {
      End(c, EndReason::kIoError, rc);
      return false;
    }
    WriteReq* pending = write.release();  // freed by OnWrite
    pending->req.data = pending;
    return true;
  }

  static void OnWrite(uv_write_t* req, int status) {
    std::unique_ptr<WriteReq> write(static_cast<WriteReq*>(req->data));
    Conn& c = *static_cast<Conn*>(req->handle->data);
    if (status < 0 && c.state != ConnState::kClosed) c.run->End(c, EndReason::kIoError, status);
  }

  void BadFrame(Conn& c, std::string what) {
    // Only the first few are logged: a broken server must not flood the terminal.
    if (counters_.bad_frame_samples.size() < kMaxSamples) {
      std::fprintf(stderr, "im-connload: conn %u: %s, closing\n", c.index, what.c_str());
    }
    AddSample(&counters_.bad_frame_samples, Json{{"conn", c.index}, {"what", std::move(what)}});
    End(c, EndReason::kBadFrame);
  }

  // Counts a connection toward the report, once.
  void Resolve(Conn& c) {
    if (c.resolved) return;
    c.resolved = true;
    resolved_++;
    ScheduleSettleCheck();
  }

  // Ends a connection once: counts why and closes its handle.
  void End(Conn& c, EndReason reason, int uv_error = 0) {
    if (c.state == ConnState::kClosed || c.state == ConnState::kNotStarted) return;
    const bool was_ready = c.state == ConnState::kReady;
    c.state = ConnState::kClosed;
    open_--;
    if (was_ready) ready_open_--;
    Counters& k = counters_;
    const char* error_name = uv_error != 0 ? uv_err_name(uv_error) : "";
    switch (reason) {
      case EndReason::kConnectError:
        k.connect_errors++;
        k.connect_error_names[error_name]++;
        break;
      case EndReason::kLoginFailed:
        break;  // counted with its status by OnLoginResp
      case EndReason::kGoAway:
        k.goaway++;
        k.closed_by_server++;
        break;
      case EndReason::kKicked:
        k.kicked++;
        k.closed_by_server++;
        break;
      case EndReason::kServerError:
        k.error_frames++;
        k.closed_by_server++;
        break;
      case EndReason::kServerClosed:
        k.eof++;
        k.closed_by_server++;
        break;
      case EndReason::kIoError:
        k.io_errors++;
        k.io_error_names[error_name]++;
        break;
      case EndReason::kBadFrame:
        k.bad_frames++;
        break;
      case EndReason::kTimedOut:
        k.timed_out++;
        break;
      case EndReason::kStopped:
        break;
    }
    if (c.handle_open) {
      c.handle_open = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), nullptr);
    }
    Resolve(c);
    if (was_ready) ScheduleSettleCheck();
  }

  static std::string StateName(ConnState state) {
    switch (state) {
      case ConnState::kNotStarted:
        return "not started";
      case ConnState::kConnecting:
        return "connecting";
      case ConnState::kLoggingIn:
        return "logging in";
      case ConnState::kPinging:
        return "awaiting the first pong";
      case ConnState::kReady:
        return "ready";
      case ConnState::kClosed:
        return "closed";
    }
    return "?";
  }

  const Options options_;
  const sockaddr_storage target_;
  const std::vector<sockaddr_storage> sources_;
  std::unique_ptr<char[]> read_buffer_;  // shared by every read: the loop reads one at a time

  uv_loop_t loop_{};
  uv_timer_t rate_timer_{};
  uv_timer_t ping_timer_{};
  uv_timer_t progress_timer_{};
  uv_timer_t deadline_timer_{};
  uv_timer_t hold_timer_{};
  uv_timer_t settle_timer_{};
  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
  uv_tty_t stdin_tty_{};
  uv_pipe_t stdin_pipe_{};
  uv_stream_t* stdin_ = nullptr;

  std::vector<std::unique_ptr<Conn>> conns_;
  uint32_t next_index_ = 0;
  double tokens_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t last_rate_ns_ = 0;
  uint64_t ping_ticks_ = 0;
  uint64_t hold_progress_ticks_ = 0;
  uint64_t resolved_ = 0;    // connections that became ready or failed
  uint64_t open_ = 0;        // started and not ended
  uint64_t ready_open_ = 0;  // ready and not ended
  uint64_t held_at_end_ = 0;
  uint64_t report_ms_ = 0;
  bool reported_ = false;
  bool holding_ = false;
  bool finishing_ = false;
  bool warned_heartbeat_ = false;
  Counters counters_;
  std::vector<uint64_t> login_us_;
  std::vector<uint64_t> connect_us_;
};

bool ResolveTarget(const std::string& host, uint16_t port, sockaddr_storage* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const std::string port_text = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &result); rc != 0) {
    std::fprintf(stderr, "im-connload: cannot resolve --host %s: %s\n", host.c_str(),
                 gai_strerror(rc));
    return false;
  }
  *out = {};
  std::memcpy(out, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  return true;
}

bool ParseSource(const std::string& text, sockaddr_storage* out) {
  *out = {};
  if (uv_ip4_addr(text.c_str(), 0, reinterpret_cast<sockaddr_in*>(out)) == 0) return true;
  return uv_ip6_addr(text.c_str(), 0, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

// Raises the soft open-file limit to the hard one; false (with a message) when the run cannot fit.
bool RaiseFileLimit(uint32_t connections) {
  absl::StatusOr<common::OpenFileLimit> files = common::RaiseOpenFileLimit();
  if (!files.ok()) {
    fmt::print(stderr, "im-connload: {}\n", files.status().ToString());
    return false;
  }
  const uint64_t needed = uint64_t{connections} + kReservedFds;
  if (needed > files->soft) {
    fmt::print(stderr,
               "im-connload: --connections {} needs {} open files but the hard limit is {} "
               "({} are kept for the tool): lower --connections or run several im-connload "
               "processes with different --uid-prefix\n",
               connections, needed, files->hard, kReservedFds);
    return false;
  }
  return true;
}

}  // namespace
}  // namespace im::tools

int main(int argc, char** argv) {
  using im::tools::Options;
  Options options;
  CLI::App app{"im-connload: opens many client connections to one gateway and logs them in"};
  app.add_option("--host", options.host, "Gateway host")->capture_default_str();
  app.add_option("--port", options.port, "Gateway client port")
      ->required()
      ->check(CLI::Range(1, 65535));
  app.add_option("--connections", options.connections, "Connections to open")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--rate", options.rate, "Connections opened per second, at most")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--secret", options.secret, "Token signing secret shared with the cluster")
      ->capture_default_str();
  app.add_option("--uid-prefix", options.uid_prefix, "Users are <prefix><index>")
      ->capture_default_str();
  app.add_option("--source-addresses", options.source_addresses,
                 "Local addresses to bind round-robin (e.g. 127.0.0.2,127.0.0.3)")
      ->delimiter(',');
  app.add_option("--timeout-ms", options.timeout_ms,
                 "Time for every connection to log in and get its first pong")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{86'400'000}));
  app.add_flag("--hold", options.hold, "After the ready report, keep the connections open");
  app.add_option("--hold-ms", options.hold_ms, "Hold this long, then stop (implies --hold)");
  app.add_flag("--hold-until-stdin-eof", options.hold_until_stdin_eof,
               "Also stop when stdin closes; stdin must be a pipe or terminal (implies --hold)");
  app.add_option("--ping-interval-ms", options.ping_interval_ms,
                 "Each ready connection sends a Ping this often")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{86'400'000}));
  CLI11_PARSE(app, argc, argv);
  if (options.hold_ms > 0 || options.hold_until_stdin_eof) options.hold = true;
  if (options.hold_until_stdin_eof && uv_guess_handle(0) != UV_NAMED_PIPE &&
      uv_guess_handle(0) != UV_TTY) {
    std::fprintf(stderr,
                 "im-connload: --hold-until-stdin-eof needs stdin to be a pipe or a terminal "
                 "(a file or /dev/null is always at EOF)\n");
    return 2;
  }

  sockaddr_storage target{};
  if (!im::tools::ResolveTarget(options.host, options.port, &target)) return 2;
  std::vector<sockaddr_storage> sources;
  for (const std::string& text : options.source_addresses) {
    sockaddr_storage source{};
    if (!im::tools::ParseSource(text, &source)) {
      std::fprintf(stderr, "im-connload: --source-addresses: '%s' is not an IP address\n",
                   text.c_str());
      return 2;
    }
    if (source.ss_family != target.ss_family) {
      std::fprintf(stderr, "im-connload: --source-addresses: '%s' is not of the --host family\n",
                   text.c_str());
      return 2;
    }
    sources.push_back(source);
  }
  if (!im::tools::RaiseFileLimit(options.connections)) return 2;
  // A write to a connection the gateway reset must be an error code, not a fatal signal.
  std::signal(SIGPIPE, SIG_IGN);

  im::tools::LoadRun run(std::move(options), target, std::move(sources));
  return run.Run();
}
