// im-bench against the real binaries: every scenario for a few seconds on one LocalCluster (two
// gateways, one logic node, the test Redis, MariaDB and Kafka), and over WebSocket against an
// im-server, run as a subprocess the way an operator runs it. Fails on a non-zero exit or on any
// missing, duplicated or reordered message in the tool's --json report, so a benchmark run is also
// a correctness check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/tls/testing/test_certificates.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/embedded_server.h"
#include "tests/e2e/local_cluster.h"
#include "tests/support/subprocess.h"

#ifndef IM_BENCH_BINARY
#error "IM_BENCH_BINARY must name the im-bench binary"
#endif

namespace im::e2e {
namespace {

using Json = nlohmann::json;

constexpr Millis kRunTimeout{90'000};

// Runs `im-bench <args> --gateways <gateways> --secret <secret> --run-id <run_id> --json <tmp>`;
// returns its --json report (null when there was none) and sets *exit_code.
Json RunBench(std::vector<std::string> args, const std::string& gateways, const std::string& secret,
              const std::string& run_id, int* exit_code) {
  static std::atomic<int> runs = 0;  // two runs may go at once (a storm beside a chat)
  const std::string json_path =
      absl::StrCat(::testing::TempDir(), "/im-bench-", getpid(), "-", runs++, ".json");
  std::vector<std::string> argv = {IM_BENCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const std::string& a : {std::string("--gateways"), gateways, std::string("--secret"), secret,
                               std::string("--run-id"), run_id, std::string("--json"), json_path}) {
    argv.push_back(a);
  }
  auto process = im::testing::Subprocess::Start(argv);
  if (!process.ok()) {
    ADD_FAILURE() << process.status();
    *exit_code = -1;
    return nullptr;
  }
  // The human table, for the test log.
  std::string table;
  while (auto line = (*process)->ReadLine(kRunTimeout)) absl::StrAppend(&table, *line, "\n");
  const std::optional<int> code = (*process)->Wait(kRunTimeout);
  std::printf("%s", table.c_str());
  *exit_code = code.value_or(-1);
  std::ifstream in(json_path);
  Json report = Json::parse(in, nullptr, false);
  std::remove(json_path.c_str());
  return report.is_discarded() ? Json(nullptr) : report;
}

// What every clean run must show: exit 0, every check passed, nothing lost, duplicated or
// reordered, and no error from the peer.
void ExpectClean(const Json& report, int exit_code) {
  EXPECT_EQ(exit_code, 0);
  ASSERT_TRUE(report.is_object()) << "no --json report";
  EXPECT_TRUE(report["ok"].get<bool>()) << report["problems"].dump();
  const Json& c = report["counters"];
  EXPECT_EQ(c["missing"], 0) << report["missing_samples"].dump();
  EXPECT_EQ(c["duplicates"], 0);
  EXPECT_EQ(c["reordered"], 0);
  EXPECT_EQ(c["self_pushes"], 0);
  EXPECT_EQ(c["unknown_messages"], 0);
  EXPECT_EQ(c["unexpected_frames"], 0);
  EXPECT_TRUE(report["errors"].empty()) << report["errors"].dump();
}

uint64_t U(const Json& counters, const char* key) { return counters[key].get<uint64_t>(); }

// `picked` is `share` of `of`, counted per device (floor or round): off by at most one a device.
void ExpectShare(uint64_t picked, uint64_t of, double share, uint64_t devices) {
  const double exact = static_cast<double>(of) * share;
  EXPECT_LE(static_cast<double>(picked), exact + static_cast<double>(devices));
  EXPECT_GE(static_cast<double>(picked), exact - static_cast<double>(devices));
}

// The recalls and edits of a run whose cluster refused none: every one sent was answered OK (the
// ones cut off by a drop once sent again), each took a seq of its own that reached every other
// member as an ordinary message (ExpectClean: none missing, duplicated or reordered), and each OK
// has its latency.
void ExpectChangesApplied(const Json& r, uint64_t recipients_per_message) {
  const Json& c = r["counters"];
  EXPECT_GT(U(c, "recalls_sent"), 0u);
  EXPECT_GT(U(c, "edits_sent"), 0u);
  EXPECT_EQ(c["recalls_ok"], c["recalls_sent"]);
  EXPECT_EQ(c["edits_ok"], c["edits_sent"]);
  EXPECT_TRUE(r["refusals"].empty()) << r["refusals"].dump();
  const uint64_t changes = U(c, "recalls_ok") + U(c, "edits_ok");
  EXPECT_EQ(U(c, "change_deliveries"), changes * recipients_per_message);
  EXPECT_EQ(U(c, "expected_deliveries"), (U(c, "acked") + changes) * recipients_per_message);
  EXPECT_EQ(c["delivered"], c["expected_deliveries"]);
  EXPECT_EQ(c["acked_unique"], c["acked"]);  // the changes' seqs are not counted as messages
  EXPECT_EQ(r["latency_ms"]["recall_us"]["count"], c["recalls_ok"]);
  EXPECT_EQ(r["latency_ms"]["edit_us"]["count"], c["edits_ok"]);
}

class BenchSmokeTest : public ::testing::Test {
 protected:
  // One cluster for the suite, started by the first test: a failure in SetUpTestSuite would make
  // GoogleTest skip the tests, and ctest does not count skipped tests as failed.
  void SetUp() override {
    if (cluster_ == nullptr) {
      cluster_ = new LocalCluster();
      started_ = cluster_->Start();
    }
    ASSERT_TRUE(started_ && cluster_->ok()) << "the cluster did not start";
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static Json RunBench(std::vector<std::string> args, int* exit_code) {
    std::string gateways;
    for (int i = 0; i < cluster_->gateway_count(); ++i) {
      absl::StrAppend(&gateways, i ? "," : "", "127.0.0.1:", cluster_->client_port(i));
    }
    return e2e::RunBench(std::move(args), gateways, LocalCluster::kTokenSecret,
                         cluster_->Uid(absl::StrCat("bench", runs_++)), exit_code);
  }

  static LocalCluster* cluster_;
  static bool started_;
  static int runs_;
};

LocalCluster* BenchSmokeTest::cluster_ = nullptr;
bool BenchSmokeTest::started_ = false;
int BenchSmokeTest::runs_ = 0;

TEST_F(BenchSmokeTest, ConnectHoldsEveryConnection) {
  int code = 0;
  const Json r = RunBench(
      {"connect", "--connections", "300", "--rate", "1000", "--duration", "2", "--procs", "2"},
      &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["counters"]["online_at_end"], 300);
  EXPECT_EQ(r["counters"]["first_logins"], 300);
  EXPECT_EQ(r["latency_ms"]["login_us"]["count"], 300);
}

TEST_F(BenchSmokeTest, ChatDeliversEveryMessageOnceInOrder) {
  int code = 0;
  const Json r = RunBench({"chat", "--connections", "40", "--rate", "200", "--duration", "3",
                           "--procs", "2", "--threads", "2"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_EQ(c["sent"], c["scheduled"]);
  EXPECT_EQ(c["acked"], c["sent"]);
  EXPECT_EQ(c["unanswered"], 0);
  EXPECT_GE(c["acked"].get<uint64_t>(), 500u);  // 200/s for 3 s, less a few at the edges
  EXPECT_EQ(c["delivered"], c["acked"]);
  EXPECT_EQ(r["latency_ms"]["delivery_us"]["count"], c["delivered"]);
  // Every device synced once at the end, and a healthy cluster had pushed everything already.
  EXPECT_EQ(c["final_syncs"], 40);
  EXPECT_EQ(c["found_by_final_sync"], 0);
  EXPECT_EQ(c["in_flight_at_end"], 0);
}

// Typing before every 5th message, and a fifth of the acknowledged messages recalled and a tenth
// edited at once (ChangePicker: exactly that share of each device's messages).
TEST_F(BenchSmokeTest, ChatTypesRecallsAndEditsAndEveryChangeArrivesInOrder) {
  int code = 0;
  const Json r = RunBench(
      {"chat", "--connections", "40", "--rate", "200", "--duration", "3", "--procs", "2",
       "--threads", "2", "--typing-every", "5", "--recall-share", "0.2", "--edit-share", "0.1"},
      &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_EQ(c["acked"], c["sent"]);
  // Each of the 40 devices typed before its 5th, 10th, ... message.
  ExpectShare(U(c, "typing_sent"), U(c, "sent"), 0.2, 40);
  // The cluster passes one a user and conversation every 3 s, to the peer only.
  EXPECT_GT(U(c, "typing_pushes"), 0u);
  EXPECT_LE(U(c, "typing_pushes"), U(c, "typing_sent"));
  ExpectShare(U(c, "recalls_sent"), U(c, "acked"), 0.2, 40);
  ExpectShare(U(c, "edits_sent"), U(c, "acked"), 0.1, 40);
  EXPECT_EQ(c["changes_resent"], 0);
  ExpectChangesApplied(r, 1);
  // Every message and change came by push; the final sync found none missed.
  EXPECT_EQ(c["found_by_final_sync"], 0);
  EXPECT_EQ(r["latency_ms"]["delivery_us"]["count"], U(c, "acked"));
}

TEST_F(BenchSmokeTest, GroupReachesEveryMember) {
  int code = 0;
  const Json r = RunBench({"group", "--connections", "60", "--group-size", "30", "--senders", "2",
                           "--rate", "40", "--duration", "3", "--threads", "2"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_GE(c["acked"].get<uint64_t>(), 100u);
  EXPECT_EQ(c["delivered"].get<uint64_t>(), c["acked"].get<uint64_t>() * 29);
  EXPECT_EQ(c["messages_reached_all"], c["acked"]);
  EXPECT_EQ(r["latency_ms"]["last_member_us"]["count"], c["acked"]);
}

TEST_F(BenchSmokeTest, GroupTypesRecallsAndEditsToEveryMember) {
  int code = 0;
  const Json r = RunBench({"group", "--connections", "60", "--group-size", "30", "--senders", "2",
                           "--rate", "40", "--duration", "3", "--threads", "2", "--typing-every",
                           "3", "--recall-share", "0.1", "--edit-share", "0.1"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  ExpectShare(U(c, "typing_sent"), U(c, "sent"), 1.0 / 3, 4);  // 4 senders
  EXPECT_GT(U(c, "typing_pushes"), 0u);
  EXPECT_LE(U(c, "typing_pushes"), U(c, "typing_sent") * 29);
  ExpectShare(U(c, "recalls_sent"), U(c, "acked"), 0.1, 4);
  ExpectShare(U(c, "edits_sent"), U(c, "acked"), 0.1, 4);
  EXPECT_EQ(c["changes_resent"], 0);
  ExpectChangesApplied(r, 29);
  EXPECT_EQ(c["messages_reached_all"], c["acked"]);
}

// Members mark read every 10th message; the group is within the receipt limit, so the senders of
// the messages each read passed hear of it. A read refused for overload (each costs logic a scan
// of the messages it passed, heavy for a sanitizer build) is counted apart, not as an error.
TEST_F(BenchSmokeTest, GroupReadsReachTheSendersAsReceipts) {
  int code = 0;
  const Json r = RunBench({"group", "--connections", "60", "--group-size", "30", "--senders", "2",
                           "--rate", "40", "--duration", "3", "--read-every", "10"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_GT(U(c, "reads_ok"), 0u);
  const Json refusals = r.value("refusals", Json::object());
  EXPECT_EQ(U(c, "reads_ok") + refusals.value("read_RESOURCE_EXHAUSTED", uint64_t{0}),
            U(c, "reads_sent"));
  EXPECT_GT(U(c, "receipts_pushed"), 0u);
  EXPECT_EQ(c["messages_reached_all"], c["acked"]);
}

TEST_F(BenchSmokeTest, ReconnectStormResumesEveryDevice) {
  int code = 0;
  const Json r = RunBench({"reconnect", "--connections", "60", "--rate", "100", "--duration", "4",
                           "--fraction", "0.5", "--storm-at", "1", "--down-ms", "300"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_EQ(c["planned_drops"], 30);
  EXPECT_EQ(c["resumed"], c["planned_drops"]);
  EXPECT_EQ(c["not_resumed"], 0);
  EXPECT_EQ(r["latency_ms"]["resume_us"]["count"], 30);
  EXPECT_EQ(c["delivered"], c["expected_deliveries"]);
}

// With --resume each dropped device presents its first login's token after logging in again; the
// cluster accepts every one. A fifth of the messages are recalled meanwhile: the devices that were
// down read the recalled messages (bodies deleted) and the recalls back by sync. Every device
// watches its peer's presence (again after its reconnect): the storm's drops and returns are
// pushed to the peers watching.
TEST_F(BenchSmokeTest, ReconnectStormResumesTheLastSession) {
  int code = 0;
  const Json r = RunBench({"reconnect", "--connections", "60", "--rate", "100", "--duration", "4",
                           "--fraction", "0.5", "--storm-at", "1", "--down-ms", "300", "--resume",
                           "--recall-share", "0.2", "--edit-share", "0.1", "--watch-presence"},
                          &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_EQ(c["planned_drops"], 30);
  EXPECT_EQ(c["resume_attempts"], 30);
  EXPECT_EQ(c["resumes_accepted"], 30);
  EXPECT_EQ(c["resume_fallbacks"], 0);
  EXPECT_EQ(c["resumed"], 30);
  EXPECT_EQ(c["not_resumed"], 0);
  // A resumed device synced when the answer listed its conversation as moved: what came while it
  // was away was not left for the final sync to find.
  EXPECT_EQ(c["found_by_final_sync"], 0);
  ExpectChangesApplied(r, 1);
  // 60 first sessions and 30 after the storm, each watching once it saw a message.
  EXPECT_EQ(c["presence_watches"], 90);
  EXPECT_EQ(c["presence_watches_ok"], 90);
  EXPECT_EQ(c["presence_refused"], 0) << "a device watches only once it talked with its peer";
  EXPECT_GT(c["presence_pushes"], 0) << "the storm's drops reach the peers watching";
}

// im-bench --transport ws against the embedded node (one im-server on SQLite; no Redis, MariaDB
// or Kafka needed): its WebSocket port, and its wss port with certificates made for the suite.
// Every frame travels as one binary WebSocket message each way; the checks are those of a tcp
// run.
class BenchWebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (server_ == nullptr) started_ = StartServer();
    ASSERT_TRUE(started_) << "im-server did not start";
  }
  static void TearDownTestSuite() {
    server_.reset();
    std::filesystem::remove_all(certificates_dir_);
  }

  static bool StartServer() {
    certificates_dir_ = absl::StrCat(::testing::TempDir(), "bench-wss-", getpid());
    absl::StatusOr<tls::testing::TestCertificates> certificates =
        tls::testing::TestCertificates::Create(certificates_dir_);
    if (!certificates.ok()) {
      ADD_FAILURE() << certificates.status();
      return false;
    }
    ca_file_ = certificates->ca_file;
    server_ = std::make_unique<EmbeddedServer>(
        "",
        std::map<std::string, std::string>{{"IM_GATEWAY_WS_LISTEN", "127.0.0.1:0"},
                                           {"IM_GATEWAY_WSS_LISTEN", "127.0.0.1:0"},
                                           {"IM_GATEWAY_TLS_CERT_FILE", certificates->cert_file},
                                           {"IM_GATEWAY_TLS_KEY_FILE", certificates->key_file}});
    if (!server_->Start()) return false;
    ws_port_ = server_->ws_port();
    wss_port_ = server_->wss_port();
    return ws_port_ != 0 && wss_port_ != 0;
  }

  static Json RunBench(std::vector<std::string> args, uint16_t port, int* exit_code) {
    args.insert(args.end(), {"--transport", "ws"});
    return e2e::RunBench(std::move(args), absl::StrCat("127.0.0.1:", port),
                         EmbeddedServer::kTokenSecret,
                         server_->Uid(absl::StrCat("bench-ws", runs_++)), exit_code);
  }

  static std::unique_ptr<EmbeddedServer> server_;
  static bool started_;
  static std::string certificates_dir_;
  static std::string ca_file_;
  static uint16_t ws_port_;
  static uint16_t wss_port_;
  static int runs_;
};

std::unique_ptr<EmbeddedServer> BenchWebSocketTest::server_;
bool BenchWebSocketTest::started_ = false;
std::string BenchWebSocketTest::certificates_dir_;
std::string BenchWebSocketTest::ca_file_;
uint16_t BenchWebSocketTest::ws_port_ = 0;
uint16_t BenchWebSocketTest::wss_port_ = 0;
int BenchWebSocketTest::runs_ = 0;

TEST_F(BenchWebSocketTest, ChatOverWebSocketDeliversEveryMessageOnceInOrder) {
  int code = 0;
  const Json r = RunBench({"chat", "--connections", "40", "--rate", "200", "--duration", "3",
                           "--procs", "2", "--threads", "2"},
                          ws_port_, &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["params"]["transport"], "ws");
  const Json& c = r["counters"];
  EXPECT_EQ(c["first_logins"], 40);
  EXPECT_EQ(c["sent"], c["scheduled"]);
  EXPECT_EQ(c["acked"], c["sent"]);
  EXPECT_EQ(c["unanswered"], 0);
  EXPECT_GE(U(c, "acked"), 500u);  // 200/s for 3 s, less a few at the edges
  EXPECT_EQ(c["delivered"], c["acked"]);
  EXPECT_EQ(c["found_by_final_sync"], 0);
  EXPECT_EQ(c["unplanned_drops"], 0) << r["disconnects"].dump();
}

// wss: the WebSocket inside TLS. Every device logs in and holds; the drops at the end are
// im-bench's own.
TEST_F(BenchWebSocketTest, ConnectOverWssHoldsEveryConnection) {
  int code = 0;
  const Json r = RunBench(
      {"connect", "--connections", "200", "--rate", "500", "--duration", "2", "--tls-ca", ca_file_},
      wss_port_, &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["params"]["tls"], true);
  EXPECT_EQ(r["counters"]["online_at_end"], 200);
  EXPECT_EQ(r["counters"]["first_logins"], 200);
  EXPECT_EQ(r["counters"]["login_failures"], 0) << r["errors"].dump();
}

// One of logic's queues made tiny, so that a modest load overflows it.
struct TinyQueue {
  const char* name;
  const char* env;
  const char* value;
};
void PrintTo(const TinyQueue& queue, std::ostream* out) { *out << queue.env << "=" << queue.value; }

// A logic node with a tiny queue refuses sends RESOURCE_EXHAUSTED with a retry hint, before they
// take a seq: the send loop's queue (one stream batch at a time), the MySQL writer's (room for
// 8 messages, reserved before a send is numbered; a refusal after numbering would leave a hole
// that stalls the conversation's later pushes for logic.hole_grace_ms) and the store executor's
// (a conversation's first send restores its seq counter there; the claim a refused one took is
// released, or its resends would wait for it until it expired). im-bench sends each
// again after the hint, with the same client_msg_id, as the SDK does: every message ends
// acknowledged once and delivered once, in order, and none is an error. (Refused devices halve
// their window and hold their sends for the hint, so against a queue this tiny the 3 s of sends
// take up to ~12 s to get through under ASan: hence the long drain.)
class BenchOverloadTest : public ::testing::TestWithParam<TinyQueue> {};

TEST_P(BenchOverloadTest, RefusedSendsAreSentAgainAfterTheHintAndNoneIsLost) {
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.logic_env = {{GetParam().env, GetParam().value}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  int code = 0;
  const Json r = RunBench({"chat", "--connections", "40", "--rate", "1000", "--duration", "3",
                           "--window", "8", "--drain", "20"},
                          absl::StrCat("127.0.0.1:", cluster.client_port(0)),
                          LocalCluster::kTokenSecret, cluster.Uid("overload"), &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_GT(c["refused_and_resent"].get<uint64_t>(), 0u) << "logic refused nothing";
  // Refused at once, long before the gateway would have given up on logic (5 s).
  EXPECT_LT(r["latency_ms"]["refused_us"]["max"].get<double>(), 5'000.0);
  EXPECT_EQ(c["acked"], c["sent"]);
  EXPECT_EQ(c["acked_unique"], c["sent"]);
  EXPECT_EQ(c["delivered"], c["acked"]);
}

INSTANTIATE_TEST_SUITE_P(LogicQueues, BenchOverloadTest,
                         ::testing::Values(TinyQueue{"SendLoop", "IM_LOGIC_SEND_LOOP_QUEUE", "1"},
                                           TinyQueue{"Writer", "IM_LOGIC_WRITE_QUEUE", "8"},
                                           TinyQueue{"Executor", "IM_LOGIC_EXECUTOR_QUEUE", "1"}),
                         [](const ::testing::TestParamInfo<TinyQueue>& queue) {
                           return std::string(queue.param.name);
                         });

// A storm's catch-up syncs against a logic node with one store thread and room for one task
// (a stream batch's syncs are one task): many are refused RESOURCE_EXHAUSTED with a retry hint,
// and each device syncs again after the hint plus a random part (as the SDK's inbox does) until
// every one has resumed.
TEST(BenchSyncOverloadTest, RefusedCatchUpSyncsAreSentAgainAfterTheHint) {
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.logic_env = {{"IM_LOGIC_EXECUTOR_QUEUE", "1"}, {"IM_LOGIC_EXECUTOR_THREADS", "1"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  int code = 0;
  const Json r = RunBench({"reconnect", "--connections", "200", "--rate", "20", "--duration", "4",
                           "--fraction", "1", "--storm-at", "1", "--drain", "20"},
                          absl::StrCat("127.0.0.1:", cluster.client_port(0)),
                          LocalCluster::kTokenSecret, cluster.Uid("syncstorm"), &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  const Json& c = r["counters"];
  EXPECT_GT(c["syncs_refused_and_retried"].get<uint64_t>(), 0u) << "logic refused no sync";
  EXPECT_EQ(c["planned_drops"], 200);
  EXPECT_EQ(c["resumed"], c["planned_drops"]);
  EXPECT_EQ(c["not_resumed"], 0);
}

// A login storm on a small cluster while devices chat: every device of the storm ends logged
// in, and the chat's sends go on being acknowledged and delivered, none refused nor lost: logins
// and sends are admitted apart (logic's login loop and send loop).
TEST(BenchLoginStormTest, SendsKeepFlowingWhileThousandsLogIn) {
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 2;
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string gateways =
      absl::StrCat("127.0.0.1:", cluster.client_port(0), ",127.0.0.1:", cluster.client_port(1));
  const std::string send_batches = "im_logic_send_loop_batches_total";
  const double sends_before = cluster.LogicMetric(0, send_batches).value_or(0);
  int storm_code = 0;
  std::future<Json> storm = std::async(std::launch::async, [&] {
    // Once the chat sends: im-bench sends only when all its devices are logged in, so none of
    // the chat's logins meets the storm.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (cluster.LogicMetric(0, send_batches).value_or(0) <= sends_before &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return RunBench({"connect", "--connections", "3000", "--rate", "3000", "--duration", "2",
                     "--setup-timeout", "60"},
                    gateways, LocalCluster::kTokenSecret, cluster.Uid("storm"), &storm_code);
  });
  int chat_code = 0;
  const Json chat =
      RunBench({"chat", "--connections", "40", "--rate", "200", "--duration", "6", "--drain", "10"},
               gateways, LocalCluster::kTokenSecret, cluster.Uid("chat"), &chat_code);
  const Json logins = storm.get();
  ExpectClean(chat, chat_code);
  ASSERT_TRUE(chat.is_object());
  const Json& c = chat["counters"];
  EXPECT_EQ(c["acked"], c["sent"]);
  EXPECT_EQ(c["delivered"], c["acked"]);
  EXPECT_EQ(c["refused_and_resent"], 0) << "a send was refused during the storm";
  EXPECT_EQ(storm_code, 0);
  ASSERT_TRUE(logins.is_object());
  EXPECT_EQ(logins["counters"]["online_at_end"], 3000);
}

// A cluster whose resume tokens last 1 s and whose messages may not be recalled at all: a device
// down for 1.5 s presents an expired token, is refused and syncs as without --resume; every
// recall is refused CHANGE_WINDOW_PASSED (before it takes a seq) while the edits go through.
TEST(BenchRefusalsTest, RefusedResumesFallBackAndRefusedChangesAreCountedByCode) {
  ClusterOptions options;
  options.logic_nodes = 1;
  options.gateways = 1;
  options.logic_env = {{"IM_LOGIC_RESUME_WINDOW_SEC", "1"}, {"IM_LOGIC_RECALL_WINDOW_MS", "0"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string gateway = absl::StrCat("127.0.0.1:", cluster.client_port(0));
  int code = 0;
  const Json storm =
      RunBench({"reconnect", "--connections", "40", "--rate", "50", "--duration", "4", "--fraction",
                "0.5", "--storm-at", "1", "--down-ms", "1500", "--resume"},
               gateway, LocalCluster::kTokenSecret, cluster.Uid("expired"), &code);
  ExpectClean(storm, code);
  ASSERT_TRUE(storm.is_object());
  const Json& s = storm["counters"];
  EXPECT_EQ(s["planned_drops"], 20);
  EXPECT_EQ(s["resume_attempts"], 20);
  EXPECT_EQ(s["resumes_accepted"], 0);
  EXPECT_EQ(s["resume_fallbacks"], 20);
  EXPECT_EQ(storm["refusals"], Json({{"resume_FAILED_PRECONDITION", 20}}));
  EXPECT_EQ(s["resumed"], 20);
  EXPECT_EQ(s["delivered"], s["expected_deliveries"]);

  const Json chat = RunBench({"chat", "--connections", "20", "--rate", "100", "--duration", "2",
                              "--recall-share", "0.5", "--edit-share", "0.5"},
                             gateway, LocalCluster::kTokenSecret, cluster.Uid("late"), &code);
  ExpectClean(chat, code);
  ASSERT_TRUE(chat.is_object());
  const Json& c = chat["counters"];
  EXPECT_GT(U(c, "recalls_sent"), 0u);
  EXPECT_EQ(c["recalls_ok"], 0);
  EXPECT_EQ(chat["refusals"], Json({{"recall_CHANGE_WINDOW_PASSED", c["recalls_sent"]}}));
  EXPECT_GT(U(c, "edits_sent"), 0u);
  EXPECT_EQ(c["edits_ok"], c["edits_sent"]);
  EXPECT_EQ(c["delivered"], c["expected_deliveries"]);
  EXPECT_EQ(U(c, "delivered"), U(c, "acked") + U(c, "edits_ok"));
}

TEST_F(BenchSmokeTest, BadOptionsExitTwoWithoutRunning) {
  int code = 0;
  const Json r = RunBench({"chat", "--connections", "3"}, &code);  // pairs need an even number
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(r.is_null());
  code = 0;
  const Json shares = RunBench(
      {"chat", "--connections", "4", "--recall-share", "0.6", "--edit-share", "0.6"}, &code);
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(shares.is_null());
}

// The checks can fail: im-bench's echo peer with a fault injected instead of the cluster.
class BenchChecksTest : public ::testing::Test {
 protected:
  static constexpr char kSecret[] = "bench-checks-secret";

  // Starts `im-bench echo-peer <faults>` and runs 2 s of chat against it.
  static Json ChatAgainstEchoPeer(std::vector<std::string> faults, int* exit_code) {
    std::vector<std::string> argv = {IM_BENCH_BINARY, "echo-peer", "--listen",
                                     "127.0.0.1:0",   "--secret",  kSecret};
    argv.insert(argv.end(), faults.begin(), faults.end());
    auto peer = im::testing::Subprocess::Start(argv);
    if (!peer.ok()) {
      ADD_FAILURE() << peer.status();
      return nullptr;
    }
    const std::optional<std::string> ready =
        (*peer)->ReadLineStartingWith("im-bench echo-peer ready", Millis(10'000));
    if (!ready) {
      ADD_FAILURE() << "the echo peer did not start";
      return nullptr;
    }
    const std::string port = im::testing::FieldOf(*ready, "port").value_or("0");
    Json report = RunBench(
        {"chat", "--connections", "20", "--rate", "500", "--duration", "2", "--drain", "2"},
        "127.0.0.1:" + port, kSecret, "checks", exit_code);
    (*peer)->Signal(SIGTERM);
    EXPECT_EQ((*peer)->Wait(Millis(10'000)), 0);  // a clean stop, nothing leaked under ASan
    return report;
  }
};

TEST_F(BenchChecksTest, CleanPeerPasses) {
  int code = -1;
  const Json r = ChatAgainstEchoPeer({}, &code);
  ExpectClean(r, code);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["counters"]["delivered"], r["counters"]["acked"]);
}

TEST_F(BenchChecksTest, LostPushesAreCountedAsMissing) {
  int code = -1;
  const Json r = ChatAgainstEchoPeer({"--drop-every", "50"}, &code);
  EXPECT_EQ(code, 1);
  ASSERT_TRUE(r.is_object());
  EXPECT_FALSE(r["ok"].get<bool>());
  const uint64_t acked = r["counters"]["acked"].get<uint64_t>();
  EXPECT_EQ(r["counters"]["missing"].get<uint64_t>(), acked / 50);
  EXPECT_FALSE(r["missing_samples"].empty());
}

TEST_F(BenchChecksTest, PushesSentTwiceAreCountedAsDuplicates) {
  int code = -1;
  const Json r = ChatAgainstEchoPeer({"--duplicate-every", "40"}, &code);
  EXPECT_EQ(code, 1);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["counters"]["duplicates"].get<uint64_t>(),
            r["counters"]["acked"].get<uint64_t>() / 40);
  EXPECT_EQ(r["counters"]["missing"], 0);
}

}  // namespace
}  // namespace im::e2e
