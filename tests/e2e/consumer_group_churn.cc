#include "tests/e2e/consumer_group_churn.h"

#include <librdkafka/rdkafkacpp.h>

#include <memory>
#include <vector>

namespace im::e2e {

ConsumerGroupChurn::ConsumerGroupChurn(logic::KafkaConnection kafka, std::string group,
                                       std::string topic, std::chrono::milliseconds period)
    : kafka_(std::move(kafka)),
      group_(std::move(group)),
      topic_(std::move(topic)),
      period_(period) {}

ConsumerGroupChurn::~ConsumerGroupChurn() { Stop(); }

void ConsumerGroupChurn::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ConsumerGroupChurn::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::string ConsumerGroupChurn::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

bool ConsumerGroupChurn::Fail(std::string why) {
  std::lock_guard<std::mutex> lock(mutex_);
  error_ = std::move(why);
  return false;
}

void ConsumerGroupChurn::Run() {
  while (!stopping_.load()) {
    const auto next = std::chrono::steady_clock::now() + period_;
    if (!JoinAndLeave()) return;
    std::this_thread::sleep_until(next);
  }
}

bool ConsumerGroupChurn::JoinAndLeave() {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  logic::KafkaProperties properties = logic::KafkaConnectionProperties(kafka_);
  properties.insert(properties.end(),
                    {{"group.id", group_}, {"enable.auto.commit", "false"}, {"log_level", "3"}});
  for (const auto& [name, value] : properties) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return Fail(name + ": " + error);
    }
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) {
    return Fail("consumer: " + error);
  }
  if (consumer->subscribe({topic_}) != RdKafka::ERR_NO_ERROR) {
    return Fail("cannot subscribe to " + topic_);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool assigned = false;
  while (!assigned && !stopping_.load() && std::chrono::steady_clock::now() < give_up) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(50));
    std::vector<RdKafka::TopicPartition*> partitions;
    consumer->assignment(partitions);
    assigned = !partitions.empty();
    RdKafka::TopicPartition::destroy(partitions);
  }
  consumer->close();  // leaves the group: the second rebalance
  if (assigned) {
    joins_.fetch_add(1);
  } else if (!stopping_.load()) {
    return Fail("not assigned a partition of " + topic_ + " within 30 s");
  }
  return true;
}

}  // namespace im::e2e
