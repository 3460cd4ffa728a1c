#include "gateway/gateway_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace im::gateway {

absl::StatusOr<GatewayOptions> GatewayOptions::FromConfig(common::Config& config,
                                                          common::Deployment deployment) {
  GatewayOptions o;
  o.gateway_id = config.GetString("gateway.id", o.gateway_id);
  o.listen_address = config.GetString("gateway.listen", o.listen_address);
  o.metrics_address = config.GetString("gateway.metrics_listen", o.metrics_address);
  o.tls_listen_address = config.GetString("gateway.tls_listen", o.tls_listen_address);
  o.tls_cert_file = config.GetString("gateway.tls_cert_file", o.tls_cert_file);
  o.tls_key_file = config.GetString("gateway.tls_key_file", o.tls_key_file);
  o.tls_ticket_key_file = config.GetString("gateway.tls_ticket_key_file", o.tls_ticket_key_file);
  o.ws_listen_address = config.GetString("gateway.ws_listen", o.ws_listen_address);
  o.wss_listen_address = config.GetString("gateway.wss_listen", o.wss_listen_address);
  o.ws_allowed_origins = config.GetStringList("gateway.ws_allowed_origins", o.ws_allowed_origins);
  if (deployment == common::Deployment::kCluster) {
    o.grpc_address = config.GetString("gateway.grpc_listen", o.grpc_address);
    o.logic_target = config.GetString("gateway.logic_target", o.logic_target);
    o.advertise_address = config.GetString("gateway.advertise_address", o.advertise_address);
    o.register_ms = config.GetU32("gateway.register_ms", o.register_ms, 100, 3'600'000);
    absl::StatusOr<common::GrpcTlsOptions> grpc_tls = common::GrpcTlsOptions::FromConfig(config);
    if (!grpc_tls.ok()) return grpc_tls.status();
    absl::StatusOr<common::GrpcCredentials> credentials = common::GrpcCredentials::Load(*grpc_tls);
    if (!credentials.ok()) return credentials.status();
    o.grpc_credentials = std::move(*credentials);
  }
  o.workers = config.GetU32("gateway.workers", o.workers, 0, 255);
  o.listen_backlog = config.GetU32("gateway.listen_backlog", o.listen_backlog, 1, 65535);
  o.min_connections = config.GetU32("gateway.min_connections", o.min_connections, 0);
  o.max_frame_bytes = config.GetU32("gateway.max_frame_bytes", o.max_frame_bytes, 64, 16 << 20);
  o.max_push_frame_bytes =
      config.GetU32("gateway.max_push_frame_bytes", o.max_push_frame_bytes, 64, 64 << 20);
  o.max_write_queue_bytes = static_cast<uint64_t>(
      config.GetInt("gateway.max_write_queue_bytes", static_cast<int64_t>(o.max_write_queue_bytes),
                    4096, int64_t{1} << 32));
  o.max_in_flight_per_connection = config.GetU32("gateway.max_in_flight_per_connection",
                                                 o.max_in_flight_per_connection, 1, 4096);
  o.loop_queue_capacity =
      config.GetU32("gateway.loop_queue_capacity", o.loop_queue_capacity, 16, 1 << 24);
  o.login_timeout_ms = config.GetU32("gateway.login_timeout_ms", o.login_timeout_ms, 10);
  o.heartbeat_sec = config.GetU32("gateway.heartbeat_sec", o.heartbeat_sec, 1, 3600);
  o.idle_heartbeats = config.GetU32("gateway.idle_heartbeats", o.idle_heartbeats, 1, 100);
  o.close_linger_ms = config.GetU32("gateway.close_linger_ms", o.close_linger_ms, 10);
  o.logic_timeout_ms = config.GetU32("gateway.logic_timeout_ms", o.logic_timeout_ms, 10);
  o.logic_stream_max_waiting =
      config.GetU32("gateway.logic_stream_max_waiting", o.logic_stream_max_waiting, 1);
  o.logic_queue_wait_target_ms =
      config.GetU32("gateway.logic_queue_wait_target_ms", o.logic_queue_wait_target_ms, 1, 600'000);
  o.logic_queue_wait_interval_ms = config.GetU32("gateway.logic_queue_wait_interval_ms",
                                                 o.logic_queue_wait_interval_ms, 0, 600'000);
  o.max_logins_in_flight = config.GetU32("gateway.max_logins_in_flight", o.max_logins_in_flight, 1);
  o.send_rate_per_connection =
      config.GetDouble("gateway.send_rate_per_connection", o.send_rate_per_connection, 0, 1e6);
  o.send_burst_per_connection =
      config.GetU32("gateway.send_burst_per_connection", o.send_burst_per_connection, 1, 1'000'000);
  o.send_refusals_before_close =
      config.GetU32("gateway.send_refusals_before_close", o.send_refusals_before_close, 1, 65'535);
  o.max_connections_per_ip =
      config.GetU32("gateway.max_connections_per_ip", o.max_connections_per_ip, 0);
  o.login_rate_per_ip = config.GetDouble("gateway.login_rate_per_ip", o.login_rate_per_ip, 0, 1e6);
  o.login_burst_per_ip =
      config.GetU32("gateway.login_burst_per_ip", o.login_burst_per_ip, 1, 1'000'000);
  o.login_rate = config.GetDouble("gateway.login_rate", o.login_rate, 0, 1e7);
  o.login_burst = config.GetU32("gateway.login_burst", o.login_burst, 1, 10'000'000);
  o.max_unauthenticated_connections = config.GetU32("gateway.max_unauthenticated_connections",
                                                    o.max_unauthenticated_connections, 0);
  o.limit_loopback = config.GetBool("gateway.limit_loopback", o.limit_loopback);
  o.session_refresh_ms = config.GetU32("gateway.session_refresh_ms", o.session_refresh_ms, 100);
  o.session_refresh_batch =
      config.GetU32("gateway.session_refresh_batch", o.session_refresh_batch, 1, 100'000);
  o.drain_timeout_ms = config.GetU32("gateway.drain_timeout_ms", o.drain_timeout_ms, 0);
  o.goaway_reconnect_ms = config.GetU32("gateway.goaway_reconnect_ms", o.goaway_reconnect_ms, 0);
  o.goaway_spread_ms = config.GetU32("gateway.goaway_spread_ms", o.goaway_spread_ms, 0);
  o.log_level = config.GetString("log.level", o.log_level);
  o.log_format = config.GetString("log.format", o.log_format);
  if (absl::Status status = config.status(); !status.ok()) return status;
  if (o.logic_queue_wait_interval_ms != 0 &&
      o.logic_queue_wait_target_ms > o.logic_queue_wait_interval_ms) {
    return absl::InvalidArgumentError(
        "gateway.logic_queue_wait_target_ms must not exceed gateway.logic_queue_wait_interval_ms");
  }
  if (!o.tls_listen_address.empty() && (o.tls_cert_file.empty() || o.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "gateway.tls_listen needs gateway.tls_cert_file and gateway.tls_key_file");
  }
  if (!o.wss_listen_address.empty() && (o.tls_cert_file.empty() || o.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "gateway.wss_listen needs gateway.tls_cert_file and gateway.tls_key_file");
  }
  for (std::string& origin : o.ws_allowed_origins) {
    origin = absl::AsciiStrToLower(absl::StripAsciiWhitespace(origin));  // as the handshake does
    if (origin.find("://") == std::string::npos || origin.back() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("gateway.ws_allowed_origins: '", origin,
                       "' is not an origin (scheme://host[:port], no path), as browsers send it"));
    }
  }
  if (o.gateway_id.empty() || o.gateway_id.find('|') != std::string::npos) {
    return absl::InvalidArgumentError("gateway.id must be non-empty and must not contain '|'");
  }
  return o;
}

}  // namespace im::gateway
