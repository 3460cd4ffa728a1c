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
// (retries included) and commits its offsets only then, so an event whose node dies before it is
// delivered is delivered by another node: at least once. An event given up after max_attempts is
// written to <prefix>webhooks.dead (a WebhookDeadLetter) before its offset is committed.
// When Kafka does not take an event, this node delivers it itself (not durable then; counted).
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

  absl::Status CreateProducer();
  absl::Status CreateTopics();
  absl::Status StartConsumer();
  // Produces `value` to `topic`; `on_report` runs once with the outcome (at once when refused).
  void Produce(const std::string& topic, const std::string& key, const std::string& value,
               OnReport on_report);
  // An event Kafka did not take: delivered by this node, given up ones only logged.
  void DeliverHere(im::v1::WebhookEvent event);
  void PollProducer();
  void Consume();
  // Delivers `events` (dead-lettering those given up); false when stopped before all were done.
  bool DeliverBatch(std::vector<im::v1::WebhookEvent> events);
  // One round of DeliverBatch: the events the HTTP client did not take (it was full), or nullopt
  // when stopped first.
  std::optional<std::vector<im::v1::WebhookEvent>> DeliverOnce(
      std::vector<im::v1::WebhookEvent> events);
  // Writes a dead letter; `written` runs once Kafka answered (on the producer's thread, or here
  // when it refused the record).
  void WriteDeadLetter(const im::v1::WebhookEvent& event, const WebhookDelivery::Result& result,
                       std::function<void()> written);

  const LogicOptions::Kafka kafka_;
  const WebhookOptions& webhooks_;
  const std::string client_id_;
  const std::string topic_;
  const std::string dead_topic_;
  LogicMetrics* metrics_;
  WebhookDelivery* delivery_ = nullptr;
  DeliveryReports delivery_reports_;
  Rebalances rebalances_;
  KafkaEventLog producer_events_;
  KafkaEventLog consumer_events_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::shared_ptr<Batch> batch_;  // the consumer's current one; Stop wakes its waiter
  std::mutex batch_mutex_;
  std::thread producer_thread_;
  std::thread consumer_thread_;
  std::atomic<bool> stopping_consumer_{false};
  std::atomic<bool> stopping_producer_{false};
  bool stopped_ = false;
};

}  // namespace im::logic
