#include "bench/websocket_framing.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace im::bench {
namespace {

using Codec = common::WebSocketClientCodec;

// RFC 6455 section 5.2.
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xa;
// A close frame without a code (RFC 6455 section 7.4.1: "no status code was present").
constexpr uint16_t kNoCloseCode = 1005;
// An HTTP answer this long without its end is not the gateway's.
constexpr size_t kMaxAnswerBytes = 16 * 1024;

uint16_t CloseCodeOf(std::string_view payload) {
  if (payload.size() < 2) return kNoCloseCode;
  return static_cast<uint16_t>(static_cast<uint8_t>(payload[0]) << 8 |
                               static_cast<uint8_t>(payload[1]));
}

}  // namespace

std::string WebSocketFraming::UpgradeRequest(const std::string& host) {
  Codec::UpgradeRequest request;  // subprotocol im.v1, no Origin: not a browser
  request.host = host;
  return Codec::Request(request);
}

void WebSocketFraming::AppendFrame(const im::v1::Frame& frame, std::string* out) {
  out->append(Codec::Frame(kBinary, frame.SerializeAsString()));
}

std::string WebSocketFraming::Feed(std::string_view bytes, const Events& events, std::string* out) {
  if (stopped_) return {};
  if (!upgraded_) return FeedAnswer(bytes, events, out);
  return FeedMessages(bytes, events, out);
}

std::string WebSocketFraming::FeedAnswer(std::string_view bytes, const Events& events,
                                         std::string* out) {
  answer_.append(bytes);
  const Codec::UpgradeAnswer answer = Codec::ReadUpgradeAnswer(answer_);
  switch (answer.kind) {
    case Codec::UpgradeAnswer::Kind::kIncomplete:
      return answer_.size() > kMaxAnswerBytes ? "ws_bad_answer" : "";
    case Codec::UpgradeAnswer::Kind::kRefused:
      stopped_ = true;
      return "ws_refused";
    case Codec::UpgradeAnswer::Kind::kAccepted:
      break;
  }
  upgraded_ = true;
  // Frames the server sent right behind its answer came in the same read.
  const std::string frames = answer_.substr(answer.length);
  answer_ = std::string();
  if (!events.upgraded()) {
    stopped_ = true;
    return {};
  }
  return frames.empty() ? std::string() : FeedMessages(frames, events, out);
}

std::string WebSocketFraming::FeedMessages(std::string_view bytes, const Events& events,
                                           std::string* out) {
  std::string reason;
  // The codec reads every whole message of `bytes` before it returns: once the connection is
  // to close, the rest are dropped here.
  const bool valid = codec_.Feed(bytes, [&](Codec::Message message) {
    if (stopped_) return;
    reason = OnMessage(std::move(message), events, out);
    if (!reason.empty()) stopped_ = true;
  });
  if (!valid && !stopped_) {
    stopped_ = true;
    return "ws_bad_frame_from_server";
  }
  return reason;
}

std::string WebSocketFraming::OnMessage(Codec::Message message, const Events& events,
                                        std::string* out) {
  switch (message.opcode) {
    case kBinary: {
      if (message.payload.size() > max_message_bytes_) return "ws_message_too_big";
      im::v1::Frame frame;
      if (!frame.ParseFromString(message.payload)) return "bad_frame_from_server";
      if (!events.frame(std::move(frame))) stopped_ = true;
      return {};
    }
    case kClose:
      return absl::StrCat("ws_close_", CloseCodeOf(message.payload));
    case kPing:
      out->append(Codec::Frame(kPong, message.payload));
      return {};
    case kPong:
      return {};
    default:  // text: the gateway sends frames in binary messages only
      return "ws_unexpected_message";
  }
}

}  // namespace im::bench
