// One contract for FanoutBus: the in-process bus, and the Kafka bus against the real broker that
// IM_TEST_KAFKA names (scripts/test.sh starts it; missing is a failure, never a skip). Topics and
// the consumer group carry a unique prefix: the broker is shared. The fallback when the broker
// stops is covered end to end (tests/e2e/group_test.cc, with a broker of the test's own).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/tls/testing/test_certificates.h"
#include "logic/group/in_process_fanout_bus.h"
#include "logic/group/kafka_admin.h"
#include "logic/group/kafka_fanout_bus.h"
#include "logic/tests/test_kafka.h"
#include "prometheus/registry.h"

namespace im::logic {
namespace {

std::string UniqueName() {
  std::random_device random;
  return "t" + std::to_string(random()) + std::to_string(random());
}

// Everything delivered, by conversation, in delivery order.
class Deliveries {
 public:
  FanoutBus::Deliver Sink() {
    return [this](const std::vector<im::v1::FanoutRecord>& batch) {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& record : batch) {
        by_conv_[record.message().conv_id()].push_back(record.message().seq());
        ++count_;
      }
      changed_.notify_all();
    };
  }
  bool WaitFor(size_t count, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return count_ >= count; });
  }
  std::map<std::string, std::vector<uint64_t>> by_conv() {
    std::lock_guard<std::mutex> lock(mutex_);
    return by_conv_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<uint64_t>> by_conv_;
  size_t count_ = 0;
};

im::v1::FanoutRecord Record(const std::string& conv_id, uint64_t seq) {
  im::v1::FanoutRecord record;
  record.mutable_message()->set_conv_id(conv_id);
  record.mutable_message()->set_seq(seq);
  record.mutable_message()->set_body("x");
  return record;
}

LogicOptions KafkaOptions(const std::string& brokers) {
  LogicOptions options;
  options.logic_id = "fanout-test";
  static_cast<KafkaConnection&>(options.kafka) = testing::TestKafkaConnection(brokers);
  options.kafka.topic_prefix = UniqueName() + ".";
  options.kafka.consumer_group = UniqueName();
  options.kafka.partitions = 4;
  options.kafka.fallback_after_ms = 1'000;
  options.kafka.startup_timeout_ms = 20'000;
  return options;
}

class InProcessBackend {
 public:
  explicit InProcessBackend(LogicMetrics* metrics) : bus_(1000, 50, metrics) {}
  FanoutBus& bus() { return bus_; }

 private:
  InProcessFanoutBus bus_;
};

class KafkaBackend {
 public:
  explicit KafkaBackend(LogicMetrics* metrics) : bus_(KafkaOptions(Brokers()), metrics) {}
  FanoutBus& bus() { return bus_; }

 private:
  static std::string Brokers() {
    const char* brokers = std::getenv("IM_TEST_KAFKA");
    if (brokers == nullptr || *brokers == '\0') {
      ADD_FAILURE() << "IM_TEST_KAFKA is not set (host:port of the test Kafka broker)";
      return "127.0.0.1:1";
    }
    return brokers;
  }
  KafkaFanoutBus bus_;
};

template <typename Backend>
class FanoutBusContractTest : public ::testing::Test {
 protected:
  FanoutBusContractTest() : metrics_(registry_), backend_(&metrics_) {}
  prometheus::Registry registry_;
  LogicMetrics metrics_;
  Backend backend_;
};

using Backends = ::testing::Types<InProcessBackend, KafkaBackend>;
TYPED_TEST_SUITE(FanoutBusContractTest, Backends);

TYPED_TEST(FanoutBusContractTest, EveryRecordArrivesOnceAndInOrderPerConversation) {
  Deliveries deliveries;
  FanoutBus& bus = this->backend_.bus();
  ASSERT_TRUE(bus.Start(deliveries.Sink()).ok());
  constexpr int kConversations = 6;
  constexpr uint64_t kPerConversation = 50;
  std::atomic<int> handed_over{0};
  for (uint64_t seq = 1; seq <= kPerConversation; ++seq) {
    for (int c = 0; c < kConversations; ++c) {
      bus.Publish(Record("g:c" + std::to_string(c), seq),
                  c % 2 == 0 ? FanoutLane::kSmall : FanoutLane::kLarge,
                  [&handed_over] { handed_over.fetch_add(1); });
    }
  }
  ASSERT_TRUE(deliveries.WaitFor(kConversations * kPerConversation, std::chrono::seconds(60)));
  bus.Stop();
  EXPECT_EQ(handed_over.load(), kConversations * static_cast<int>(kPerConversation));
  auto by_conv = deliveries.by_conv();
  ASSERT_EQ(by_conv.size(), static_cast<size_t>(kConversations));
  for (const auto& [conv, seqs] : by_conv) {
    ASSERT_EQ(seqs.size(), kPerConversation) << conv;
    for (uint64_t i = 0; i < kPerConversation; ++i) EXPECT_EQ(seqs[i], i + 1) << conv;
  }
}

TYPED_TEST(FanoutBusContractTest, StopDeliversWhatWasPublished) {
  Deliveries deliveries;
  FanoutBus& bus = this->backend_.bus();
  ASSERT_TRUE(bus.Start(deliveries.Sink()).ok());
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    bus.Publish(Record("g:stop", seq), FanoutLane::kSmall, {});
  }
  ASSERT_TRUE(deliveries.WaitFor(20, std::chrono::seconds(60)));
  bus.Stop();
  bus.Stop();  // idempotent
  EXPECT_EQ(deliveries.by_conv()["g:stop"].size(), 20u);
}

// A fatal producer error (an idempotent producer's broken sequence) leaves that producer unable to
// produce: the bus makes a new one, so records go through Kafka again instead of every one falling
// back until a restart, and none is lost on the way.
TEST(KafkaFanoutBusTest, AFatalProducerErrorMakesANewProducer) {
  const char* brokers = std::getenv("IM_TEST_KAFKA");
  ASSERT_TRUE(brokers != nullptr && *brokers != '\0') << "IM_TEST_KAFKA is not set";
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  KafkaFanoutBus bus(KafkaOptions(brokers), &metrics);
  Deliveries deliveries;
  ASSERT_TRUE(bus.Start(deliveries.Sink()).ok());
  bus.Publish(Record("g:fatal", 1), FanoutLane::kSmall, {});
  ASSERT_TRUE(deliveries.WaitFor(1, std::chrono::seconds(60)));

  ASSERT_TRUE(bus.InjectFatalProducerErrorForTest().ok());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metrics.kafka_producer_replacements.Value() < 1 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(metrics.kafka_producer_replacements.Value(), 1) << "no new producer within 10 s";
  // Records published from now on go through Kafka again once the new producer has its
  // idempotence id (until then they may fall back): publish until Kafka acknowledges one.
  const double through_kafka = metrics.fanout_published_kafka.Value();
  uint64_t published = 1;
  const auto kafka_gives_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (metrics.fanout_published_kafka.Value() == through_kafka &&
         std::chrono::steady_clock::now() < kafka_gives_up) {
    bus.Publish(Record("g:fatal", ++published), FanoutLane::kSmall, {});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(metrics.fanout_published_kafka.Value(), through_kafka)
      << "Kafka acknowledged nothing from the new producer within 30 s";
  ASSERT_TRUE(deliveries.WaitFor(published, std::chrono::seconds(60)));
  bus.Stop();
  // Every record once (across the switch, fallen-back records may arrive out of order: devices
  // order by seq).
  std::vector<uint64_t> seqs = deliveries.by_conv()["g:fatal"];
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), published) << "every record delivered once";
  for (uint64_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
}

std::string TestBrokers() {
  const char* brokers = std::getenv("IM_TEST_KAFKA");
  EXPECT_TRUE(brokers != nullptr && *brokers != '\0') << "IM_TEST_KAFKA is not set";
  return brokers != nullptr ? brokers : "";
}

// The test broker requires a login over TLS (scripts/test.sh); the contract tests above log in
// with SCRAM-SHA-512, and PLAIN is taken as well.
TEST(KafkaFanoutBusTest, LogsInWithPlainOverTlsToo) {
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  LogicOptions options = KafkaOptions(TestBrokers());
  ASSERT_EQ(options.kafka.security_protocol, "sasl_ssl")
      << "the test broker must require a login over TLS (IM_TEST_KAFKA_USERNAME, "
         "IM_TEST_KAFKA_TLS_CA: scripts/test.sh)";
  options.kafka.sasl_mechanism = "PLAIN";
  KafkaFanoutBus bus(options, &metrics);
  Deliveries deliveries;
  ASSERT_TRUE(bus.Start(deliveries.Sink()).ok());
  bus.Publish(Record("g:plain", 1), FanoutLane::kSmall, {});
  ASSERT_TRUE(deliveries.WaitFor(1, std::chrono::seconds(60)));
  EXPECT_EQ(metrics.fanout_published_kafka.Value(), 1);
}

// Fan-out records (group messages' bodies among them, recalled or not) are kept only as long as
// kafka.retention_ms says, not the broker's default week.
TEST(KafkaFanoutBusTest, TopicsAreCreatedWithTheConfiguredRetention) {
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  LogicOptions options = KafkaOptions(TestBrokers());
  options.kafka.retention_ms = 900'000;
  KafkaFanoutBus bus(options, &metrics);
  Deliveries deliveries;
  ASSERT_TRUE(bus.Start(deliveries.Sink()).ok());
  absl::StatusOr<KafkaHandle> admin = NewKafkaAdminClient(options.kafka);
  ASSERT_TRUE(admin.ok()) << admin.status();
  for (const std::string& topic :
       {options.kafka.topic_prefix + "fanout", options.kafka.topic_prefix + "fanout.large"}) {
    absl::StatusOr<std::map<std::string, std::string>> config =
        DescribeKafkaTopicConfig(admin->get(), topic, std::chrono::milliseconds(10'000));
    ASSERT_TRUE(config.ok()) << topic << ": " << config.status();
    EXPECT_EQ((*config)["retention.ms"], "900000") << topic;
  }
}

// A refused login or certificate ends Start at once with the broker's reason, not after
// kafka.startup_timeout_ms with a timeout; the password shows nowhere.
TEST(KafkaFanoutBusTest, AWrongPasswordIsRefusedAtStartWithTheReason) {
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  LogicOptions options = KafkaOptions(TestBrokers());
  ASSERT_TRUE(options.kafka.UsesSasl()) << "the test broker must require a login";
  options.kafka.password = "not-the-password-x9";
  options.kafka.startup_timeout_ms = 60'000;
  KafkaFanoutBus bus(options, &metrics);
  Deliveries deliveries;
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = bus.Start(deliveries.Sink());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("uthentication")) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::Not(::testing::HasSubstr("x9")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

TEST(KafkaFanoutBusTest, ABrokerCertificateOfAnotherCaIsRefusedAtStart) {
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  LogicOptions options = KafkaOptions(TestBrokers());
  ASSERT_TRUE(options.kafka.UsesTls()) << "the test broker must serve TLS";
  const std::string directory = "/tmp/im-kafka-other-ca-" + UniqueName();
  absl::StatusOr<tls::testing::TestCertificates> other =
      tls::testing::TestCertificates::Create(directory, "another-ca");
  ASSERT_TRUE(other.ok()) << other.status();
  options.kafka.tls_ca_file = other->ca_file;
  options.kafka.startup_timeout_ms = 60'000;
  KafkaFanoutBus bus(options, &metrics);
  Deliveries deliveries;
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = bus.Start(deliveries.Sink());
  std::filesystem::remove_all(directory);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("certificate")) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

TEST(KafkaFanoutBusTest, StartFailsClearlyWithoutABroker) {
  prometheus::Registry registry;
  LogicMetrics metrics(registry);
  LogicOptions options = KafkaOptions("127.0.0.1:1");
  options.kafka.startup_timeout_ms = 1'500;
  KafkaFanoutBus bus(options, &metrics);
  Deliveries deliveries;
  absl::Status status = bus.Start(deliveries.Sink());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("127.0.0.1:1"), std::string::npos) << status;
}

}  // namespace
}  // namespace im::logic
