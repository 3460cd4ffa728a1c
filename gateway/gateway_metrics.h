#pragma once

#include <memory>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::gateway {

// The gateway's metrics. Members are references into `registry`, which must outlive this.
// Prometheus counters are atomic: any thread may update them.
struct GatewayMetrics {
  explicit GatewayMetrics(prometheus::Registry& registry);

  prometheus::Gauge& connections;
  prometheus::Counter& accepted;
  prometheus::Counter& accept_errors;
  prometheus::Counter& logins_ok;
  // Refused before reaching logic: gateway.max_logins_in_flight were waiting (counted in failed
  // too, as every refused login is).
  prometheus::Counter& logins_shed;
  prometheus::Counter& logins_failed;
  prometheus::Counter& frames_in;
  prometheus::Counter& frames_out;
  prometheus::Counter& bytes_in;
  prometheus::Counter& bytes_out;
  prometheus::Counter& writes;  // write calls to client sockets (each carries a flush's frames)
  prometheus::Counter& closed_by_peer;
  prometheus::Counter& closed_login_timeout;
  prometheus::Counter& closed_idle;
  prometheus::Counter& closed_bad_frame;
  prometheus::Counter& closed_slow_consumer;
  prometheus::Counter& closed_unauthenticated;
  prometheus::Counter& closed_kicked;
  prometheus::Counter& closed_drain;
  prometheus::Counter& closed_limited;    // refused at accept, or kept sending past its rate
  prometheus::Counter& closed_tls;        // handshake refused or a bad TLS record
  prometheus::Counter& closed_websocket;  // handshake refused or a frame breaking RFC 6455
  // TLS handshakes on the TLS port, by result: full, resumed (a session ticket), failed.
  prometheus::Counter& tls_handshakes_full;
  prometheus::Counter& tls_handshakes_resumed;
  prometheus::Counter& tls_handshakes_failed;
  // WebSocket opening handshakes on the WebSocket ports: answered 101, or refused with an HTTP
  // error (bad request, origin not allowed, subprotocol im.v1 not asked for...).
  prometheus::Counter& websocket_handshakes_ok;
  prometheus::Counter& websocket_handshakes_refused;
  // Certificate reloads (SIGHUP), by result; a failed one keeps the certificate in use.
  prometheus::Counter& tls_reloads_ok;
  prometheus::Counter& tls_reloads_failed;
  // When the certificate in use expires (Unix seconds): alert well before it.
  prometheus::Gauge& tls_certificate_expiry;
  // Refused by an abuse limit (GatewayOptions), by limit.
  prometheus::Counter& limited_sends;               // per connection
  prometheus::Counter& limited_logins;              // per source address or per gateway
  prometheus::Counter& limited_connections_per_ip;  // at accept
  prometheus::Counter& limited_unauthenticated;     // at accept
  prometheus::Counter& pushes;                      // frames handed to a connection by Push
  prometheus::Counter& pushes_unknown;              // Push for a connection that is gone
  prometheus::Counter& late_responses;              // logic answered after the connection closed
  prometheus::Counter& loop_queue_full;             // posts refused by a full loop queue
  prometheus::Counter& logic_errors;                // calls to logic that failed (any gRPC error)
  prometheus::Counter& too_many_in_flight;
  prometheus::Histogram& logic_latency;        // seconds, per request answered by logic
  prometheus::Histogram& logic_batch_entries;  // requests per IngressBatch written to logic
  prometheus::Histogram& logic_queue_wait;     // seconds a request waited to be written to logic
  prometheus::Counter& logic_queue_shed;       // refused: waited too long unsent (queue_wait)
  prometheus::Counter& logic_streams_opened;   // LogicService.Stream calls (one per loop, then
                                               // one per broken stream)
  // Tasks waiting in each worker loop's queue, by loop index (sampled by the loop's sweep).
  prometheus::Family<prometheus::Gauge>& loop_queue_depth;
  prometheus::Gauge& draining;   // 1 from the start of the drain
  prometheus::Counter& goaways;  // GoAway frames sent to clients
};

}  // namespace im::gateway
