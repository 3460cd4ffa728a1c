#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "gateway/websocket/websocket_handshake.h"

struct wslay_frame_context;

namespace im::gateway {

// Close codes (RFC 6455 section 7.4.1) the gateway sends.
inline constexpr uint16_t kWsNormal = 1000;
inline constexpr uint16_t kWsGoingAway = 1001;  // the gateway drains
inline constexpr uint16_t kWsProtocolError = 1002;
inline constexpr uint16_t kWsUnsupportedData = 1003;  // text: frames travel in binary messages
inline constexpr uint16_t kWsInvalidPayload = 1007;   // a binary message that is not a Frame
inline constexpr uint16_t kWsPolicyViolation = 1008;  // unauthenticated, limited, timed out
inline constexpr uint16_t kWsMessageTooBig = 1009;

// One WebSocket connection's protocol, server side, over any byte stream: the opening
// handshake (WebSocketHandshake), then frames read with wslay (RFC 6455: masks, lengths,
// opcodes, control frames) and put together into whole binary messages, each handed on as one
// im.v1.Frame's bytes. Answers pings, counts pings and pongs as life, answers a close, and makes
// the frames the gateway sends. Pure: no I/O, no clock. Used on the connection's loop only.
// While the stream rests between frames it holds no buffer: wslay's context (4 KiB of read
// buffer) exists only while a frame is partly read.
class WebSocketSession {
 public:
  struct Options {
    WebSocketHandshake::Options handshake;
    uint32_t max_message_bytes = 64 * 1024;  // a whole message, over all its fragments
  };

  // What the session asks of its connection while it reads. It holds references: build it in the
  // Feed call, or from named callables that outlive it.
  struct Events {
    absl::FunctionRef<void(std::string bytes)> write;  // to the peer as they are
    // A whole binary message; returns false when reading must stop (the connection closes).
    absl::FunctionRef<bool(std::string_view message)> message;
    absl::FunctionRef<void()> alive;  // a ping or a pong from the peer
  };

  // Why the connection must close. After the handshake the session has answered already: the
  // handshake with an HTTP error; a frame error is answered by CloseFrame(code) from the caller.
  struct Failure {
    bool in_handshake = false;
    uint16_t close_code = kWsProtocolError;
    std::string reason;
  };

  // Keeps a reference to `options` (every connection of a port shares one): it must outlive this.
  explicit WebSocketSession(const Options& options);
  explicit WebSocketSession(Options&&) = delete;
  ~WebSocketSession();
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;

  // Reads `bytes`; returns the failure that ends the connection, if any. Not fed after one.
  std::optional<Failure> Feed(std::string_view bytes, const Events& events);

  bool open() const { return phase_ == Phase::kOpen; }
  // Whether the peer began the closing handshake (and was answered).
  bool closed_by_peer() const { return phase_ == Phase::kClosed && close_answered_; }

  // The header of an unfragmented binary message carrying `payload`, sent unmasked: the payload
  // follows as it is, so a push serialized once goes to every connection without a copy.
  static std::string BinaryHeader(std::string_view payload);
  // A whole binary message.
  static std::string BinaryMessage(std::string_view payload);
  // A close frame with `code` and `reason` (cut to the 123 bytes a control frame allows).
  static std::string CloseFrame(uint16_t code, std::string_view reason);
  // The gateway closes: the close frame to send while open, then "" (one close per connection).
  std::string Close(uint16_t code, std::string_view reason);

 private:
  enum class Phase : uint8_t { kHandshake, kOpen, kClosed };
  std::optional<Failure> FeedHandshake(std::string_view bytes, const Events& events);
  std::optional<Failure> FeedFrames(std::string_view bytes, const Events& events);
  // Checks a frame's header, on its first chunk.
  std::optional<Failure> StartFrame(uint8_t opcode, uint8_t rsv, bool masked, bool fin,
                                    uint64_t payload_length);
  // Acts on a whole control frame.
  std::optional<Failure> EndControlFrame(const Events& events);
  void ReleaseReader();

  const Options& options_;
  Phase phase_ = Phase::kHandshake;
  bool close_answered_ = false;
  std::unique_ptr<WebSocketHandshake> handshake_;
  wslay_frame_context* reader_ = nullptr;
  std::string_view unread_;  // what wslay may still pull during one Feed
  // The frame being read.
  uint8_t frame_opcode_ = 0;
  bool frame_fin_ = false;
  bool in_frame_ = false;
  uint64_t frame_length_ = 0;
  uint64_t frame_read_ = 0;
  // Bytes handed to wslay and bytes of whole frames it returned: equal between frames.
  uint64_t bytes_fed_ = 0;
  uint64_t bytes_framed_ = 0;
  // The message being put together (binary, fragmented or split over reads).
  bool in_message_ = false;
  std::string message_;
  std::string control_;  // the control frame being read (125 bytes at most)
};

}  // namespace im::gateway
