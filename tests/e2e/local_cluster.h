#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "logic/group/kafka_connection.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/test_processes.h"
#include "tests/support/subprocess.h"

namespace im::e2e {

// host:port of a backing service.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// The test Redis, MariaDB and Kafka broker named by IM_TEST_REDIS / IM_TEST_MYSQL /
// IM_TEST_KAFKA ("host:port", as scripts/test.sh exports them). Unset or unparsable is a test
// failure (ADD_FAILURE), never a skip; nullopt then.
std::optional<Endpoint> TestRedis();
std::optional<Endpoint> TestMySql();
std::optional<Endpoint> TestKafka();

// Kafka names of a cluster whose ids start with `prefix`, so that clusters of concurrent tests
// sharing one broker neither consume each other's records nor share consumer-group offsets:
// topic prefix "e2e.<prefix>." (topics e2e.<prefix>.fanout and e2e.<prefix>.fanout.large) and
// consumer group "e2e.<prefix>.fanout", with every character Kafka does not allow in a topic
// name (outside [A-Za-z0-9._-]) replaced by '_' and a trailing '-' dropped.
std::string KafkaTopicPrefixFor(const std::string& prefix);
std::string KafkaConsumerGroupFor(const std::string& prefix);

// A prefix no other test run uses: the test MariaDB and Redis are shared and never wiped, so every
// uid, gateway id and logic id of a test starts with it.
std::string UniquePrefix();

// A TCP port that was free a moment ago (bound on 127.0.0.1:0, then released). For servers that
// cannot report the port they bound (redis-server).
uint16_t FreePort();

struct ClusterOptions {
  int logic_nodes = 1;
  int gateways = 2;
  // Every id (logic-<n>, gw-<n>) starts with this; empty: a UniquePrefix().
  std::string prefix;
  // Redis for logic (without credentials); empty: TestRedis(), with the credentials of
  // IM_TEST_REDIS_USERNAME and IM_TEST_REDIS_PASSWORD.
  std::string redis_address;
  // Kafka brokers for logic's group fan-out (IM_KAFKA_BROKERS); nullopt: TestKafka(); an empty
  // string: logic's in-process fan-out. Topic prefix and consumer group come from `prefix`
  // (KafkaTopicPrefixFor, KafkaConsumerGroupFor) unless logic_env names them.
  std::optional<std::string> kafka_brokers;
  // Extra IM_* variables for every logic node / every gateway; they override the harness's.
  std::map<std::string, std::string> logic_env;
  std::map<std::string, std::string> gateway_env;
  // Gateways and logic nodes talk gRPC over mutual TLS, with certificates of a CA made for the
  // cluster (in its log directory; grpc_tls_dir() names it), checked against the name
  // "localhost" whatever address is called.
  bool grpc_tls = false;
  // After start (and after RestartGateway) wait until a message sent to a device on each gateway
  // is pushed to it, so that tests do not race the gateways' registration with logic.
  bool wait_push_ready = true;
};

// N im-logic and M im-gateway processes (the real binaries, every port 0) against the test
// MariaDB, a Redis and a Kafka broker, with the gateways pointed at all logic nodes. Failures are
// reported with ADD_FAILURE/EXPECT; callers check ok() after Start(). Used from the test's thread
// only. The destructor stops everything with SIGTERM (gateways first) and expects exit code 0 from
// each process still running, which catches crashes and sanitizer reports at exit; then it deletes
// the cluster's topics and consumer group from the shared test broker.
// Each process logs (at info) to <log root>/<Suite.Test>-<prefix>/<logic-N|gw-N>.log, the log root
// being $IM_TEST_LOG_DIR or ./e2e-logs (under the build tree when ctest runs the test). A test that
// passed leaves nothing there (unless IM_TEST_KEEP_LOGS=1); one that failed keeps the logs, prints
// their path and the end of each.
class LocalCluster final : public ChatDeployment {
 public:
  explicit LocalCluster(ClusterOptions options = {});
  ~LocalCluster() override;
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Starts the logic nodes one after the other (each applies the migrations), then the gateways.
  bool Start() override;
  bool ok() const { return ok_; }

  const std::string& prefix() const override { return options_.prefix; }

  int gateway_count() const { return static_cast<int>(gateways_.size()); }
  // The client port of gateway `index` (0 when it is not running).
  uint16_t client_port(int index) const override;
  bool gateway_running(int index) const;
  // The TLS client port of gateway `index` (0 when it is not running or has no TLS port:
  // gateway_env sets IM_GATEWAY_TLS_LISTEN and the certificate files).
  uint16_t tls_port(int index) const;
  // Sends `signal` to gateway `index` (SIGHUP: reload the TLS certificate).
  bool SignalGateway(int index, int signal);
  const std::string& gateway_id(int index) const { return gateways_.at(index).id; }
  // The gRPC target gateways use for logic ("ipv4:127.0.0.1:a,127.0.0.1:b").
  std::string logic_target() const;
  uint16_t logic_grpc_port(int index) const { return logic_.at(index).grpc_port; }
  // The admin HTTP port (/metrics, /healthz, /readyz) of a gateway or logic node; 0 when it has
  // not started.
  uint16_t gateway_metrics_port(int index) const { return gateways_.at(index).metrics_port; }
  uint16_t logic_metrics_port(int index) const override { return logic_.at(index).metrics_port; }
  uint16_t admin_api_port(int index) const override { return logic_.at(index).admin_api_port; }

  // SIGKILL, reaped. Its client port stays unusable until RestartGateway.
  bool KillGateway(int index);
  // SIGTERM; expects exit code 0 within the drain timeout plus a margin.
  bool StopGateway(int index);
  // SIGTERM without waiting: the gateway drains while the test looks. StopGateway() then waits
  // for the exit (its second SIGTERM ends the drain at once).
  bool BeginStopGateway(int index);
  // After BeginStopGateway: waits (no second signal) for the exit, which must be code 0.
  bool WaitGatewayExit(int index, Millis timeout);
  // Starts a stopped or killed gateway again, with the same id (on a new port).
  bool RestartGateway(int index);
  // SIGKILL / SIGTERM (expects 0) of one logic node.
  bool KillLogic(int index);
  bool StopLogic(int index);
  // SIGTERM without waiting; StopLogic() then waits for the exit.
  bool BeginStopLogic(int index);
  // Starts a stopped or killed logic node again, same id, on the gRPC port it had (the gateways'
  // target lists it).
  bool RestartLogic(int index);

  // Where the cluster's gRPC certificates are (ca.pem, server.pem, server.key), with grpc_tls.
  const std::string& grpc_tls_dir() const { return grpc_tls_dir_; }

  // Kafka names the logic nodes use (empty before Start).
  const std::string& kafka_topic_prefix() const { return kafka_topic_prefix_; }
  const std::string& kafka_consumer_group() const { return kafka_consumer_group_; }
  const logic::KafkaConnection& kafka() const { return kafka_; }

  // Sends a probe message to a device connected to gateway `index` until it is pushed, for at
  // most `timeout`: the gateway is registered with logic and pushes reach it.
  bool WaitPushReady(int index, Millis timeout);

 private:
  struct Process {
    std::string id;
    std::unique_ptr<im::testing::Subprocess> process;
    uint16_t grpc_port = 0;
    uint16_t client_port = 0;  // gateways only
    uint16_t tls_port = 0;     // gateways with a TLS port only
    uint16_t metrics_port = 0;
    uint16_t admin_api_port = 0;  // logic nodes only
  };

  bool MakeGrpcTls();
  bool StartLogic(int index);
  bool StartGateway(int index);
  void StopAll();
  // The log file of the process with this id (its id without the cluster prefix, in log_dir_).
  std::string LogPathOf(const std::string& id) const;
  // Deletes the topics and the consumer group the logic nodes used, on the shared test broker.
  void DeleteKafkaNames();

  ClusterOptions options_;
  std::optional<Endpoint> mysql_;
  std::string redis_address_;
  std::string redis_tls_ca_;  // set when logic reaches the test Redis over TLS
  logic::KafkaConnection kafka_;
  std::string kafka_topic_prefix_;
  std::string kafka_consumer_group_;
  std::string webhooks_consumer_group_;
  std::string log_dir_;
  std::string grpc_tls_dir_;
  std::map<std::string, std::string> grpc_tls_env_;  // IM_GRPC_TLS_* for every process
  uint32_t node_number_base_ = 0;
  std::vector<Process> logic_;
  std::vector<Process> gateways_;
  int probes_ = 0;
  bool ok_ = false;
};

// A redis-server of a test's own (in a temporary directory, no persistence), so that the test can
// kill it and start an empty one on the same port, as if Redis had lost its data.
class OwnRedis {
 public:
  OwnRedis();
  ~OwnRedis();
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;

  // Starts redis-server on port() and waits until it accepts connections.
  bool Start();
  // SIGKILL, reaped: everything it held is gone.
  bool Kill();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  int starts_ = 0;
  std::unique_ptr<im::testing::Subprocess> process_;
};

// A single-node KRaft Kafka broker of a test's own, run by `deploy/local/kafka.sh run <dir>
// <port> <controller_port>` on FreePort() ports with its data in a temporary directory, so that
// the test can stop it and start it again (same data, same port) under a running cluster.
// Its log is <dir>/logs/server.log; what it prints goes to <dir>/broker-<n>.out, one file per
// start (a file, not a pipe that nobody reads while the test runs). Used from one thread.
class OwnKafka {
 public:
  OwnKafka();
  // Stops a running broker (SIGTERM, then SIGKILL if it hangs) and removes the directory.
  ~OwnKafka();
  OwnKafka(const OwnKafka&) = delete;
  OwnKafka& operator=(const OwnKafka&) = delete;

  // Starts the broker and waits until it serves: `kafka.sh ready <port>` succeeds (a Metadata
  // request lists a live broker: registered with its controller and unfenced). An open port is
  // not enough: the acceptor takes connections long before requests are served. The first start
  // formats the directory (and may have to fetch the broker's jars); later ones reuse its data.
  bool Start(Millis timeout = Millis(180'000));
  // SIGTERM (a controlled shutdown), then waits for the exit; true on exit code 0 or 143.
  bool Stop(Millis timeout = Millis(60'000));
  // SIGSTOP / SIGCONT: the broker keeps its connections but answers nothing while paused, like
  // one in a long garbage-collection pause.
  bool Pause();
  bool Resume();
  bool running() const { return process_ != nullptr; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  uint16_t controller_port_ = 0;
  int starts_ = 0;
  std::unique_ptr<im::testing::Subprocess> process_;
};

// True once a TCP connection to 127.0.0.1:port succeeds, polling until `timeout`.
bool WaitForPort(uint16_t port, Millis timeout);

}  // namespace im::e2e
