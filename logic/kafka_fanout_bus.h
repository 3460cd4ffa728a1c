#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "logic/fanout_bus.h"
#include "logic/in_process_fanout_bus.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"

namespace im::logic {

// FanoutBus on Kafka (librdkafka): topics <prefix>fanout and <prefix>fanout.large, created at
// start with the configured partitions, records keyed by conv_id so one group stays on one
// partition and in order. The producer is idempotent with acks=all. Each lane has a consumer in
// the shared consumer group, so the nodes split the partitions; offsets are committed only
// after a batch's pushes were handed over (at least once).
//
// When Kafka is down a send still succeeds once persisted: a record Kafka has not acknowledged
// within kafka.fallback_after_ms comes back in its delivery report and this node pushes it itself
// through an in-process lane. Members may then get it twice (if Kafka had it after all); devices
// drop duplicates by (conv_id, seq).
class KafkaFanoutBus final : public FanoutBus {
 public:
  KafkaFanoutBus(const LogicOptions& options, LogicMetrics* metrics);
  ~KafkaFanoutBus() override;

  // Creates the producer and the topics (retrying until kafka.startup_timeout_ms), then starts
  // the consumers. Errors: INVALID_ARGUMENT for a configuration librdkafka refuses, UNAVAILABLE
  // when the brokers cannot be reached in time.
  absl::Status Start(Deliver deliver) override;
  void Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
               HandedOver handed_over) override;
  void Stop() override;
  // A metadata request (the broker list, no topics) answered within the timeout.
  absl::Status CheckReachable(std::chrono::milliseconds timeout) override;

 private:
  class DeliveryReports : public RdKafka::DeliveryReportCb {
   public:
    explicit DeliveryReports(KafkaFanoutBus* bus) : bus_(bus) {}
    void dr_cb(RdKafka::Message& message) override;

   private:
    KafkaFanoutBus* bus_;
  };
  // librdkafka's log lines and errors, into our log (rate-limited) instead of its own stderr.
  class Events : public RdKafka::EventCb {
   public:
    void event_cb(RdKafka::Event& event) override;
  };

  absl::Status CreateProducer();
  absl::Status CreateTopics();
  absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> NewConsumer(const std::string& topic);
  void PollProducer();
  void Consume(RdKafka::KafkaConsumer* consumer);
  // Pushes a record Kafka did not take from this node, through the in-process lane.
  void FallBack(const RdKafka::Message& message, HandedOver handed_over);
  const std::string& TopicOf(FanoutLane lane) const {
    return lane == FanoutLane::kLarge ? large_topic_ : small_topic_;
  }

  const LogicOptions::Kafka options_;
  const std::string client_id_;
  const size_t producer_queue_;
  const size_t batch_max_;
  LogicMetrics* metrics_;
  const std::string small_topic_;
  const std::string large_topic_;
  Deliver deliver_;
  DeliveryReports delivery_reports_{this};
  Events events_;
  InProcessFanoutBus fallback_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::vector<std::unique_ptr<RdKafka::KafkaConsumer>> consumers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_consumers_{false};
  std::atomic<bool> stopping_producer_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im::logic
