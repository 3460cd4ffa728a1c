#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "logic/group/kafka_connection.h"

namespace im::logic {

// What every librdkafka client of logic (the fan-out bus, the webhook bus) is made with.

// Sets the connection's properties, then `properties` (and the event callback), or reports the
// first one librdkafka refuses (never the password's value).
absl::Status ConfigureKafkaClient(RdKafka::Conf* conf, RdKafka::EventCb* events,
                                  const KafkaConnection& connection,
                                  const KafkaProperties& properties);

// A producer of the brokers `connection` names, idempotent with acks=all (retries never duplicate
// or reorder a partition), its delivery reports to `reports`, with `properties` on top.
absl::StatusOr<std::unique_ptr<RdKafka::Producer>> NewIdempotentProducer(
    const KafkaConnection& connection, RdKafka::EventCb* events, RdKafka::DeliveryReportCb* reports,
    const KafkaProperties& properties);

// A consumer in group `group` subscribed to `topics` that commits by itself (no auto commit),
// starts a new group at the earliest record (records may be published before any consumer
// joined), and leaves the group after `session_timeout_ms` without a heartbeat; `properties` on
// top.
struct GroupConsumerSpec {
  std::string group;
  std::vector<std::string> topics;
  uint32_t session_timeout_ms = 10'000;
  KafkaProperties properties;
};
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> NewGroupConsumer(
    const KafkaConnection& connection, RdKafka::EventCb* events, RdKafka::RebalanceCb* rebalances,
    const GroupConsumerSpec& spec);

// "topic[0,1,2] other[0]" for a rebalance's log line.
std::string DescribePartitions(const std::vector<RdKafka::TopicPartition*>& partitions);

// librdkafka's log lines and errors, into our log (rate-limited) instead of its own stderr. Also
// notes a fatal error (for a producer: that handle can produce nothing any more, an idempotent
// producer's sequence broke) and how the brokers last refused this client.
class KafkaEventLog : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override;
  // How the brokers last refused this client (a login refused; TLS that failed: a certificate
  // not trusted, or not of the broker's host), as librdkafka said it; empty if they never did.
  std::string Refusal() const;
  std::atomic<bool> fatal{false};

 private:
  mutable std::mutex mutex_;
  std::string refusal_;
};

// Creates `topics` (CreateKafkaTopics) through `producer`, trying again each second while the
// brokers do not answer, until `patience` has passed. A refusal the brokers give this client
// (`events`, the producer's) ends it at once, PERMISSION_DENIED: waiting does not mend a login or
// a certificate, and the reason beats a timeout.
struct TopicsSpec {
  std::vector<std::string> topics;
  uint32_t partitions = 1;
  uint32_t replication_factor = 1;
  KafkaProperties config;  // retention.ms, ...
};
absl::Status CreateTopicsPatiently(RdKafka::Producer* producer, const KafkaEventLog& events,
                                   const TopicsSpec& spec, std::chrono::milliseconds patience);

}  // namespace im::logic
