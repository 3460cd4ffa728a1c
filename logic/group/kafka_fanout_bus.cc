#include "logic/group/kafka_fanout_bus.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "logic/group/kafka_admin.h"
#include "logic/group/kafka_client.h"

namespace im::logic {
namespace {

constexpr int kPollMs = 100;
constexpr std::chrono::milliseconds kMaxReplaceBackoff{5'000};
// A record librdkafka has not delivered after this long comes back as failed; by then this node
// has pushed it itself, unless the producer made progress all along.
constexpr uint32_t kDeliveryTimeoutMs = 60'000;

}  // namespace

KafkaFanoutBus::KafkaFanoutBus(const LogicOptions& options, LogicMetrics* metrics)
    : options_(options.kafka),
      client_id_(options.logic_id),
      producer_queue_(options.fanout_queue),
      batch_max_(options.fanout_batch_max),
      metrics_(metrics),
      small_topic_(options.kafka.topic_prefix + "fanout"),
      large_topic_(options.kafka.topic_prefix + "fanout.large"),
      delivered_(options.fanout_remembered_conversations),
      unacked_(std::chrono::milliseconds(options.kafka.fallback_after_ms), common::SteadyMillis),
      fallback_(options.fanout_queue, options.fanout_batch_max, metrics) {}

absl::Status KafkaFanoutBus::CreateProducer() {
  absl::StatusOr<std::unique_ptr<RdKafka::Producer>> producer = NewIdempotentProducer(
      options_, &producer_events_, &delivery_reports_,
      {{"client.id", client_id_},
       {"linger.ms", "1"},  // a group message waits at most 1 ms for company
       // Falling back is UnackedRecords' call; librdkafka gives up only much later.
       {"message.timeout.ms",
        std::to_string(std::max<uint32_t>(kDeliveryTimeoutMs, 2 * options_.fallback_after_ms))},
       {"queue.buffering.max.messages", std::to_string(producer_queue_)}});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  return absl::OkStatus();
}

KafkaFanoutBus::~KafkaFanoutBus() { Stop(); }

absl::Status KafkaFanoutBus::CreateTopics() {
  return CreateTopicsPatiently(producer_.get(), producer_events_,
                               {{small_topic_, large_topic_},
                                options_.partitions,
                                options_.replication_factor,
                                {{"retention.ms", std::to_string(options_.retention_ms)}}},
                               std::chrono::milliseconds(options_.startup_timeout_ms));
}

absl::Status KafkaFanoutBus::StartConsumer(const std::string& topic, LaneConsumer& lane) {
  // Committed after the pushes.
  absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> consumer =
      NewGroupConsumer(options_, &events_, &lane,
                       {options_.consumer_group, {topic}, options_.session_timeout_ms, {}});
  if (!consumer.ok()) return consumer.status();
  lane.consumer = *std::move(consumer);
  return absl::OkStatus();
}

absl::Status KafkaFanoutBus::Start(Deliver deliver) {
  deliver_ = std::move(deliver);
  if (absl::Status status = CreateProducer(); !status.ok()) return status;
  if (absl::Status status = fallback_.Start([this](const auto& batch) { DeliverOnce(batch); });
      !status.ok()) {
    return status;
  }
  if (absl::Status status = CreateTopics(); !status.ok()) {
    // A refusal stays one (the configuration to mend); anything else is the brokers' absence.
    const absl::StatusCode code = status.code() == absl::StatusCode::kPermissionDenied
                                      ? status.code()
                                      : absl::StatusCode::kUnavailable;
    return absl::Status(
        code, fmt::format("kafka {}: cannot create topics {} and {}: {}", options_.brokers,
                          small_topic_, large_topic_, status.ToString()));
  }
  for (FanoutLane lane : {FanoutLane::kSmall, FanoutLane::kLarge}) {
    if (absl::Status status = StartConsumer(TopicOf(lane), LaneOf(lane)); !status.ok()) {
      return status;
    }
  }
  started_ = true;
  threads_.emplace_back([this] { PollProducer(); });
  for (LaneConsumer& lane : lanes_) {
    threads_.emplace_back([this, &lane] { Consume(lane); });
  }
  spdlog::info("fan-out on kafka {}: topics {} and {}, consumer group {}", options_.brokers,
               small_topic_, large_topic_, options_.consumer_group);
  return absl::OkStatus();
}

void KafkaFanoutBus::Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
                             HandedOver handed_over) {
  const std::string value = record.SerializeAsString();
  const std::string& key = record.message().conv_id();
  // The delivery report finds the record again by the id in the message's opaque pointer.
  const uint64_t id = unacked_.Add({record, lane, std::move(handed_over), 0});
  const RdKafka::ErrorCode code = [&] {
    std::shared_lock<std::shared_mutex> lock(producer_mutex_);
    if (!producer_) return RdKafka::ERR__STATE;  // being replaced after a fatal error
    return producer_->produce(TopicOf(lane), RdKafka::Topic::PARTITION_UA,
                              RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                              value.size(), key.data(), key.size(), 0,
                              reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  }();
  if (code == RdKafka::ERR_NO_ERROR) return;
  std::optional<UnackedRecords::Entry> entry = unacked_.Take(id, /*acknowledged=*/false);
  if (!entry) return;  // fell back already, from the producer's thread
  // The producer's queue is full or the producer failed for good: push from here.
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "kafka refused {}#{} ({}): pushing it directly",
                      record.message().conv_id(), record.message().seq(), RdKafka::err2str(code));
  FallBack(std::move(*entry));
}

void KafkaFanoutBus::DeliveryReports::dr_cb(RdKafka::Message& message) {
  const bool acknowledged = message.err() == RdKafka::ERR_NO_ERROR;
  std::optional<UnackedRecords::Entry> entry = bus_->unacked_.Take(
      static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message.msg_opaque())), acknowledged);
  if (!entry) return;  // pushed directly while the producer stalled
  if (acknowledged) {
    bus_->metrics_->fanout_published_kafka.Increment();
    if (entry->handed_over) entry->handed_over();
    return;
  }
  IM_LOG_RATE_LIMITED(
      spdlog::level::warn,
      "kafka did not take a fan-out record ({}, {}persisted): pushing it directly",
      message.errstr(),
      message.status() == RdKafka::Message::MSG_STATUS_NOT_PERSISTED ? "not " : "possibly ");
  bus_->FallBack(std::move(*entry));
}

void KafkaFanoutBus::FallBack(UnackedRecords::Entry entry) {
  metrics_->fanout_kafka_fallbacks.Increment();
  fallback_.Publish(entry.record, entry.lane, std::move(entry.handed_over));
}

void KafkaFanoutBus::DeliverOnce(const std::vector<im::v1::FanoutRecord>& batch) {
  std::vector<bool> first_time(batch.size());
  size_t repeats = 0;
  const im::v1::FanoutRecord* first_repeat = nullptr;
  for (size_t i = 0; i < batch.size(); ++i) {
    const im::v1::Message& message = batch[i].message();
    first_time[i] = delivered_.FirstTime(message.conv_id(), message.seq());
    if (first_time[i]) continue;
    if (repeats++ == 0) first_repeat = &batch[i];
  }
  if (repeats == 0) {
    deliver_(batch);  // the usual case: nothing to copy
    return;
  }
  metrics_->fanout_repeats_skipped.Increment(static_cast<double>(repeats));
  IM_LOG_RATE_LIMITED(spdlog::level::info,
                      "fan-out: {} of {} records delivered by this node already, not pushed "
                      "again (first {}#{})",
                      repeats, batch.size(), first_repeat->message().conv_id(),
                      first_repeat->message().seq());
  std::vector<im::v1::FanoutRecord> fresh;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (first_time[i]) fresh.push_back(batch[i]);
  }
  if (!fresh.empty()) deliver_(fresh);
}

void KafkaFanoutBus::PollProducer() {
  // Delivery reports are served here, and the records of a stalled producer fall back.
  // After a failed replacement, the next attempt waits longer each time (Publish falls back).
  std::chrono::milliseconds replace_backoff{kPollMs};
  while (!stopping_producer_.load()) {
    if (producer_events_.fatal.load() || !producer_) ReplaceProducer();
    if (producer_) {
      replace_backoff = std::chrono::milliseconds(kPollMs);
      producer_->poll(kPollMs);  // only this thread replaces it
    } else {
      std::this_thread::sleep_for(replace_backoff);
      replace_backoff = std::min(2 * replace_backoff, kMaxReplaceBackoff);
    }
    std::vector<UnackedRecords::Entry> stalled = unacked_.TakeStalled();
    if (stalled.empty()) continue;
    spdlog::warn("kafka acknowledged nothing for {} ms: pushing {} waiting records directly",
                 options_.fallback_after_ms, stalled.size());
    for (UnackedRecords::Entry& entry : stalled) FallBack(std::move(entry));
  }
}

void KafkaFanoutBus::LaneConsumer::rebalance_cb(RdKafka::KafkaConsumer* rebalanced,
                                                RdKafka::ErrorCode err,
                                                std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool assigned = err == RdKafka::ERR__ASSIGN_PARTITIONS;
  spdlog::info("kafka consumer {}: {} {}", rebalanced->name(), assigned ? "assigned" : "revoked",
               DescribePartitions(partitions));
  if (assigned) {
    rebalanced->assign(partitions);
  } else {
    revoked_ = true;
    rebalanced->unassign();
  }
}

void KafkaFanoutBus::Consume(LaneConsumer& lane) {
  RdKafka::KafkaConsumer* consumer = lane.consumer.get();
  std::vector<im::v1::FanoutRecord> batch;
  // Next offset to commit, by (topic, partition).
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;
  while (!stopping_consumers_.load()) {
    batch.clear();
    offsets.clear();
    for (int timeout = kPollMs; batch.size() < batch_max_; timeout = 0) {
      std::unique_ptr<RdKafka::Message> message(consumer->consume(timeout));
      if (lane.TakeRevoked() && !batch.empty()) {
        // Else a reassignment to this same node (every rebalance of the eager protocol revokes
        // all) reads them again into this very batch, and they are pushed twice.
        spdlog::info(
            "kafka consumer {}: partitions revoked; {} records read before are left to "
            "be read again from the committed offsets",
            consumer->name(), batch.size());
        batch.clear();
        offsets.clear();
      }
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
    if (!batch.empty()) DeliverOnce(batch);
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

void KafkaFanoutBus::ReplaceProducer() {
  std::unique_lock<std::shared_mutex> lock(producer_mutex_);
  if (producer_) {
    char reason[512] = "";
    rd_kafka_fatal_error(producer_->c_ptr(), reason, sizeof(reason));
    spdlog::error(
        "kafka producer failed for good ({}): making a new one; the records it held "
        "are pushed from here",
        reason);
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);  // purged and failed records come back as delivery reports: fallback
    producer_.reset();
  }
  producer_events_.fatal = false;
  if (absl::Status status = CreateProducer(); !status.ok()) {
    producer_.reset();
    IM_LOG_RATE_LIMITED(spdlog::level::err, "kafka producer: cannot make a new one: {}",
                        status.ToString());
    return;
  }
  metrics_->kafka_producer_replacements.Increment();
  spdlog::info("kafka producer: a new one is in place");
}

absl::Status KafkaFanoutBus::InjectFatalProducerErrorForTest() {
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  if (!producer_) return absl::FailedPreconditionError("no producer");
  const rd_kafka_resp_err_t err = rd_kafka_test_fatal_error(
      producer_->c_ptr(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by a test");
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(std::string("rd_kafka_test_fatal_error: ") + rd_kafka_err2str(err));
  }
  return absl::OkStatus();
}

void KafkaFanoutBus::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_consumers_ = true;
  if (started_) {
    // Consumers first (their batches finish and commit), then whatever is still unacknowledged
    // gets its chance on Kafka and, failing that, is pushed from here.
    for (size_t i = 1; i < threads_.size(); ++i) threads_[i].join();
    for (LaneConsumer& lane : lanes_) lane.consumer->close();
  }
  if (std::shared_lock<std::shared_mutex> lock(producer_mutex_); producer_) {
    producer_->flush(static_cast<int>(options_.fallback_after_ms));
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);  // purged records come back as failed delivery reports: fallback
  }
  for (UnackedRecords::Entry& entry : unacked_.TakeAll()) FallBack(std::move(entry));
  stopping_producer_ = true;
  if (!threads_.empty()) threads_[0].join();
  fallback_.Stop();
}

absl::Status KafkaFanoutBus::CheckReachable(std::chrono::milliseconds timeout) {
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
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
