#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "common/websocket/websocket_client_codec.h"
#include "im/v1/client.pb.h"

namespace im::bench {

// The WebSocket layer of one im-bench connection (RFC 6455, subprotocol im.v1), between the byte
// stream (TCP, or TLS for wss) and the frames: the upgrade request and the server's answer, then
// one im.v1.Frame per binary message each way, masked as a client's must be. No I/O: the
// connection writes what this produces and feeds it what it reads. One per connection (a new one
// per socket); used on the connection's loop thread only.
class WebSocketFraming {
 public:
  // What the server's bytes lead to. Each callback returns false when the connection was closed
  // inside it: nothing more is handed on then.
  struct Events {
    absl::FunctionRef<bool()> upgraded;  // the answer accepted the upgrade: frames may flow
    absl::FunctionRef<bool(im::v1::Frame&&)> frame;
  };

  // A binary message larger than `max_message_bytes` ends the connection, as an oversized
  // length prefix does on tcp.
  explicit WebSocketFraming(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // The upgrade request, the first bytes to send; `host` is the Host header ("127.0.0.1:7080").
  static std::string UpgradeRequest(const std::string& host);
  // Appends `frame` as one masked binary message.
  static void AppendFrame(const im::v1::Frame& frame, std::string* out);

  // Bytes from the server, in order: the HTTP answer to the upgrade, then WebSocket frames. Pongs
  // answering the server's pings are appended to `out`. Returns why the connection must close
  // ("ws_refused", "ws_close_<code>", ...), empty while it stays open or when a callback closed
  // it.
  std::string Feed(std::string_view bytes, const Events& events, std::string* out);

  bool upgraded() const { return upgraded_; }

 private:
  std::string FeedAnswer(std::string_view bytes, const Events& events, std::string* out);
  std::string FeedMessages(std::string_view bytes, const Events& events, std::string* out);
  // Acts on one whole message; returns the reason to close, if any.
  std::string OnMessage(common::WebSocketClientCodec::Message message, const Events& events,
                        std::string* out);

  size_t max_message_bytes_;
  bool upgraded_ = false;
  bool stopped_ = false;  // a callback closed the connection, or a message ended it
  std::string answer_;    // the HTTP answer while it is incomplete
  common::WebSocketClientCodec codec_;
};

}  // namespace im::bench
