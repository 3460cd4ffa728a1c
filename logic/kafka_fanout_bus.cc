#include "logic/kafka_fanout_bus.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "fmt/format.h"

namespace im::logic {
namespace {

constexpr int kPollMs = 100;
constexpr int kAdminTimeoutMs = 5'000;

// Sets every property (and the event callback) or reports the first one librdkafka refuses.
absl::Status Configure(RdKafka::Conf* conf, RdKafka::EventCb* events,
                       const std::vector<std::pair<std::string, std::string>>& properties) {
  std::string error;
  if (conf->set("event_cb", events, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  for (const auto& [name, value] : properties) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(
          fmt::format("kafka property {}={}: {}", name, value, error));
    }
  }
  return absl::OkStatus();
}

// Creates `topics` (TOPIC_ALREADY_EXISTS is success) through librdkafka's admin API, which the
// C++ binding does not wrap.
absl::Status CreateTopicsOnce(rd_kafka_t* handle, const std::vector<std::string>& topics,
                              int partitions, int replication_factor) {
  char error[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const std::string& name : topics) {
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), partitions, replication_factor, error, sizeof error);
    if (topic == nullptr) {
      for (rd_kafka_NewTopic_t* t : new_topics) rd_kafka_NewTopic_destroy(t);
      return absl::InvalidArgumentError(fmt::format("topic {}: {}", name, error));
    }
    new_topics.push_back(topic);
  }
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, kAdminTimeoutMs, error, sizeof error);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
  rd_kafka_CreateTopics(handle, new_topics.data(), new_topics.size(), options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kAdminTimeoutMs + 1'000);
  absl::Status status = absl::OkStatus();
  if (event == nullptr) {
    status = absl::UnavailableError("no answer to CreateTopics");
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(rd_kafka_event_error_string(event));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count && status.ok(); ++i) {
      const rd_kafka_resp_err_t code = rd_kafka_topic_result_error(results[i]);
      if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        status = absl::UnavailableError(fmt::format(
            "topic {}: {}", rd_kafka_topic_result_name(results[i]), rd_kafka_err2str(code)));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  for (rd_kafka_NewTopic_t* t : new_topics) rd_kafka_NewTopic_destroy(t);
  return status;
}

}  // namespace

KafkaFanoutBus::KafkaFanoutBus(const LogicOptions& options, LogicMetrics* metrics)
    : options_(options.kafka),
      client_id_(options.logic_id),
      producer_queue_(options.fanout_queue),
      batch_max_(options.fanout_batch_max),
      metrics_(metrics),
      small_topic_(options.kafka.topic_prefix + "fanout"),
      large_topic_(options.kafka.topic_prefix + "fanout.large"),
      fallback_(options.fanout_queue, options.fanout_batch_max, metrics) {}

absl::Status KafkaFanoutBus::CreateProducer() {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status status = Configure(
          conf.get(), &events_,
          {{"bootstrap.servers", options_.brokers},
           {"client.id", client_id_},
           {"enable.idempotence", "true"},  // retries never duplicate or reorder a partition
           {"acks", "all"},
           {"linger.ms", "1"},  // a group message waits at most 1 ms for company
           {"message.timeout.ms", std::to_string(options_.fallback_after_ms)},
           {"queue.buffering.max.messages", std::to_string(producer_queue_)}});
      !status.ok()) {
    return status;
  }
  std::string error;
  if (conf->set("dr_cb", &delivery_reports_, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (!producer_) return absl::InvalidArgumentError("kafka producer: " + error);
  return absl::OkStatus();
}

KafkaFanoutBus::~KafkaFanoutBus() { Stop(); }

absl::Status KafkaFanoutBus::CreateTopics() {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.startup_timeout_ms);
  for (;;) {
    absl::Status status = CreateTopicsOnce(producer_->c_ptr(), {small_topic_, large_topic_},
                                           static_cast<int>(options_.partitions),
                                           static_cast<int>(options_.replication_factor));
    if (status.ok() || status.code() == absl::StatusCode::kInvalidArgument ||
        std::chrono::steady_clock::now() >= give_up) {
      return status;
    }
    spdlog::warn("kafka {}: cannot create topics yet ({}); retrying", options_.brokers,
                 status.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> KafkaFanoutBus::NewConsumer(
    const std::string& topic) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status status =
          Configure(conf.get(), &events_,
                    {{"bootstrap.servers", options_.brokers},
                     {"group.id", options_.consumer_group},
                     {"enable.auto.commit", "false"},  // committed after the pushes
                     // A group's first records may be published before any consumer joined.
                     {"auto.offset.reset", "earliest"},
                     {"session.timeout.ms", std::to_string(options_.session_timeout_ms)},
                     {"heartbeat.interval.ms",
                      std::to_string(std::max<uint32_t>(options_.session_timeout_ms / 10, 100))},
                     {"fetch.wait.max.ms", "10"}});
      !status.ok()) {
    return status;
  }
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) return absl::InvalidArgumentError("kafka consumer: " + error);
  if (RdKafka::ErrorCode code = consumer->subscribe({topic}); code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        fmt::format("subscribe to {}: {}", topic, RdKafka::err2str(code)));
  }
  return consumer;
}

absl::Status KafkaFanoutBus::Start(Deliver deliver) {
  deliver_ = std::move(deliver);
  if (absl::Status status = CreateProducer(); !status.ok()) return status;
  if (absl::Status status = fallback_.Start(deliver_); !status.ok()) return status;
  if (absl::Status status = CreateTopics(); !status.ok()) {
    return absl::UnavailableError(fmt::format("kafka {}: cannot create topics {} and {}: {}",
                                              options_.brokers, small_topic_, large_topic_,
                                              status.ToString()));
  }
  for (const std::string* topic : {&small_topic_, &large_topic_}) {
    absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> consumer = NewConsumer(*topic);
    if (!consumer.ok()) return consumer.status();
    consumers_.push_back(std::move(*consumer));
  }
  started_ = true;
  threads_.emplace_back([this] { PollProducer(); });
  for (auto& consumer : consumers_) {
    threads_.emplace_back([this, c = consumer.get()] { Consume(c); });
  }
  spdlog::info("fan-out on kafka {}: topics {} and {}, consumer group {}", options_.brokers,
               small_topic_, large_topic_, options_.consumer_group);
  return absl::OkStatus();
}

void KafkaFanoutBus::Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
                             HandedOver handed_over) {
  const std::string value = record.SerializeAsString();
  const std::string& key = record.message().conv_id();
  // The delivery report gets the callback back through the message's opaque pointer.
  auto* pending = new HandedOver(std::move(handed_over));
  const RdKafka::ErrorCode code = producer_->produce(
      TopicOf(lane), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, pending);
  if (code == RdKafka::ERR_NO_ERROR) return;
  std::unique_ptr<HandedOver> owned(pending);
  // The producer's queue is full or the producer failed for good: push from here.
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka refused {}#{} ({}): pushing it directly",
                      record.message().conv_id(), record.message().seq(), RdKafka::err2str(code));
  metrics_->fanout_kafka_fallbacks.Increment();
  fallback_.Publish(record, lane, std::move(*owned));
}

void KafkaFanoutBus::Events::event_cb(RdKafka::Event& event) {
  if (event.type() == RdKafka::Event::EVENT_ERROR) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka: {}", event.str());
  } else if (event.type() == RdKafka::Event::EVENT_LOG &&
             event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka {}: {}", event.fac(), event.str());
  }
}

void KafkaFanoutBus::DeliveryReports::dr_cb(RdKafka::Message& message) {
  std::unique_ptr<HandedOver> handed_over(static_cast<HandedOver*>(message.msg_opaque()));
  if (message.err() == RdKafka::ERR_NO_ERROR) {
    bus_->metrics_->fanout_published_kafka.Increment();
    if (handed_over && *handed_over) (*handed_over)();
    return;
  }
  IM_LOG_RATE_LIMITED(
      spdlog::level::warn,
      "kafka did not take a fan-out record ({}, {}persisted): pushing it directly",
      message.errstr(),
      message.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED ? "not " : "possibly ");
  bus_->FallBack(message, handed_over ? std::move(*handed_over) : HandedOver());
}

void KafkaFanoutBus::FallBack(const RdKafka::Message& message, HandedOver handed_over) {
  im::v1::FanoutRecord record;
  if (!record.ParseFromArray(message.payload(), static_cast<int>(message.len()))) {
    if (handed_over) handed_over();
    return;
  }
  metrics_->fanout_kafka_fallbacks.Increment();
  fallback_.Publish(record,
                    message.topic_name() == large_topic_ ? FanoutLane::kLarge : FanoutLane::kSmall,
                    std::move(handed_over));
}

void KafkaFanoutBus::PollProducer() {
  // Delivery reports (and so fallbacks) are served here.
  while (!stopping_producer_.load()) producer_->poll(kPollMs);
}

void KafkaFanoutBus::Consume(RdKafka::KafkaConsumer* consumer) {
  std::vector<im::v1::FanoutRecord> batch;
  // Next offset to commit, by (topic, partition).
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;
  while (!stopping_consumers_.load()) {
    batch.clear();
    offsets.clear();
    for (int timeout = kPollMs; batch.size() < batch_max_; timeout = 0) {
      std::unique_ptr<RdKafka::Message> message(consumer->consume(timeout));
      if (message->err() == RdKafka::ERR__TIMED_OUT) break;
      if (message->err() != RdKafka::ERR_NO_ERROR) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka consumer: {}", message->errstr());
        break;
      }
      offsets[{message->topic_name(), message->partition()}] = message->offset() + 1;
      im::v1::FanoutRecord record;
      if (!record.ParseFromArray(message->payload(), static_cast<int>(message->len()))) {
        IM_LOG_RATE_LIMITED(spdlog::level::err, "unreadable record at {}[{}]@{}: skipped",
                            message->topic_name(), message->partition(), message->offset());
        continue;
      }
      batch.push_back(std::move(record));
    }
    if (!batch.empty()) deliver_(batch);
    if (offsets.empty()) continue;
    std::vector<RdKafka::TopicPartition*> positions;
    for (const auto& [where, offset] : offsets) {
      positions.push_back(RdKafka::TopicPartition::create(where.first, where.second, offset));
    }
    if (RdKafka::ErrorCode code = consumer->commitSync(positions); code != RdKafka::ERR_NO_ERROR) {
      // After a rebalance the new owner delivers these again: duplicates, not loss.
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka commit failed: {}", RdKafka::err2str(code));
    }
    RdKafka::TopicPartition::destroy(positions);
  }
}

void KafkaFanoutBus::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_consumers_ = true;
  if (started_) {
    // Consumers first (their batches finish and commit), then whatever is still unacknowledged
    // gets its chance on Kafka and, failing that, is pushed from here.
    for (size_t i = 1; i < threads_.size(); ++i) threads_[i].join();
    for (auto& consumer : consumers_) consumer->close();
  }
  if (producer_) {
    producer_->flush(static_cast<int>(options_.fallback_after_ms));
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);  // purged records come back as failed delivery reports: fallback
  }
  stopping_producer_ = true;
  if (!threads_.empty()) threads_[0].join();
  fallback_.Stop();
}

absl::Status KafkaFanoutBus::CheckReachable(std::chrono::milliseconds timeout) {
  if (!producer_ || stopping_producer_.load()) return absl::UnavailableError("kafka: not running");
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode code =
      producer_->metadata(/*all_topics=*/false, nullptr, &raw, static_cast<int>(timeout.count()));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka ", options_.brokers, ": ", RdKafka::err2str(code)));
  }
  return absl::OkStatus();
}

}  // namespace im::logic
