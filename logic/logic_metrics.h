#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::logic {

// The logic node's metrics. Families live in `registry`, which must outlive this object.
struct LogicMetrics {
  explicit LogicMetrics(prometheus::Registry& registry);

  // Per RPC method and answered code.
  prometheus::Counter& Requests(const std::string& method, const std::string& code) {
    return requests.Add({{"method", method}, {"code", code}});
  }
  prometheus::Histogram& Latency(const std::string& method);

  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& latency;
  // The admin API's calls by operation and HTTP status (im_logic_admin_api_requests_total).
  prometheus::Family<prometheus::Counter>& admin_api_requests;
  // Webhooks (logic/webhooks): what became of each event, by event type and outcome
  // (im_logic_webhook_events_total{type,outcome}: delivered, retried, dead, dropped), and what the
  // before-send check decided (im_logic_before_send_total{verdict}: allow, refuse, replace,
  // failed_allow, failed_refuse, breaker_allow, breaker_refuse).
  prometheus::Family<prometheus::Counter>& webhook_events;
  prometheus::Family<prometheus::Counter>& before_send;
  prometheus::Counter& WebhookEvents(const std::string& type, const std::string& outcome) {
    return webhook_events.Add({{"type", type}, {"outcome", outcome}});
  }
  // Requests refused RESOURCE_EXHAUSTED before any work, by what was full
  // (im_logic_overloaded_total{reason}): one per request.
  prometheus::Counter& overloaded_executor;      // the store executor's queue
  prometheus::Counter& overloaded_send_loop;     // the send loop's queue
  prometheus::Counter& overloaded_redis_behind;  // a loop's unanswered Redis commands
  prometheus::Counter& overloaded_write_queue;   // the MySQL writer's queue
  prometheus::Counter& overloaded_login_queue;   // the login loop's (or executor's) queue
  // ... and those shed after waiting longer than logic.queue_wait_* allow (QueueWaitPolicy).
  prometheus::Counter& overloaded_executor_wait;
  prometheus::Counter& overloaded_login_wait;
  prometheus::Counter& overloaded_send_loop_wait;
  // How long tasks waited in each executor's queue (im_logic_queue_wait_seconds{queue}).
  prometheus::Histogram& executor_wait_seconds;
  prometheus::Histogram& login_wait_seconds;       // the login threads (unary logins)
  prometheus::Histogram& send_loop_wait_seconds;   // send batches waiting for the send loop
  prometheus::Histogram& login_loop_wait_seconds;  // login batches waiting for the login loop
  // Requests refused DEADLINE_EXCEEDED before any work, as their deadline had passed
  // (im_logic_expired_total{stage}): the caller had given up.
  prometheus::Counter& expired_on_arrival;
  // Sends whose seq another stored message held: the conversation's counter was behind the store
  // (Redis lost writes) and is restored from it; the send is answered ABORTED and retried.
  prometheus::Counter& seq_counters_behind;
  prometheus::Counter& expired_in_queue;
  prometheus::Gauge& executor_depth;
  prometheus::Gauge& ingress_streams;       // gateway streams open on this node
  prometheus::Counter& ingress_entries;     // client requests read from gateway streams
  prometheus::Counter& send_loop_batches;   // send batches whose claims were taken on the send loop
  prometheus::Counter& login_loop_batches;  // login batches registered on the login loop
  prometheus::Histogram& write_batch_size;
  prometheus::Histogram& write_seconds;
  prometheus::Gauge& write_queue_depth;
  prometheus::Counter& writes_expired;  // failed because they waited past the write deadline
  prometheus::Counter& push_rpcs_ok;
  prometheus::Counter& push_rpcs_failed;
  prometheus::Counter& push_connections;  // connections a push was addressed to
  prometheus::Counter& push_dropped;  // connections not pushed to: their gateway was too far behind
  prometheus::Histogram& delivery_batch_size;  // persisted messages per delivery-stage batch
  prometheus::Histogram& push_batch_size;      // pushes per GatewayService.Push call
  prometheus::Counter& push_unknown_gateway;   // targets on a gateway with no live registration
  prometheus::Counter& push_stale_sessions;  // sessions removed because their gateway disowned them
  prometheus::Counter& kicks;
  prometheus::Counter& fanout_published_kafka;       // records Kafka acknowledged
  prometheus::Counter& fanout_published_local;       // records handed to an in-process lane
  prometheus::Counter& fanout_kafka_fallbacks;       // records Kafka did not take: pushed directly
  prometheus::Counter& kafka_producer_replacements;  // producers made anew after a fatal error
  prometheus::Counter& fanout_dropped;               // records not pushed at all (members Sync)
  prometheus::Counter& fanout_repeats_skipped;       // records this node had delivered already
  prometheus::Counter& fanout_records;               // records delivered to members
  prometheus::Counter& fanout_deliveries;            // device pushes made by fan-out
  prometheus::Histogram& fanout_lag_seconds;         // publish -> pushes handed to gateways
  prometheus::Counter& group_list_loads;             // member lists loaded from MySQL
  // Presence (im_logic_presence_total{event}): users whose state was published to their watchers,
  // PresencePush frames handed to gateways, users found offline by a sweep (sessions lapsed), and
  // changes dropped because presence_max_pending were waiting.
  prometheus::Counter& presence_published;
  prometheus::Counter& presence_pushes;
  prometheus::Counter& presence_lapsed;
  prometheus::Counter& presence_dropped;
  // Sends refused by an abuse limit (im_logic_limited_total{limit}): the sender's rate over all
  // their devices, and their rate in one group (logic.send_rate_per_user and the rest).
  prometheus::Counter& limited_user_sends;
  prometheus::Counter& limited_group_sends;
  // Store calls on the send, sync and push paths, in seconds, by operation (a fixed set, so the
  // series stay few): Redis dedup_claim, seq_next, session_lookup; MySQL message_append (one
  // group commit), message_read (a Sync page).
  prometheus::Family<prometheus::Histogram>& store_latency;
  prometheus::Histogram& store_dedup_claim;
  prometheus::Histogram& store_seq_next;
  prometheus::Histogram& store_session_lookup;
  prometheus::Histogram& store_message_append;
  prometheus::Histogram& store_message_read;
};

// Observes the time from construction to destruction into `histogram`.
class StoreTimer {
 public:
  explicit StoreTimer(prometheus::Histogram* histogram) : histogram_(histogram) {}
  ~StoreTimer() { histogram_->Observe(common::SecondsSince(started_)); }
  StoreTimer(const StoreTimer&) = delete;
  StoreTimer& operator=(const StoreTimer&) = delete;

 private:
  prometheus::Histogram* histogram_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace im::logic
