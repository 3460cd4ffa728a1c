#include "tests/e2e/chat_deployment.h"

#include <chrono>

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
  common::TokenClaims claims;
  claims.uid = uid;
  claims.exp_unix_sec = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() +
                        expires_in_sec;
  claims.device = device;
  return common::SignToken(claims, kTokenSecret);
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
