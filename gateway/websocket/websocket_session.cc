#include "gateway/websocket/websocket_session.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <utility>

#include "common/websocket/wslay_frame_writer.h"
#include "fmt/format.h"

namespace im::gateway {

namespace {

constexpr size_t kMaxCloseReasonBytes = 123;  // 125 of a control frame, less the code

// Header bytes of a client frame (always masked) with `payload_length`: wslay accepts only the
// shortest length encoding, so this is exact.
uint64_t MaskedHeaderBytes(uint64_t payload_length) {
  uint64_t extended = 8;
  if (payload_length < 126) {
    extended = 0;
  } else if (payload_length < (1u << 16)) {
    extended = 2;
  }
  return 2 + extended + 4;
}

// Whether a peer may send `code` in a close frame (RFC 6455 section 7.4).
bool IsSendableCloseCode(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

WebSocketSession::Failure FrameFailure(uint16_t code, std::string reason) {
  return WebSocketSession::Failure{false, code, std::move(reason)};
}

}  // namespace

WebSocketSession::WebSocketSession(const Options& options)
    : options_(options), handshake_(std::make_unique<WebSocketHandshake>(options.handshake)) {}

WebSocketSession::~WebSocketSession() { ReleaseReader(); }

std::string WebSocketSession::BinaryHeader(std::string_view payload) {
  return common::WriteFrame(
      {.opcode = WSLAY_BINARY_FRAME, .payload = payload, .with_payload = false});
}

std::string WebSocketSession::BinaryMessage(std::string_view payload) {
  return common::WriteFrame({.opcode = WSLAY_BINARY_FRAME, .payload = payload});
}

std::string WebSocketSession::CloseFrame(uint16_t code, std::string_view reason) {
  std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  payload.append(reason.substr(0, kMaxCloseReasonBytes));
  return common::WriteFrame({.opcode = WSLAY_CONNECTION_CLOSE, .payload = payload});
}

std::string WebSocketSession::Close(uint16_t code, std::string_view reason) {
  if (phase_ != Phase::kOpen) return "";
  phase_ = Phase::kClosed;
  ReleaseReader();
  return CloseFrame(code, reason);
}

std::optional<WebSocketSession::Failure> WebSocketSession::Feed(std::string_view bytes,
                                                                const Events& events) {
  switch (phase_) {
    case Phase::kHandshake:
      return FeedHandshake(bytes, events);
    case Phase::kOpen:
      return FeedFrames(bytes, events);
    case Phase::kClosed:
      break;
  }
  return std::nullopt;
}

std::optional<WebSocketSession::Failure> WebSocketSession::FeedHandshake(std::string_view bytes,
                                                                         const Events& events) {
  WebSocketHandshake::Result result = handshake_->Feed(bytes);
  switch (result.progress) {
    case WebSocketHandshake::Progress::kNeedMore:
      return std::nullopt;
    case WebSocketHandshake::Progress::kRefused:
      events.write(std::move(result.answer));
      handshake_.reset();
      phase_ = Phase::kClosed;
      return Failure{true, 0, std::move(result.refusal)};
    case WebSocketHandshake::Progress::kAccepted:
      break;
  }
  events.write(std::move(result.answer));
  handshake_.reset();  // its parser's memory goes; `rest` points into `bytes`
  phase_ = Phase::kOpen;
  if (result.rest.empty()) return std::nullopt;
  return FeedFrames(result.rest, events);
}

std::optional<WebSocketSession::Failure> WebSocketSession::FeedFrames(std::string_view bytes,
                                                                      const Events& events) {
  if (reader_ == nullptr) {
    static constexpr wslay_frame_callbacks kCallbacks{
        nullptr,
        [](uint8_t* buf, size_t length, int, void* user) -> ssize_t {
          auto* self = static_cast<WebSocketSession*>(user);
          const size_t n = std::min(length, self->unread_.size());
          std::copy_n(self->unread_.data(), n, buf);
          self->unread_.remove_prefix(n);
          self->bytes_fed_ += n;
          return n > 0 ? static_cast<ssize_t>(n) : -1;  // none: wslay wants more (WANT_READ)
        },
        nullptr};
    if (wslay_frame_context_init(&reader_, &kCallbacks, this) != 0) {
      return FrameFailure(kWsProtocolError, "out of memory for the frame reader");
    }
  }
  unread_ = bytes;
  while (true) {
    wslay_frame_iocb iocb{};
    const ssize_t n = wslay_frame_recv(reader_, &iocb);
    if (n == WSLAY_ERR_WANT_READ) break;
    if (n < 0) {
      return FrameFailure(kWsProtocolError,
                          "a malformed frame header (length encoding or control frame)");
    }
    if (!in_frame_) {
      if (auto failure = StartFrame(iocb.opcode, iocb.rsv, iocb.mask != 0, iocb.fin != 0,
                                    iocb.payload_length)) {
        return failure;
      }
    }
    const std::string_view chunk(reinterpret_cast<const char*>(iocb.data), iocb.data_length);
    frame_read_ += chunk.size();
    const bool frame_done = frame_read_ == frame_length_;
    if (frame_done) {
      in_frame_ = false;
      bytes_framed_ += MaskedHeaderBytes(frame_length_) + frame_length_;
    }
    if (wslay_is_ctrl_frame(frame_opcode_)) {
      control_.append(chunk);
      if (!frame_done) continue;
      if (auto failure = EndControlFrame(events)) return failure;
      continue;
    }
    const bool message_done = frame_done && frame_fin_;
    bool go_on = true;
    if (message_done && message_.empty()) {
      in_message_ = false;
      go_on = events.message(chunk);  // the usual case: straight from wslay's buffer
    } else {
      message_.append(chunk);
      if (message_done) {
        in_message_ = false;
        const std::string message = std::exchange(message_, std::string());
        go_on = events.message(message);
      }
    }
    if (!go_on || phase_ != Phase::kOpen) {  // the connection closes (and maybe closed us)
      phase_ = Phase::kClosed;
      ReleaseReader();
      return std::nullopt;
    }
  }
  if (!in_frame_ && bytes_fed_ == bytes_framed_) ReleaseReader();  // resting: hold no buffer
  return std::nullopt;
}

std::optional<WebSocketSession::Failure> WebSocketSession::StartFrame(uint8_t opcode, uint8_t rsv,
                                                                      bool masked, bool fin,
                                                                      uint64_t payload_length) {
  if (!masked) return FrameFailure(kWsProtocolError, "a client frame that is not masked");
  if (rsv != 0) return FrameFailure(kWsProtocolError, "reserved bits set with no extension");
  switch (opcode) {
    case WSLAY_TEXT_FRAME:
      return FrameFailure(kWsUnsupportedData,
                          "a text message: send each im.v1.Frame in a binary message");
    case WSLAY_BINARY_FRAME:
      if (in_message_) {
        return FrameFailure(kWsProtocolError, "a new message before the fragmented one ended");
      }
      in_message_ = true;
      break;
    case WSLAY_CONTINUATION_FRAME:
      if (!in_message_) {
        return FrameFailure(kWsProtocolError, "a continuation frame with no message to continue");
      }
      break;
    case WSLAY_CONNECTION_CLOSE:
    case WSLAY_PING:
    case WSLAY_PONG:
      control_.clear();
      break;
    default:
      return FrameFailure(kWsProtocolError, fmt::format("unknown opcode {:#x}", opcode));
  }
  if (!wslay_is_ctrl_frame(opcode) &&
      message_.size() + payload_length > options_.max_message_bytes) {
    return FrameFailure(kWsMessageTooBig,
                        fmt::format("a message over {} bytes", options_.max_message_bytes));
  }
  in_frame_ = true;
  frame_opcode_ = opcode;
  frame_fin_ = fin;
  frame_length_ = payload_length;
  frame_read_ = 0;
  return std::nullopt;
}

std::optional<WebSocketSession::Failure> WebSocketSession::EndControlFrame(const Events& events) {
  switch (frame_opcode_) {
    case WSLAY_PING:
      events.write(common::WriteFrame({.opcode = WSLAY_PONG, .payload = control_}));
      events.alive();
      return std::nullopt;
    case WSLAY_PONG:
      events.alive();
      return std::nullopt;
    default:
      break;
  }
  // A close: answered with its code (RFC 6455 section 5.5.1), then the connection ends.
  uint16_t code = kWsNormal;
  std::string reason = "no status code";
  if (control_.size() == 1) {
    code = kWsProtocolError;
    reason = "a close frame with a one-byte body";
  } else if (control_.size() >= 2) {
    const uint16_t sent = static_cast<uint16_t>((static_cast<uint8_t>(control_[0]) << 8) |
                                                static_cast<uint8_t>(control_[1]));
    code = IsSendableCloseCode(sent) ? sent : kWsProtocolError;
    reason = fmt::format("code {} \"{}\"", sent, std::string_view(control_).substr(2));
  }
  events.write(CloseFrame(code, ""));
  close_answered_ = true;
  phase_ = Phase::kClosed;
  ReleaseReader();
  return FrameFailure(code, "closed by the client: " + reason);
}

void WebSocketSession::ReleaseReader() {
  if (reader_ != nullptr) wslay_frame_context_free(reader_);
  reader_ = nullptr;
  bytes_fed_ = 0;
  bytes_framed_ = 0;
}

}  // namespace im::gateway
