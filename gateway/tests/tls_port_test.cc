// The gateway's TLS port: a real gateway on loopback with a LogicService double, clients that
// speak TLS through common/tls, certificates made by the test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/tls/testing/test_certificates.h"
#include "gateway/tests/gateway_fixture.h"

namespace im::gateway::testing {
namespace {

using im::tls::ClientContext;
using im::tls::ClientTlsOptions;
using im::tls::testing::TestCertificates;
using im::v1::Frame;

class TlsPortTest : public GatewayTest {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("im-gateway-tls-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::StatusOr<TestCertificates> first =
        TestCertificates::Create(directory_ / "first", "first");
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = *first;
  }
  void TearDown() override {
    GatewayTest::TearDown();
    std::filesystem::remove_all(directory_);
  }

  GatewayOptions WithTls() {
    GatewayOptions options = TestOptions(logic_.target());
    options.tls_listen_address = "127.0.0.1:0";
    options.tls_cert_file = first_.cert_file;
    options.tls_key_file = first_.key_file;
    options.heartbeat_sec = 10;
    return options;
  }
  std::shared_ptr<ClientContext> Trusting(const std::string& ca_file) {
    ClientTlsOptions options;
    options.ca_file = ca_file;
    absl::StatusOr<std::shared_ptr<ClientContext>> context = ClientContext::Create(options);
    EXPECT_TRUE(context.ok()) << context.status();
    return *context;
  }
  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> ConnectTls(ClientContext& context) {
    return im::testing::WireClient::ConnectTls("127.0.0.1", gateway_->tls_port(), context,
                                               "localhost", kWait);
  }
  // A TLS client logged in as `uid`.
  std::unique_ptr<im::testing::WireClient> LoggedInOverTls(ClientContext& context,
                                                           const std::string& uid) {
    absl::StatusOr<std::unique_ptr<im::testing::WireClient>> client = ConnectTls(context);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    std::optional<Frame> resp = (*client)->Login(TestToken(uid), "phone", kWait);
    EXPECT_TRUE(resp && resp->has_login_resp() && resp->login_resp().status().code() == im::v1::OK)
        << (resp ? resp->DebugString() : "no answer");
    return std::move(*client);
  }
  static bool Pings(im::testing::WireClient& client) {
    Frame ping;
    ping.mutable_ping();
    std::optional<Frame> pong = client.Call(ping, kWait);
    return pong && pong->has_pong();
  }

  std::filesystem::path directory_;
  TestCertificates first_;
};

TEST_F(TlsPortTest, ClientsLogInSendAndGetPushesOverTls13) {
  StartGateway(WithTls());
  std::shared_ptr<ClientContext> context = Trusting(first_.ca_file);
  std::unique_ptr<im::testing::WireClient> client = LoggedInOverTls(*context, "alice");
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->tls()->version(), "TLSv1.3");
  EXPECT_TRUE(Pings(*client));

  Frame send;
  send.mutable_send_req()->set_conv_id("s:alice:bob");
  send.mutable_send_req()->set_client_msg_id("m1");
  send.mutable_send_req()->set_body("hello over TLS");
  std::optional<Frame> answer = client->Call(send, kWait);
  ASSERT_TRUE(answer && answer->has_send_resp()) << (answer ? answer->DebugString() : "none");

  // A push larger than one TLS record (16 KiB) arrives whole.
  Frame push;
  push.mutable_message_push()->add_messages()->set_body(std::string(200'000, 'p'));
  im::v1::PushRequest request;
  request.add_conn_ids(ConnIdOfLogin(0));
  request.set_frame(push.SerializeAsString());
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushReply reply;
  ASSERT_TRUE(PushOne(&call, request, &reply).ok());
  std::optional<Frame> pushed =
      client->ReceiveMatching([](const Frame& f) { return f.has_message_push(); }, kWait);
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->message_push().messages(0).body().size(), 200'000u);
  EXPECT_EQ(MetricValue("im_gateway_tls_handshakes_total", {{"result", "full"}}), 1);

  // The plain port serves as before, next to the TLS one.
  EXPECT_NE(LoggedIn("bob"), nullptr);
}

TEST_F(TlsPortTest, PlaintextOnTheTlsPortIsClosedAndCounted) {
  StartGateway(WithTls());
  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> plain =
      im::testing::WireClient::Connect("127.0.0.1", gateway_->tls_port());
  ASSERT_TRUE(plain.ok());
  Frame login;
  login.mutable_login_req()->set_token(TestToken("mallory"));
  ASSERT_TRUE((*plain)->SendFrame(login));
  EXPECT_TRUE((*plain)->WaitClosed(kWait));
  EXPECT_FALSE((*plain)->Receive(Millis(0)).has_value());  // nothing in clear came back
  EXPECT_EQ(MetricValue("im_gateway_tls_handshakes_total", {{"result", "failed"}}), 1);
  EXPECT_EQ(MetricValue("im_gateway_connections_closed_total", {{"reason", "tls"}}), 1);
  EXPECT_TRUE(logic_.logins().empty());

  std::shared_ptr<ClientContext> context = Trusting(first_.ca_file);
  EXPECT_NE(LoggedInOverTls(*context, "alice"), nullptr);  // still serving
}

TEST_F(TlsPortTest, AClientThatRefusesTheCertificateNeverReachesLogic) {
  StartGateway(WithTls());
  absl::StatusOr<TestCertificates> other = TestCertificates::Create(directory_ / "other", "other");
  ASSERT_TRUE(other.ok());
  std::shared_ptr<ClientContext> wrong_ca = Trusting(other->ca_file);
  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> client = ConnectTls(*wrong_ca);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("certificate verify failed"), std::string::npos)
      << client.status();
  EXPECT_TRUE(logic_.logins().empty());
}

TEST_F(TlsPortTest, AHandshakeThatNeverStartsIsClosedAtTheLoginTimeout) {
  GatewayOptions options = WithTls();
  options.login_timeout_ms = 200;
  StartGateway(options);
  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> silent =
      im::testing::WireClient::Connect("127.0.0.1", gateway_->tls_port());
  ASSERT_TRUE(silent.ok());
  EXPECT_TRUE((*silent)->WaitClosed(kWait));
  EXPECT_EQ(MetricValue("im_gateway_connections_closed_total", {{"reason", "login_timeout"}}), 1);
}

TEST_F(TlsPortTest, ASecondConnectionResumesWithASessionTicket) {
  StartGateway(WithTls());
  std::shared_ptr<ClientContext> context = Trusting(first_.ca_file);
  std::unique_ptr<im::testing::WireClient> first = LoggedInOverTls(*context, "alice");
  ASSERT_NE(first, nullptr);
  EXPECT_FALSE(first->tls()->resumed());
  std::unique_ptr<im::testing::WireClient> second = LoggedInOverTls(*context, "alice");
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->tls()->resumed());
  EXPECT_EQ(MetricValue("im_gateway_tls_handshakes_total", {{"result", "resumed"}}), 1);
}

TEST_F(TlsPortTest, AReloadKeepsOpenConnectionsAndPresentsTheNewCertificate) {
  StartGateway(WithTls());
  std::shared_ptr<ClientContext> trusts_first = Trusting(first_.ca_file);
  std::unique_ptr<im::testing::WireClient> before = LoggedInOverTls(*trusts_first, "alice");
  ASSERT_NE(before, nullptr);
  const double first_expiry = MetricValue("im_gateway_tls_certificate_expiry_timestamp_seconds");
  EXPECT_GT(first_expiry, 0);

  // The renewed certificate (another CA, a later expiry) takes the files' place, as a renewal
  // tool would write it.
  absl::StatusOr<TestCertificates> renewed =
      TestCertificates::Create(directory_ / "renewed", "renewed", 90);
  ASSERT_TRUE(renewed.ok());
  std::filesystem::copy_file(renewed->cert_file, first_.cert_file,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renewed->key_file, first_.key_file,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(gateway_->ReloadTls().ok());
  EXPECT_GT(MetricValue("im_gateway_tls_certificate_expiry_timestamp_seconds"), first_expiry);

  EXPECT_TRUE(Pings(*before));  // the open connection carries on
  EXPECT_FALSE(ConnectTls(*Trusting(first_.ca_file)).ok());
  std::shared_ptr<ClientContext> trusts_renewed = Trusting(renewed->ca_file);
  EXPECT_NE(LoggedInOverTls(*trusts_renewed, "bob"), nullptr);

  // A broken key file is refused and the renewed certificate stays in use.
  std::filesystem::resize_file(first_.key_file, 10);
  EXPECT_FALSE(gateway_->ReloadTls().ok());
  EXPECT_EQ(MetricValue("im_gateway_tls_reloads_total", {{"result", "failed"}}), 1);
  EXPECT_EQ(MetricValue("im_gateway_tls_reloads_total", {{"result", "ok"}}), 1);
  EXPECT_NE(LoggedInOverTls(*Trusting(renewed->ca_file), "carol"), nullptr);
}

TEST_F(TlsPortTest, AMissingCertificateStopsTheStartWithTheFileNamed) {
  GatewayOptions options = WithTls();
  options.tls_cert_file = (directory_ / "missing.pem").string();
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Create(options, registry_);
  ASSERT_FALSE(gateway.ok());
  EXPECT_NE(gateway.status().message().find("missing.pem"), std::string::npos) << gateway.status();
}

}  // namespace
}  // namespace im::gateway::testing
