#include "logic/group/kafka_admin.h"

#include <algorithm>
#include <functional>
#include <map>

#include "fmt/format.h"

namespace im::logic {
namespace {

// What one admin request's result event says about each topic or group it named.
struct ItemError {
  std::string name;
  rd_kafka_resp_err_t code;
};

// Sends one admin request through `send` (which queues its result on the given queue), waits
// for the result and checks each item's error, ignoring the codes in `fine`.
absl::Status RunAdminRequest(
    rd_kafka_t* client, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout,
    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& send,
    const std::function<std::vector<ItemError>(const rd_kafka_event_t*)>& items,
    const std::vector<rd_kafka_resp_err_t>& fine) {
  char error[512];
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(client, op);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), error,
                                            sizeof error);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client);
  send(options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1'000);
  absl::Status status = absl::OkStatus();
  if (event == nullptr) {
    status = absl::UnavailableError(
        fmt::format("{}: no answer within {} ms", rd_kafka_name(client), timeout.count()));
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(rd_kafka_event_error_string(event));
  } else {
    for (const ItemError& item : items(event)) {
      if (item.code == RD_KAFKA_RESP_ERR_NO_ERROR ||
          std::find(fine.begin(), fine.end(), item.code) != fine.end()) {
        continue;
      }
      status =
          absl::UnavailableError(fmt::format("{}: {}", item.name, rd_kafka_err2str(item.code)));
      break;
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  return status;
}

std::vector<ItemError> TopicErrors(const rd_kafka_topic_result_t** results, size_t count) {
  std::vector<ItemError> errors;
  for (size_t i = 0; i < count; ++i) {
    errors.push_back(
        {rd_kafka_topic_result_name(results[i]), rd_kafka_topic_result_error(results[i])});
  }
  return errors;
}

}  // namespace

absl::Status CreateKafkaTopics(rd_kafka_t* client, const std::vector<std::string>& topics,
                               int partitions, int replication_factor,
                               std::chrono::milliseconds timeout, const KafkaProperties& config) {
  char error[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  absl::Status status = absl::OkStatus();
  for (const std::string& name : topics) {
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), partitions, replication_factor, error, sizeof error);
    if (topic == nullptr) {
      status = absl::InvalidArgumentError(fmt::format("topic {}: {}", name, error));
      break;
    }
    new_topics.push_back(topic);
    for (const auto& [key, value] : config) {
      if (rd_kafka_NewTopic_set_config(topic, key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::InvalidArgumentError(fmt::format("topic {}: config {}", name, key));
      }
    }
    if (!status.ok()) break;
  }
  if (status.ok()) {
    status = RunAdminRequest(
        client, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout,
        [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
          rd_kafka_CreateTopics(client, new_topics.data(), new_topics.size(), options, queue);
        },
        [](const rd_kafka_event_t* event) {
          size_t count = 0;
          const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
              rd_kafka_event_CreateTopics_result(const_cast<rd_kafka_event_t*>(event)), &count);
          return TopicErrors(results, count);
        },
        {RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS});
  }
  for (rd_kafka_NewTopic_t* topic : new_topics) rd_kafka_NewTopic_destroy(topic);
  return status;
}

absl::StatusOr<std::map<std::string, std::string>> DescribeKafkaTopicConfig(
    rd_kafka_t* client, const std::string& topic, std::chrono::milliseconds timeout) {
  std::map<std::string, std::string> entries;
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  absl::Status status = RunAdminRequest(
      client, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout,
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_DescribeConfigs(client, &resource, 1, options, queue);
      },
      [&entries](const rd_kafka_event_t* event) {
        size_t count = 0;
        const rd_kafka_ConfigResource_t** results = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(const_cast<rd_kafka_event_t*>(event)), &count);
        std::vector<ItemError> errors;
        for (size_t i = 0; i < count; ++i) {
          errors.push_back({rd_kafka_ConfigResource_name(results[i]),
                            rd_kafka_ConfigResource_error(results[i])});
          size_t config_count = 0;
          const rd_kafka_ConfigEntry_t** configs =
              rd_kafka_ConfigResource_configs(results[i], &config_count);
          for (size_t j = 0; j < config_count; ++j) {
            const char* value = rd_kafka_ConfigEntry_value(configs[j]);
            entries[rd_kafka_ConfigEntry_name(configs[j])] = value != nullptr ? value : "";
          }
        }
        return errors;
      },
      {});
  rd_kafka_ConfigResource_destroy(resource);
  if (!status.ok()) return status;
  return entries;
}

absl::Status DeleteKafkaTopics(rd_kafka_t* client, const std::vector<std::string>& topics,
                               std::chrono::milliseconds timeout) {
  std::vector<rd_kafka_DeleteTopic_t*> deletions;
  for (const std::string& name : topics)
    deletions.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  absl::Status status = RunAdminRequest(
      client, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout,
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_DeleteTopics(client, deletions.data(), deletions.size(), options, queue);
      },
      [](const rd_kafka_event_t* event) {
        size_t count = 0;
        const rd_kafka_topic_result_t** results = rd_kafka_DeleteTopics_result_topics(
            rd_kafka_event_DeleteTopics_result(const_cast<rd_kafka_event_t*>(event)), &count);
        return TopicErrors(results, count);
      },
      {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART});
  for (rd_kafka_DeleteTopic_t* deletion : deletions) rd_kafka_DeleteTopic_destroy(deletion);
  return status;
}

absl::Status DeleteKafkaConsumerGroup(rd_kafka_t* client, const std::string& group,
                                      std::chrono::milliseconds timeout) {
  rd_kafka_DeleteGroup_t* deletion = rd_kafka_DeleteGroup_new(group.c_str());
  absl::Status status = RunAdminRequest(
      client, RD_KAFKA_ADMIN_OP_DELETEGROUPS, timeout,
      [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
        rd_kafka_DeleteGroups(client, &deletion, 1, options, queue);
      },
      [](const rd_kafka_event_t* event) {
        size_t count = 0;
        const rd_kafka_group_result_t** results = rd_kafka_DeleteGroups_result_groups(
            rd_kafka_event_DeleteGroups_result(const_cast<rd_kafka_event_t*>(event)), &count);
        std::vector<ItemError> errors;
        for (size_t i = 0; i < count; ++i) {
          const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i]);
          errors.push_back(
              {rd_kafka_group_result_name(results[i]),
               error != nullptr ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR});
        }
        return errors;
      },
      {RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND});
  rd_kafka_DeleteGroup_destroy(deletion);
  return status;
}

absl::StatusOr<KafkaHandle> NewKafkaAdminClient(const KafkaConnection& connection) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [name, value] : KafkaConnectionProperties(connection)) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(
          fmt::format("kafka {} ({}): {}", connection.brokers, name, error));
    }
  }
  // rd_kafka_new takes the configuration only when it succeeds.
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (handle == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(fmt::format("kafka admin client: {}", error));
  }
  return KafkaHandle(handle);
}

}  // namespace im::logic
