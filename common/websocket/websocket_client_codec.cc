#include "common/websocket/websocket_client_codec.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <utility>

#include "common/websocket/wslay_frame_writer.h"
#include "fmt/format.h"

namespace im::common {

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
  return WriteFrame(
      {.opcode = opcode, .payload = payload, .fin = fin, .masked = masked, .rsv = rsv});
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
