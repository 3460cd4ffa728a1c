#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace im::e2e {

class TestDevice;
struct ClusterOptions;

// The sum of the samples of `family` on the /metrics of the admin port `metrics_port` (see
// ChatDeployment::LogicMetric); `family` may end in a label set ("name{result=\"ok\"}").
std::optional<double> MetricAt(uint16_t metrics_port, const std::string& family);

// What a chat test needs of the service under test, however it is deployed: a LocalCluster
// (im-logic and im-gateway processes on Redis, MariaDB and Kafka) or an EmbeddedServer (one
// im-server on SQLite). A test body written against this runs on both (DeploymentTest).
class ChatDeployment {
 public:
  static constexpr char kTokenSecret[] = "e2e-token-secret";
  // Every deployment serves the admin API (logic/admin) with this key.
  static constexpr char kAdminKey[] = "e2e-admin-key-0123456789";

  virtual ~ChatDeployment() = default;

  // Starts the service; failures are reported with ADD_FAILURE.
  virtual bool Start() = 0;
  // Every uid of the test starts with this (the test databases are shared and never wiped).
  virtual const std::string& prefix() const = 0;
  // The client port of gateway `index` (0 when it is not running). The embedded node has one
  // gateway: every index names it, so a test that puts two devices "on two gateways" runs there
  // with both on the one.
  virtual uint16_t client_port(int index) const = 0;
  // The admin HTTP port (/metrics) where logic's metrics are: logic node `index`'s in a cluster,
  // the one process's in the embedded node.
  virtual uint16_t logic_metrics_port(int index) const = 0;
  // The admin API's port: logic node `index`'s in a cluster, the one process's in the embedded
  // node.
  virtual uint16_t admin_api_port(int index) const = 0;

  // The sum of the samples of `family` (a counter or gauge, every label set; a histogram's
  // family_sum or family_count) that logic's /metrics (logic_metrics_port(index)) shows; nullopt
  // when it does not answer or has no such family.
  std::optional<double> LogicMetric(int index, const std::string& family) const;

  // A uid unique to this test: prefix + name.
  std::string Uid(const std::string& name) const { return prefix() + name; }
  // A device of user Uid(name) with a valid token; not connected yet.
  std::unique_ptr<TestDevice> Device(const std::string& name, const std::string& device) const;
  // A token for `uid` signed with kTokenSecret, valid for an hour (or already expired when
  // `expires_in_sec` is negative); bound to `device` when it is not empty.
  static std::string Token(const std::string& uid, int64_t expires_in_sec = 3600,
                           const std::string& device = "");
};

// The two ways to deploy, for tests parameterized over them.
enum class Deployment { kCluster, kEmbedded };

// A test fixture whose tests run once per Deployment (instantiate with IM_INSTANTIATE_DEPLOYMENTS):
// Deploy() makes the service under test for the running instance.
class DeploymentTest : public ::testing::TestWithParam<Deployment> {
 protected:
  // Not started. `options` shape a cluster; the embedded node takes its prefix, its gateway_env
  // and its logic_env (keys of the cluster only make im-server refuse to start).
  std::unique_ptr<ChatDeployment> Deploy(const ClusterOptions& options) const;
  std::unique_ptr<ChatDeployment> Deploy() const;
  bool embedded() const { return GetParam() == Deployment::kEmbedded; }
};

// "Cluster" or "Embedded", for test names.
std::string DeploymentName(const ::testing::TestParamInfo<Deployment>& info);
// The same in gtest's messages about a parameter.
void PrintTo(Deployment deployment, std::ostream* out);

}  // namespace im::e2e

// Runs every TEST_P of `fixture` (a DeploymentTest) on the cluster and on the embedded node:
// tests named Fixture.Test/Cluster and Fixture.Test/Embedded.
#define IM_INSTANTIATE_DEPLOYMENTS(fixture)                                                 \
  INSTANTIATE_TEST_SUITE_P(                                                                 \
      , fixture,                                                                            \
      ::testing::Values(::im::e2e::Deployment::kCluster, ::im::e2e::Deployment::kEmbedded), \
      ::im::e2e::DeploymentName)
