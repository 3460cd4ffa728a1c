#include "gateway/gateway_metrics.h"

#include <string>

#include "common/metrics.h"

namespace im::gateway {
namespace {

prometheus::Counter& MakeCounter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help, const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(labels);
}

prometheus::Counter& Closed(prometheus::Registry& registry, const std::string& reason) {
  return MakeCounter(registry, "im_gateway_connections_closed_total",
                     "Connections closed, by reason", {{"reason", reason}});
}

prometheus::Counter& TlsHandshakes(prometheus::Registry& registry, const std::string& result) {
  return MakeCounter(registry, "im_gateway_tls_handshakes_total",
                     "TLS handshakes on the client TLS port, by result", {{"result", result}});
}

prometheus::Counter& WebSocketHandshakes(prometheus::Registry& registry,
                                         const std::string& result) {
  return MakeCounter(registry, "im_gateway_websocket_handshakes_total",
                     "WebSocket opening handshakes on the WebSocket ports, by result",
                     {{"result", result}});
}

prometheus::Counter& TlsReloads(prometheus::Registry& registry, const std::string& result) {
  return MakeCounter(registry, "im_gateway_tls_reloads_total",
                     "Reloads of the TLS certificate and key (SIGHUP), by result",
                     {{"result", result}});
}

prometheus::Counter& Limited(prometheus::Registry& registry, const std::string& limit) {
  return MakeCounter(registry, "im_gateway_limited_total",
                     "Requests and connections refused by an abuse limit, by limit",
                     {{"limit", limit}});
}

}  // namespace

GatewayMetrics::GatewayMetrics(prometheus::Registry& registry)
    : connections(prometheus::BuildGauge()
                      .Name("im_gateway_connections")
                      .Help("Open client connections")
                      .Register(registry)
                      .Add({})),
      accepted(MakeCounter(registry, "im_gateway_accepted_total", "Connections accepted")),
      accept_errors(MakeCounter(registry, "im_gateway_accept_errors_total",
                                "accept() failures (EMFILE and the like)")),
      logins_ok(MakeCounter(registry, "im_gateway_logins_total", "Logins", {{"result", "ok"}})),
      logins_shed(MakeCounter(registry, "im_gateway_logins_total", "Logins", {{"result", "shed"}})),
      logins_failed(
          MakeCounter(registry, "im_gateway_logins_total", "Logins", {{"result", "failed"}})),
      frames_in(MakeCounter(registry, "im_gateway_frames_in_total", "Frames from clients")),
      frames_out(MakeCounter(registry, "im_gateway_frames_out_total", "Frames to clients")),
      bytes_in(MakeCounter(registry, "im_gateway_bytes_in_total", "Bytes from clients")),
      bytes_out(MakeCounter(registry, "im_gateway_bytes_out_total", "Bytes queued to clients")),
      writes(MakeCounter(registry, "im_gateway_writes_total",
                         "Writes to client sockets; each carries the frames one loop iteration "
                         "queued for a connection")),
      closed_by_peer(Closed(registry, "peer")),
      closed_login_timeout(Closed(registry, "login_timeout")),
      closed_idle(Closed(registry, "idle_timeout")),
      closed_bad_frame(Closed(registry, "bad_frame")),
      closed_slow_consumer(Closed(registry, "slow_consumer")),
      closed_unauthenticated(Closed(registry, "unauthenticated")),
      closed_kicked(Closed(registry, "kicked")),
      closed_drain(Closed(registry, "drain")),
      closed_limited(Closed(registry, "limited")),
      closed_tls(Closed(registry, "tls")),
      closed_websocket(Closed(registry, "websocket")),
      tls_handshakes_full(TlsHandshakes(registry, "full")),
      tls_handshakes_resumed(TlsHandshakes(registry, "resumed")),
      tls_handshakes_failed(TlsHandshakes(registry, "failed")),
      websocket_handshakes_ok(WebSocketHandshakes(registry, "ok")),
      websocket_handshakes_refused(WebSocketHandshakes(registry, "refused")),
      tls_reloads_ok(TlsReloads(registry, "ok")),
      tls_reloads_failed(TlsReloads(registry, "failed")),
      tls_certificate_expiry(prometheus::BuildGauge()
                                 .Name("im_gateway_tls_certificate_expiry_timestamp_seconds")
                                 .Help("When the TLS certificate in use expires (Unix time)")
                                 .Register(registry)
                                 .Add({})),
      limited_sends(Limited(registry, "connection_sends")),
      limited_logins(Limited(registry, "logins")),
      limited_connections_per_ip(Limited(registry, "connections_per_ip")),
      limited_unauthenticated(Limited(registry, "unauthenticated_connections")),
      pushes(MakeCounter(registry, "im_gateway_pushes_total", "Push frames handed to connections")),
      pushes_unknown(MakeCounter(registry, "im_gateway_pushes_unknown_total",
                                 "Push targets not connected here")),
      late_responses(MakeCounter(registry, "im_gateway_late_responses_total",
                                 "Logic responses for connections already closed")),
      loop_queue_full(MakeCounter(registry, "im_gateway_loop_queue_full_total",
                                  "Tasks refused by a full worker loop queue")),
      logic_errors(MakeCounter(registry, "im_gateway_logic_errors_total", "Failed calls to logic")),
      too_many_in_flight(MakeCounter(registry, "im_gateway_too_many_in_flight_total",
                                     "Requests refused: too many outstanding on a connection")),
      logic_latency(prometheus::BuildHistogram()
                        .Name("im_gateway_logic_call_seconds")
                        .Help("Latency of calls to logic")
                        .Register(registry)
                        .Add({}, common::LatencyBuckets())),
      logic_batch_entries(prometheus::BuildHistogram()
                              .Name("im_gateway_logic_batch_entries")
                              .Help("Client requests per batch written to logic")
                              .Register(registry)
                              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32,
                                                                               64, 128, 256, 512})),
      logic_queue_wait(prometheus::BuildHistogram()
                           .Name("im_gateway_logic_queue_wait_seconds")
                           .Help("Time a client request waited on the gateway to be written to "
                                 "logic")
                           .Register(registry)
                           .Add({}, common::LatencyBuckets())),
      logic_queue_shed(MakeCounter(registry, "im_gateway_logic_queue_shed_total",
                                   "Client requests refused because they waited "
                                   "too long to be written to logic (logic_queue_wait_*)")),
      logic_streams_opened(MakeCounter(registry, "im_gateway_logic_streams_opened_total",
                                       "Streams opened to logic (one per worker loop, then one "
                                       "per stream that ended)")),
      loop_queue_depth(prometheus::BuildGauge()
                           .Name("im_gateway_loop_queue_depth")
                           .Help("Tasks waiting in a worker loop's queue")
                           .Register(registry)),
      draining(prometheus::BuildGauge()
                   .Name("im_gateway_draining")
                   .Help("1 while the gateway drains (GoAway sent, not accepting)")
                   .Register(registry)
                   .Add({})),
      goaways(MakeCounter(registry, "im_gateway_goaways_total", "GoAway frames sent to clients")) {}

}  // namespace im::gateway
