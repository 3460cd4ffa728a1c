#include "logic/group/kafka_client.h"

#include <algorithm>
#include <map>
#include <thread>

#include "common/logging.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "logic/group/kafka_admin.h"

namespace im::logic {

absl::Status ConfigureKafkaClient(RdKafka::Conf* conf, RdKafka::EventCb* events,
                                  const KafkaConnection& connection,
                                  const KafkaProperties& properties) {
  std::string error;
  if (conf->set("event_cb", events, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  KafkaProperties all = KafkaConnectionProperties(connection);
  all.insert(all.end(), properties.begin(), properties.end());
  for (const auto& [name, value] : all) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(fmt::format(
          "kafka property {}={}: {}", name, name == "sasl.password" ? "(hidden)" : value, error));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RdKafka::Producer>> NewIdempotentProducer(
    const KafkaConnection& connection, RdKafka::EventCb* events, RdKafka::DeliveryReportCb* reports,
    const KafkaProperties& properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  KafkaProperties all = {{"enable.idempotence", "true"}, {"acks", "all"}};
  all.insert(all.end(), properties.begin(), properties.end());
  if (absl::Status status = ConfigureKafkaClient(conf.get(), events, connection, all);
      !status.ok()) {
    return status;
  }
  std::string error;
  if (conf->set("dr_cb", reports, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (!producer) return absl::InvalidArgumentError("kafka producer: " + error);
  return producer;
}

absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> NewGroupConsumer(
    const KafkaConnection& connection, RdKafka::EventCb* events, RdKafka::RebalanceCb* rebalances,
    const GroupConsumerSpec& spec) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  KafkaProperties all = {{"group.id", spec.group},
                         {"enable.auto.commit", "false"},
                         {"auto.offset.reset", "earliest"},
                         {"session.timeout.ms", std::to_string(spec.session_timeout_ms)},
                         {"heartbeat.interval.ms",
                          std::to_string(std::max<uint32_t>(spec.session_timeout_ms / 10, 100))},
                         // The broker answers a waiting fetch as soon as a record arrives, so this
                         // bounds only how often an idle consumer asks again (an idle local
                         // cluster's broker: 85 ms of CPU a second at 10 ms, 40 at 200 ms).
                         {"fetch.wait.max.ms", "200"}};
  all.insert(all.end(), spec.properties.begin(), spec.properties.end());
  if (absl::Status status = ConfigureKafkaClient(conf.get(), events, connection, all);
      !status.ok()) {
    return status;
  }
  std::string error;
  if (conf->set("rebalance_cb", rebalances, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) return absl::InvalidArgumentError("kafka consumer: " + error);
  if (RdKafka::ErrorCode code = consumer->subscribe(spec.topics); code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        fmt::format("subscribe to {}: {}", fmt::join(spec.topics, ","), RdKafka::err2str(code)));
  }
  return consumer;
}

absl::Status CreateTopicsPatiently(RdKafka::Producer* producer, const KafkaEventLog& events,
                                   const TopicsSpec& spec, std::chrono::milliseconds patience) {
  constexpr std::chrono::milliseconds kAdminTimeout{5'000};
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    absl::Status status =
        CreateKafkaTopics(producer->c_ptr(), spec.topics, static_cast<int>(spec.partitions),
                          static_cast<int>(spec.replication_factor), kAdminTimeout, spec.config);
    if (status.ok() || status.code() == absl::StatusCode::kInvalidArgument) return status;
    // The refusal's error event comes by a poll (the producer's own thread may not run yet).
    producer->poll(0);
    if (const std::string refusal = events.Refusal(); !refusal.empty()) {
      return absl::PermissionDeniedError("the brokers refused this client: " + refusal);
    }
    if (std::chrono::steady_clock::now() >= give_up) return status;
    spdlog::warn("kafka: cannot create topics {} yet ({}); retrying", fmt::join(spec.topics, ", "),
                 status.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

std::string DescribePartitions(const std::vector<RdKafka::TopicPartition*>& partitions) {
  std::map<std::string, std::vector<int32_t>> by_topic;
  for (const RdKafka::TopicPartition* partition : partitions) {
    by_topic[partition->topic()].push_back(partition->partition());
  }
  std::string text;
  for (const auto& [topic, numbers] : by_topic) {
    if (!text.empty()) text += ' ';
    text += fmt::format("{}[{}]", topic, fmt::join(numbers, ","));
  }
  return text.empty() ? "nothing" : text;
}

void KafkaEventLog::event_cb(RdKafka::Event& event) {
  if (event.type() == RdKafka::Event::EVENT_ERROR && event.fatal()) {
    spdlog::error("kafka: fatal error: {}", event.str());
    fatal = true;
  } else if (event.type() == RdKafka::Event::EVENT_ERROR &&
             (event.err() == RdKafka::ERR__AUTHENTICATION || event.err() == RdKafka::ERR__SSL)) {
    IM_LOG_RATE_LIMITED(spdlog::level::err, "kafka refused this client: {}", event.str());
    std::lock_guard<std::mutex> lock(mutex_);
    refusal_ = event.str();
  } else if (event.type() == RdKafka::Event::EVENT_ERROR) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka: {}", event.str());
  } else if (event.type() == RdKafka::Event::EVENT_LOG &&
             event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka {}: {}", event.fac(), event.str());
  }
}

std::string KafkaEventLog::Refusal() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return refusal_;
}

}  // namespace im::logic
