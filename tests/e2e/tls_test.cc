// Clients over TLS against the real cluster: gateways with a TLS port (gateway.tls_listen) and a
// certificate the test made; the SDK, imcli and a wire client verify it by CA or by pinned key.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/file_contents.h"
#include "common/tls/testing/test_certificates.h"
#include "im/v1/logic.grpc.pb.h"
#include "sdk/client.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/sdk_recorder.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/wire_client.h"

namespace im::e2e {
namespace {

using im::testing::TcpProxy;
using im::tls::testing::TestCertificates;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string TlsAddress(uint16_t port) { return "tls://" + Address(port); }

// The certificates, made before the cluster starts: its gateways read them at start.
struct CertificateDir {
  CertificateDir()
      : path(std::filesystem::temp_directory_path() / ("im-e2e-tls-" + UniquePrefix())) {
    absl::StatusOr<TestCertificates> made = TestCertificates::Create(path / "current", "im-e2e");
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) certificates = *made;
    ticket_key_file = (path / "ticket.key").string();
    std::ofstream(ticket_key_file, std::ios::binary) << std::string(80, 't');
  }
  ~CertificateDir() { std::filesystem::remove_all(path); }

  std::filesystem::path path;
  TestCertificates certificates;
  std::string ticket_key_file;  // shared by the gateways: a client resumes on either
};

class TlsTest : public ::testing::Test {
 protected:
  static ClusterOptions WithTls(const CertificateDir& dir) {
    ClusterOptions options;
    options.gateway_env = {{"IM_GATEWAY_TLS_LISTEN", "127.0.0.1:0"},
                           {"IM_GATEWAY_TLS_CERT_FILE", dir.certificates.cert_file},
                           {"IM_GATEWAY_TLS_KEY_FILE", dir.certificates.key_file},
                           {"IM_GATEWAY_TLS_TICKET_KEY_FILE", dir.ticket_key_file}};
    return options;
  }
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  im::sdk::ClientOptions TrustingTheCa(const std::string& uid, std::vector<std::string> gateways) {
    im::sdk::ClientOptions options = OptionsFor(uid, "phone", std::move(gateways));
    options.tls.ca_file = certificates_.ca_file;
    return options;
  }
  double GatewayMetric(int index, const std::string& family) {
    return MetricAt(cluster_.gateway_metrics_port(index), family).value_or(-1);
  }

  CertificateDir dir_;
  const TestCertificates& certificates_ = dir_.certificates;
  LocalCluster cluster_{WithTls(dir_)};
  const std::string alice_ = cluster_.Uid("alice");
  const std::string bob_ = cluster_.Uid("bob");
  const std::string conv_ = SingleChat(alice_, bob_);
};

// Two SDK clients over TLS (one trusting the CA, one pinning the gateway's key) exchange 1,000
// messages through proxies that cut their connections every second, mid-record as it happens:
// both show all of them exactly once and in order, and reconnects resume their TLS sessions on
// the other gateway (they share the ticket key file).
TEST_F(TlsTest, SdkClientsOverTlsExchangeThroughCutsExactlyOnceInOrder) {
  constexpr int kPerSide = 500;
  auto proxy0 = TcpProxy::Start(cluster_.tls_port(0));
  auto proxy1 = TcpProxy::Start(cluster_.tls_port(1));
  ASSERT_TRUE(proxy0.ok() && proxy1.ok());
  const std::vector<std::string> gateways = {TlsAddress((*proxy0)->port()),
                                             TlsAddress((*proxy1)->port())};
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice(TrustingTheCa(alice_, gateways), &alice_seen);
  im::sdk::ClientOptions pinned = OptionsFor(bob_, "phone", {gateways[1], gateways[0]});
  pinned.tls.pinned_keys = {certificates_.pin};
  pinned.tls.server_name = "a-name-the-certificate-does-not-carry";  // the pin alone decides
  im::sdk::Client bob(pinned, &bob_seen);
  ASSERT_TRUE(StartAndWait(alice, alice_seen));
  ASSERT_TRUE(StartAndWait(bob, bob_seen));

  std::atomic<bool> sending_done{false};
  std::thread cutter([&] {
    std::mt19937 random(11);
    while (!sending_done.load()) {
      std::this_thread::sleep_for(
          milliseconds(std::uniform_int_distribution<int>(300, 900)(random)));
      (random() % 2 == 0 ? *proxy0 : *proxy1)->CutAll();
    }
  });
  for (int i = 0; i < kPerSide; ++i) {
    alice.SendTo(bob_, "a" + std::to_string(i));
    bob.Send(conv_, "b" + std::to_string(i));
    std::this_thread::sleep_for(milliseconds(8));
  }
  auto complete = [&](const SdkRecorder& r) {
    return r.sent_ok() + r.send_failures() >= kPerSide && r.delivered_count(conv_) >= 2 * kPerSide;
  };
  EXPECT_TRUE(alice_seen.WaitFor(complete, seconds(90)));
  EXPECT_TRUE(bob_seen.WaitFor(complete, seconds(30)));
  sending_done.store(true);
  cutter.join();
  std::this_thread::sleep_for(milliseconds(500));  // a late duplicate would arrive by now
  alice.Stop();
  bob.Stop();

  for (SdkRecorder* seen : {&alice_seen, &bob_seen}) {
    const std::vector<im::sdk::Message> shown = seen->DeliveredCopy(conv_);
    EXPECT_EQ(shown.size(), 2u * kPerSide);
    EXPECT_EQ(CheckContiguous(shown, 1), "");
    std::set<std::string> bodies;
    for (const im::sdk::Message& message : shown) bodies.insert(message.body);
    EXPECT_EQ(bodies.size(), 2u * kPerSide) << "a body shown twice";
    EXPECT_EQ(seen->send_failures(), 0u);
  }
  EXPECT_GE(alice_seen.ConnectsCopy(), 3) << "the proxy cuts should have forced reconnects";
  const double resumed = GatewayMetric(0, "im_gateway_tls_handshakes_total{result=\"resumed\"}") +
                         GatewayMetric(1, "im_gateway_tls_handshakes_total{result=\"resumed\"}");
  EXPECT_GE(resumed, 2) << "reconnects should resume their TLS sessions; full handshakes: "
                        << GatewayMetric(0, "im_gateway_tls_handshakes_total{result=\"full\"}")
                        << " + "
                        << GatewayMetric(1, "im_gateway_tls_handshakes_total{result=\"full\"}");
}

// A client that trusts another CA never logs in: every attempt fails on the certificate, which
// its log says, and the gateway counts the refused handshakes. A plain-TCP client on the same
// gateway is not affected.
TEST_F(TlsTest, AClientTrustingAnotherCaNeverLogsIn) {
  absl::StatusOr<TestCertificates> other =
      TestCertificates::Create((dir_.path / "other").string(), "other");
  ASSERT_TRUE(other.ok());
  SdkRecorder seen;
  im::sdk::ClientOptions options = OptionsFor(alice_, "phone", {TlsAddress(cluster_.tls_port(0))});
  options.tls.ca_file = other->ca_file;
  std::mutex log_mutex;
  std::vector<std::string> log;
  options.log = [&](int, const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    log.push_back(line);
  };
  im::sdk::Client client(options, &seen);
  client.Start();
  EXPECT_FALSE(seen.WaitConnected(seconds(3)));
  client.Stop();
  bool said_why = false;
  {
    std::lock_guard<std::mutex> lock(log_mutex);
    for (const std::string& line : log) {
      said_why = said_why || line.find("certificate verify failed") != std::string::npos;
    }
  }
  EXPECT_TRUE(said_why) << "the SDK's log should name the certificate failure";
  EXPECT_GE(GatewayMetric(0, "im_gateway_tls_handshakes_total{result=\"failed\"}"), 1);

  SdkRecorder plain_seen;
  im::sdk::Client plain(OptionsFor(bob_, "phone", {Address(cluster_.client_port(0))}), &plain_seen);
  EXPECT_TRUE(StartAndWait(plain, plain_seen));
}

// SIGHUP makes a gateway read its certificate files again: new connections get the renewed
// certificate, and the client connected before keeps its connection and its messages.
TEST_F(TlsTest, SighupServesTheRenewedCertificateWithoutDroppingConnections) {
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice(TrustingTheCa(alice_, {TlsAddress(cluster_.tls_port(0))}), &alice_seen);
  im::sdk::Client bob(OptionsFor(bob_, "phone", {Address(cluster_.client_port(1))}), &bob_seen);
  ASSERT_TRUE(StartAndWait(alice, alice_seen));
  ASSERT_TRUE(StartAndWait(bob, bob_seen));

  absl::StatusOr<TestCertificates> renewed =
      TestCertificates::Create((dir_.path / "renewed").string(), "renewed", 90);
  ASSERT_TRUE(renewed.ok());
  // As a renewal tool does it: the new files are moved over the old ones.
  std::filesystem::rename(renewed->cert_file, certificates_.cert_file);
  std::filesystem::rename(renewed->key_file, certificates_.key_file);
  ASSERT_TRUE(cluster_.SignalGateway(0, SIGHUP));
  const auto until = std::chrono::steady_clock::now() + seconds(10);
  while (GatewayMetric(0, "im_gateway_tls_reloads_total{result=\"ok\"}") < 1 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_EQ(GatewayMetric(0, "im_gateway_tls_reloads_total{result=\"ok\"}"), 1);

  absl::StatusOr<std::shared_ptr<tls::ClientContext>> trusts_renewed = [&] {
    tls::ClientTlsOptions trust;
    trust.ca_file = renewed->ca_file;
    return tls::ClientContext::Create(trust);
  }();
  ASSERT_TRUE(trusts_renewed.ok());
  EXPECT_TRUE(im::testing::WireClient::ConnectTls("127.0.0.1", cluster_.tls_port(0),
                                                  **trusts_renewed, "localhost", seconds(5))
                  .ok());

  bob.Send(conv_, "after the reload");
  EXPECT_TRUE(alice_seen.WaitFor(
      [&](const SdkRecorder& r) { return r.delivered_count(conv_) == 1; }, seconds(15)));
  EXPECT_EQ(alice_seen.ConnectsCopy(), 1) << "the reload must not drop the connection";
  alice.Stop();
  bob.Stop();
}

// imcli over TLS, trusting the test CA, chats with an SDK client on plain TCP.
TEST_F(TlsTest, ImcliChatsOverTls) {
  SdkRecorder bob_seen;
  im::sdk::Client bob(OptionsFor(bob_, "phone", {Address(cluster_.client_port(1))}), &bob_seen);
  ASSERT_TRUE(StartAndWait(bob, bob_seen));
  auto imcli = im::testing::Subprocess::Start(
      {IM_IMCLI, "--gateway", TlsAddress(cluster_.tls_port(0)), "--tls-ca", certificates_.ca_file,
       "--token", ChatDeployment::Token(alice_)},
      {}, {.pipe_stdin = true, .stderr_path = ""});
  ASSERT_TRUE(imcli.ok()) << imcli.status();
  ASSERT_TRUE((*imcli)->ReadLineStartingWith("* connected", seconds(15)));
  ASSERT_TRUE((*imcli)->WriteStdin("/open " + bob_ + "\nhello over TLS\n"));
  EXPECT_TRUE(bob_seen.WaitFor(
      [&](const SdkRecorder& r) {
        return r.delivered_count(conv_) == 1 && r.delivered(conv_)[0].body == "hello over TLS";
      },
      seconds(15)));
  ASSERT_TRUE((*imcli)->WriteStdin("/quit\n"));
  EXPECT_EQ((*imcli)->Wait(seconds(15)), 0);
  bob.Stop();
}

// Gateways and logic nodes on mutual TLS (grpc_tls.*): the chat works through it (requests on
// the gateways' streams, pushes on logic's), and logic's port refuses a caller in clear and one
// without a certificate of the cluster's CA, while one with it gets through.
TEST(GrpcTlsTest, GatewaysAndLogicTalkOverMutualTlsAndRefuseOthers) {
  ClusterOptions options;
  options.grpc_tls = true;
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());  // waits until a probe message is pushed through each gateway
  const std::string alice = cluster.Uid("alice");
  const std::string bob = cluster.Uid("bob");
  const std::string conv = SingleChat(alice, bob);
  SdkRecorder alice_seen;
  SdkRecorder bob_seen;
  im::sdk::Client alice_client(OptionsFor(alice, "phone", {Address(cluster.client_port(0))}),
                               &alice_seen);
  im::sdk::Client bob_client(OptionsFor(bob, "phone", {Address(cluster.client_port(1))}),
                             &bob_seen);
  ASSERT_TRUE(StartAndWait(alice_client, alice_seen));
  ASSERT_TRUE(StartAndWait(bob_client, bob_seen));
  for (int i = 0; i < 20; ++i) {
    alice_client.SendTo(bob, "a" + std::to_string(i));
    bob_client.Send(conv, "b" + std::to_string(i));
  }
  for (SdkRecorder* seen : {&alice_seen, &bob_seen}) {
    EXPECT_TRUE(seen->WaitFor([&](const SdkRecorder& r) { return r.delivered_count(conv) == 40; },
                              seconds(30)));
    EXPECT_EQ(CheckContiguous(seen->DeliveredCopy(conv), 1), "");
  }
  alice_client.Stop();
  bob_client.Stop();

  const std::string logic = "127.0.0.1:" + std::to_string(cluster.logic_grpc_port(0));
  auto call = [&](const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    std::unique_ptr<im::v1::LogicService::Stub> stub =
        im::v1::LogicService::NewStub(grpc::CreateCustomChannel(logic, credentials, args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(5));
    im::v1::RefreshSessionsRequest request;
    im::v1::RefreshSessionsReply reply;
    return stub->RefreshSessions(&context, request, &reply);
  };
  const std::string dir = cluster.grpc_tls_dir();
  auto read = [](const std::string& path) { return common::ReadFileContents(path).value_or(""); };
  grpc::SslCredentialsOptions no_certificate;
  no_certificate.pem_root_certs = read(dir + "/ca.pem");
  grpc::SslCredentialsOptions with_certificate = no_certificate;
  with_certificate.pem_cert_chain = read(dir + "/server.pem");
  with_certificate.pem_private_key = read(dir + "/server.key");

  EXPECT_EQ(call(grpc::InsecureChannelCredentials()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(call(grpc::SslCredentials(no_certificate)).error_code(), grpc::StatusCode::UNAVAILABLE);
  const grpc::Status admitted = call(grpc::SslCredentials(with_certificate));
  EXPECT_TRUE(admitted.ok()) << admitted.error_message();
}

}  // namespace
}  // namespace im::e2e
