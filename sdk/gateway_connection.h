#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/frame_codec.h"
#include "common/tls/tls_context.h"
#include "im/v1/client.pb.h"

namespace im::sdk {

// One TCP connection from the SDK to a gateway, on the client's loop: resolves "host:port",
// connects, writes frames, decodes what arrives; with a TLS context, all of it inside TLS, and
// OnConnected once the handshake has checked the gateway's certificate. Loop thread only.
// The handle and in-flight requests live in a block that outlives this object until libuv has
// closed them; destroying the connection therefore never runs a callback into a dead owner.
class GatewayConnection {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnConnected() = 0;
    virtual void OnFrame(im::v1::Frame&& frame) = 0;
    // The connection failed or ended (refused, reset, closed by the gateway, undecodable bytes).
    // Called at most once, never after the connection was destroyed; the owner then destroys it.
    virtual void OnDisconnected(const std::string& reason) = 0;
  };

  // `tls` (may be null: plain TCP) must outlive the connection's socket: the owner keeps it.
  GatewayConnection(uv_loop_t* loop, std::string address, uint32_t max_frame_bytes,
                    Listener* listener, std::shared_ptr<tls::ClientContext> tls = nullptr);
  ~GatewayConnection();
  GatewayConnection(const GatewayConnection&) = delete;
  GatewayConnection& operator=(const GatewayConnection&) = delete;

  const std::string& address() const { return address_; }
  // Queues a frame (only after OnConnected).
  void Send(const im::v1::Frame& frame);
  // Non-empty when the connection could not even start (the resolver refused the address); no
  // callback follows then.
  const std::string& failed_at_start() const { return failed_at_start_; }

 private:
  struct Socket;

  std::string address_;
  std::string failed_at_start_;
  Socket* socket_;  // freed by libuv's close callback
};

}  // namespace im::sdk
