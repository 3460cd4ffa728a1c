#include "tests/e2e/chat_deployment.h"

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "absl/strings/match.h"
#include "common/token.h"
#include "tests/e2e/embedded_server.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {

std::unique_ptr<TestDevice> ChatDeployment::Device(const std::string& name,
                                                   const std::string& device) const {
  const std::string uid = Uid(name);
  return std::make_unique<TestDevice>(uid, device, Token(uid));
}

std::string ChatDeployment::Token(const std::string& uid, int64_t expires_in_sec,
                                  const std::string& device) {
  const int64_t now_sec = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  common::TokenClaims claims;
  claims.uid = uid;
  claims.iat_unix_sec = now_sec;
  claims.exp_unix_sec = now_sec + expires_in_sec;
  claims.device = device;
  return common::SignToken(claims, kTokenSecret);
}

std::optional<double> ChatDeployment::LogicMetric(int index, const std::string& family) const {
  return MetricAt(logic_metrics_port(index), family);
}

std::optional<double> MetricAt(uint16_t metrics_port, const std::string& family) {
  httplib::Client client("127.0.0.1", metrics_port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  httplib::Result result = client.Get("/metrics");
  if (!result || result->status != 200) return std::nullopt;
  std::optional<double> sum;
  std::istringstream lines(result->body);
  for (std::string line; std::getline(lines, line);) {
    // "family 3" or "family{label=\"x\"} 3"
    if (!absl::StartsWith(line, family)) continue;
    const char next = line.size() > family.size() ? line[family.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    sum = sum.value_or(0) + std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  }
  return sum;
}

std::unique_ptr<ChatDeployment> DeploymentTest::Deploy(const ClusterOptions& options) const {
  if (GetParam() == Deployment::kCluster) return std::make_unique<LocalCluster>(options);
  std::map<std::string, std::string> env = options.logic_env;
  for (const auto& [key, value] : options.gateway_env) env[key] = value;
  return std::make_unique<EmbeddedServer>(options.prefix, std::move(env));
}

std::unique_ptr<ChatDeployment> DeploymentTest::Deploy() const { return Deploy(ClusterOptions()); }

std::string DeploymentName(const ::testing::TestParamInfo<Deployment>& info) {
  return info.param == Deployment::kCluster ? "Cluster" : "Embedded";
}

void PrintTo(Deployment deployment, std::ostream* out) {
  *out << (deployment == Deployment::kCluster ? "Cluster" : "Embedded");
}

}  // namespace im::e2e
