// The admin HTTP endpoints of the real binaries: /metrics parsed by the reference Prometheus
// parser, /healthz and /readyz, and logic staying ready (and saying why) while Redis, MySQL or
// Kafka is down.
#include <httplib.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"
#include "tests/support/tcp_proxy.h"

#ifndef IM_SOURCE_DIR
#error "IM_SOURCE_DIR must name the repository root (for tests/e2e/parse_metrics.py)"
#endif

namespace im::e2e {
namespace {

// Debian's interpreter, which has python3-prometheus-client (scripts/install-deps.sh).
constexpr char kPython[] = "/usr/bin/python3";

struct HttpAnswer {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpAnswer Get(uint16_t port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  httplib::Result result = client.Get(path.c_str());
  if (!result) return {};
  return {result->status, result->body};
}

// Polls `path` until its answer satisfies `done`, for at most `timeout`; returns the last answer.
HttpAnswer WaitForAnswer(uint16_t port, const std::string& path,
                         const std::function<bool(const HttpAnswer&)>& done, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  HttpAnswer answer;
  for (;;) {
    answer = Get(port, path);
    if (done(answer) || std::chrono::steady_clock::now() >= deadline) return answer;
    std::this_thread::sleep_for(Millis(100));
  }
}

HttpAnswer WaitForStatus(uint16_t port, const std::string& path, int status, Millis timeout) {
  return WaitForAnswer(
      port, path, [status](const HttpAnswer& answer) { return answer.status == status; }, timeout);
}

HttpAnswer WaitForBodyWith(uint16_t port, const std::string& path, const std::string& text,
                           Millis timeout) {
  return WaitForAnswer(
      port, path,
      [&text](const HttpAnswer& answer) { return absl::StrContains(answer.body, text); }, timeout);
}

// What the reference parser made of an exposition: family name -> type (it drops a counter's
// _total), or why it refused it.
struct Parsed {
  bool ok = false;
  std::string error;
  std::map<std::string, std::string> families;
};

Parsed ParseExposition(const std::string& text) {
  Parsed parsed;
  char path[] = "/tmp/im-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) {
    parsed.error = "mkstemp failed";
    return parsed;
  }
  close(fd);
  std::ofstream(path) << text;
  const std::string command = std::string(kPython) + " " + IM_SOURCE_DIR +
                              "/tests/e2e/parse_metrics.py < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  if (pipe != nullptr) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  std::remove(path);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    parsed.error = command + ": " + output;
    return parsed;
  }
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() == 3) parsed.families[fields[0]] = fields[1];
  }
  parsed.ok = true;
  return parsed;
}

::testing::AssertionResult HasFamily(const std::map<std::string, std::string>& families,
                                     const std::string& name, const std::string& type) {
  auto it = families.find(name);
  if (it == families.end()) return ::testing::AssertionFailure() << "no family " << name;
  if (it->second != type) {
    return ::testing::AssertionFailure() << name << " is a " << it->second << ", not a " << type;
  }
  return ::testing::AssertionSuccess();
}

TEST(HealthTest, MetricsParseAndHealthEndpointsAnswer) {
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const uint16_t gateway_port = cluster.gateway_metrics_port(0);
  const uint16_t logic_port = cluster.logic_metrics_port(0);
  ASSERT_NE(gateway_port, 0);
  ASSERT_NE(logic_port, 0);

  // Traffic first, so that counters with labels and histograms have samples.
  std::unique_ptr<TestDevice> alice = cluster.Device("alice", "phone");
  std::unique_ptr<TestDevice> bob = cluster.Device("bob", "phone");
  ASSERT_TRUE(alice->Login(cluster.client_port(0)));
  ASSERT_TRUE(bob->Login(cluster.client_port(0)));
  std::optional<im::v1::SendResp> sent = alice->SendTo(bob->uid(), "m1", "hello");
  ASSERT_TRUE(sent && sent->status().code() == im::v1::OK);
  ASSERT_TRUE(bob->WaitForPushed(sent->conv_id(), 1, Millis(10'000)));

  for (uint16_t port : {gateway_port, logic_port}) {
    HttpAnswer ready = WaitForStatus(port, "/readyz", 200, Millis(30'000));
    EXPECT_EQ(ready.status, 200) << "port " << port << ": " << ready.body;
    EXPECT_EQ(ready.body, "ok\n");
    HttpAnswer live = Get(port, "/healthz");
    EXPECT_EQ(live.status, 200) << "port " << port << ": " << live.body;
    EXPECT_EQ(Get(port, "/nothing-here").status, 404);
  }

  HttpAnswer gateway_metrics = Get(gateway_port, "/metrics");
  ASSERT_EQ(gateway_metrics.status, 200);
  const Parsed parsed_gateway = ParseExposition(gateway_metrics.body);
  ASSERT_TRUE(parsed_gateway.ok) << parsed_gateway.error;
  const std::map<std::string, std::string>* gateway = &parsed_gateway.families;
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_connections", "gauge"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_logins", "counter"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_frames_in", "counter"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_frames_out", "counter"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_connections_closed", "counter"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_logic_call_seconds", "histogram"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_loop_queue_depth", "gauge"));
  EXPECT_TRUE(HasFamily(*gateway, "im_gateway_draining", "gauge"));

  HttpAnswer logic_metrics = Get(logic_port, "/metrics");
  ASSERT_EQ(logic_metrics.status, 200);
  const Parsed parsed_logic = ParseExposition(logic_metrics.body);
  ASSERT_TRUE(parsed_logic.ok) << parsed_logic.error;
  const std::map<std::string, std::string>* logic = &parsed_logic.families;
  EXPECT_TRUE(HasFamily(*logic, "im_logic_requests", "counter"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_request_seconds", "histogram"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_push_rpcs", "counter"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_fanout_lag_seconds", "histogram"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_executor_queue_depth", "gauge"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_write_queue_depth", "gauge"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_store_seconds", "histogram"));
  EXPECT_TRUE(HasFamily(*logic, "im_logic_dependency_up", "gauge"));
  // Sends by method and code (one series per code, never per message); the harness's probes
  // send too, so the count is not ours alone.
  EXPECT_TRUE(absl::StrContains(logic_metrics.body,
                                "\nim_logic_requests_total{code=\"OK\",method=\"Send\"} "));

  // A parser that accepts anything would make the checks above worthless.
  EXPECT_FALSE(ParseExposition("im_broken{le=\"1\" 3\n").ok)
      << "the parser accepted a malformed line";
}

// Redis, MySQL and Kafka are shared by every logic node: one down must not make every node
// unready at once (Kubernetes would take them all out of the headless Service's DNS, and a gateway
// started then would find no logic at all). Logic stays ready and says what is down; a gateway
// started during a Redis outage connects to it and serves logins once Redis is back.
TEST(HealthTest, SharedDependenciesDownLeaveLogicReadyAndSayWhy) {
  OwnRedis redis;
  ASSERT_TRUE(redis.Start());
  std::optional<Endpoint> mysql = TestMySql();
  ASSERT_TRUE(mysql.has_value());
  ASSERT_EQ(mysql->host, "127.0.0.1") << "the proxy forwards to 127.0.0.1 only";
  absl::StatusOr<std::unique_ptr<im::testing::TcpProxy>> proxy =
      im::testing::TcpProxy::Start(mysql->port);
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.redis_address = redis.address();
  options.logic_env = {{"IM_MYSQL_PORT", std::to_string((*proxy)->port())},
                       {"IM_LOGIC_HEALTH_CHECK_MS", "200"},
                       {"IM_LOGIC_SHUTDOWN_DELAY_MS", "2000"},
                       {"IM_MYSQL_TIMEOUT_MS", "1000"},
                       {"IM_REDIS_TIMEOUT_MS", "500"}};
  // A gateway restarted during the Redis outage could not pass the harness's push probe (it logs
  // a device in); this test waits for /readyz and logs in itself instead.
  options.wait_push_ready = false;
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const uint16_t logic_port = cluster.logic_metrics_port(0);
  ASSERT_EQ(WaitForStatus(logic_port, "/readyz", 200, Millis(30'000)).status, 200);
  ASSERT_EQ(WaitForStatus(cluster.gateway_metrics_port(0), "/readyz", 200, Millis(30'000)).status,
            200);

  // Redis gone: logic stays ready and names it; alive all the same; the metric says it too.
  ASSERT_TRUE(redis.Kill());
  HttpAnswer degraded = WaitForBodyWith(logic_port, "/readyz", "redis", Millis(15'000));
  EXPECT_EQ(degraded.status, 200) << degraded.body;
  EXPECT_TRUE(absl::StrContains(degraded.body, "degraded")) << degraded.body;
  EXPECT_FALSE(absl::StrContains(degraded.body, "mysql")) << degraded.body;
  EXPECT_EQ(Get(logic_port, "/healthz").status, 200);
  EXPECT_TRUE(absl::StrContains(Get(logic_port, "/metrics").body,
                                "im_logic_dependency_up{dependency=\"redis\"} 0"));

  // A gateway started during the outage finds logic and is ready; a login fails with a clear
  // code until Redis is back, then succeeds through it.
  ASSERT_TRUE(cluster.StopGateway(0));
  ASSERT_TRUE(cluster.RestartGateway(0));
  const uint16_t gateway_port = cluster.gateway_metrics_port(0);
  HttpAnswer gateway_ready = WaitForStatus(gateway_port, "/readyz", 200, Millis(15'000));
  EXPECT_EQ(gateway_ready.status, 200) << gateway_ready.body;
  std::unique_ptr<TestDevice> erin = cluster.Device("erin", "phone");
  std::optional<im::v1::LoginResp> refused = erin->Connect(cluster.client_port(0));
  ASSERT_TRUE(refused.has_value()) << "the gateway answers the login";
  EXPECT_EQ(refused->status().code(), im::v1::UNAVAILABLE) << refused->status().ShortDebugString();
  erin->Disconnect();
  ASSERT_TRUE(redis.Start());
  EXPECT_TRUE(erin->LoginAny({cluster.client_port(0)}, Millis(15'000)));
  auto all_well = [](const HttpAnswer& answer) {
    return answer.status == 200 && answer.body == "ok\n";
  };
  HttpAnswer ready = WaitForAnswer(logic_port, "/readyz", all_well, Millis(15'000));
  EXPECT_TRUE(all_well(ready)) << ready.status << " " << ready.body;

  // MySQL unreachable (open connections reset, new ones refused): the same.
  (*proxy)->set_refusing(true);
  (*proxy)->CutAll();
  degraded = WaitForBodyWith(logic_port, "/readyz", "mysql", Millis(15'000));
  EXPECT_EQ(degraded.status, 200) << degraded.body;
  EXPECT_FALSE(absl::StrContains(degraded.body, "redis")) << degraded.body;
  EXPECT_EQ(Get(logic_port, "/healthz").status, 200);
  (*proxy)->set_refusing(false);
  ready = WaitForAnswer(logic_port, "/readyz", all_well, Millis(15'000));
  EXPECT_TRUE(all_well(ready)) << ready.status << " " << ready.body;

  // The gateway: unready while no logic node answers, ready again once one does.
  ASSERT_TRUE(cluster.StopLogic(0));
  HttpAnswer unready = WaitForStatus(gateway_port, "/readyz", 503, Millis(15'000));
  EXPECT_EQ(unready.status, 503);
  EXPECT_TRUE(absl::StrContains(unready.body, "logic")) << unready.body;
  EXPECT_EQ(Get(gateway_port, "/healthz").status, 200);
  ASSERT_TRUE(cluster.RestartLogic(0));
  ready = WaitForStatus(gateway_port, "/readyz", 200, Millis(15'000));
  EXPECT_EQ(ready.status, 200) << ready.body;

  // Logic on SIGTERM: unready at once, while still serving for logic.shutdown_delay_ms. (A fresh
  // node: the one above still held Redis connections from before the kill, whose first use fails.)
  const uint16_t restarted_logic_port = cluster.logic_metrics_port(0);
  ASSERT_EQ(WaitForStatus(restarted_logic_port, "/readyz", 200, Millis(15'000)).status, 200);
  ASSERT_TRUE(cluster.BeginStopLogic(0));
  unready = WaitForStatus(restarted_logic_port, "/readyz", 503, Millis(1'500));
  EXPECT_EQ(unready.status, 503);
  EXPECT_TRUE(absl::StrContains(unready.body, "shutting down")) << unready.body;
  std::unique_ptr<TestDevice> late = cluster.Device("dave", "phone");
  EXPECT_TRUE(late->Login(cluster.client_port(0))) << "calls are still served during the delay";
  ASSERT_TRUE(cluster.StopLogic(0));
  ASSERT_TRUE(cluster.RestartLogic(0));
  ASSERT_EQ(WaitForStatus(gateway_port, "/readyz", 200, Millis(15'000)).status, 200);

  // Draining: unready at once, while still alive and holding its client.
  std::unique_ptr<TestDevice> device = cluster.Device("carol", "phone");
  ASSERT_TRUE(device->Login(cluster.client_port(0)));
  ASSERT_TRUE(cluster.BeginStopGateway(0));
  unready = WaitForStatus(gateway_port, "/readyz", 503, Millis(5'000));
  EXPECT_EQ(unready.status, 503);
  EXPECT_TRUE(absl::StrContains(unready.body, "draining")) << unready.body;
  EXPECT_EQ(Get(gateway_port, "/healthz").status, 200);
  EXPECT_TRUE(device->WaitUntil([&] { return device->go_aways() > 0; }, Millis(5'000)));
  EXPECT_TRUE(cluster.StopGateway(0));
}

TEST(HealthTest, KafkaDownLeavesLogicReadyAndSaysWhy) {
  OwnKafka kafka;
  ASSERT_TRUE(kafka.Start());
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.kafka_brokers = kafka.address();
  options.logic_env = {{"IM_LOGIC_HEALTH_CHECK_MS", "200"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const uint16_t logic_port = cluster.logic_metrics_port(0);
  ASSERT_EQ(WaitForStatus(logic_port, "/readyz", 200, Millis(30'000)).status, 200);

  ASSERT_TRUE(kafka.Stop());
  HttpAnswer degraded = WaitForBodyWith(logic_port, "/readyz", "kafka", Millis(15'000));
  EXPECT_EQ(degraded.status, 200) << degraded.body;
  EXPECT_EQ(Get(logic_port, "/healthz").status, 200);

  ASSERT_TRUE(kafka.Start());
  HttpAnswer ready = WaitForAnswer(
      logic_port, "/readyz", [](const HttpAnswer& answer) { return answer.body == "ok\n"; },
      Millis(60'000));
  EXPECT_EQ(ready.body, "ok\n");
}

}  // namespace
}  // namespace im::e2e
