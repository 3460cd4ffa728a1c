#include "logic/logic_metrics.h"

#include "common/metrics.h"

namespace im::logic {
namespace {

prometheus::Counter& Counter(prometheus::Registry& registry, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(labels);
}

prometheus::Histogram& Store(prometheus::Family<prometheus::Histogram>& family,
                             const std::string& op) {
  return family.Add({{"op", op}}, common::LatencyBuckets());
}

prometheus::Gauge& Gauge(prometheus::Registry& registry, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Counter& Overloaded(prometheus::Registry& registry, const std::string& reason) {
  return Counter(registry, "im_logic_overloaded_total",
                 "Requests refused RESOURCE_EXHAUSTED before any work, by the queue that was full "
                 "or kept them too long",
                 {{"reason", reason}});
}

prometheus::Counter& Presence(prometheus::Registry& registry, const std::string& event) {
  return Counter(registry, "im_logic_presence_total",
                 "Presence: users published to their watchers, PresencePush frames pushed, users "
                 "found offline as their sessions lapsed, changes dropped as too many waited",
                 {{"event", event}});
}

prometheus::Counter& Limited(prometheus::Registry& registry, const std::string& limit) {
  return Counter(registry, "im_logic_limited_total", "Sends refused by an abuse limit, by limit",
                 {{"limit", limit}});
}

prometheus::Counter& Expired(prometheus::Registry& registry, const std::string& stage) {
  return Counter(registry, "im_logic_expired_total",
                 "Requests refused DEADLINE_EXCEEDED before any work: their deadline had passed "
                 "on arrival or while queued",
                 {{"stage", stage}});
}

prometheus::Histogram& QueueWait(prometheus::Registry& registry, const std::string& queue) {
  return prometheus::BuildHistogram()
      .Name("im_logic_queue_wait_seconds")
      .Help("Time a task waited in an executor's queue before a thread took it (or shed it)")
      .Register(registry)
      .Add({{"queue", queue}}, common::LatencyBuckets());
}

}  // namespace

LogicMetrics::LogicMetrics(prometheus::Registry& registry)
    : requests(prometheus::BuildCounter()
                   .Name("im_logic_requests_total")
                   .Help("LogicService calls by method and answered code")
                   .Register(registry)),
      latency(prometheus::BuildHistogram()
                  .Name("im_logic_request_seconds")
                  .Help("Time from receiving a LogicService call to answering it")
                  .Register(registry)),
      admin_api_requests(prometheus::BuildCounter()
                             .Name("im_logic_admin_api_requests_total")
                             .Help("Admin API calls by operation and HTTP status")
                             .Register(registry)),
      webhook_events(prometheus::BuildCounter()
                         .Name("im_logic_webhook_events_total")
                         .Help("Webhook events by type and what became of them")
                         .Register(registry)),
      before_send(prometheus::BuildCounter()
                      .Name("im_logic_before_send_total")
                      .Help("Before-send checks by verdict")
                      .Register(registry)),
      overloaded_executor(Overloaded(registry, "executor_full")),
      overloaded_send_loop(Overloaded(registry, "send_loop_full")),
      overloaded_redis_behind(Overloaded(registry, "redis_behind")),
      overloaded_write_queue(Overloaded(registry, "write_queue_full")),
      overloaded_login_queue(Overloaded(registry, "login_queue_full")),
      overloaded_executor_wait(Overloaded(registry, "executor_wait")),
      overloaded_login_wait(Overloaded(registry, "login_wait")),
      overloaded_send_loop_wait(Overloaded(registry, "send_loop_wait")),
      executor_wait_seconds(QueueWait(registry, "executor")),
      login_wait_seconds(QueueWait(registry, "login")),
      send_loop_wait_seconds(QueueWait(registry, "send_loop")),
      login_loop_wait_seconds(QueueWait(registry, "login_loop")),
      expired_on_arrival(Expired(registry, "arrival")),
      seq_counters_behind(Counter(registry, "im_logic_seq_counters_behind_total",
                                  "Sends that found their conversation's seq counter behind the "
                                  "stored messages (Redis lost writes); the counter is restored")),
      expired_in_queue(Expired(registry, "queue")),
      executor_depth(Gauge(registry, "im_logic_executor_queue_depth", "Store executor backlog")),
      ingress_streams(
          Gauge(registry, "im_logic_ingress_streams", "Gateway streams open on this node")),
      ingress_entries(Counter(registry, "im_logic_ingress_entries_total",
                              "Client requests read from gateway streams")),
      send_loop_batches(Counter(registry, "im_logic_send_loop_batches_total",
                                "Send batches whose claims were taken on the send loop")),
      login_loop_batches(Counter(registry, "im_logic_login_loop_batches_total",
                                 "Login batches registered on the login loop")),
      write_batch_size(prometheus::BuildHistogram()
                           .Name("im_logic_write_batch_messages")
                           .Help("Messages per MySQL group commit")
                           .Register(registry)
                           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64,
                                                                            128, 256, 512, 1024})),
      write_seconds(prometheus::BuildHistogram()
                        .Name("im_logic_write_seconds")
                        .Help("Duration of one MySQL group commit")
                        .Register(registry)
                        .Add({}, common::LatencyBuckets())),
      write_queue_depth(
          Gauge(registry, "im_logic_write_queue_depth", "Messages waiting to persist")),
      writes_expired(Counter(registry, "im_logic_writes_expired_total",
                             "Messages failed because they waited past the write deadline")),
      push_rpcs_ok(Counter(registry, "im_logic_push_rpcs_total", "GatewayService.Push calls",
                           {{"result", "ok"}})),
      push_rpcs_failed(Counter(registry, "im_logic_push_rpcs_total", "GatewayService.Push calls",
                               {{"result", "failed"}})),
      push_connections(Counter(registry, "im_logic_push_connections_total",
                               "Connections pushes were addressed to")),
      push_dropped(Counter(registry, "im_logic_push_dropped_total",
                           "Connections not pushed to because their gateway was too far behind")),
      delivery_batch_size(
          prometheus::BuildHistogram()
              .Name("im_logic_delivery_batch_size")
              .Help("Persisted single-chat messages delivered together (one session lookup)")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256,
                                                               512, 1024})),
      push_batch_size(prometheus::BuildHistogram()
                          .Name("im_logic_push_batch_size")
                          .Help("Pushes per GatewayService.Push call")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64,
                                                                           128, 256, 512, 1024})),
      push_unknown_gateway(Counter(registry, "im_logic_push_unknown_gateway_total",
                                   "Push targets on a gateway without a live registration")),
      push_stale_sessions(Counter(registry, "im_logic_push_stale_sessions_total",
                                  "Sessions removed because their gateway no longer held them")),
      kicks(Counter(registry, "im_logic_kicks_total", "Connections kicked")),
      fanout_published_kafka(Counter(registry, "im_logic_fanout_published_total",
                                     "Group message records published", {{"path", "kafka"}})),
      fanout_published_local(Counter(registry, "im_logic_fanout_published_total",
                                     "Group message records published", {{"path", "in_process"}})),
      fanout_kafka_fallbacks(
          Counter(registry, "im_logic_fanout_kafka_fallbacks_total",
                  "Records Kafka did not acknowledge in time, pushed by the publishing node")),
      kafka_producer_replacements(Counter(
          registry, "im_logic_kafka_producer_replacements_total",
          "Kafka producers made anew after a fatal error (the old one's records fell back)")),
      fanout_dropped(Counter(registry, "im_logic_fanout_dropped_total",
                             "Records not pushed (queue full or stopping); members Sync them")),
      fanout_repeats_skipped(
          Counter(registry, "im_logic_fanout_repeats_skipped_total",
                  "Records this node had delivered already (redelivered by Kafka, or consumed "
                  "after a direct push): not pushed again")),
      fanout_records(Counter(registry, "im_logic_fanout_records_total",
                             "Group message records fanned out to members")),
      fanout_deliveries(Counter(registry, "im_logic_fanout_deliveries_total",
                                "Device pushes made by group fan-out")),
      fanout_lag_seconds(prometheus::BuildHistogram()
                             .Name("im_logic_fanout_lag_seconds")
                             .Help("From publishing a group message to handing its pushes over")
                             .Register(registry)
                             .Add({}, common::LatencyBuckets())),
      group_list_loads(Counter(registry, "im_logic_group_list_loads_total",
                               "Group member lists loaded from MySQL")),
      presence_published(Presence(registry, "published")),
      presence_pushes(Presence(registry, "pushed")),
      presence_lapsed(Presence(registry, "lapsed")),
      presence_dropped(Presence(registry, "dropped")),
      limited_user_sends(Limited(registry, "user_sends")),
      limited_group_sends(Limited(registry, "group_sends")),
      store_latency(prometheus::BuildHistogram()
                        .Name("im_logic_store_seconds")
                        .Help("Latency of Redis and MySQL calls, by operation")
                        .Register(registry)),
      store_dedup_claim(Store(store_latency, "dedup_claim")),
      store_seq_next(Store(store_latency, "seq_next")),
      store_session_lookup(Store(store_latency, "session_lookup")),
      store_message_append(Store(store_latency, "message_append")),
      store_message_read(Store(store_latency, "message_read")) {}

prometheus::Histogram& LogicMetrics::Latency(const std::string& method) {
  return latency.Add({{"method", method}}, common::LatencyBuckets());
}

}  // namespace im::logic
