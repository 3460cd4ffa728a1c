#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace im::logic {

// Topic and consumer-group administration through librdkafka's admin API, which its C++ binding
// does not wrap. Each call blocks its thread for at most `timeout`; any thread may call it on a
// handle that lives until it returns. UNAVAILABLE when the broker does not answer or refuses,
// INVALID_ARGUMENT for a name or count it can never take.

// Creates `topics`; one that exists already counts as created.
absl::Status CreateKafkaTopics(rd_kafka_t* client, const std::vector<std::string>& topics,
                               int partitions, int replication_factor,
                               std::chrono::milliseconds timeout);

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

// A client of `brokers` that only serves admin requests (a producer that never produces).
absl::StatusOr<KafkaHandle> NewKafkaAdminClient(const std::string& brokers);

}  // namespace im::logic
