#include "logic/webhooks/kafka_webhook_bus.h"

#include <condition_variable>
#include <map>

#include "common/clock.h"
#include "common/logging.h"
#include "fmt/format.h"

namespace im::logic {
namespace {

constexpr int kPollMs = 100;
constexpr int kFlushOnStopMs = 2'000;
// A record librdkafka has not delivered after this long comes back failed; this node then
// delivers the event itself.
constexpr uint32_t kProduceTimeoutMs = 30'000;

}  // namespace

// The events of one consumed batch, and how many are still being delivered. Shared with the
// deliveries' callbacks, which may outlive a consumer that stopped waiting.
struct KafkaWebhookBus::Batch {
  std::mutex mutex;
  std::condition_variable done;
  size_t remaining = 0;
  std::vector<im::v1::WebhookEvent> abandoned;  // neither delivered nor given up
  bool stop = false;
};

KafkaWebhookBus::KafkaWebhookBus(const LogicOptions& options, LogicMetrics* metrics)
    : kafka_(options.kafka),
      webhooks_(options.webhooks),
      client_id_(options.logic_id + "-webhooks"),
      topic_(options.kafka.topic_prefix + "webhooks"),
      retry_topic_(options.kafka.topic_prefix + "webhooks.retry"),
      dead_topic_(options.kafka.topic_prefix + "webhooks.dead"),
      metrics_(metrics) {
  first_.topic = topic_;
  first_.group = webhooks_.consumer_group;
  retries_.topic = retry_topic_;
  retries_.group = webhooks_.consumer_group + ".retry";
  retries_.retries = true;
}

KafkaWebhookBus::~KafkaWebhookBus() { Stop(); }

absl::Status KafkaWebhookBus::CreateProducer() {
  absl::StatusOr<std::unique_ptr<RdKafka::Producer>> producer =
      NewIdempotentProducer(kafka_, &producer_events_, &delivery_reports_,
                            {{"client.id", client_id_},
                             {"linger.ms", "1"},
                             {"message.timeout.ms", std::to_string(kProduceTimeoutMs)},
                             {"queue.buffering.max.messages", std::to_string(webhooks_.queue)}});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  return absl::OkStatus();
}

absl::Status KafkaWebhookBus::CreateTopics() {
  return CreateTopicsPatiently(producer_.get(), producer_events_,
                               {{topic_, retry_topic_, dead_topic_},
                                kafka_.partitions,
                                kafka_.replication_factor,
                                {{"retention.ms", std::to_string(webhooks_.retention_ms)}}},
                               std::chrono::milliseconds(kafka_.startup_timeout_ms));
}

absl::Status KafkaWebhookBus::StartConsumer(Stage& stage) {
  // A batch is committed once every event of it is delivered, set aside or given up, which may
  // take its attempts' timeouts and backoffs (below WebhookOptions::WorstCaseDeliveryMs, which
  // is checked to stay below max.poll.interval.ms).
  absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> consumer =
      NewGroupConsumer(kafka_, &consumer_events_, &rebalances_,
                       {stage.group,
                        {stage.topic},
                        kafka_.session_timeout_ms,
                        {{"client.id", client_id_}, {"max.poll.interval.ms", "600000"}}});
  if (!consumer.ok()) return consumer.status();
  stage.consumer = *std::move(consumer);
  return absl::OkStatus();
}

absl::Status KafkaWebhookBus::Start(WebhookDelivery* delivery) {
  delivery_ = delivery;
  if (absl::Status status = CreateProducer(); !status.ok()) return status;
  if (absl::Status status = CreateTopics(); !status.ok()) {
    // A refusal stays one (the configuration to mend); anything else is the brokers' absence.
    return absl::Status(
        status.code() == absl::StatusCode::kPermissionDenied ? status.code()
                                                             : absl::StatusCode::kUnavailable,
        fmt::format("kafka {}: cannot create topics {}, {} and {}: {}", kafka_.brokers, topic_,
                    retry_topic_, dead_topic_, status.ToString()));
  }
  for (Stage* stage : {&first_, &retries_}) {
    if (absl::Status status = StartConsumer(*stage); !status.ok()) return status;
  }
  producer_thread_ = std::thread([this] { PollProducer(); });
  for (Stage* stage : {&first_, &retries_}) {
    stage->thread = std::thread([this, stage] { Consume(*stage); });
  }
  spdlog::info(
      "webhooks on kafka {}: topic {} (group {}), set aside on {} (group {}), dead letters {}",
      kafka_.brokers, topic_, first_.group, retry_topic_, retries_.group, dead_topic_);
  return absl::OkStatus();
}

void KafkaWebhookBus::DeliveryReports::dr_cb(RdKafka::Message& message) {
  std::unique_ptr<OnReport> on_report(static_cast<OnReport*>(message.msg_opaque()));
  if (on_report && *on_report) (*on_report)(message.err() == RdKafka::ERR_NO_ERROR);
}

void KafkaWebhookBus::Produce(const std::string& topic, const std::string& key,
                              const std::string& value, OnReport on_report) {
  auto pending = std::make_unique<OnReport>(std::move(on_report));
  const RdKafka::ErrorCode code = producer_->produce(
      topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, pending.get());
  if (code == RdKafka::ERR_NO_ERROR) {
    pending.release();  // the delivery report owns it now
    return;
  }
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka refused a record for {}: {}", topic,
                      RdKafka::err2str(code));
  (*pending)(false);
}

void KafkaWebhookBus::Publish(im::v1::WebhookEvent event, HandedOver handed_over) {
  const std::string value = event.SerializeAsString();
  const std::string key = event.id();
  Produce(topic_, key, value,
          [this, event = std::move(event),
           handed_over = std::move(handed_over)](bool acknowledged) mutable {
            if (!acknowledged) DeliverHere(std::move(event));
            if (handed_over) handed_over();
          });
}

void KafkaWebhookBus::DeliverHere(im::v1::WebhookEvent event) {
  metrics_->WebhookEvents(event.type(), "not_on_kafka").Increment();
  IM_LOG_RATE_LIMITED(spdlog::level::warn,
                      "webhook {} {}: kafka did not take it; this node delivers it", event.type(),
                      event.id());
  std::string payload = event.payload();
  delivery_->Deliver(
      std::move(event), [payload = std::move(payload)](WebhookDelivery::Result result) {
        if (result.outcome == WebhookDelivery::Outcome::kDelivered) return;
        IM_LOG_RATE_LIMITED(spdlog::level::err, "webhook not delivered after {} attempts ({}): {}",
                            result.attempts, result.last_error, payload);
      });
}

void KafkaWebhookBus::PollProducer() {
  while (!stopping_producer_.load()) producer_->poll(kPollMs);
}

void KafkaWebhookBus::Rebalances::rebalance_cb(RdKafka::KafkaConsumer* consumer,
                                               RdKafka::ErrorCode err,
                                               std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool assigned = err == RdKafka::ERR__ASSIGN_PARTITIONS;
  spdlog::info("kafka consumer {}: {} {}", consumer->name(), assigned ? "assigned" : "revoked",
               DescribePartitions(partitions));
  if (assigned) {
    consumer->assign(partitions);
  } else {
    consumer->unassign();
  }
}

void KafkaWebhookBus::Consume(Stage& stage) {
  RdKafka::KafkaConsumer* consumer = stage.consumer.get();
  std::vector<im::v1::WebhookEvent> events;
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;  // next to commit
  while (!stopping_consumer_.load()) {
    events.clear();
    offsets.clear();
    for (int timeout = kPollMs; events.size() < webhooks_.batch_max; timeout = 0) {
      std::unique_ptr<RdKafka::Message> message(consumer->consume(timeout));
      if (message->err() == RdKafka::ERR__TIMED_OUT) break;
      if (message->err() != RdKafka::ERR_NO_ERROR) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka webhook consumer: {}", message->errstr());
        break;
      }
      offsets[{message->topic_name(), message->partition()}] = message->offset() + 1;
      im::v1::WebhookEvent& event = events.emplace_back();
      if (!event.ParseFromArray(message->payload(), static_cast<int>(message->len()))) {
        IM_LOG_RATE_LIMITED(spdlog::level::err, "unreadable webhook record at {}[{}]@{}: skipped",
                            message->topic_name(), message->partition(), message->offset());
        events.pop_back();
      }
    }
    if (offsets.empty()) continue;
    // Left uncommitted when stopped midway: the next owner of the partitions delivers it all.
    if (!DeliverBatch(stage, std::move(events))) return;  // stopping
    std::vector<RdKafka::TopicPartition*> positions;
    for (const auto& [where, offset] : offsets) {
      positions.push_back(RdKafka::TopicPartition::create(where.first, where.second, offset));
    }
    if (RdKafka::ErrorCode code = consumer->commitSync(positions); code != RdKafka::ERR_NO_ERROR) {
      // After a rebalance the new owner delivers these again: repeats, not loss.
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka webhook commit failed: {}",
                          RdKafka::err2str(code));
    }
    RdKafka::TopicPartition::destroy(positions);
  }
}

bool KafkaWebhookBus::DeliverBatch(Stage& stage, std::vector<im::v1::WebhookEvent> events) {
  while (!events.empty()) {
    std::optional<std::vector<im::v1::WebhookEvent>> abandoned =
        DeliverOnce(stage, std::move(events));
    if (!abandoned) return false;
    events = std::move(*abandoned);
    if (events.empty()) break;
    // The HTTP client held too many events (fallback deliveries besides this batch), or Kafka
    // did not take an event set aside: these are tried again once they had a moment, and the
    // batch is committed only when they are done.
    IM_LOG_RATE_LIMITED(spdlog::level::warn,
                        "webhooks: {} events not taken by a full HTTP client or not set aside "
                        "on {}; trying again",
                        events.size(), retry_topic_);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (stopping_consumer_.load()) return false;
  }
  return true;
}

WebhookDelivery::Share KafkaWebhookBus::ShareOf(const Stage& stage,
                                                const im::v1::WebhookEvent& event) const {
  if (!stage.retries) return {webhooks_.hold_attempts, 0};
  return {1, std::max<int64_t>(event.retry_at_ms() - common::UnixMillis(), 0)};
}

std::optional<std::vector<im::v1::WebhookEvent>> KafkaWebhookBus::DeliverOnce(
    Stage& stage, std::vector<im::v1::WebhookEvent> events) {
  auto batch = std::make_shared<Batch>();
  batch->remaining = events.size();
  {
    std::lock_guard lock(batch_mutex_);
    stage.batch = batch;
    batch->stop = stopping_consumer_.load();  // Stop marked the previous batch, if any
  }
  for (im::v1::WebhookEvent& event : events) {
    auto kept = std::make_shared<im::v1::WebhookEvent>(event);
    const WebhookDelivery::Share share = ShareOf(stage, event);
    delivery_->Deliver(
        std::move(event),
        [this, batch, kept](WebhookDelivery::Result result) {
          auto finish = [batch, kept](bool abandoned) {
            std::lock_guard lock(batch->mutex);
            if (abandoned) batch->abandoned.push_back(std::move(*kept));
            if (--batch->remaining == 0) batch->done.notify_all();
          };
          // Done once its dead letter or its retry record is on Kafka (or failed to get there):
          // the HTTP client's thread, where this runs, is not held while Kafka answers.
          switch (result.outcome) {
            case WebhookDelivery::Outcome::kGaveUp:
              return WriteDeadLetter(*kept, result, [finish] { finish(false); });
            case WebhookDelivery::Outcome::kDeferred:
              // Not on Kafka: kept in the batch, and tried again from where it was.
              return SetAside(*kept, result, [finish](bool on_kafka) { finish(!on_kafka); });
            case WebhookDelivery::Outcome::kAbandoned:
              return finish(true);
            case WebhookDelivery::Outcome::kDelivered:
              return finish(false);
          }
        },
        share);
  }
  std::unique_lock lock(batch->mutex);
  batch->done.wait(lock, [&] { return batch->remaining == 0 || batch->stop; });
  if (batch->stop) return std::nullopt;
  return std::move(batch->abandoned);
}

void KafkaWebhookBus::SetAside(im::v1::WebhookEvent event, const WebhookDelivery::Result& result,
                               std::function<void(bool on_kafka)> written) {
  const int64_t wait_ms = delivery_->BackoffMs(result.attempts + 1);
  event.set_attempts(result.attempts);
  event.set_retry_at_ms(common::UnixMillis() + wait_ms);
  IM_LOG_RATE_LIMITED(spdlog::level::warn,
                      "webhook {} {} to {}: attempt {} failed ({}); set aside on {}, next in {} ms",
                      event.type(), event.id(), result.url, result.attempts, result.last_error,
                      retry_topic_, wait_ms);
  const std::string type = event.type();
  Produce(retry_topic_, event.id(), event.SerializeAsString(),
          [this, type, written = std::move(written)](bool on_kafka) {
            if (on_kafka) metrics_->WebhookEvents(type, "set_aside").Increment();
            written(on_kafka);
          });
}

void KafkaWebhookBus::WriteDeadLetter(const im::v1::WebhookEvent& event,
                                      const WebhookDelivery::Result& result,
                                      std::function<void()> written) {
  im::v1::WebhookDeadLetter letter;
  *letter.mutable_event() = event;
  letter.set_url(result.url);
  letter.set_attempts(result.attempts);
  letter.set_last_error(result.last_error);
  letter.set_dead_ms(common::UnixMillis());
  Produce(dead_topic_, event.id(), letter.SerializeAsString(),
          [this, event, result, written = std::move(written)](bool on_kafka) {
            spdlog::error("webhook {} {} given up after {} attempts ({}); {}", event.type(),
                          event.id(), result.attempts, result.last_error,
                          on_kafka
                              ? "dead letter on " + dead_topic_
                              : "its dead letter was not written, payload: " + event.payload());
            written();
          });
}

void KafkaWebhookBus::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_consumer_ = true;
  for (Stage* stage : {&first_, &retries_}) {
    if (std::lock_guard lock(batch_mutex_); stage->batch) {
      std::lock_guard batch_lock(stage->batch->mutex);
      stage->batch->stop = true;
      stage->batch->done.notify_all();
    }
  }
  for (Stage* stage : {&first_, &retries_}) {
    if (!stage->thread.joinable()) continue;
    stage->thread.join();
    stage->consumer->close();
  }
  if (producer_) producer_->flush(kFlushOnStopMs);
  stopping_producer_ = true;
  if (producer_thread_.joinable()) producer_thread_.join();
  if (producer_) {
    // What Kafka still has not taken is failed now: its delivery reports deliver it from here
    // while the HTTP client still runs.
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);
  }
}

}  // namespace im::logic
