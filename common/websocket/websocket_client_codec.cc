#include "common/websocket/websocket_client_codec.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <random>
#include <utility>

#include "fmt/format.h"

namespace im::common {

namespace {

// wslay's frame writer, one per thread (a context holds 4 KiB of buffers: not one per frame).
// Its callback takes every byte, so each send completes and the context is ready for the next.
// Masked and unmasked frames (the latter broken on purpose, in tests) need writers of their own:
// a context that masked once goes on masking.
class FrameWriter {
 public:
  static FrameWriter& ForThisThread(bool masked) {
    thread_local FrameWriter masking;
    thread_local FrameWriter plain;
    return masked ? masking : plain;
  }
  std::string Write(wslay_frame_iocb& iocb) {
    std::string out;
    out_ = &out;
    wslay_frame_send(context_, &iocb);
    out_ = nullptr;
    return out;
  }
  ~FrameWriter() { wslay_frame_context_free(context_); }
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

 private:
  FrameWriter() {
    static constexpr wslay_frame_callbacks kCallbacks{&FrameWriter::Append, nullptr,
                                                      &FrameWriter::RandomMask};
    wslay_frame_context_init(&context_, &kCallbacks, this);
  }
  static ssize_t Append(const uint8_t* data, size_t length, int, void* user) {
    static_cast<FrameWriter*>(user)->out_->append(reinterpret_cast<const char*>(data), length);
    return static_cast<ssize_t>(length);
  }
  static int RandomMask(uint8_t* buf, size_t length, void* user) {
    std::mt19937& random = static_cast<FrameWriter*>(user)->random_;
    for (size_t i = 0; i < length; ++i) buf[i] = static_cast<uint8_t>(random());
    return 0;
  }

  wslay_frame_context* context_ = nullptr;
  std::string* out_ = nullptr;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace

WebSocketClientCodec::WebSocketClientCodec() {
  static constexpr wslay_frame_callbacks kCallbacks{
      nullptr,
      [](uint8_t* buf, size_t length, int, void* user) -> ssize_t {
        auto* self = static_cast<WebSocketClientCodec*>(user);
        const size_t n = std::min(length, self->unread_.size());
        std::copy_n(self->unread_.data(), n, buf);
        self->unread_.remove_prefix(n);
        return n > 0 ? static_cast<ssize_t>(n) : -1;
      },
      nullptr};
  wslay_frame_context_init(&reader_, &kCallbacks, this);
}

WebSocketClientCodec::~WebSocketClientCodec() { wslay_frame_context_free(reader_); }

std::string WebSocketClientCodec::Request(const UpgradeRequest& request) {
  std::string text = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: {}\r\n",
      request.path, request.host, request.key, request.version);
  if (!request.origin.empty()) text += fmt::format("Origin: {}\r\n", request.origin);
  if (!request.protocol.empty()) {
    text += fmt::format("Sec-WebSocket-Protocol: {}\r\n", request.protocol);
  }
  return text + "\r\n";
}

WebSocketClientCodec::UpgradeAnswer WebSocketClientCodec::ReadUpgradeAnswer(
    std::string_view received) {
  const size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) return {};
  const bool switching = received.substr(0, 13) == "HTTP/1.1 101 ";
  return {switching ? UpgradeAnswer::Kind::kAccepted : UpgradeAnswer::Kind::kRefused, end + 4};
}

std::string WebSocketClientCodec::Frame(uint8_t opcode, std::string_view payload, bool fin,
                                        bool masked, uint8_t rsv) {
  wslay_frame_iocb iocb{};
  iocb.fin = fin ? 1 : 0;
  iocb.rsv = rsv;
  iocb.opcode = opcode;
  iocb.mask = masked ? 1 : 0;
  iocb.payload_length = payload.size();
  iocb.data = reinterpret_cast<const uint8_t*>(payload.data());
  iocb.data_length = payload.size();
  return FrameWriter::ForThisThread(masked).Write(iocb);
}

bool WebSocketClientCodec::Feed(std::string_view bytes, const std::function<void(Message)>& sink) {
  unread_ = bytes;
  while (true) {
    wslay_frame_iocb iocb{};
    const ssize_t n = wslay_frame_recv(reader_, &iocb);
    if (n == WSLAY_ERR_WANT_READ) return true;
    if (n < 0 || iocb.mask != 0) return false;  // a server never masks
    if (!in_frame_) {
      in_frame_ = true;
      frame_opcode_ = iocb.opcode;
      frame_fin_ = iocb.fin != 0;
      frame_payload_.clear();
    }
    frame_payload_.append(reinterpret_cast<const char*>(iocb.data), iocb.data_length);
    if (frame_payload_.size() < iocb.payload_length) continue;
    in_frame_ = false;
    if (wslay_is_ctrl_frame(frame_opcode_)) {
      sink(Message{frame_opcode_, std::move(frame_payload_)});
      continue;
    }
    if (frame_opcode_ != WSLAY_CONTINUATION_FRAME) partial_.opcode = frame_opcode_;
    partial_.payload.append(frame_payload_);
    if (frame_fin_) sink(std::exchange(partial_, Message{}));
  }
}

}  // namespace im::common
