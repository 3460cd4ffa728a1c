#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

struct wslay_frame_context;

namespace im::common {

// The client's side of RFC 6455 with wslay, for im-bench and the tests: the upgrade request and
// its answer, masked frames (whole, fragments, or broken on purpose in tests) and the server's
// frames read back into messages.
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
  // The server's answer to the upgrade request, from the first bytes received.
  struct UpgradeAnswer {
    enum class Kind { kIncomplete, kAccepted, kRefused } kind = Kind::kIncomplete;
    size_t length = 0;  // of the HTTP answer; the bytes after it are frames (kAccepted)
  };
  static UpgradeAnswer ReadUpgradeAnswer(std::string_view received);
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

}  // namespace im::common
