#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/tls/tls_context.h"
#include "store/redis_options.h"

namespace im::store {

// TLS to Redis for a hiredis that has none: Debian 12's hiredis 0.14 speaks only plain TCP or a
// Unix socket (hiredis_ssl came with 1.0). The bridge listens on a Unix socket in a directory of
// its own (mode 0700, so only this user reaches it) and carries each connection made there to
// Redis over TLS (common/tls: TLS 1.3, or 1.2 with forward-secret AEAD suites; the server's
// certificate checked against the CA file or the system roots, and its name). One libuv loop on a
// thread of its own runs every connection; the clear bytes go no further than the process's own
// socket pair. A connection Redis refuses, or whose certificate fails, is ended on the hiredis
// side at once (a FIN, which hiredis reads as the server closing), and last_error() says why for
// the caller's message.
class RedisTlsBridge {
 public:
  struct Options {
    std::string host;  // Redis's TLS address: connected to, and the name checked
    int port = 0;
    tls::ClientTlsOptions tls;
    // From the accept of hiredis's connection until the handshake with Redis is done.
    std::chrono::milliseconds connect_timeout{1000};
  };

  // One bridge per Redis address and TLS settings in the process: every Redis client of the
  // process (the pooled connections, each loop's asynchronous client) shares it while any holds
  // it. Fails when the TLS settings cannot be loaded (a missing CA file) or the socket cannot be
  // made.
  static absl::StatusOr<std::shared_ptr<RedisTlsBridge>> Shared(const Options& options);

  ~RedisTlsBridge();
  RedisTlsBridge(const RedisTlsBridge&) = delete;
  RedisTlsBridge& operator=(const RedisTlsBridge&) = delete;

  // Where hiredis connects (redisConnectUnix, redisAsyncConnectUnix).
  const std::string& socket_path() const { return socket_path_; }
  // Why the last connection to Redis failed ("redis TLS 10.0.0.7:6380: certificate verify
  // failed: ..."), or "" when none has failed since the last one that succeeded.
  std::string last_error() const;

 private:
  struct Link;

  RedisTlsBridge(Options options, std::shared_ptr<tls::ClientContext> context);
  absl::Status Start();
  void Run();
  void Stop();

  static void OnAccept(uv_stream_t* server, int status);
  static void OnStopRequested(uv_async_t* async);
  void Accept();
  void ConnectToRedis(Link* link);
  static void OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result);
  static void OnConnected(uv_connect_t* request, int status);
  static void OnTimeout(uv_timer_t* timer);
  // hiredis's bytes, to be encrypted towards Redis.
  static void OnPlainRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  // Redis's bytes, to be decrypted towards hiredis.
  static void OnTlsRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void SendToRedis(Link* link);
  void SendToClient(Link* link, std::string_view plain);
  void Write(Link* link, bool towards_redis, std::string data);
  static void OnWritten(uv_write_t* request, int status);
  void WriteFailed(Link* link, bool towards_redis, int status);
  // Each side is read only while the other has at most kMaxQueuedBytes waiting to be sent: a side
  // that does not read (a stalled Redis, a hiredis that stopped reading) holds its peer back, as
  // TCP would, instead of the bridge buffering without bound.
  void PaceReading(Link* link);
  // Records `why` as the last error and ends `link`: Redis's side at once, hiredis's side by
  // SayGoodbye.
  void Fail(Link* link, const std::string& why);
  void SayGoodbye(Link* link);
  void Close(Link* link);
  void NoteSuccess();

  const Options options_;
  const std::shared_ptr<tls::ClientContext> context_;
  std::string directory_;
  std::string socket_path_;
  uv_loop_t loop_{};
  uv_pipe_t listener_{};
  uv_async_t stop_{};
  std::thread thread_;
  std::set<Link*> links_;  // the loop's thread only
  mutable std::mutex error_mutex_;
  std::string last_error_;  // guarded by error_mutex_
};

// The bridge a client with `options` connects through: null when options.tls is off.
absl::StatusOr<std::shared_ptr<RedisTlsBridge>> RedisTlsBridgeFor(const RedisOptions& options);

// hiredis's `detail` of a failed connection through `bridge` (null or an error: none), with why
// the bridge's last connection to Redis failed when one did: hiredis saw only its socket closed.
std::string WithBridgeError(std::string detail,
                            const absl::StatusOr<std::shared_ptr<RedisTlsBridge>>& bridge);

}  // namespace im::store
