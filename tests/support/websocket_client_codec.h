#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

struct wslay_frame_context;

namespace im::testing {

// The client's side of RFC 6455 for tests, with wslay: the upgrade request, masked frames (whole,
// fragments, or broken on purpose) and the server's frames read back into messages.
class WebSocketClientCodec {
 public:
  struct Message {
    uint8_t opcode = 0;  // 0x2 binary, 0x8 close, 0x9 ping, 0xa pong (RFC 6455 section 5.2)
    std::string payload;
  };
  struct UpgradeRequest {
    std::string host = "127.0.0.1";
    std::string path = "/";
    std::string origin;                            // empty: no Origin header (not a browser)
    std::string protocol = "im.v1";                // Sec-WebSocket-Protocol; empty: none
    std::string key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455's sample nonce
    std::string version = "13";
  };

  WebSocketClientCodec();
  ~WebSocketClientCodec();
  WebSocketClientCodec(const WebSocketClientCodec&) = delete;
  WebSocketClientCodec& operator=(const WebSocketClientCodec&) = delete;

  static std::string Request(const UpgradeRequest& request);
  // A masked frame as a browser sends it; `masked` false and `rsv` set break the RFC on purpose.
  static std::string Frame(uint8_t opcode, std::string_view payload, bool fin = true,
                           bool masked = true, uint8_t rsv = 0);

  // Reads the server's frames; each whole message (data messages put together from their
  // fragments) goes to `sink`. Returns false on a frame that breaks the RFC.
  bool Feed(std::string_view bytes, const std::function<void(Message)>& sink);

 private:
  wslay_frame_context* reader_ = nullptr;
  std::string_view unread_;
  Message partial_;
  bool in_frame_ = false;
  uint8_t frame_opcode_ = 0;
  bool frame_fin_ = false;
  std::string frame_payload_;
};

}  // namespace im::testing
