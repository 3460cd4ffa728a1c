// The gateway's WebSocket ports: a real gateway on loopback with a LogicService double, clients
// that speak RFC 6455 through tests/support (wslay on the client's side), plain and over TLS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/tls/testing/test_certificates.h"
#include "common/websocket/websocket_client_codec.h"
#include "gateway/tests/gateway_fixture.h"
#include "gateway/websocket/websocket_session.h"

namespace im::gateway::testing {
namespace {

using im::common::WebSocketClientCodec;
using im::testing::WireClient;
using im::v1::Frame;

constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;

Frame LoginFrame(const std::string& uid) {
  Frame login;
  login.set_id(1);
  login.mutable_login_req()->set_token(TestToken(uid));
  login.mutable_login_req()->set_device("browser");
  login.mutable_login_req()->set_platform("web");
  return login;
}

Frame Ping() {
  Frame ping;
  ping.mutable_ping();
  return ping;
}

// Every byte the server sends on a connection given `request`, until it closes.
std::string Exchange(uint16_t port, const std::string& request) {
  absl::StatusOr<std::unique_ptr<WireClient>> client = WireClient::Connect("127.0.0.1", port);
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return "";
  return (*client)->SendRaw(request) ? (*client)->ReadRawUntilClosed(kWait) : "";
}

class WebSocketPortTest : public GatewayTest {
 protected:
  GatewayOptions WithWebSocket() {
    GatewayOptions options = TestOptions(logic_.target());
    options.ws_listen_address = "127.0.0.1:0";
    options.heartbeat_sec = 10;
    return options;
  }
  absl::StatusOr<std::unique_ptr<WireClient>> Open(
      const WebSocketClientCodec::UpgradeRequest& request = {}) {
    return WireClient::ConnectWebSocket("127.0.0.1", gateway_->ws_port(), request, kWait);
  }
  // A WebSocket client logged in as `uid`.
  std::unique_ptr<WireClient> LoggedInOverWebSocket(const std::string& uid) {
    absl::StatusOr<std::unique_ptr<WireClient>> client = Open();
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    std::optional<Frame> resp = (*client)->Login(TestToken(uid), "browser", kWait);
    EXPECT_TRUE(resp && resp->has_login_resp() && resp->login_resp().status().code() == im::v1::OK)
        << (resp ? resp->DebugString() : "no answer");
    return std::move(*client);
  }
  // Waits for the server's close frame and the end of the connection; returns the close code.
  static uint16_t ClosedWith(WireClient& client, const std::string& reason_part = "") {
    EXPECT_TRUE(client.WaitClosed(kWait)) << "still open";
    if (!client.websocket_close()) {
      ADD_FAILURE() << "closed without a close frame";
      return 0;
    }
    EXPECT_NE(client.websocket_close()->payload.find(reason_part), std::string::npos)
        << "close reason: " << client.websocket_close()->payload.substr(2);
    return WireClient::CloseCode(*client.websocket_close());
  }
};

TEST_F(WebSocketPortTest, ClientsLogInCallAndGetPushesOneFramePerBinaryMessage) {
  StartGateway(WithWebSocket());
  std::unique_ptr<WireClient> client = LoggedInOverWebSocket("alice");
  ASSERT_NE(client, nullptr);
  std::optional<Frame> pong = client->Call(Ping(), kWait);
  ASSERT_TRUE(pong && pong->has_pong());
  std::optional<Frame> sent = client->Call(SendFrame("s:alice:bob", "m1"), kWait);
  ASSERT_TRUE(sent && sent->has_send_resp()) << (sent ? sent->DebugString() : "none");
  EXPECT_EQ(sent->send_resp().status().code(), im::v1::OK);

  // One push to a WebSocket client and a TCP client: the same frame reaches both.
  std::unique_ptr<WireClient> tcp = LoggedIn("bob");
  ASSERT_NE(tcp, nullptr);
  Frame push;
  push.mutable_message_push()->add_messages()->set_body("to both transports");
  im::v1::PushRequest request;
  request.add_conn_ids(ConnIdOfLogin(0));
  request.add_conn_ids(ConnIdOfLogin(1));
  request.set_frame(push.SerializeAsString());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushReply reply;
  ASSERT_TRUE(PushOne(&context, request, &reply).ok());
  EXPECT_EQ(reply.delivered(), 2u);
  for (WireClient* receiver : {client.get(), tcp.get()}) {
    std::optional<Frame> got = receiver->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push());
    EXPECT_EQ(got->message_push().messages(0).body(), "to both transports");
  }
  EXPECT_EQ(MetricValue("im_gateway_websocket_handshakes_total", {{"result", "ok"}}), 1);
}

TEST_F(WebSocketPortTest, AFrameSentWithTheRequestAndOneSplitIntoFragmentsAreRead) {
  StartGateway(WithWebSocket());
  // The login in the same write as the upgrade request, as a client that does not wait may.
  const std::string login = LoginFrame("carol").SerializeAsString();
  const std::string bytes =
      WebSocketClientCodec::Request({}) + WebSocketClientCodec::Frame(kBinary, login);
  absl::StatusOr<std::unique_ptr<WireClient>> client =
      WireClient::Connect("127.0.0.1", gateway_->ws_port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->SendRaw(bytes));
  EXPECT_TRUE(logic_.WaitUntil([&] { return logic_.logins_received() == 1; }, kWait));
  const std::string answer = (*client)->ReadRawUntilClosed(Millis(300));  // it stays open
  EXPECT_EQ(answer.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos)
      << "RFC 6455's sample key has this accept value";
  EXPECT_NE(answer.find("Sec-WebSocket-Protocol: im.v1\r\n"), std::string::npos);

  // A ping in three fragments with a WebSocket ping between them, byte by byte.
  std::unique_ptr<WireClient> dave = LoggedInOverWebSocket("dave");
  ASSERT_NE(dave, nullptr);
  Frame ping = Ping();
  ping.set_id(77);
  const std::string payload = ping.SerializeAsString();
  ASSERT_GE(payload.size(), 3u);
  const std::string fragments =
      WebSocketClientCodec::Frame(kBinary, payload.substr(0, 1), /*fin=*/false) +
      WebSocketClientCodec::Frame(kPing, "are you there") +
      WebSocketClientCodec::Frame(kContinuation, payload.substr(1, 1), /*fin=*/false) +
      WebSocketClientCodec::Frame(kContinuation, payload.substr(2), /*fin=*/true);
  for (char byte : fragments) ASSERT_TRUE(dave->SendRaw(std::string(1, byte)));
  std::optional<Frame> pong = dave->Receive(kWait);
  ASSERT_TRUE(pong && pong->has_pong()) << (pong ? pong->DebugString() : "none");
  EXPECT_EQ(pong->id(), 77u);
  EXPECT_EQ(dave->websocket_pongs(), 1);
}

TEST_F(WebSocketPortTest, WebSocketPingsCountAsLife) {
  GatewayOptions options = WithWebSocket();
  options.heartbeat_sec = 1;  // idle after one silent second
  options.idle_heartbeats = 1;
  StartGateway(options);
  std::unique_ptr<WireClient> pinging = LoggedInOverWebSocket("erin");
  std::unique_ptr<WireClient> silent = LoggedInOverWebSocket("frank");
  ASSERT_NE(pinging, nullptr);
  ASSERT_NE(silent, nullptr);
  for (int i = 0; i < 8; ++i) {  // 8 x 300 ms: well past the idle timeout
    ASSERT_TRUE(pinging->SendRaw(WebSocketClientCodec::Frame(kPing, "")));
    EXPECT_FALSE(pinging->Receive(Millis(300)).has_value());
  }
  EXPECT_FALSE(pinging->closed());
  EXPECT_GE(pinging->websocket_pongs(), 7);
  ExpectErrorAndClose(*silent, im::v1::IDLE_TIMEOUT);
  EXPECT_EQ(ClosedWith(*silent, "idle_timeout"), kWsPolicyViolation);
}

TEST_F(WebSocketPortTest, TextMessagesAreRefusedWith1003) {
  StartGateway(WithWebSocket());
  absl::StatusOr<std::unique_ptr<WireClient>> client = Open();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->SendRaw(WebSocketClientCodec::Frame(kText, "{\"login\":1}")));
  EXPECT_EQ(ClosedWith(**client, "text message"), kWsUnsupportedData);
  EXPECT_EQ(MetricValue("im_gateway_connections_closed_total", {{"reason", "websocket"}}), 1);
}

TEST_F(WebSocketPortTest, FramesBreakingTheRfcAreRefusedWith1002) {
  StartGateway(WithWebSocket());
  const std::string login = LoginFrame("gina").SerializeAsString();
  const struct {
    std::string frames;
    std::string reason;
  } cases[] = {
      {WebSocketClientCodec::Frame(kBinary, login, true, /*masked=*/false), "not masked"},
      {WebSocketClientCodec::Frame(kBinary, login, true, true, /*rsv=*/4), "reserved bits"},
      {WebSocketClientCodec::Frame(0x3, login), "unknown opcode"},
      {WebSocketClientCodec::Frame(kContinuation, login), "no message to continue"},
      {WebSocketClientCodec::Frame(kBinary, "ab", false) +
           WebSocketClientCodec::Frame(kBinary, login),
       "before the fragmented one ended"},
      {WebSocketClientCodec::Frame(kPing, "x", /*fin=*/false), "malformed frame header"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    absl::StatusOr<std::unique_ptr<WireClient>> client = Open();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->SendRaw(c.frames));
    EXPECT_EQ(ClosedWith(**client, c.reason), kWsProtocolError);
  }
  EXPECT_EQ(logic_.logins_received(), 0);
  EXPECT_NE(LoggedInOverWebSocket("still-serving"), nullptr);
}

TEST_F(WebSocketPortTest, AMessageOverTheFrameLimitIsRefusedEvenInFragments) {
  StartGateway(WithWebSocket());  // max_frame_bytes: 64 KiB
  std::unique_ptr<WireClient> whole = LoggedInOverWebSocket("hank");
  ASSERT_NE(whole, nullptr);
  ASSERT_TRUE(
      whole->SendRaw(WebSocketClientCodec::Frame(kBinary, std::string(64 * 1024 + 1, 'x'))));
  ExpectErrorAndClose(*whole, im::v1::FRAME_TOO_LARGE);
  EXPECT_EQ(ClosedWith(*whole, "over 65536 bytes"), kWsMessageTooBig);

  // Forty fragments of 2 KiB: refused at the fragment that passes the limit, not buffered on.
  std::unique_ptr<WireClient> fragmented = LoggedInOverWebSocket("ivy");
  ASSERT_NE(fragmented, nullptr);
  std::string fragments = WebSocketClientCodec::Frame(kBinary, std::string(2048, 'y'), false);
  for (int i = 0; i < 40; ++i) {
    fragments += WebSocketClientCodec::Frame(kContinuation, std::string(2048, 'y'), false);
  }
  fragmented->SendRaw(fragments);  // the gateway may close before it has read them all
  ExpectErrorAndClose(*fragmented, im::v1::FRAME_TOO_LARGE);
  EXPECT_EQ(ClosedWith(*fragmented), kWsMessageTooBig);
}

TEST_F(WebSocketPortTest, ABinaryMessageThatIsNotAFrameIsRefusedWith1007) {
  StartGateway(WithWebSocket());
  absl::StatusOr<std::unique_ptr<WireClient>> client = Open();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->SendRaw(WebSocketClientCodec::Frame(kBinary, "\xff\xff\xff\xff")));
  ExpectErrorAndClose(**client, im::v1::MALFORMED_FRAME);
  EXPECT_EQ(ClosedWith(**client, "bad_frame"), kWsInvalidPayload);
}

TEST_F(WebSocketPortTest, TheFirstFrameMustBeALoginAndTheLoginMustComeInTime) {
  GatewayOptions options = WithWebSocket();
  options.login_timeout_ms = 300;
  StartGateway(options);
  absl::StatusOr<std::unique_ptr<WireClient>> early = Open();
  ASSERT_TRUE(early.ok()) << early.status();
  ASSERT_TRUE((*early)->SendFrame(Ping()));
  ExpectErrorAndClose(**early, im::v1::UNAUTHENTICATED);
  EXPECT_EQ(ClosedWith(**early, "unauthenticated"), kWsPolicyViolation);

  absl::StatusOr<std::unique_ptr<WireClient>> silent = Open();
  ASSERT_TRUE(silent.ok()) << silent.status();
  ExpectErrorAndClose(**silent, im::v1::LOGIN_TIMEOUT);
  EXPECT_EQ(ClosedWith(**silent, "login_timeout"), kWsPolicyViolation);

  // One that never finishes its handshake is cut at the login timeout too, with no answer.
  absl::StatusOr<std::unique_ptr<WireClient>> half =
      WireClient::Connect("127.0.0.1", gateway_->ws_port());
  ASSERT_TRUE(half.ok());
  ASSERT_TRUE((*half)->SendRaw("GET / HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ((*half)->ReadRawUntilClosed(kWait), "");
}

TEST_F(WebSocketPortTest, AClientsCloseIsAnsweredAndItsSessionReleased) {
  StartGateway(WithWebSocket());
  std::unique_ptr<WireClient> client = LoggedInOverWebSocket("judy");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(
      client->SendRaw(WebSocketClientCodec::Frame(kClose, std::string("\x03\xe8", 2) + "bye")));
  EXPECT_EQ(ClosedWith(*client), kWsNormal);
  EXPECT_TRUE(logic_.WaitUntil([&] { return logic_.disconnects().size() == 1; }, kWait));
  EXPECT_EQ(logic_.disconnects()[0].caller().uid(), "judy");
  EXPECT_EQ(logic_.disconnects()[0].reason(), "peer");
}

TEST_F(WebSocketPortTest, BadHandshakesGetAnHttpErrorThatSaysWhy) {
  GatewayOptions options = WithWebSocket();
  options.ws_allowed_origins = {"https://chat.example.com"};
  StartGateway(options);
  const auto request = [](auto change) {
    WebSocketClientCodec::UpgradeRequest r;
    change(r);
    return WebSocketClientCodec::Request(r);
  };
  const struct {
    std::string request;
    std::string status_line;
    std::string says;
  } cases[] = {
      {request([](auto& r) { r.key = "short"; }), "HTTP/1.1 400 ", "Sec-WebSocket-Key"},
      {request([](auto& r) { r.version = "8"; }), "HTTP/1.1 426 ", "Sec-WebSocket-Version: 13"},
      {request([](auto& r) { r.protocol = "mqtt"; }), "HTTP/1.1 400 ", "im.v1"},
      {request([](auto& r) { r.protocol = ""; }), "HTTP/1.1 400 ", "im.v1"},
      {request([](auto& r) { r.origin = "https://evil.example.net"; }), "HTTP/1.1 403 ",
       "origin https://evil.example.net is not allowed"},
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 ", "WebSocket only"},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 ", "GET"},
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS hello
       "HTTP/1.1 400 ", "not an HTTP request"},
      {"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(9000, 'p') + "\r\n\r\n",
       "HTTP/1.1 431 ", "longer than 8192 bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    const std::string answer = Exchange(gateway_->ws_port(), c.request);
    EXPECT_EQ(answer.rfind(c.status_line, 0), 0u) << answer;
    EXPECT_NE(answer.find(c.says), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  }
  EXPECT_EQ(MetricValue("im_gateway_websocket_handshakes_total", {{"result", "refused"}}),
            std::size(cases));
  // The allowed origin (in any case) and a client sending none are served.
  for (const std::string origin : {"https://Chat.Example.com", ""}) {
    WebSocketClientCodec::UpgradeRequest r;
    r.origin = origin;
    EXPECT_TRUE(Open(r).ok()) << origin;
  }
}

TEST_F(WebSocketPortTest, TheDrainSendsGoAwayAndCloses1001) {
  GatewayOptions options = WithWebSocket();
  options.drain_timeout_ms = 300;
  options.goaway_reconnect_ms = 1234;
  StartGateway(options);
  std::unique_ptr<WireClient> client = LoggedInOverWebSocket("ken");
  ASSERT_NE(client, nullptr);
  gateway_->RequestDrain();
  std::optional<Frame> goaway = client->Receive(kWait);
  ASSERT_TRUE(goaway && goaway->has_go_away());
  EXPECT_EQ(goaway->go_away().reconnect_after_ms(), 1234u);
  EXPECT_EQ(ClosedWith(*client, "drain"), kWsGoingAway);  // it stayed past the drain timeout
  gateway_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  gateway_.reset();
}

TEST_F(WebSocketPortTest, WebSocketOverTls) {
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("im-gateway-wss-" + std::to_string(::getpid()));
  absl::StatusOr<im::tls::testing::TestCertificates> certificates =
      im::tls::testing::TestCertificates::Create(directory, "wss");
  ASSERT_TRUE(certificates.ok()) << certificates.status();
  GatewayOptions options = WithWebSocket();
  options.wss_listen_address = "127.0.0.1:0";
  options.tls_cert_file = certificates->cert_file;
  options.tls_key_file = certificates->key_file;
  StartGateway(options);
  im::tls::ClientTlsOptions tls_options;
  tls_options.ca_file = certificates->ca_file;
  absl::StatusOr<std::shared_ptr<im::tls::ClientContext>> context =
      im::tls::ClientContext::Create(tls_options);
  ASSERT_TRUE(context.ok()) << context.status();
  absl::StatusOr<std::unique_ptr<WireClient>> client = WireClient::ConnectWebSocket(
      "127.0.0.1", gateway_->wss_port(), {}, kWait, context->get(), "localhost");
  ASSERT_TRUE(client.ok()) << client.status();
  std::optional<Frame> resp = (*client)->Login(TestToken("lena"), "browser", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::OK);
  ASSERT_NE((*client)->tls(), nullptr);
  EXPECT_TRUE((*client)->Call(Ping(), kWait).has_value());
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace im::gateway::testing
