#include "logic/dependency_health.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

namespace im::logic {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Polls `done` for at most five seconds: the checks run on their own threads.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class DependencyHealthTest : public ::testing::Test {
 protected:
  DependencyHealthTest() {
    std::vector<DependencyHealth::Dependency> dependencies;
    dependencies.push_back({"redis", [this] {
                              return redis_up_.load() ? absl::OkStatus()
                                                      : absl::UnavailableError("refused");
                            }});
    dependencies.push_back({"mysql", [this] {
                              return mysql_up_.load() ? absl::OkStatus()
                                                      : absl::UnavailableError("lost");
                            }});
    health_ = std::make_unique<DependencyHealth>(std::move(dependencies),
                                                 std::chrono::milliseconds(10), registry_);
  }

  std::atomic<bool> redis_up_{true};
  std::atomic<bool> mysql_up_{true};
  prometheus::Registry registry_;
  std::unique_ptr<DependencyHealth> health_;
};

TEST_F(DependencyHealthTest, NotReadyBeforeTheFirstChecks) {
  const common::HealthReport report = health_->Readiness();
  EXPECT_FALSE(report.ok);
  EXPECT_THAT(report.detail, HasSubstr("not checked yet"));
  EXPECT_TRUE(health_->Liveness().ok);
}

// Shared dependencies down leave the node ready (every node would fail alike), named in the
// detail; the first round of checks decides when the node is ready at all.
TEST_F(DependencyHealthTest, ReadyWithADependencyDownAndNamesTheOneDown) {
  redis_up_ = false;
  health_->Start();
  ASSERT_TRUE(Eventually([&] { return health_->Readiness().ok; }));
  common::HealthReport report = health_->Readiness();
  EXPECT_THAT(report.detail, HasSubstr("degraded"));
  EXPECT_THAT(report.detail, HasSubstr("redis: UNAVAILABLE: refused"));
  EXPECT_THAT(report.detail, Not(HasSubstr("mysql")));
  EXPECT_TRUE(health_->Liveness().ok);

  mysql_up_ = false;
  ASSERT_TRUE(
      Eventually([&] { return health_->Readiness().detail.find("mysql") != std::string::npos; }));
  EXPECT_TRUE(health_->Readiness().ok);
  redis_up_ = true;
  mysql_up_ = true;
  EXPECT_TRUE(Eventually([&] { return health_->Readiness().detail.empty(); }));
  EXPECT_TRUE(health_->Readiness().ok);
}

TEST_F(DependencyHealthTest, ExportsOneGaugePerDependency) {
  health_->Start();
  mysql_up_ = false;
  auto value = [&](const std::string& name) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "im_logic_dependency_up") continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "dependency" && label.value == name) return metric.gauge.value;
        }
      }
    }
    return -1.0;
  };
  EXPECT_TRUE(Eventually([&] { return value("redis") == 1 && value("mysql") == 0; }));
}

TEST_F(DependencyHealthTest, ShuttingDownIsUnreadyAtOnceAndStopIsIdempotent) {
  health_->Start();
  ASSERT_TRUE(Eventually([&] { return health_->Readiness().ok; }));
  health_->SetShuttingDown();
  const common::HealthReport report = health_->Readiness();
  EXPECT_FALSE(report.ok);
  EXPECT_THAT(report.detail, HasSubstr("shutting down"));
  health_->Stop();
  health_->Stop();
  EXPECT_FALSE(health_->Readiness().ok);
}

}  // namespace
}  // namespace im::logic
