#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "logic/group/fanout_bus.h"
#include "logic/group/in_process_fanout_bus.h"
#include "logic/group/kafka_client.h"
#include "logic/group/recent_seqs.h"
#include "logic/group/unacked_records.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"

namespace im::logic {

// FanoutBus on Kafka (librdkafka): topics <prefix>fanout and <prefix>fanout.large, created at
// start with the configured partitions, records keyed by conv_id so one group stays on one
// partition and in order. The producer is idempotent with acks=all. Each lane has a consumer in
// the shared consumer group, so the nodes split the partitions; offsets are committed only
// after a batch's pushes were handed over (at least once).
//
// When Kafka is down a send still succeeds once persisted: when the producer has stalled (a record
// unacknowledged for kafka.fallback_after_ms, and no acknowledgement at all for as long:
// UnackedRecords) this node pushes its waiting records itself through an in-process lane. If
// Kafka had them after all, the consumer gets them too; a node delivers a (conv, seq) once
// (RecentSeqs), and when another node consumes it its members get it twice, which devices drop by
// (conv_id, seq). A broker that is merely slow triggers no fallback.
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

  // Raises a fatal error in the producer the way librdkafka would (rd_kafka_test_fatal_error,
  // which exists for this), so that tests see the bus make a new one.
  absl::Status InjectFatalProducerErrorForTest();

 private:
  class DeliveryReports : public RdKafka::DeliveryReportCb {
   public:
    explicit DeliveryReports(KafkaFanoutBus* bus) : bus_(bus) {}
    void dr_cb(RdKafka::Message& message) override;

   private:
    KafkaFanoutBus* bus_;
  };
  // One lane's consumer and what its rebalances tell the loop that reads it. Rebalance callbacks
  // run inside consume(), on the lane's thread, the only one that touches `revoked_`.
  class LaneConsumer : public RdKafka::RebalanceCb {
   public:
    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                      std::vector<RdKafka::TopicPartition*>& partitions) override;
    // Whether partitions were taken away since the last call: records read before that are read
    // again from the committed offsets (here, or by their new owner), so they must not be
    // delivered from the batch that holds them now.
    bool TakeRevoked() { return std::exchange(revoked_, false); }

    std::unique_ptr<RdKafka::KafkaConsumer> consumer;

   private:
    bool revoked_ = false;
  };
  absl::Status CreateProducer();
  absl::Status CreateTopics();
  absl::Status StartConsumer(const std::string& topic, LaneConsumer& lane);
  void PollProducer();
  // On the producer's thread, after a fatal error (or a failed attempt to replace it): its
  // records still waiting are failed (they fall back, pushed from here) and a new producer takes
  // its place; none while Kafka refuses one (Publish then falls back), tried again next poll.
  void ReplaceProducer();
  void Consume(LaneConsumer& lane);
  // Delivers the records of `batch` this node has not delivered before.
  void DeliverOnce(const std::vector<im::v1::FanoutRecord>& batch);
  // Pushes a record Kafka did not take from this node, through the in-process lane.
  void FallBack(UnackedRecords::Entry entry);
  const std::string& TopicOf(FanoutLane lane) const {
    return lane == FanoutLane::kLarge ? large_topic_ : small_topic_;
  }
  LaneConsumer& LaneOf(FanoutLane lane) { return lanes_[lane == FanoutLane::kLarge ? 1 : 0]; }

  const LogicOptions::Kafka options_;
  const std::string client_id_;
  const size_t producer_queue_;
  const size_t batch_max_;
  LogicMetrics* metrics_;
  const std::string small_topic_;
  const std::string large_topic_;
  Deliver deliver_;
  RecentSeqs delivered_;
  UnackedRecords unacked_;
  DeliveryReports delivery_reports_{this};
  KafkaEventLog events_;           // the consumers'
  KafkaEventLog producer_events_;  // the producer's
  InProcessFanoutBus fallback_;
  // Replaced (exclusively) only by ReplaceProducer; every other use holds it shared. Null after
  // a replacement failed.
  std::shared_mutex producer_mutex_;
  std::unique_ptr<RdKafka::Producer> producer_;
  LaneConsumer lanes_[2];  // small, large
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_consumers_{false};
  std::atomic<bool> stopping_producer_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace im::logic
