#include "bench/bench_options.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace im::bench {
namespace {

BenchOptions Chat() {
  BenchOptions o;
  o.scenario = Scenario::kChat;
  o.connections = 10;
  return o;
}

// The error of Resolve(), "" when it passed.
std::string ErrorOf(BenchOptions o) { return std::string(o.Resolve().message()); }

TEST(BenchOptionsTest, TheRequestOptionsAreOffByDefault) {
  const BenchOptions o = Chat();
  EXPECT_EQ(o.typing_every, 0u);
  EXPECT_EQ(o.recall_share, 0.0);
  EXPECT_EQ(o.edit_share, 0.0);
  EXPECT_FALSE(o.resume);
  EXPECT_EQ(ErrorOf(o), "");
}

TEST(BenchOptionsTest, SharesAreBetweenZeroAndOneAndAddUpToOneAtMost) {
  BenchOptions o = Chat();
  o.recall_share = 0.7;
  o.edit_share = 0.3;
  EXPECT_EQ(ErrorOf(o), "");
  o.recall_share = 1.5;
  EXPECT_EQ(ErrorOf(o), "--recall-share: in [0, 1]");
  o.recall_share = -0.1;
  EXPECT_EQ(ErrorOf(o), "--recall-share: in [0, 1]");
  o.recall_share = 0;
  o.edit_share = 2;
  EXPECT_EQ(ErrorOf(o), "--edit-share: in [0, 1]");
  o.edit_share = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(ErrorOf(o), "--edit-share: in [0, 1]");
  o.recall_share = 0.6;
  o.edit_share = 0.5;
  EXPECT_EQ(ErrorOf(o),
            "--recall-share + --edit-share: at most 1 (a message is recalled or edited, not both)");
}

TEST(BenchOptionsTest, TheReportNamesTheRequestOptions) {
  BenchOptions o = Chat();
  o.typing_every = 5;
  o.recall_share = 0.25;
  ASSERT_EQ(ErrorOf(o), "");
  const nlohmann::json j = o.ToJson();
  EXPECT_EQ(j["typing_every"], 5);
  EXPECT_EQ(j["recall_share"], 0.25);
  EXPECT_EQ(j["edit_share"], 0.0);
  EXPECT_FALSE(j.contains("resume"));  // reconnect only
  o.scenario = Scenario::kReconnect;
  o.resume = true;
  EXPECT_EQ(o.ToJson()["resume"], true);
}

TEST(BenchOptionsTest, TheReportNamesTheTransport) {
  BenchOptions o = Chat();
  EXPECT_EQ(o.transport, Transport::kTcp);
  EXPECT_EQ(o.ToJson()["transport"], "tcp");
  o.transport = Transport::kWebSocket;
  ASSERT_EQ(ErrorOf(o), "");
  EXPECT_EQ(o.ToJson()["transport"], "ws");
}

}  // namespace
}  // namespace im::bench
