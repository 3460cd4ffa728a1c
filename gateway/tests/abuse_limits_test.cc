// The gateway's abuse limits (GatewayOptions: per connection, per source address, per gateway):
// a real gateway on loopback with a LogicService double. Loopback is exempt from the per-source
// limits by default, so most tests set limit_loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <thread>
#include <vector>

#include "gateway/source_limits.h"
#include "gateway/tests/gateway_fixture.h"

namespace im::gateway::testing {
namespace {

using im::v1::Frame;

Frame Send(uint64_t id, const std::string& conv) {
  Frame frame;
  frame.set_id(id);
  frame.mutable_send_req()->set_conv_id(conv);
  frame.mutable_send_req()->set_client_msg_id("m" + std::to_string(id));
  frame.mutable_send_req()->set_body("hello");
  return frame;
}

// The answer to request `id`.
std::optional<Frame> AnswerTo(im::testing::WireClient& client, uint64_t id) {
  return client.ReceiveMatching([id](const Frame& f) { return f.id() == id; }, kWait);
}

// Request `id`'s answer: a SendResp with `code`.
void ExpectSendAnswered(im::testing::WireClient& client, uint64_t id,
                        im::v1::Code code = im::v1::OK) {
  std::optional<Frame> answer = AnswerTo(client, id);
  ASSERT_TRUE(answer && answer->has_send_resp()) << id;
  EXPECT_EQ(answer->send_resp().status().code(), code) << answer->ShortDebugString();
}

// The Error frame a refused connection gets, and the close.
void ExpectRefusedAndClosed(im::testing::WireClient& client) {
  std::optional<Frame> frame = client.Receive(kWait);
  ASSERT_TRUE(frame && frame->has_error()) << (frame ? frame->DebugString() : "closed silently");
  EXPECT_EQ(frame->error().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(frame->error().retry_after_ms(), 0u);
  EXPECT_TRUE(client.WaitClosed(kWait));
}

class AbuseLimitsTest : public GatewayTest {
 protected:
  // Waits until the gateway's loops have accepted `count` connections (im_gateway_connections):
  // the acceptor hands sockets to the loops in turn, so a later connect may be accepted first.
  bool WaitAccepted(double count) {
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < until) {
      if (MetricValue("im_gateway_connections") >= count) return true;
      std::this_thread::sleep_for(Millis(5));
    }
    return false;
  }

  GatewayOptions Limited() {
    GatewayOptions options = TestOptions(logic_.target());
    options.limit_loopback = true;
    options.heartbeat_sec = 10;
    options.login_timeout_ms = 5'000;
    return options;
  }
};

TEST_F(AbuseLimitsTest, SendsPastTheConnectionsRateAreRefusedWithTheWaitAsHint) {
  GatewayOptions options = Limited();
  options.send_rate_per_connection = 5;  // a token every 200 ms
  options.send_burst_per_connection = 3;
  StartGateway(options);
  auto flooder = LoggedIn("flo");
  auto other = LoggedIn("oth");
  ASSERT_NE(flooder, nullptr);
  ASSERT_NE(other, nullptr);
  for (uint64_t id = 10; id < 15; ++id) ASSERT_TRUE(flooder->SendFrame(Send(id, "s:flo:oth")));
  for (uint64_t id = 10; id < 13; ++id) {
    ExpectSendAnswered(*flooder, id);
  }
  // Each refused send is told to wait for a token of its own: the first for the next token, the
  // second for the one after.
  for (uint64_t id = 13; id < 15; ++id) {
    std::optional<Frame> refused = AnswerTo(*flooder, id);
    ASSERT_TRUE(refused && refused->has_send_resp()) << id;
    EXPECT_EQ(refused->send_resp().status().code(), im::v1::RESOURCE_EXHAUSTED);
    const uint32_t hint = refused->send_resp().status().retry_after_ms();
    const uint32_t tokens_ahead = static_cast<uint32_t>(id - 13);
    EXPECT_GT(hint, 200u * tokens_ahead) << id;
    EXPECT_LE(hint, 200u * (tokens_ahead + 1)) << id;
  }
  EXPECT_EQ(logic_.send_attempts(), 3) << "refused sends never reach logic";
  // Another connection's sends are its own.
  for (uint64_t id = 20; id < 23; ++id) ASSERT_TRUE(other->SendFrame(Send(id, "s:flo:oth")));
  for (uint64_t id = 20; id < 23; ++id) {
    ExpectSendAnswered(*other, id);
  }
  // After the hint, the flooder may send again.
  std::this_thread::sleep_for(Millis(250));
  ASSERT_TRUE(flooder->SendFrame(Send(30, "s:flo:oth")));
  ExpectSendAnswered(*flooder, 30);
}

TEST_F(AbuseLimitsTest, AConnectionThatKeepsSendingPastItsRateIsClosed) {
  GatewayOptions options = Limited();
  options.send_rate_per_connection = 1;
  options.send_burst_per_connection = 2;
  options.send_refusals_before_close = 4;
  StartGateway(options);
  auto flooder = LoggedIn("flo");
  auto other = LoggedIn("oth");
  ASSERT_NE(flooder, nullptr);
  for (uint64_t id = 1; id <= 10; ++id) flooder->SendFrame(Send(id, "s:flo:oth"));
  std::optional<Frame> error =
      flooder->ReceiveMatching([](const Frame& f) { return f.has_error(); }, kWait);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->error().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(flooder->WaitClosed(kWait));
  // The burst went on to logic (written after the close was decided), and nothing more.
  EXPECT_TRUE(logic_.WaitUntil([&] { return logic_.send_attempts() >= 2; }, kWait));
  std::this_thread::sleep_for(Millis(100));
  EXPECT_EQ(logic_.send_attempts(), 2);
  // The other connection lives on.
  ASSERT_TRUE(other->SendFrame(Send(50, "s:flo:oth")));
  ExpectSendAnswered(*other, 50);
}

TEST_F(AbuseLimitsTest, LoopbackIsExemptFromTheConnectionAndAddressLimitsUnlessLimited) {
  GatewayOptions options = Limited();
  options.limit_loopback = false;
  options.send_rate_per_connection = 1;
  options.send_burst_per_connection = 1;
  options.max_connections_per_ip = 1;
  StartGateway(options);
  auto first = LoggedIn("ann");
  auto second = LoggedIn("bob");  // a second connection from the same address
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  for (uint64_t id = 1; id <= 5; ++id) ASSERT_TRUE(first->SendFrame(Send(id, "s:ann:bob")));
  for (uint64_t id = 1; id <= 5; ++id) {
    ExpectSendAnswered(*first, id);
  }
}

TEST_F(AbuseLimitsTest, ConnectionsPastTheAddressCapAreRefusedUntilOneCloses) {
  GatewayOptions options = Limited();
  options.max_connections_per_ip = 2;
  StartGateway(options);
  auto first = LoggedIn("ann");
  auto second = Connect();  // counted before it logs in
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(WaitAccepted(2));
  auto third = Connect();
  ASSERT_NE(third, nullptr);
  ExpectRefusedAndClosed(*third);
  first.reset();  // its place comes back once the gateway sees the close
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    auto next = Connect();
    ASSERT_NE(next, nullptr);
    std::optional<Frame> answer = next->Login(TestToken("cat"), "phone", kWait);
    admitted = answer && answer->has_login_resp() && answer->login_resp().status().code() == 0;
    if (!admitted) std::this_thread::sleep_for(Millis(20));
  }
  EXPECT_TRUE(admitted);
}

TEST_F(AbuseLimitsTest, ConnectionsWaitingToLogInPastTheCapAreRefused) {
  GatewayOptions options = Limited();
  options.limit_loopback = false;  // a gateway-wide cap: it holds for every address
  options.max_unauthenticated_connections = 2;
  StartGateway(options);
  auto silent1 = Connect();
  auto silent2 = Connect();
  ASSERT_NE(silent1, nullptr);
  ASSERT_NE(silent2, nullptr);
  ASSERT_TRUE(WaitAccepted(2));
  auto third = Connect();
  ASSERT_NE(third, nullptr);
  ExpectRefusedAndClosed(*third);
  // A login makes room.
  std::optional<Frame> ok = silent1->Login(TestToken("ann"), "phone", kWait);
  ASSERT_TRUE(ok && ok->has_login_resp());
  EXPECT_EQ(ok->login_resp().status().code(), im::v1::OK);
  EXPECT_NE(LoggedIn("bob"), nullptr);
}

TEST_F(AbuseLimitsTest, LoginsPastTheAddressRateAreRefusedWithTheWait) {
  GatewayOptions options = Limited();
  options.login_rate_per_ip = 1;
  options.login_burst_per_ip = 2;
  StartGateway(options);
  EXPECT_NE(LoggedIn("ann"), nullptr);
  EXPECT_NE(LoggedIn("bob"), nullptr);
  auto refused = Connect();
  ASSERT_NE(refused, nullptr);
  std::optional<Frame> answer = refused->Login(TestToken("cat"), "phone", kWait);
  ASSERT_TRUE(answer && answer->has_login_resp());
  EXPECT_EQ(answer->login_resp().status().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(answer->login_resp().status().retry_after_ms(), 0u);
  EXPECT_LE(answer->login_resp().status().retry_after_ms(), 1'000u);
  EXPECT_TRUE(refused->WaitClosed(kWait));
  EXPECT_EQ(logic_.logins_received(), 2) << "refused logins never reach logic";
}

TEST_F(AbuseLimitsTest, LoginsPastTheGatewaysRateAreRefusedFromAnyAddress) {
  GatewayOptions options = Limited();
  options.limit_loopback = false;
  options.login_rate = 1;
  options.login_burst = 1;
  StartGateway(options);
  EXPECT_NE(LoggedIn("ann"), nullptr);
  auto refused = Connect();
  ASSERT_NE(refused, nullptr);
  std::optional<Frame> answer = refused->Login(TestToken("bob"), "phone", kWait);
  ASSERT_TRUE(answer && answer->has_login_resp());
  EXPECT_EQ(answer->login_resp().status().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(answer->login_resp().status().retry_after_ms(), 0u);
}

sockaddr_storage Ipv4(const char* text) {
  sockaddr_storage address{};
  auto& v4 = reinterpret_cast<sockaddr_in&>(address);
  v4.sin_family = AF_INET;
  EXPECT_EQ(inet_pton(AF_INET, text, &v4.sin_addr), 1) << text;
  return address;
}

sockaddr_storage Ipv6(const char* text) {
  sockaddr_storage address{};
  auto& v6 = reinterpret_cast<sockaddr_in6&>(address);
  v6.sin6_family = AF_INET6;
  EXPECT_EQ(inet_pton(AF_INET6, text, &v6.sin6_addr), 1) << text;
  return address;
}

TEST(SourceLimitsTest, ASourceIsAnIpv4AddressOrAnIpv6Slash64AndLoopbackIsExempt) {
  GatewayOptions options;
  SourceLimits sources(options);
  EXPECT_NE(sources.SourceOf(Ipv4("203.0.113.7")), sources.SourceOf(Ipv4("203.0.113.8")));
  EXPECT_EQ(sources.SourceOf(Ipv4("203.0.113.7")), sources.SourceOf(Ipv6("::ffff:203.0.113.7")))
      << "a dual-stack socket's IPv4 client is the same source";
  EXPECT_EQ(sources.SourceOf(Ipv6("2001:db8:1:2::5")), sources.SourceOf(Ipv6("2001:db8:1:2::99")))
      << "one /64";
  EXPECT_NE(sources.SourceOf(Ipv6("2001:db8:1:2::5")), sources.SourceOf(Ipv6("2001:db8:1:3::5")));
  EXPECT_EQ(sources.SourceOf(Ipv4("127.0.0.1")), SourceLimits::kExempt);
  EXPECT_EQ(sources.SourceOf(Ipv4("127.9.9.9")), SourceLimits::kExempt);
  EXPECT_EQ(sources.SourceOf(Ipv6("::1")), SourceLimits::kExempt);
  EXPECT_EQ(sources.SourceOf(sockaddr_storage{}), SourceLimits::kExempt) << "no address";
  options.limit_loopback = true;
  SourceLimits limited(options);
  EXPECT_NE(limited.SourceOf(Ipv4("127.0.0.1")), SourceLimits::kExempt);
  EXPECT_NE(limited.SourceOf(Ipv6("::1")), SourceLimits::kExempt);
}

TEST(SourceLimitsTest, TheConnectionCapCountsOpenConnectionsPerSourceAndForgetsClosedOnes) {
  GatewayOptions options;
  options.max_connections_per_ip = 2;
  SourceLimits sources(options);
  const uint64_t a = sources.SourceOf(Ipv4("198.51.100.1"));
  const uint64_t b = sources.SourceOf(Ipv4("198.51.100.2"));
  EXPECT_TRUE(sources.Open(a));
  EXPECT_TRUE(sources.Open(a));
  EXPECT_FALSE(sources.Open(a));
  EXPECT_TRUE(sources.Open(b));
  sources.Close(a);
  EXPECT_TRUE(sources.Open(a));
  for (int i = 0; i < 2; ++i) sources.Close(a);
  sources.Close(b);
  EXPECT_EQ(sources.tracked_sources(), 0u);
  EXPECT_TRUE(sources.Open(SourceLimits::kExempt)) << "exempt: never counted";
}

}  // namespace
}  // namespace im::gateway::testing
