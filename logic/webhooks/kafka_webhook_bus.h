#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "logic/group/kafka_client.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/webhooks/webhook_bus.h"

namespace im::logic {

// WebhookBus on Kafka: events are records of topic <prefix>webhooks (keyed by event id), written
// with an idempotent producer (acks=all) when they happen, and read by one consumer per node in
// consumer group webhooks.consumer_group. A consumer takes a batch, delivers every event of it
// and commits its offsets only then, so an event whose node dies before it is delivered is
// delivered by another node: at least once. It holds the batch for an event's first
// hold_attempts only: one still failing is set aside on <prefix>webhooks.retry (with its attempts
// and when the next is due), and a second consumer per node (group <consumer_group>.retry) makes
// one attempt per record there, setting it aside again until max_attempts. So an endpoint that
// is down holds the other endpoints' events for a few attempts, not for all of its own. An event
// given up after max_attempts is written to <prefix>webhooks.dead (a WebhookDeadLetter) before
// its offset is committed. When Kafka does not take an event, this node delivers it itself (not
// durable then; counted).
class KafkaWebhookBus final : public WebhookBus {
 public:
  KafkaWebhookBus(const LogicOptions& options, LogicMetrics* metrics);
  ~KafkaWebhookBus() override;

  // Creates the producer and the topics, then starts the consumer. Errors as
  // KafkaFanoutBus::Start's.
  absl::Status Start(WebhookDelivery* delivery) override;
  void Publish(im::v1::WebhookEvent event, HandedOver handed_over) override;
  void Stop() override;

 private:
  // What a record's delivery report does: the record's opaque pointer owns one.
  using OnReport = std::function<void(bool acknowledged)>;
  class DeliveryReports : public RdKafka::DeliveryReportCb {
   public:
    void dr_cb(RdKafka::Message& message) override;
  };
  class Rebalances : public RdKafka::RebalanceCb {
   public:
    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                      std::vector<RdKafka::TopicPartition*>& partitions) override;
  };
  struct Batch;
  // One consumer and what it does with an event: the events as they happen (their first
  // hold_attempts), or those set aside (one attempt each, when due).
  struct Stage {
    std::string topic;
    std::string group;
    bool retries = false;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer;
    std::thread thread;
    std::shared_ptr<Batch> batch;  // the current one, guarded by batch_mutex_; Stop wakes it
  };

  absl::Status CreateProducer();
  absl::Status CreateTopics();
  absl::Status StartConsumer(Stage& stage);
  // Produces `value` to `topic`; `on_report` runs once with the outcome (at once when refused).
  void Produce(const std::string& topic, const std::string& key, const std::string& value,
               OnReport on_report);
  // An event Kafka did not take: delivered by this node, given up ones only logged.
  void DeliverHere(im::v1::WebhookEvent event);
  void PollProducer();
  void Consume(Stage& stage);
  // Delivers `events`, or sets them aside, or dead-letters them; false when stopped before all
  // were done.
  bool DeliverBatch(Stage& stage, std::vector<im::v1::WebhookEvent> events);
  // One round of DeliverBatch: the events the HTTP client did not take (it was full) or Kafka
  // did not take back, or nullopt when stopped first.
  std::optional<std::vector<im::v1::WebhookEvent>> DeliverOnce(
      Stage& stage, std::vector<im::v1::WebhookEvent> events);
  // This stage's share of `event`'s attempts.
  WebhookDelivery::Share ShareOf(const Stage& stage, const im::v1::WebhookEvent& event) const;
  // Writes `event` (its attempts so far in `result`) to the retry topic, due after the backoff;
  // `written` runs once with whether Kafka took it.
  void SetAside(im::v1::WebhookEvent event, const WebhookDelivery::Result& result,
                std::function<void(bool on_kafka)> written);
  // Writes a dead letter; `written` runs once Kafka answered (on the producer's thread, or here
  // when it refused the record).
  void WriteDeadLetter(const im::v1::WebhookEvent& event, const WebhookDelivery::Result& result,
                       std::function<void()> written);

  const LogicOptions::Kafka kafka_;
  const WebhookOptions& webhooks_;
  const std::string client_id_;
  const std::string topic_;
  const std::string retry_topic_;
  const std::string dead_topic_;
  LogicMetrics* metrics_;
  WebhookDelivery* delivery_ = nullptr;
  DeliveryReports delivery_reports_;
  Rebalances rebalances_;
  KafkaEventLog producer_events_;
  KafkaEventLog consumer_events_;
  std::unique_ptr<RdKafka::Producer> producer_;
  Stage first_;    // the events as they happen
  Stage retries_;  // the events set aside
  std::mutex batch_mutex_;
  std::thread producer_thread_;
  std::atomic<bool> stopping_consumer_{false};
  std::atomic<bool> stopping_producer_{false};
  bool stopped_ = false;
};

}  // namespace im::logic
