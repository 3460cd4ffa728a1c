#include "bench/server_cpu.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

namespace im::bench {
namespace {

// Spends about `seconds` of CPU in this process.
void BurnCpu(double seconds) {
  const double begin = ProcessCpuSeconds(getpid());
  volatile uint64_t sink = 0;
  while (ProcessCpuSeconds(getpid()) - begin < seconds) {
    for (int i = 0; i < 100'000; ++i) sink = sink + static_cast<uint64_t>(i);
  }
}

TEST(ServerCpuTest, NamedAndBarePidsAreParsed) {
  const std::string self = std::to_string(getpid());
  absl::StatusOr<std::vector<ServerProcess>> parsed = ParseServerPids({"logic=" + self, self});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].name, "logic");
  EXPECT_EQ((*parsed)[0].pid, getpid());
  EXPECT_FALSE((*parsed)[1].name.empty());  // the process's comm
}

TEST(ServerCpuTest, GarbageAndMissingProcessesAreRefused) {
  EXPECT_FALSE(ParseServerPids({"logic=abc"}).ok());
  EXPECT_FALSE(ParseServerPids({"logic="}).ok());
  EXPECT_FALSE(ParseServerPids({"gone=999999999"}).ok());
}

TEST(ServerCpuTest, ReportsTheCpuSpentPerDeliveredMessage) {
  ServerCpu cpu({{"self", getpid()}});
  cpu.Start();
  BurnCpu(0.05);
  cpu.Stop();
  const nlohmann::json report = cpu.Report(1000, "delivered", "note");
  const double total = report["total_cpu_sec"].get<double>();
  EXPECT_GE(total, 0.05);
  EXPECT_LT(total, 5.0);
  EXPECT_DOUBLE_EQ(report["us_per_delivered"].get<double>(), total * 1e6 / 1000);
  ASSERT_EQ(report["processes"].size(), 1u);
  EXPECT_EQ(report["processes"][0]["name"], "self");
}

// The connect scenario stops the sample when its logins are done and again at the end: the
// first Stop counts, and the figure is per login.
TEST(ServerCpuTest, TheFirstStopCountsAndTheUnitNamesTheFigure) {
  ServerCpu cpu({{"self", getpid()}});
  cpu.Start();
  cpu.Stop();
  BurnCpu(0.05);
  cpu.Stop();
  const nlohmann::json report = cpu.Report(10, "login", "note");
  EXPECT_LT(report["total_cpu_sec"].get<double>(), 0.05) << "the burn came after the first Stop";
  EXPECT_TRUE(report.contains("us_per_login"));
  EXPECT_FALSE(report.contains("us_per_delivered"));
  EXPECT_EQ(report["processes"][0].count("us_per_login"), 1u);
}

}  // namespace
}  // namespace im::bench
