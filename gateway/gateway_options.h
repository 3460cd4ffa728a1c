#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/deployment.h"
#include "common/grpc_tls.h"

namespace im::gateway {

// Everything an im-gateway process is told at start-up. Defaults serve a local run.
struct GatewayOptions {
  std::string gateway_id = "gw-1";
  std::string listen_address = "0.0.0.0:7000";  // clients (TCP, length-prefixed frames)
  // Clients over TLS (the same frames inside TLS 1.3, or 1.2 with ECDHE and an AEAD suite);
  // empty: no TLS port. The certificate chain and key are PEM files, read again on SIGHUP:
  // connections open then keep the certificate they started with.
  std::string tls_listen_address;
  std::string tls_cert_file;
  std::string tls_key_file;
  // 80 random bytes shared by every gateway, so that a client that moves to another gateway
  // resumes its TLS session there (tls::ServerTlsFiles); empty: per-process keys.
  std::string tls_ticket_key_file;
  // Clients over WebSocket (RFC 6455, subprotocol im.v1, one Frame per binary message): plain, and
  // inside TLS with the certificate above; empty: not offered. Browsers, H5 pages, mini-programs.
  std::string ws_listen_address;
  std::string wss_listen_address;
  // Origins a browser may open a WebSocket from ("https://chat.example.com", lower case); empty:
  // any. Clients sending no Origin (apps, servers) are not checked: tokens, not cookies, log in.
  std::vector<std::string> ws_allowed_origins;
  std::string grpc_address = "127.0.0.1:7200";  // GatewayService, called by logic
  std::string metrics_address = "0.0.0.0:9100";
  std::string logic_target = "127.0.0.1:7100";  // gRPC target; dns:/// names round-robin
  // Where logic reaches our GatewayService; empty: the grpc_address host (127.0.0.1 when it is a
  // wildcard) with the bound port. On Kubernetes, the pod IP.
  std::string advertise_address;
  uint32_t register_ms = 10'000;  // registration with logic renewed this often
  // TLS on LogicService calls and on GatewayService (grpc_tls.*; common/grpc_tls.h), the
  // certificate files read at start-up.
  common::GrpcCredentials grpc_credentials;
  uint32_t workers = 0;  // 0: one loop per core
  uint32_t listen_backlog = 4096;
  // Client connections the open-file limit must leave room for (one descriptor each), once the
  // soft limit is raised to the hard one; below that the gateway refuses to start.
  uint32_t min_connections = 1'000;

  uint32_t max_frame_bytes = 64 * 1024;
  uint32_t max_push_frame_bytes = 4 * 1024 * 1024;
  uint64_t max_write_queue_bytes = 1024 * 1024;  // a client further behind is disconnected
  uint32_t max_in_flight_per_connection = 64;
  uint32_t loop_queue_capacity = 65536;  // posts into one loop beyond this are refused

  uint32_t login_timeout_ms = 10'000;
  uint32_t heartbeat_sec = 30;
  uint32_t idle_heartbeats = 3;       // silent this many heartbeats: closed
  uint32_t close_linger_ms = 2'000;   // a closing connection that does not drain is cut
  uint32_t logic_timeout_ms = 5'000;  // deadline of every call to logic
  // Client requests one worker loop may have waiting for logic; more are refused at once.
  uint32_t logic_stream_max_waiting = 20'000;
  // Controlled delay on the requests waiting to be written to logic (common/queue_wait_policy.h),
  // while logic does not take the stream's writes (its flow control is shut): a request may wait
  // up to the interval; once the queue has stood that long, what waited longer than the target is
  // refused RESOURCE_EXHAUSTED with a retry hint instead of waiting for its deadline. Interval 0:
  // only the deadline.
  uint32_t logic_queue_wait_target_ms = 50;
  uint32_t logic_queue_wait_interval_ms = 500;
  // Logins of this process waiting for logic; past it a login is refused RESOURCE_EXHAUSTED at
  // once (with a retry hint), so that a login storm queues in the clients, not here.
  uint32_t max_logins_in_flight = 2'000;
  // Abuse limits (docs/operations.md, "Abuse limits"); a rate of 0 or a cap of 0 turns one off.
  // Sends (SendReq, recalls and edits too) per connection: past the rate and burst a send is
  // answered RESOURCE_EXHAUSTED with the wait until the next token as its retry hint; a
  // connection refused this many times in a row (more than it can have in flight, so a client
  // that heeds the first refusal never gets there) is closed.
  double send_rate_per_connection = 20;
  uint32_t send_burst_per_connection = 50;
  uint32_t send_refusals_before_close = 200;
  // Per source address (IPv4, or IPv6 /64) and per gateway process. Past the connection cap a new
  // connection gets Error{RESOURCE_EXHAUSTED} and is closed; past a login rate the login is
  // answered RESOURCE_EXHAUSTED with the wait as its retry hint. Generous by default: a carrier's
  // NAT puts many honest users behind one address.
  uint32_t max_connections_per_ip = 2'000;
  double login_rate_per_ip = 50;
  uint32_t login_burst_per_ip = 200;
  double login_rate = 5'000;
  uint32_t login_burst = 10'000;
  // Connections not logged in yet (a slow-loris flood holds them open): past this many a new one
  // is refused as above.
  uint32_t max_unauthenticated_connections = 10'000;
  // Connections from loopback (a benchmark or a proxy on the same host) are exempt from the
  // per-connection and per-address limits unless this is set.
  bool limit_loopback = false;

  uint32_t session_refresh_ms = 30'000;
  uint32_t session_refresh_batch = 1'000;
  uint32_t drain_timeout_ms = 25'000;  // after SIGTERM, how long clients get to leave
  uint32_t goaway_reconnect_ms = 1'000;
  // Each connection's GoAway hint is the base hint plus a random share of this window, so that
  // the clients of a draining gateway move over this long instead of all at once. The window is
  // cut so that hint + window stays within 3/4 of drain_timeout_ms (the last clients must still
  // have time to move before the rest are closed).
  uint32_t goaway_spread_ms = 10'000;

  std::string log_level = "info";
  std::string log_format = "text";

  uint64_t idle_timeout_ms() const { return uint64_t{heartbeat_sec} * 1000 * idle_heartbeats; }

  // Reads every key under "gateway." (and "log.") from `config`; all errors reported at once.
  // The embedded node reads none of the links to logic (grpc_listen, logic_target,
  // advertise_address, register_ms).
  static absl::StatusOr<GatewayOptions> FromConfig(
      common::Config& config, common::Deployment deployment = common::Deployment::kCluster);
};

}  // namespace im::gateway
