#include "bench/echo_peer.h"

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_options.h"
#include "common/frame_codec.h"
#include "common/token.h"

namespace im::bench {
namespace {

using im::v1::Frame;

constexpr size_t kReadBufferBytes = 256 * 1024;

class EchoPeer;

// One client connection of the echo peer; owned by EchoPeer, freed in its close callback.
struct PeerConn {
  uv_tcp_t tcp;
  EchoPeer* peer;
  std::string uid;
  std::string out;
  std::string writing;
  uv_write_t write_req;
  bool busy = false;
  bool dirty = false;
  bool closing = false;
  im::common::FrameDecoder decoder;
};

class EchoPeer {
 public:
  EchoPeer(std::string secret, EchoPeerFaults faults)
      : verifier_(std::move(secret)), faults_(faults) {}

  int Run(const sockaddr_in& addr) {
    uv_loop_init(&loop_);
    uv_tcp_init(&loop_, &server_);
    server_.data = this;
    int rc = uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 4096, &OnAccept);
    if (rc != 0) {
      std::fprintf(stderr, "im-bench echo-peer: cannot listen: %s\n", uv_strerror(rc));
      uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
      return 2;
    }
    sockaddr_in bound{};
    int len = sizeof(bound);
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
    std::printf("im-bench echo-peer ready port=%d\n", ntohs(bound.sin_port));
    std::fflush(stdout);
    uv_prepare_init(&loop_, &flush_);
    flush_.data = this;
    uv_prepare_start(&flush_, [](uv_prepare_t* p) { static_cast<EchoPeer*>(p->data)->Flush(); });
    for (int i = 0; i < 2; ++i) {
      uv_signal_init(&loop_, &signals_[i]);
      signals_[i].data = this;
      uv_signal_start(
          &signals_[i], [](uv_signal_t* s, int) { static_cast<EchoPeer*>(s->data)->Stop(); },
          i == 0 ? SIGTERM : SIGINT);
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    return uv_loop_close(&loop_) == 0 ? 0 : 2;
  }

 private:
  static void OnAccept(uv_stream_t* server, int status) {
    auto* self = static_cast<EchoPeer*>(server->data);
    if (status != 0) return;
    auto* c = new PeerConn{};
    c->peer = self;
    uv_tcp_init(&self->loop_, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return self->Close(c);
    uv_tcp_nodelay(&c->tcp, 1);
    self->conns_.push_back(c);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* peer = static_cast<PeerConn*>(h->data)->peer;
          *buf = uv_buf_init(peer->read_buffer_, kReadBufferBytes);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* conn = static_cast<PeerConn*>(s->data);
          if (n < 0) return conn->peer->Close(conn);
          if (n > 0) conn->peer->OnBytes(conn, std::string_view(buf->base, static_cast<size_t>(n)));
        });
  }

  void OnBytes(PeerConn* c, std::string_view bytes) {
    const auto error = c->decoder.Feed(bytes, [&](Frame&& f) {
      OnFrame(c, f);
      return !c->closing;
    });
    if (error != im::common::DecodeError::kNone) Close(c);
  }

  void Queue(PeerConn* c, const Frame& f) {
    im::common::AppendFrame(f, &c->out);
    if (!c->dirty) {
      c->dirty = true;
      dirty_.push_back(c);
    }
  }

  void OnFrame(PeerConn* c, const Frame& in) {
    Frame out;
    out.set_id(in.id());
    switch (in.body_case()) {
      case Frame::kLoginReq: {
        const im::common::TokenVerdict verdict =
            verifier_.Verify(in.login_req().token(), in.login_req().device(), std::time(nullptr));
        out.mutable_login_resp()->mutable_status()->set_code(verdict.code);
        if (verdict.ok()) {
          c->uid = verdict.claims.uid;
          online_[c->uid] = c;
          out.mutable_login_resp()->set_uid(c->uid);
          out.mutable_login_resp()->set_heartbeat_sec(30);
        }
        break;
      }
      case Frame::kPing:
        out.mutable_pong();
        break;
      case Frame::kSendReq: {
        const im::v1::SendReq& req = in.send_req();
        if (c->uid.empty() || req.to_uid().empty()) {
          out.mutable_send_resp()->mutable_status()->set_code(im::v1::UNIMPLEMENTED);
          break;
        }
        const std::string conv = c->uid < req.to_uid()
                                     ? absl::StrCat("s:", c->uid, ":", req.to_uid())
                                     : absl::StrCat("s:", req.to_uid(), ":", c->uid);
        const uint64_t seq = ++seqs_[conv];
        im::v1::SendResp* resp = out.mutable_send_resp();
        resp->set_conv_id(conv);
        resp->set_seq(seq);
        resp->set_msg_id(seq);
        resp->set_client_msg_id(req.client_msg_id());
        auto it = online_.find(req.to_uid());
        if (it != online_.end()) {
          Frame push;
          im::v1::Message* m = push.mutable_message_push()->add_messages();
          m->set_conv_id(conv);
          m->set_seq(seq);
          m->set_msg_id(seq);
          m->set_sender(c->uid);
          m->set_client_msg_id(req.client_msg_id());
          m->set_type(req.type());
          m->set_body(req.body());
          ++pushes_;
          if (faults_.drop_every == 0 || pushes_ % faults_.drop_every != 0) Queue(it->second, push);
          if (faults_.duplicate_every != 0 && pushes_ % faults_.duplicate_every == 0) {
            Queue(it->second, push);
          }
        }
        break;
      }
      case Frame::kSyncReq:  // it keeps no messages: what a dropped push lost stays lost
        out.mutable_sync_resp()->mutable_status()->set_code(im::v1::OK);
        break;
      default:
        out.mutable_error()->set_code(im::v1::UNIMPLEMENTED);
    }
    Queue(c, out);
  }

  void Flush() {
    std::vector<PeerConn*> dirty;
    dirty.swap(dirty_);
    for (PeerConn* c : dirty) {
      c->dirty = false;
      if (c->closing || c->busy || c->out.empty()) continue;
      c->writing.swap(c->out);
      c->out.clear();
      c->busy = true;
      c->write_req.data = c;
      uv_buf_t buf = uv_buf_init(c->writing.data(), static_cast<unsigned>(c->writing.size()));
      uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
               [](uv_write_t* req, int status) {
                 auto* conn = static_cast<PeerConn*>(req->data);
                 conn->busy = false;
                 if (conn->closing) return;
                 if (status != 0) return conn->peer->Close(conn);
                 if (!conn->out.empty() && !conn->dirty) {
                   conn->dirty = true;
                   conn->peer->dirty_.push_back(conn);
                 }
               });
    }
  }

  void Close(PeerConn* c) {
    if (c->closing) return;
    c->closing = true;
    auto it = online_.find(c->uid);
    if (it != online_.end() && it->second == c) online_.erase(it);
    std::erase(conns_, c);
    std::erase(dirty_, c);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<PeerConn*>(h->data); });
  }

  void Stop() {
    std::vector<PeerConn*> conns = conns_;
    for (PeerConn* c : conns) Close(c);
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_), nullptr);
    for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  }

  im::common::TokenVerifier verifier_;
  const EchoPeerFaults faults_;
  uint64_t pushes_ = 0;
  uv_loop_t loop_{};
  uv_tcp_t server_{};
  uv_prepare_t flush_{};
  uv_signal_t signals_[2]{};
  std::vector<PeerConn*> conns_;
  std::vector<PeerConn*> dirty_;
  std::unordered_map<std::string, PeerConn*> online_;
  std::unordered_map<std::string, uint64_t> seqs_;
  char read_buffer_[kReadBufferBytes];
};

}  // namespace

int RunEchoPeer(const std::string& listen, const std::string& secret, EchoPeerFaults faults) {
  absl::StatusOr<sockaddr_in> addr = ParseIpv4Endpoint(listen);
  if (!addr.ok()) {
    // Port 0 is allowed here: the peer reports what it bound.
    const size_t colon = listen.rfind(':');
    if (colon != std::string::npos && listen.substr(colon + 1) == "0") {
      addr = ParseIpv4Endpoint(listen.substr(0, colon) + ":1");
      if (addr.ok()) addr->sin_port = 0;
    }
  }
  if (!addr.ok()) {
    std::fprintf(stderr, "im-bench echo-peer: --listen: %s\n", addr.status().ToString().c_str());
    return 2;
  }
  auto peer = std::make_unique<EchoPeer>(secret, faults);
  return peer->Run(*addr);
}

}  // namespace im::bench
