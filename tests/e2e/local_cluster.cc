#include "tests/e2e/local_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/tls/testing/test_certificates.h"
#include "common/token.h"
#include "logic/group/kafka_admin.h"
#include "logic/tests/test_kafka.h"
#include "tests/e2e/test_device.h"
#include "tests/e2e/test_processes.h"

#ifndef IM_LOGIC_BINARY
#error "IM_LOGIC_BINARY must name the im-logic binary"
#endif
#ifndef IM_GATEWAY_BINARY
#error "IM_GATEWAY_BINARY must name the im-gateway binary"
#endif
#ifndef IM_SOURCE_DIR
#error "IM_SOURCE_DIR must name the repository root (for deploy/local/kafka.sh)"
#endif

namespace im::e2e {
namespace {

using im::testing::Subprocess;

constexpr int kDrainTimeoutMs = 2'000;
constexpr Millis kKafkaAdminTimeout{30'000};

std::optional<Endpoint> EndpointFromEnv(const char* name, const char* what) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << name << " is not set: the end-to-end tests need the " << what
                  << ". Run them through scripts/test.sh, or start the services with "
                     "deploy/local/services.sh start and set "
                  << name << "=127.0.0.1:<port>";
    return std::nullopt;
  }
  const std::string text(value);
  const size_t colon = text.rfind(':');
  const int port = colon == std::string::npos ? 0 : std::atoi(text.c_str() + colon + 1);
  if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
    ADD_FAILURE() << name << "='" << text << "' is not host:port";
    return std::nullopt;
  }
  return Endpoint{text.substr(0, colon), static_cast<uint16_t>(port)};
}

}  // namespace

std::optional<Endpoint> TestRedis() { return EndpointFromEnv("IM_TEST_REDIS", "test Redis"); }

std::optional<Endpoint> TestMySql() {
  return EndpointFromEnv("IM_TEST_MYSQL", "test MariaDB (user im, password im-dev, database im)");
}

std::optional<Endpoint> TestKafka() {
  return EndpointFromEnv("IM_TEST_KAFKA", "test Kafka broker (deploy/local/kafka.sh)");
}

std::string KafkaTopicPrefixFor(const std::string& prefix) {
  return absl::StrCat("e2e.", SafeNamePart(prefix), ".");
}

std::string KafkaConsumerGroupFor(const std::string& prefix) {
  return absl::StrCat("e2e.", SafeNamePart(prefix), ".fanout");
}

std::string UniquePrefix() {
  std::random_device random;
  const uint64_t value = (uint64_t{random()} << 32) ^ random();
  char text[32];
  std::snprintf(text, sizeof(text), "e%010llx-",
                static_cast<unsigned long long>(value & 0xffffffffffULL));
  return text;
}

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

bool WaitForPort(uint16_t port, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool connected =
        fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (fd >= 0) ::close(fd);
    if (connected) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(50));
  }
}

LocalCluster::LocalCluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.prefix.empty()) options_.prefix = UniquePrefix();
  std::random_device random;
  node_number_base_ = random() % 1024;
}

LocalCluster::~LocalCluster() {
  StopAll();
  DeleteKafkaNames();
  KeepLogsIfFailed(log_dir_);
}

std::string LocalCluster::LogPathOf(const std::string& id) const {
  return absl::StrCat(log_dir_, "/", id.substr(options_.prefix.size()), ".log");
}

void LocalCluster::DeleteKafkaNames() {
  // A test's own broker (OwnKafka) goes away with its directory; in-process fan-out has none.
  if (options_.kafka_brokers || kafka_topic_prefix_.empty()) return;
  absl::StatusOr<logic::KafkaHandle> admin = logic::NewKafkaAdminClient(kafka_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  const absl::Status topics = logic::DeleteKafkaTopics(
      admin->get(),
      {kafka_topic_prefix_ + "fanout", kafka_topic_prefix_ + "fanout.large",
       kafka_topic_prefix_ + "webhooks", kafka_topic_prefix_ + "webhooks.dead"},
      kKafkaAdminTimeout);
  EXPECT_TRUE(topics.ok()) << "deleting the cluster's topics " << kafka_topic_prefix_
                           << "*: " << topics;
  // A killed node stays a member until its session times out, and a group with members cannot be
  // deleted: its offsets then expire with the broker's retention, which is harmless.
  for (const std::string& group_id : {kafka_consumer_group_, webhooks_consumer_group_}) {
    const absl::Status group =
        logic::DeleteKafkaConsumerGroup(admin->get(), group_id, kKafkaAdminTimeout);
    if (!group.ok()) {
      std::fprintf(stderr, "note: consumer group %s not deleted: %s\n", group_id.c_str(),
                   group.ToString().c_str());
    }
  }
}

bool LocalCluster::MakeGrpcTls() {
  grpc_tls_dir_ = log_dir_ + "/grpc-tls";
  absl::StatusOr<tls::testing::TestCertificates> certificates =
      tls::testing::TestCertificates::Create(grpc_tls_dir_, options_.prefix + "cluster");
  if (!certificates.ok()) {
    ADD_FAILURE() << "cannot make the cluster's gRPC certificates: " << certificates.status();
    return false;
  }
  grpc_tls_env_ = {{"IM_GRPC_TLS_CA_FILE", certificates->ca_file},
                   {"IM_GRPC_TLS_CERT_FILE", certificates->cert_file},
                   {"IM_GRPC_TLS_KEY_FILE", certificates->key_file},
                   {"IM_GRPC_TLS_MUTUAL", "true"},
                   {"IM_GRPC_TLS_SERVER_NAME", "localhost"}};
  return true;
}

bool LocalCluster::Start() {
  ok_ = false;
  log_dir_ = TestLogDir(options_.prefix);
  std::error_code error;
  std::filesystem::create_directories(log_dir_, error);
  if (error) {
    ADD_FAILURE() << "cannot create the log directory " << log_dir_ << ": " << error.message();
    return false;
  }
  if (options_.grpc_tls && !MakeGrpcTls()) return false;
  mysql_ = TestMySql();
  if (!mysql_) return false;
  redis_address_ = options_.redis_address;
  if (redis_address_.empty()) {
    std::optional<Endpoint> redis = TestRedis();
    if (!redis) return false;
    redis_address_ = redis->ToString();
    // Over TLS when the test Redis serves it (scripts/test.sh): every cluster test then reaches
    // Redis through logic's TLS bridge, as a deployment with redis.tls does.
    const char* tls_address = std::getenv("IM_TEST_REDIS_TLS");
    const char* tls_ca = std::getenv("IM_TEST_REDIS_TLS_CA");
    if (tls_address != nullptr && tls_ca != nullptr) {
      redis_address_ = tls_address;
      redis_tls_ca_ = tls_ca;
    }
  }
  // A test's own broker (OwnKafka) runs with the test broker's settings, so it takes the same
  // login and CA.
  if (options_.kafka_brokers) {
    kafka_ = logic::testing::TestKafkaConnection(*options_.kafka_brokers);
  } else {
    std::optional<Endpoint> kafka = TestKafka();
    if (!kafka) return false;
    kafka_ = logic::testing::TestKafkaConnection(kafka->ToString());
  }
  logic_.resize(options_.logic_nodes);
  for (int i = 0; i < options_.logic_nodes; ++i) {
    logic_[i].id = absl::StrCat(options_.prefix, "logic-", i + 1);
    if (!StartLogic(i)) return false;
  }
  gateways_.resize(options_.gateways);
  for (int i = 0; i < options_.gateways; ++i) {
    gateways_[i].id = absl::StrCat(options_.prefix, "gw-", i + 1);
    if (!StartGateway(i)) return false;
  }
  if (options_.wait_push_ready) {
    for (int i = 0; i < options_.gateways; ++i) {
      if (!WaitPushReady(i, Millis(30'000))) return false;
    }
  }
  ok_ = true;
  return true;
}

bool LocalCluster::StartLogic(int index) {
  Process& node = logic_.at(index);
  std::map<std::string, std::string> env = {
      {"IM_LOGIC_ID", node.id},
      {"IM_LOGIC_NODE_NUMBER", std::to_string((node_number_base_ + index) % 1024)},
      // A restarted node takes its old port: the gateways' target names it.
      {"IM_LOGIC_GRPC_LISTEN", absl::StrCat("127.0.0.1:", node.grpc_port)},
      {"IM_LOGIC_METRICS_LISTEN", "127.0.0.1:0"},
      {"IM_LOGIC_TOKEN_SECRET", kTokenSecret},
      {"IM_ADMIN_API_LISTEN", "127.0.0.1:0"},
      {"IM_ADMIN_API_KEY", kAdminKey},
      {"IM_REDIS_ADDRESS", redis_address_},
      {"IM_MYSQL_HOST", mysql_->host},
      {"IM_MYSQL_PORT", std::to_string(mysql_->port)},
      {"IM_MYSQL_USER", "im"},
      {"IM_MYSQL_PASSWORD", "im-dev"},
      {"IM_MYSQL_DATABASE", "im"},
      {"IM_DEV_MODE", "true"},  // the test MariaDB's password is the published one
      {"IM_KAFKA_TOPIC_PREFIX", KafkaTopicPrefixFor(options_.prefix)},
      {"IM_KAFKA_CONSUMER_GROUP", KafkaConsumerGroupFor(options_.prefix)},
      {"IM_WEBHOOKS_CONSUMER_GROUP", KafkaConsumerGroupFor(options_.prefix) + "-webhooks"},
      {"IM_LOG_LEVEL", "info"},
      // Tests send hundreds of messages from one user as fast as they are answered; the sender
      // limits have tests of their own (tests/e2e/abuse_limits_test.cc), which set them.
      {"IM_LOGIC_SEND_RATE_PER_USER", "0"},
      {"IM_LOGIC_GROUP_SEND_RATE_PER_USER", "0"},
  };
  if (const char* ca = std::getenv("IM_TEST_MYSQL_TLS_CA")) env["IM_MYSQL_TLS_CA_FILE"] = ca;
  env.merge(logic::testing::KafkaConnectionEnv(kafka_));
  if (options_.redis_address.empty()) {  // the test Redis, which wants credentials
    for (const char* name : {"USERNAME", "PASSWORD"}) {
      if (const char* value = std::getenv(absl::StrCat("IM_TEST_REDIS_", name).c_str())) {
        env[absl::StrCat("IM_REDIS_", name)] = value;
      }
    }
    if (!redis_tls_ca_.empty()) env["IM_REDIS_TLS_CA_FILE"] = redis_tls_ca_;
  }
  env.insert(grpc_tls_env_.begin(), grpc_tls_env_.end());
  for (const auto& [key, value] : options_.logic_env) env[key] = value;
  kafka_topic_prefix_ = env["IM_KAFKA_TOPIC_PREFIX"];
  kafka_consumer_group_ = env["IM_KAFKA_CONSUMER_GROUP"];
  webhooks_consumer_group_ = env["IM_WEBHOOKS_CONSUMER_GROUP"];
  std::optional<ReadyProcess> started =
      StartReadyProcess({IM_LOGIC_BINARY}, env, LogPathOf(node.id), "im-logic ready");
  if (!started) return false;
  node.process = std::move(started->process);
  const std::string& ready = started->ready_line;
  node.grpc_port = PortField(ready, "grpc_port");
  node.metrics_port = PortField(ready, "metrics_port");
  node.admin_api_port = PortField(ready, "admin_api_port");
  if (node.grpc_port == 0) {
    ADD_FAILURE() << "no grpc_port in '" << ready << "'";
    return false;
  }
  return true;
}

std::string LocalCluster::logic_target() const {
  std::vector<std::string> addresses;
  for (const Process& node : logic_) {
    if (node.grpc_port != 0) addresses.push_back(absl::StrCat("127.0.0.1:", node.grpc_port));
  }
  if (addresses.size() == 1) return addresses[0];
  return "ipv4:" + absl::StrJoin(addresses, ",");
}

bool LocalCluster::StartGateway(int index) {
  Process& gateway = gateways_.at(index);
  std::map<std::string, std::string> env = {
      {"IM_GATEWAY_ID", gateway.id},
      {"IM_GATEWAY_LISTEN", "127.0.0.1:0"},
      {"IM_GATEWAY_GRPC_LISTEN", "127.0.0.1:0"},
      {"IM_GATEWAY_METRICS_LISTEN", "127.0.0.1:0"},
      {"IM_GATEWAY_LOGIC_TARGET", logic_target()},
      {"IM_GATEWAY_WORKERS", "2"},
      {"IM_GATEWAY_REGISTER_MS", "1000"},
      {"IM_GATEWAY_DRAIN_TIMEOUT_MS", std::to_string(kDrainTimeoutMs)},
      {"IM_LOG_LEVEL", "info"},
  };
  env.insert(grpc_tls_env_.begin(), grpc_tls_env_.end());
  for (const auto& [key, value] : options_.gateway_env) env[key] = value;
  std::optional<ReadyProcess> started =
      StartReadyProcess({IM_GATEWAY_BINARY}, env, LogPathOf(gateway.id), "im-gateway ready");
  if (!started) return false;
  gateway.process = std::move(started->process);
  const std::string& ready = started->ready_line;
  gateway.client_port = PortField(ready, "client_port");
  gateway.tls_port = PortField(ready, "tls_port");
  gateway.grpc_port = PortField(ready, "grpc_port");
  gateway.metrics_port = PortField(ready, "metrics_port");
  if (gateway.client_port == 0 || gateway.grpc_port == 0) {
    ADD_FAILURE() << "no client_port/grpc_port in '" << ready << "'";
    return false;
  }
  return true;
}

uint16_t LocalCluster::client_port(int index) const {
  return gateway_running(index) ? gateways_.at(index).client_port : 0;
}

uint16_t LocalCluster::tls_port(int index) const {
  return gateway_running(index) ? gateways_.at(index).tls_port : 0;
}

bool LocalCluster::SignalGateway(int index, int signal) {
  return gateway_running(index) && gateways_.at(index).process->Signal(signal);
}

bool LocalCluster::gateway_running(int index) const {
  const Process& gateway = gateways_.at(index);
  return gateway.process != nullptr && !gateway.process->Wait(Millis(0)).has_value();
}

bool LocalCluster::KillGateway(int index) {
  Process& gateway = gateways_.at(index);
  if (!gateway.process) return false;
  gateway.process->Signal(SIGKILL);
  const bool reaped = gateway.process->Wait(Millis(10'000)).has_value();
  gateway.process.reset();
  gateway.client_port = 0;
  return reaped;
}

bool LocalCluster::StopGateway(int index) {
  Process& gateway = gateways_.at(index);
  if (!gateway.process) return false;
  const std::optional<int> status =
      StopProcess(*gateway.process, SIGTERM, Millis(kDrainTimeoutMs) + kStopTimeout);
  EXPECT_EQ(status, 0) << "im-gateway " << gateway.id << " after SIGTERM";
  gateway.process.reset();
  gateway.client_port = 0;
  return status == 0;
}

bool LocalCluster::BeginStopGateway(int index) {
  Process& gateway = gateways_.at(index);
  if (!gateway.process) return false;
  gateway.process->Signal(SIGTERM);
  return true;
}

bool LocalCluster::WaitGatewayExit(int index, Millis timeout) {
  Process& gateway = gateways_.at(index);
  if (!gateway.process) return false;
  std::optional<int> status = gateway.process->Wait(timeout);
  EXPECT_EQ(status, 0) << "im-gateway " << gateway.id << " did not exit 0 within "
                       << timeout.count() << " ms of SIGTERM";
  if (!status) StopProcess(*gateway.process, SIGKILL, Millis(10'000));
  gateway.process.reset();
  gateway.client_port = 0;
  return status == 0;
}

bool LocalCluster::RestartGateway(int index) {
  Process& gateway = gateways_.at(index);
  if (gateway.process) KillGateway(index);
  if (!StartGateway(index)) return false;
  return !options_.wait_push_ready || WaitPushReady(index, Millis(30'000));
}

bool LocalCluster::KillLogic(int index) {
  Process& node = logic_.at(index);
  if (!node.process) return false;
  node.process->Signal(SIGKILL);
  const bool reaped = node.process->Wait(Millis(10'000)).has_value();
  node.process.reset();
  return reaped;
}

bool LocalCluster::StopLogic(int index) {
  Process& node = logic_.at(index);
  if (!node.process) return false;
  const std::optional<int> status = StopProcess(*node.process, SIGTERM, kStopTimeout);
  EXPECT_EQ(status, 0) << "im-logic " << node.id << " after SIGTERM";
  node.process.reset();
  return status == 0;
}

bool LocalCluster::BeginStopLogic(int index) {
  Process& node = logic_.at(index);
  if (!node.process) return false;
  node.process->Signal(SIGTERM);
  return true;
}

bool LocalCluster::RestartLogic(int index) {
  Process& node = logic_.at(index);
  if (node.process) KillLogic(index);
  return StartLogic(index);
}

bool LocalCluster::WaitPushReady(int index, Millis timeout) {
  const uint16_t port = client_port(index);
  if (port == 0) {
    ADD_FAILURE() << "gateway " << index << " is not running";
    return false;
  }
  probes_++;
  const std::string receiver_uid = Uid(absl::StrCat("probe-r", probes_));
  const std::string sender_uid = Uid(absl::StrCat("probe-s", probes_));
  TestDevice receiver(receiver_uid, "probe", Token(receiver_uid));
  TestDevice sender(sender_uid, "probe", Token(sender_uid));
  if (!receiver.Login(port) || !sender.Login(port)) return false;
  const std::string conv = SingleConvId(sender_uid, receiver_uid);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int attempt = 1; std::chrono::steady_clock::now() < deadline; ++attempt) {
    std::optional<im::v1::SendResp> resp =
        sender.SendTo(receiver_uid, absl::StrCat("probe-", attempt), "probe");
    if (resp && resp->status().code() == im::v1::OK &&
        receiver.WaitForPushed(conv, 1, Millis(500))) {
      return true;
    }
    if (!resp || resp->status().code() != im::v1::OK) std::this_thread::sleep_for(Millis(200));
  }
  ADD_FAILURE() << "no push reached a device on gateway " << gateways_.at(index).id << " within "
                << timeout.count() << " ms (is it registered with logic?)";
  return false;
}

void LocalCluster::StopAll() {
  // Every gateway drains at once, and logic stops once they are gone (their last calls need it).
  for (size_t i = 0; i < gateways_.size(); ++i) BeginStopGateway(static_cast<int>(i));
  for (size_t i = 0; i < gateways_.size(); ++i) {
    if (gateways_[i].process) {
      WaitGatewayExit(static_cast<int>(i), Millis(kDrainTimeoutMs) + kStopTimeout);
    }
  }
  for (size_t i = 0; i < logic_.size(); ++i) {
    if (logic_[i].process) StopLogic(static_cast<int>(i));
  }
}

OwnRedis::OwnRedis() {
  char dir[] = "/tmp/im-e2e-redis-XXXXXX";
  if (::mkdtemp(dir) != nullptr) dir_ = dir;
  port_ = FreePort();
}

OwnRedis::~OwnRedis() {
  if (process_) Kill();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool OwnRedis::Start() {
  const std::string binary = FindInPath("redis-server");
  if (binary.empty()) {
    ADD_FAILURE() << "redis-server is not on PATH (scripts/install-deps.sh installs it)";
    return false;
  }
  if (dir_.empty() || port_ == 0) {
    ADD_FAILURE() << "no temporary directory or free port for redis-server";
    return false;
  }
  starts_++;
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
      {binary, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
       "no", "--dir", dir_, "--logfile", absl::StrCat(dir_, "/redis-", starts_, ".log")});
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start redis-server: " << process.status();
    return false;
  }
  process_ = std::move(*process);
  if (!WaitForPort(port_, Millis(20'000))) {
    ADD_FAILURE() << "redis-server did not listen on port " << port_ << " (log in " << dir_ << ")";
    return false;
  }
  return true;
}

bool OwnRedis::Kill() {
  if (!process_) return false;
  process_->Signal(SIGKILL);
  const bool reaped = process_->Wait(Millis(10'000)).has_value();
  process_.reset();
  return reaped;
}

OwnKafka::OwnKafka() {
  char dir[] = "/tmp/im-e2e-kafka-XXXXXX";
  if (::mkdtemp(dir) != nullptr) dir_ = dir;
  port_ = FreePort();
  do {
    controller_port_ = FreePort();
  } while (controller_port_ != 0 && controller_port_ == port_);
}

OwnKafka::~OwnKafka() {
  if (process_) Stop(Millis(30'000));
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool OwnKafka::Start(Millis timeout) {
  if (process_) {
    ADD_FAILURE() << "the broker is already running";
    return false;
  }
  if (dir_.empty() || port_ == 0 || controller_port_ == 0) {
    ADD_FAILURE() << "no temporary directory or free ports for the Kafka broker";
    return false;
  }
  const std::string script = absl::StrCat(IM_SOURCE_DIR, "/deploy/local/kafka.sh");
  if (::access(script.c_str(), X_OK) != 0) {
    ADD_FAILURE() << script << " is missing or not executable";
    return false;
  }
  starts_++;
  const std::string output = absl::StrCat(dir_, "/broker-", starts_, ".out");
  // The shell only redirects and execs: the pid is the script's, which execs java. A file, not
  // the Subprocess pipe, takes the output: nobody reads a pipe while the test runs, and a full
  // pipe would stall the broker's logging.
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
      {"/bin/sh", "-c", "exec \"$0\" run \"$1\" \"$2\" \"$3\" >\"$4\" 2>&1", script, dir_,
       std::to_string(port_), std::to_string(controller_port_), output});
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start " << script << ": " << process.status();
    return false;
  }
  process_ = std::move(*process);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // `kafka.sh ready` asks for metadata and wants a live broker in the answer: registered with
    // its controller and unfenced, so that topics can be created and written.
    absl::StatusOr<std::unique_ptr<Subprocess>> probe =
        Subprocess::Start({script, "ready", std::to_string(port_)});
    if (probe.ok() && (*probe)->Wait(Millis(10'000)) == 0) return true;
    const std::optional<int> exited = process_->Wait(Millis(0));
    if (exited || std::chrono::steady_clock::now() >= deadline) {
      if (!exited) {
        process_->Signal(SIGKILL);
        process_->Wait(Millis(10'000));
      }
      process_.reset();
      ADD_FAILURE() << "the Kafka broker on port " << port_
                    << (exited ? absl::StrCat(" exited with ", *exited)
                               : absl::StrCat(" did not serve within ", timeout.count(), " ms"))
                    << "; the end of " << output << ":\n"
                    << LastLines(FileContents(output), 20) << "\nthe end of " << dir_
                    << "/logs/server.log:\n"
                    << LastLines(FileContents(dir_ + "/logs/server.log"), 20);
      return false;
    }
    std::this_thread::sleep_for(Millis(300));
  }
}

bool OwnKafka::Pause() { return process_ && process_->Signal(SIGSTOP); }

bool OwnKafka::Resume() { return process_ && process_->Signal(SIGCONT); }

bool OwnKafka::Stop(Millis timeout) {
  if (!process_) return false;
  Resume();  // a paused broker would not act on SIGTERM
  const std::optional<int> status = StopProcess(*process_, SIGTERM, timeout);
  process_.reset();
  // The JVM exits with 143 (128 + SIGTERM) after its shutdown hooks have run.
  const bool clean = status == 0 || status == 128 + SIGTERM;
  EXPECT_TRUE(clean) << "the Kafka broker on port " << port_ << " after SIGTERM: "
                     << (status ? absl::StrCat("exit status ", *status) : "still running");
  return clean;
}

}  // namespace im::e2e
