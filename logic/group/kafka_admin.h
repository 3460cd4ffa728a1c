#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "logic/group/kafka_connection.h"

namespace im::logic {

// Topic and consumer-group administration through librdkafka's admin API, which its C++ binding
// does not wrap. Each call blocks its thread for at most `timeout`; any thread may call it on a
// handle that lives until it returns. UNAVAILABLE when the broker does not answer or refuses,
// INVALID_ARGUMENT for a name or count it can never take.

// Creates `topics` with the topic settings in `config` (retention.ms, ...); one that exists
// already counts as created, whatever its settings.
absl::Status CreateKafkaTopics(rd_kafka_t* client, const std::vector<std::string>& topics,
                               int partitions, int replication_factor,
                               std::chrono::milliseconds timeout,
                               const KafkaProperties& config = {});

// The settings of `topic` as the broker applies them (its defaults included), by name.
absl::StatusOr<std::map<std::string, std::string>> DescribeKafkaTopicConfig(
    rd_kafka_t* client, const std::string& topic, std::chrono::milliseconds timeout);

// Deletes `topics`; one that does not exist counts as deleted.
absl::Status DeleteKafkaTopics(rd_kafka_t* client, const std::vector<std::string>& topics,
                               std::chrono::milliseconds timeout);

// Deletes a consumer group and its committed offsets; an unknown group counts as deleted. Fails
// while the group has members.
absl::Status DeleteKafkaConsumerGroup(rd_kafka_t* client, const std::string& group,
                                      std::chrono::milliseconds timeout);

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

// A client of the brokers `connection` names, logged in as it says, that only serves admin
// requests (a producer that never produces).
absl::StatusOr<KafkaHandle> NewKafkaAdminClient(const KafkaConnection& connection);

}  // namespace im::logic
