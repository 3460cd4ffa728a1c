#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/frame_codec.h"
#include "common/tls/tls_channel.h"
#include "common/websocket/websocket_client_codec.h"
#include "im/v1/client.pb.h"

namespace im::testing {

// A blocking client that speaks the wire protocol like a device, for tests. Each call waits at
// most the timeout it is given. Pushes that arrive while waiting for a response are kept and
// returned by later Receive() calls, in order.
class WireClient {
 public:
  using Millis = std::chrono::milliseconds;

  static absl::StatusOr<std::unique_ptr<WireClient>> Connect(const std::string& host, uint16_t port,
                                                             int receive_buffer_bytes = 0);
  // Connects and completes a TLS handshake with `tls` (checking the certificate against
  // `server_name`, or the pins) within `timeout`; the error says why a handshake failed.
  static absl::StatusOr<std::unique_ptr<WireClient>> ConnectTls(const std::string& host,
                                                                uint16_t port,
                                                                tls::ClientContext& tls,
                                                                const std::string& server_name,
                                                                Millis timeout);
  // Connects (over TLS when `tls` is given) and opens a WebSocket with `request`; frames then
  // travel one per binary message. The error carries the server's HTTP answer when it refused.
  static absl::StatusOr<std::unique_ptr<WireClient>> ConnectWebSocket(
      const std::string& host, uint16_t port,
      const common::WebSocketClientCodec::UpgradeRequest& request, Millis timeout,
      tls::ClientContext* tls = nullptr, const std::string& server_name = "");
  ~WireClient();
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  bool SendFrame(const im::v1::Frame& frame);
  // Bytes as they are (inside TLS when on; on a WebSocket, whole WebSocket frames).
  bool SendRaw(std::string_view bytes);

  // The next frame, or nullopt on timeout or when the server has closed (see closed()). Reads
  // the socket at least once, so a zero timeout returns what has already arrived.
  std::optional<im::v1::Frame> Receive(Millis timeout);
  // The first frame matching `match`; frames that do not match stay queued for Receive().
  std::optional<im::v1::Frame> ReceiveMatching(
      const std::function<bool(const im::v1::Frame&)>& match, Millis timeout);
  // Sends `request` (its id set to a fresh one) and waits for the frame with the same id.
  std::optional<im::v1::Frame> Call(im::v1::Frame request, Millis timeout);
  // LoginReq with `token` on `device`; returns the LoginResp frame.
  std::optional<im::v1::Frame> Login(const std::string& token, const std::string& device,
                                     Millis timeout);

  // Waits until the server closes the connection; frames received meanwhile are queued.
  bool WaitClosed(Millis timeout);
  // What the server sends from now until it closes (or `timeout` passes), undecoded: an HTTP
  // answer, say.
  std::string ReadRawUntilClosed(Millis timeout);
  bool closed() const { return closed_; }
  // The TLS channel of a ConnectTls client (null for plain TCP).
  const tls::TlsChannel* tls() const { return tls_.get(); }
  // Frames received and not yet returned.
  size_t queued() const { return queue_.size(); }
  // WebSocket: the close frame the server sent (code, reason), once one came.
  const std::optional<common::WebSocketClientCodec::Message>& websocket_close() const {
    return websocket_close_;
  }
  // WebSocket: pongs received (answers to SendRaw'd pings).
  int websocket_pongs() const { return websocket_pongs_; }
  // The code of a close frame's payload (0 when it has none).
  static uint16_t CloseCode(const common::WebSocketClientCodec::Message& close);

 private:
  explicit WireClient(int fd) : fd_(fd) {}
  // Reads what is available within `timeout` into the queue; false on timeout without data.
  bool Pump(Millis timeout);
  // Sends what the TLS channel has to send.
  bool SendTlsOutput();
  bool SendToSocket(std::string_view bytes);
  // Hands received bytes to the decoder (through TLS when on).
  void Received(std::string_view bytes);
  // Decodes plaintext: frames, or WebSocket messages carrying them. False once closed.
  bool Decode(std::string_view plaintext);
  void OnWebSocketMessage(common::WebSocketClientCodec::Message message);
  // Reads the HTTP answer to the upgrade request (bytes after it are decoded as frames).
  absl::Status ReadUpgradeAnswer(Millis timeout);

  int fd_;
  bool closed_ = false;
  uint64_t next_id_ = 1;
  common::FrameDecoder decoder_{16 * 1024 * 1024};
  std::deque<im::v1::Frame> queue_;
  std::unique_ptr<tls::TlsChannel> tls_;
  std::unique_ptr<common::WebSocketClientCodec> ws_;  // on a WebSocket
  bool awaiting_upgrade_ = false;
  bool reading_raw_ = false;
  std::string raw_;          // read while reading_raw_
  std::string http_answer_;  // the answer to the upgrade request, while awaited
  std::optional<common::WebSocketClientCodec::Message> websocket_close_;
  int websocket_pongs_ = 0;
};

}  // namespace im::testing
