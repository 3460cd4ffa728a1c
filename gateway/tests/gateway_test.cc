// Loop tests: a real gateway on loopback, real sockets, a LogicService double over real gRPC.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/frame_codec.h"
#include "common/retry_hint.h"
#include "gateway/tests/gateway_fixture.h"

namespace im::gateway::testing {
namespace {

using im::v1::Frame;

std::string LengthPrefix(uint32_t length) {
  std::string header(4, '\0');
  header[0] = static_cast<char>(length >> 24);
  header[1] = static_cast<char>(length >> 16);
  header[2] = static_cast<char>(length >> 8);
  header[3] = static_cast<char>(length);
  return header;
}

// The value of a counter family (summed over its label sets) in the gateway's registry.
double CounterTotal(prometheus::Registry& registry, const std::string& name) {
  double total = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) total += metric.counter.value;
  }
  return total;
}

// How many observations a histogram family (summed over its label sets) holds.
uint64_t HistogramCount(prometheus::Registry& registry, const std::string& name) {
  uint64_t count = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      count += metric.histogram.sample_count;
    }
  }
  return count;
}

TEST_F(GatewayTest, LoginAcceptedThenPingAnswered) {
  StartGateway();
  auto client = Connect();
  std::optional<Frame> resp = client->Login(TestToken("alice"), "phone", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::OK);
  EXPECT_EQ(resp->login_resp().uid(), "alice");
  EXPECT_EQ(resp->login_resp().heartbeat_sec(), 1u);

  Frame ping;
  ping.mutable_ping()->set_client_time_ms(1);
  std::optional<Frame> pong = client->Call(ping, kWait);
  ASSERT_TRUE(pong && pong->has_pong());
  EXPECT_GT(pong->pong().server_time_ms(), 0);

  const auto logins = logic_.logins();
  ASSERT_EQ(logins.size(), 1u);
  EXPECT_EQ(logins[0].gateway_id(), "gw-test");
  EXPECT_NE(logins[0].conn_id(), 0u);
  EXPECT_EQ(logins[0].req().device(), "phone");
  EXPECT_FALSE(logins[0].remote_addr().empty());
  EXPECT_EQ(logic_.login_calls(), 0) << "the login went on the loop's stream";
}

TEST_F(GatewayTest, ALogicNodeThatDoesNotTakeLoginsOnTheStreamGetsTheLoginCall) {
  logic_.set_stream_logins(false);  // a logic node of an earlier version
  StartGateway();
  auto client = Connect();
  std::optional<Frame> resp = client->Login(TestToken("erin"), "laptop", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::OK) << resp->DebugString();
  EXPECT_EQ(resp->login_resp().uid(), "erin");
  EXPECT_EQ(logic_.login_calls(), 1);
  // Logged in for real: a send goes through, as erin on her laptop.
  std::optional<Frame> sent = client->Call(SendFrame("s:erin:frank", "m1"), kWait);
  ASSERT_TRUE(sent && sent->has_send_resp()) << (sent ? sent->DebugString() : "no answer");
  ASSERT_EQ(logic_.sends().size(), 1u);
  EXPECT_EQ(logic_.sends()[0].caller().uid(), "erin");
  EXPECT_EQ(logic_.sends()[0].caller().device(), "laptop");
}

TEST_F(GatewayTest, LoginSplitIntoSingleBytesIsAccepted) {
  StartGateway();
  auto client = Connect();
  Frame login;
  login.set_id(7);
  login.mutable_login_req()->set_token(TestToken("bob"));
  login.mutable_login_req()->set_device("tablet");
  const std::string bytes = common::EncodeFrame(login);
  for (char byte : bytes) ASSERT_TRUE(client->SendRaw(std::string_view(&byte, 1)));
  std::optional<Frame> resp = client->Receive(kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->id(), 7u);
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::OK);
}

TEST_F(GatewayTest, LoginWithBadTokenIsRefusedAndClosed) {
  StartGateway();
  auto client = Connect();
  std::optional<Frame> resp = client->Login("not-a-token", "phone", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::TOKEN_INVALID);
  EXPECT_TRUE(client->WaitClosed(kWait));
}

TEST_F(GatewayTest, LoginWithExpiredTokenIsRefusedAndClosed) {
  StartGateway();
  auto client = Connect();
  std::optional<Frame> resp = client->Login(TestToken("carol", -10), "phone", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::TOKEN_EXPIRED);
  EXPECT_TRUE(client->WaitClosed(kWait));
}

TEST_F(GatewayTest, LoginWhileLogicIsDownAnswersUnavailable) {
  GatewayOptions options = TestOptions("127.0.0.1:1");  // nothing listens there
  options.logic_timeout_ms = 500;
  StartGateway(options);
  auto client = Connect();
  std::optional<Frame> resp = client->Login(TestToken("dave"), "phone", kWait);
  ASSERT_TRUE(resp && resp->has_login_resp());
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::UNAVAILABLE) << resp->DebugString();
  EXPECT_TRUE(client->WaitClosed(kWait));
}

TEST_F(GatewayTest, FirstFrameOtherThanLoginIsUnauthenticated) {
  StartGateway();
  auto client = Connect();
  ASSERT_TRUE(client->SendFrame(SendFrame("s:a:b", "m1")));
  ExpectErrorAndClose(*client, im::v1::UNAUTHENTICATED);
  EXPECT_TRUE(logic_.sends().empty());
}

TEST_F(GatewayTest, RequestBeforeLoginCompletesIsUnauthenticated) {
  StartGateway();
  auto client = Connect();
  Frame login;
  login.set_id(1);
  login.mutable_login_req()->set_token(TestToken("erin"));
  // Login and a send in one write: the send arrives while the login is with logic.
  ASSERT_TRUE(
      client->SendRaw(common::EncodeFrame(login) + common::EncodeFrame(SendFrame("s:a:b", "m"))));
  std::optional<Frame> error =
      client->ReceiveMatching([](const Frame& f) { return f.has_error(); }, kWait);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->error().code(), im::v1::UNAUTHENTICATED);
  EXPECT_TRUE(client->WaitClosed(kWait));
  EXPECT_TRUE(logic_.sends().empty());
}

TEST_F(GatewayTest, SilentConnectionGetsLoginTimeout) {
  StartGateway();
  auto client = Connect();
  ExpectErrorAndClose(*client, im::v1::LOGIN_TIMEOUT);
}

TEST_F(GatewayTest, SilentLoggedInConnectionGetsIdleTimeout) {
  StartGateway();
  auto client = LoggedIn("frank");
  ASSERT_NE(client, nullptr);
  ExpectErrorAndClose(*client, im::v1::IDLE_TIMEOUT);
  // The session is released at logic.
  EXPECT_TRUE(logic_.WaitUntil([&] { return logic_.disconnects().size() == 1; }, kWait));
  EXPECT_EQ(logic_.disconnects()[0].caller().uid(), "frank");
  EXPECT_EQ(logic_.disconnects()[0].reason(), "idle_timeout");
}

TEST_F(GatewayTest, HeartbeatsKeepConnectionAlive) {
  StartGateway();  // idle timeout: one heartbeat of 1 s
  auto client = LoggedIn("gina");
  ASSERT_NE(client, nullptr);
  Frame ping;
  ping.mutable_ping();
  for (int i = 0; i < 8; ++i) {  // 8 x 300 ms: well past the idle timeout
    std::optional<Frame> pong = client->Call(ping, kWait);
    ASSERT_TRUE(pong && pong->has_pong()) << "ping " << i;
    EXPECT_FALSE(client->Receive(Millis(300)).has_value());
  }
  EXPECT_FALSE(client->closed());
}

TEST_F(GatewayTest, OversizedFrameIsRefusedWithFrameTooLarge) {
  StartGateway();
  auto client = Connect();
  // Announce one byte over the 64 KiB limit and keep sending: the error must still arrive.
  ASSERT_TRUE(client->SendRaw(LengthPrefix(64 * 1024 + 1) + std::string(32 * 1024, 'x')));
  ExpectErrorAndClose(*client, im::v1::FRAME_TOO_LARGE);
}

TEST_F(GatewayTest, OversizedFrameAfterLoginIsRefusedToo) {
  StartGateway();
  auto client = LoggedIn("hank");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendRaw(LengthPrefix(1u << 31)));
  ExpectErrorAndClose(*client, im::v1::FRAME_TOO_LARGE);
}

TEST_F(GatewayTest, ZeroLengthFrameIsMalformed) {
  StartGateway();
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(LengthPrefix(0)));
  ExpectErrorAndClose(*client, im::v1::MALFORMED_FRAME);
}

TEST_F(GatewayTest, GarbageFrameIsMalformed) {
  StartGateway();
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(LengthPrefix(6) + std::string("\xff\xff\xff\xff\xff\xff", 6)));
  ExpectErrorAndClose(*client, im::v1::MALFORMED_FRAME);
}

TEST_F(GatewayTest, RequestIsForwardedWithCallerAndAnswered) {
  StartGateway();
  auto client = LoggedIn("ivy", "laptop");
  ASSERT_NE(client, nullptr);
  std::optional<Frame> resp = client->Call(SendFrame("s:ivy:jack", "c-1"), kWait);
  ASSERT_TRUE(resp && resp->has_send_resp()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->send_resp().status().code(), im::v1::OK);
  EXPECT_EQ(resp->send_resp().client_msg_id(), "c-1");
  EXPECT_EQ(resp->send_resp().seq(), 1u);

  const auto sends = logic_.sends();
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].caller().uid(), "ivy");
  EXPECT_EQ(sends[0].caller().device(), "laptop");
  EXPECT_EQ(sends[0].caller().gateway_id(), "gw-test");
  EXPECT_EQ(sends[0].caller().conn_id(), ConnIdOfLogin(0));
  EXPECT_FALSE(sends[0].caller().request_id().empty());
  EXPECT_EQ(sends[0].req().body(), "hello");
}

TEST_F(GatewayTest, RequestsOfOneLoopIterationShareOneBatchAndOneStream) {
  GatewayOptions options = TestOptions(logic_.target());
  options.workers = 1;
  StartGateway(options);
  auto client = LoggedIn("ivy");
  ASSERT_NE(client, nullptr);
  // Twenty requests in one write reach the gateway in one read.
  std::string burst;
  for (uint64_t id = 1; id <= 20; ++id) {
    Frame frame = SendFrame("s:ivy:jack", "b-" + std::to_string(id));
    frame.set_id(id);
    burst += common::EncodeFrame(frame);
  }
  ASSERT_TRUE(client->SendRaw(burst));
  for (uint64_t id = 1; id <= 20; ++id) {
    std::optional<Frame> resp =
        client->ReceiveMatching([id](const Frame& f) { return f.id() == id; }, kWait);
    ASSERT_TRUE(resp && resp->has_send_resp()) << id;
    EXPECT_EQ(resp->send_resp().client_msg_id(), "b-" + std::to_string(id));
  }
  EXPECT_EQ(logic_.sends().size(), 20u);
  EXPECT_EQ(logic_.streams_opened(), 1);
  const uint64_t batches = HistogramCount(registry_, "im_gateway_logic_batch_entries");
  EXPECT_GE(batches, 1u);
  EXPECT_LT(batches, 20u) << "each request went in a batch of its own";
}

TEST_F(GatewayTest, SendOnAStreamThatBreaksIsSentAgainAndTheClientSeesNoError) {
  StartGateway();
  auto client = LoggedIn("kim");
  ASSERT_NE(client, nullptr);
  logic_.BreakStreamOnNextRequests(2);
  std::optional<Frame> resp = client->Call(SendFrame("s:kim:lee", "c-retry"), kWait);
  ASSERT_TRUE(resp && resp->has_send_resp()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->send_resp().status().code(), im::v1::OK) << resp->DebugString();
  EXPECT_EQ(logic_.send_attempts(), 3);
  ASSERT_EQ(logic_.sends().size(), 1u);
  EXPECT_EQ(logic_.sends()[0].req().client_msg_id(), "c-retry");
}

TEST_F(GatewayTest, RetriesAreBoundedThenTheClientGetsUnavailable) {
  StartGateway();
  auto client = LoggedIn("max");
  ASSERT_NE(client, nullptr);
  logic_.BreakStreamOnNextRequests(100);
  std::optional<Frame> resp = client->Call(SendFrame("s:max:ned", "c-down"), kWait);
  ASSERT_TRUE(resp && resp->has_send_resp()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->send_resp().status().code(), im::v1::UNAVAILABLE);
  EXPECT_EQ(logic_.send_attempts(), 4);  // LogicStream::Options::max_attempts
}

Frame GroupCreateFrame() {
  Frame frame;
  frame.mutable_group_create_req()->set_name("team");
  return frame;
}

TEST_F(GatewayTest, RequestThatIsNotSafeToRepeatIsNotSentAgainWhenItsStreamBreaks) {
  StartGateway();
  auto client = LoggedIn("jack");
  ASSERT_NE(client, nullptr);
  logic_.BreakStreamOnNextRequests(1);
  std::optional<Frame> resp = client->Call(GroupCreateFrame(), kWait);
  // The gateway answers with the request's own response type, found without knowing it.
  ASSERT_TRUE(resp && resp->has_group_create_resp()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->group_create_resp().status().code(), im::v1::UNAVAILABLE);
  EXPECT_EQ(logic_.group_create_attempts(), 1);
}

TEST_F(GatewayTest, RequestLogicNeverReadWhileDrainingGoesToTheNextStream) {
  StartGateway();
  auto client = LoggedIn("jack");
  ASSERT_NE(client, nullptr);
  logic_.DrainOnNextRequest();
  std::optional<Frame> resp = client->Call(GroupCreateFrame(), kWait);
  ASSERT_TRUE(resp && resp->has_group_create_resp()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->group_create_resp().status().code(), im::v1::OK);
  EXPECT_EQ(logic_.group_create_attempts(), 2);
  EXPECT_EQ(logic_.streams_opened(), 2);
}

TEST_F(GatewayTest, RequestLogicDoesNotServeIsAnsweredWithLogicsError) {
  StartGateway();
  auto client = LoggedIn("jack");
  ASSERT_NE(client, nullptr);
  Frame sync;
  sync.mutable_sync_req()->set_conv_id("s:a:jack");
  std::optional<Frame> resp = client->Call(sync, kWait);  // the double does not serve Sync
  ASSERT_TRUE(resp && resp->has_error()) << (resp ? resp->DebugString() : "none");
  EXPECT_EQ(resp->error().code(), im::v1::UNIMPLEMENTED);
}

TEST_F(GatewayTest, AckIsForwardedWithoutResponse) {
  StartGateway();
  auto client = LoggedIn("kim");
  ASSERT_NE(client, nullptr);
  Frame ack;
  auto* cursor = ack.mutable_ack_req()->add_cursors();
  cursor->set_conv_id("s:kim:lee");
  cursor->set_seq(42);
  ASSERT_TRUE(client->SendFrame(ack));
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.acks().size() == 1; }, kWait));
  EXPECT_EQ(logic_.acks()[0].req().cursors(0).seq(), 42u);
  EXPECT_FALSE(client->Receive(Millis(200)).has_value());
}

TEST_F(GatewayTest, ServerOnlyFrameFromClientIsAnsweredWithError) {
  StartGateway();
  auto client = LoggedIn("lee");
  ASSERT_NE(client, nullptr);
  Frame push;
  push.mutable_message_push();
  std::optional<Frame> resp = client->Call(push, kWait);
  ASSERT_TRUE(resp && resp->has_error());
  EXPECT_EQ(resp->error().code(), im::v1::UNEXPECTED_FRAME);
  EXPECT_FALSE(client->closed());
}

TEST_F(GatewayTest, TooManyRequestsInFlightAreRefused) {
  GatewayOptions options = TestOptions(logic_.target());
  options.max_in_flight_per_connection = 2;
  options.heartbeat_sec = 10;
  StartGateway(options);
  logic_.set_send_delay(Millis(400));
  auto client = LoggedIn("max");
  ASSERT_NE(client, nullptr);
  for (uint64_t id = 100; id < 103; ++id) {
    Frame frame = SendFrame("s:max:ned", "m" + std::to_string(id));
    frame.set_id(id);
    ASSERT_TRUE(client->SendFrame(frame));
  }
  std::optional<Frame> refused =
      client->ReceiveMatching([](const Frame& f) { return f.id() == 102; }, kWait);
  ASSERT_TRUE(refused && refused->has_error());
  EXPECT_EQ(refused->error().code(), im::v1::TOO_MANY_IN_FLIGHT);
  EXPECT_EQ(refused->error().retry_after_ms(), common::kOverloadRetryAfterMs);
  for (uint64_t id : {100, 101}) {
    std::optional<Frame> ok =
        client->ReceiveMatching([id](const Frame& f) { return f.id() == id; }, kWait);
    ASSERT_TRUE(ok && ok->has_send_resp()) << id;
  }
}

// gateway.logic_queue_wait_*: when logic stops taking the stream's writes (here it stops reading
// while megabytes of sends wait, past HTTP/2 flow control), what waited past the interval on the
// gateway is refused at once with a retry hint, not after its 5 s deadline.
TEST_F(GatewayTest, RequestsLogicDoesNotTakeAreRefusedAfterTheQueueWaitLimit) {
  GatewayOptions options = TestOptions(logic_.target());
  options.workers = 1;  // one stream to logic
  options.logic_timeout_ms = 5'000;
  options.logic_queue_wait_target_ms = 50;
  options.logic_queue_wait_interval_ms = 200;
  options.heartbeat_sec = 10;
  StartGateway(options);
  std::vector<std::unique_ptr<im::testing::WireClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(LoggedIn("u" + std::to_string(i)));  // the stream has answered
    ASSERT_NE(clients.back(), nullptr);
  }
  logic_.set_reading(false);
  const std::string body(32 * 1024, 'x');
  for (auto& client : clients) {
    for (uint64_t id = 1; id <= 60; ++id) {
      Frame frame = SendFrame("s:a:b", "m" + std::to_string(id), body);
      frame.set_id(id);
      ASSERT_TRUE(client->SendFrame(frame));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  std::optional<Frame> refused = clients.back()->ReceiveMatching(
      [](const Frame& f) {
        return f.has_send_resp() && f.send_resp().status().code() == im::v1::RESOURCE_EXHAUSTED;
      },
      kWait);
  ASSERT_TRUE(refused) << "nothing was refused for waiting on the gateway";
  EXPECT_LT(std::chrono::steady_clock::now() - start, Millis(2'500))
      << "refused only when logic answered, not when the wait limit passed";
  EXPECT_NE(refused->send_resp().status().message().find("waited"), std::string::npos)
      << refused->send_resp().status().message();
  EXPECT_EQ(refused->send_resp().status().retry_after_ms(), common::kOverloadRetryAfterMs);
  EXPECT_GT(CounterTotal(registry_, "im_gateway_logic_queue_shed_total"), 0);
  logic_.set_reading(true);
}

// gateway.max_logins_in_flight: past it a login is refused at once, with a retry hint, and the
// connection closed; a login finished gives its place to the next.
TEST_F(GatewayTest, LoginsPastTheProcessLimitAreShedAtOnce) {
  GatewayOptions options = TestOptions(logic_.target());
  options.max_logins_in_flight = 2;
  options.login_timeout_ms = 10'000;  // longer than logic takes below
  options.heartbeat_sec = 10;
  StartGateway(options);
  logic_.set_login_delay(Millis(1'500));
  std::vector<std::unique_ptr<im::testing::WireClient>> waiting;
  for (const char* uid : {"ann", "bob"}) {
    waiting.push_back(Connect());
    ASSERT_NE(waiting.back(), nullptr);
    Frame login;
    login.set_id(1);
    login.mutable_login_req()->set_token(TestToken(uid));
    login.mutable_login_req()->set_device("phone");
    ASSERT_TRUE(waiting.back()->SendFrame(login));
  }
  // Both admitted by the gateway and held by logic.
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.logins_received() >= 2; }, kWait));

  auto shed = Connect();
  ASSERT_NE(shed, nullptr);
  const auto asked = std::chrono::steady_clock::now();
  std::optional<Frame> refused = shed->Login(TestToken("cat"), "phone", kWait);
  ASSERT_TRUE(refused && refused->has_login_resp());
  EXPECT_LT(std::chrono::steady_clock::now() - asked, Millis(1'000)) << "refused at once";
  EXPECT_EQ(refused->login_resp().status().code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused->login_resp().status().retry_after_ms(), common::kOverloadRetryAfterMs);
  EXPECT_TRUE(shed->WaitClosed(kWait));

  for (auto& client : waiting) {
    std::optional<Frame> ok =
        client->ReceiveMatching([](const Frame& f) { return f.has_login_resp(); }, kWait);
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->login_resp().status().code(), im::v1::OK);
  }
  logic_.set_login_delay(Millis(0));
  EXPECT_NE(LoggedIn("dan"), nullptr) << "the finished logins gave their places back";
}

// Logic registers a session before it answers the login, so a push may reach the gateway while
// the connection still waits for its LoginResp: it is held (reported delivered, so logic keeps
// the session) and written right after the LoginResp.
TEST_F(GatewayTest, APushDuringTheLoginIsWrittenAfterTheLoginResp) {
  StartGateway();
  logic_.set_login_delay(Millis(800));
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  Frame login;
  login.set_id(1);
  login.mutable_login_req()->set_token(TestToken("ann"));
  login.mutable_login_req()->set_device("phone");
  ASSERT_TRUE(client->SendFrame(login));
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.logins_received() >= 1; }, kWait));

  Frame push;
  push.mutable_message_push()->add_messages()->set_body("came during the login");
  im::v1::PushRequest request;
  request.add_conn_ids(logic_.login_conn_ids_received().at(0));
  request.set_frame(push.SerializeAsString());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushReply reply;
  ASSERT_TRUE(PushOne(&context, request, &reply).ok());
  EXPECT_EQ(reply.delivered(), 1u);
  EXPECT_EQ(reply.unknown_conn_ids_size(), 0) << "logic would drop the session it just made";

  std::optional<Frame> first = client->Receive(kWait);
  ASSERT_TRUE(first && first->has_login_resp());
  EXPECT_EQ(first->login_resp().status().code(), im::v1::OK);
  std::optional<Frame> second = client->Receive(kWait);
  ASSERT_TRUE(second && second->has_message_push());
  EXPECT_EQ(second->message_push().messages(0).body(), "came during the login");
  logic_.set_login_delay(Millis(0));
}

TEST_F(GatewayTest, PushReachesExactlyTheAddressedConnections) {
  StartGateway();
  std::vector<std::unique_ptr<im::testing::WireClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(LoggedIn("user" + std::to_string(i)));
    ASSERT_NE(clients.back(), nullptr);
  }
  Frame push;
  im::v1::Message* message = push.mutable_message_push()->add_messages();
  message->set_conv_id("g:1");
  message->set_seq(5);
  message->set_body("to 0 and 2");
  im::v1::PushRequest request;
  request.add_conn_ids(ConnIdOfLogin(0));
  request.add_conn_ids(ConnIdOfLogin(2));
  const uint64_t bogus = common::MakeConnId(1, 999'999);
  request.add_conn_ids(bogus);
  request.set_frame(push.SerializeAsString());

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushReply reply;
  ASSERT_TRUE(PushOne(&context, request, &reply).ok());
  EXPECT_EQ(reply.delivered(), 2u);
  ASSERT_EQ(reply.unknown_conn_ids_size(), 1);
  EXPECT_EQ(reply.unknown_conn_ids(0), bogus);

  for (int i : {0, 2}) {
    std::optional<Frame> got = clients[i]->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push()) << i;
    EXPECT_EQ(got->id(), 0u);
    EXPECT_EQ(got->message_push().messages(0).body(), "to 0 and 2");
  }
  for (int i : {1, 3}) EXPECT_FALSE(clients[i]->Receive(Millis(200)).has_value()) << i;
}

TEST_F(GatewayTest, APushBatchReachesEachConnectionInBatchOrderWithOneReplyPerPush) {
  StartGateway();
  std::vector<std::unique_ptr<im::testing::WireClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(LoggedIn("batch" + std::to_string(i)));
    ASSERT_NE(clients.back(), nullptr);
  }
  // Thirty pushes of one conversation; every other one also goes to a connection that is gone.
  const uint64_t gone = common::MakeConnId(0, 999'999);
  im::v1::PushBatchRequest batch;
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    Frame push;
    im::v1::Message* message = push.mutable_message_push()->add_messages();
    message->set_conv_id("g:7");
    message->set_seq(seq);
    im::v1::PushRequest* request = batch.add_pushes();
    for (size_t i = 0; i < clients.size(); ++i) request->add_conn_ids(ConnIdOfLogin(i));
    if (seq % 2 == 0) request->add_conn_ids(gone);
    request->set_frame(push.SerializeAsString());
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushBatchReply replies;
  ASSERT_TRUE(GatewayStub()->Push(&context, batch, &replies).ok());
  ASSERT_EQ(replies.replies_size(), 30);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(replies.replies(i).delivered(), 3u) << i;
    EXPECT_EQ(replies.replies(i).unknown_conn_ids_size(), i % 2 == 1 ? 1 : 0) << i;
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    for (uint64_t seq = 1; seq <= 30; ++seq) {
      std::optional<Frame> got = clients[i]->Receive(kWait);
      ASSERT_TRUE(got && got->has_message_push()) << i << " seq " << seq;
      EXPECT_EQ(got->message_push().messages(0).seq(), seq) << "connection " << i;
    }
  }
}

TEST_F(GatewayTest, FramesQueuedInOneLoopIterationLeaveInOneWrite) {
  StartGateway();
  auto client = LoggedIn("batched");
  ASSERT_NE(client, nullptr);
  constexpr int kFrames = 50;
  im::v1::PushRequest request;
  // One Push is one task on the connection's loop: its fifty frames are queued in one iteration.
  for (int i = 0; i < kFrames; ++i) request.add_conn_ids(ConnIdOfLogin(0));
  Frame push;
  push.mutable_message_push()->add_messages()->set_body(std::string(100, 'b'));
  request.set_frame(push.SerializeAsString());
  const double writes_before = CounterTotal(registry_, "im_gateway_writes_total");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  im::v1::PushReply reply;
  ASSERT_TRUE(PushOne(&context, request, &reply).ok());
  EXPECT_EQ(reply.delivered(), static_cast<uint32_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) {
    std::optional<Frame> got = client->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push()) << "frame " << i;
    EXPECT_EQ(got->message_push().messages(0).body().size(), 100u);
  }
  EXPECT_EQ(CounterTotal(registry_, "im_gateway_writes_total") - writes_before, 1.0);

  // A burst past 64 KiB is written as it grows instead of being held for the whole iteration.
  constexpr int kBigFrames = 20;
  im::v1::PushRequest burst;
  for (int i = 0; i < kBigFrames; ++i) burst.add_conn_ids(ConnIdOfLogin(0));
  Frame big;
  big.mutable_message_push()->add_messages()->set_body(std::string(10 * 1024, 'B'));
  burst.set_frame(big.SerializeAsString());
  const double writes_before_burst = CounterTotal(registry_, "im_gateway_writes_total");
  grpc::ClientContext burst_context;
  burst_context.set_deadline(std::chrono::system_clock::now() + kWait);
  ASSERT_TRUE(PushOne(&burst_context, burst, &reply).ok());
  EXPECT_EQ(reply.delivered(), static_cast<uint32_t>(kBigFrames));
  for (int i = 0; i < kBigFrames; ++i) {
    std::optional<Frame> got = client->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push()) << "big frame " << i;
    EXPECT_EQ(got->message_push().messages(0).body().size(), 10u * 1024);
  }
  const double burst_writes =
      CounterTotal(registry_, "im_gateway_writes_total") - writes_before_burst;
  EXPECT_GE(burst_writes, 3.0);  // about 200 KiB in writes of about 64 KiB
  EXPECT_LE(burst_writes, 8.0);
}

TEST_F(GatewayTest, AFlushTheSocketCannotTakeAtOnceLeavesWholeAndInOrder) {
  GatewayOptions options = TestOptions(logic_.target());
  options.max_write_queue_bytes = 16 * 1024 * 1024;
  StartGateway(options);
  auto client = Connect(/*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(client->Login(TestToken("small-window"), "phone", kWait).has_value());
  constexpr int kFrames = 40;
  std::vector<im::v1::PushRequest> requests(kFrames);
  for (int i = 0; i < kFrames; ++i) {
    Frame push;
    im::v1::Message* message = push.mutable_message_push()->add_messages();
    message->set_seq(static_cast<uint64_t>(i + 1));
    message->set_body(std::string(64 * 1024, static_cast<char>('a' + i % 26)));
    requests[i].add_conn_ids(ConnIdOfLogin(0));
    requests[i].set_frame(push.SerializeAsString());
  }
  for (const im::v1::PushRequest& request : requests) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kWait);
    im::v1::PushReply reply;
    ASSERT_TRUE(PushOne(&context, request, &reply).ok());
    ASSERT_EQ(reply.delivered(), 1u);
  }
  for (int i = 0; i < kFrames; ++i) {
    std::optional<Frame> got = client->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push()) << "frame " << i;
    const im::v1::Message& message = got->message_push().messages(0);
    EXPECT_EQ(message.seq(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(message.body(), std::string(64 * 1024, static_cast<char>('a' + i % 26)));
  }
}

TEST_F(GatewayTest, PushOfEmptyOrOversizedFrameIsInvalid) {
  StartGateway();
  im::v1::PushRequest request;
  request.add_conn_ids(1);
  grpc::ClientContext context;
  im::v1::PushReply reply;
  EXPECT_EQ(PushOne(&context, request, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// The long-lived form logic uses: batches on one stream, each answered with its id, in order,
// and their pushes reach each connection in batch order.
TEST_F(GatewayTest, APushStreamAnswersEachBatchByIdAndKeepsThePushesInBatchOrder) {
  StartGateway();
  auto client = LoggedIn("streamed");
  ASSERT_NE(client, nullptr);
  auto stub = GatewayStub();
  grpc::ClientContext context;
  auto stream = stub->PushStream(&context);
  constexpr int kBatches = 20;
  const uint64_t bogus = common::MakeConnId(1, 999'999);
  for (int b = 0; b < kBatches; ++b) {
    im::v1::PushBatchRequest batch;
    batch.set_id(100 + b);
    for (int p = 0; p < 3; ++p) {
      Frame push;
      push.mutable_message_push()->add_messages()->set_seq(b * 3 + p + 1);
      im::v1::PushRequest* request = batch.add_pushes();
      request->add_conn_ids(ConnIdOfLogin(0));
      if (p == 0) request->add_conn_ids(bogus);
      request->set_frame(push.SerializeAsString());
    }
    ASSERT_TRUE(stream->Write(batch));
  }
  // A batch is answered once every loop is done with it, so two answers may cross: each batch
  // is answered exactly once, by its id.
  std::set<uint64_t> answered;
  for (int b = 0; b < kBatches; ++b) {
    im::v1::PushBatchReply reply;
    ASSERT_TRUE(stream->Read(&reply)) << b;
    EXPECT_TRUE(answered.insert(reply.id()).second) << "answered twice: " << reply.id();
    ASSERT_EQ(reply.replies_size(), 3);
    EXPECT_EQ(reply.replies(0).delivered(), 1u);
    ASSERT_EQ(reply.replies(0).unknown_conn_ids_size(), 1);
    EXPECT_EQ(reply.replies(0).unknown_conn_ids(0), bogus);
  }
  for (int b = 0; b < kBatches; ++b) EXPECT_EQ(answered.count(100 + b), 1u) << b;
  for (uint64_t seq = 1; seq <= kBatches * 3; ++seq) {
    std::optional<Frame> got = client->Receive(kWait);
    ASSERT_TRUE(got && got->has_message_push()) << seq;
    EXPECT_EQ(got->message_push().messages(0).seq(), seq);
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GatewayTest, APushStreamWithABadFrameEndsInvalid) {
  StartGateway();
  auto stub = GatewayStub();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  auto stream = stub->PushStream(&context);
  im::v1::PushBatchRequest batch;
  batch.set_id(1);
  batch.add_pushes()->add_conn_ids(1);  // an empty frame
  ASSERT_TRUE(stream->Write(batch));
  im::v1::PushBatchReply reply;
  EXPECT_FALSE(stream->Read(&reply));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GatewayTest, KickSendsKickAndCloses) {
  StartGateway();
  auto client = LoggedIn("olga");
  ASSERT_NE(client, nullptr);
  im::v1::KickRequest request;
  request.set_conn_id(ConnIdOfLogin(0));
  request.set_reason(im::v1::Kick::LOGGED_IN_ELSEWHERE);
  grpc::ClientContext context;
  im::v1::KickReply reply;
  ASSERT_TRUE(GatewayStub()->Kick(&context, request, &reply).ok());
  EXPECT_TRUE(reply.found());
  std::optional<Frame> kick = client->Receive(kWait);
  ASSERT_TRUE(kick && kick->has_kick());
  EXPECT_EQ(kick->kick().reason(), im::v1::Kick::LOGGED_IN_ELSEWHERE);
  EXPECT_TRUE(client->WaitClosed(kWait));

  grpc::ClientContext again;
  ASSERT_TRUE(GatewayStub()->Kick(&again, request, &reply).ok());
  EXPECT_FALSE(reply.found());
}

// How logic kicks: a push with close_after on the push stream, beside the pushes of its batch.
TEST_F(GatewayTest, APushWithCloseAfterIsAKick) {
  StartGateway();
  auto kicked = LoggedIn("olga");
  ASSERT_NE(kicked, nullptr);
  auto pushed = LoggedIn("petr");
  ASSERT_NE(pushed, nullptr);
  Frame kick;
  kick.mutable_kick()->set_reason(im::v1::Kick::LOGGED_IN_ELSEWHERE);
  Frame message;
  message.mutable_message_push()->add_messages()->set_seq(1);
  constexpr uint64_t kGone = 0xdeadbeef;
  im::v1::PushBatchRequest batch;
  batch.set_id(1);
  im::v1::PushRequest* kick_push = batch.add_pushes();
  kick_push->set_frame(kick.SerializeAsString());
  kick_push->add_conn_ids(ConnIdOfLogin(0));
  kick_push->add_conn_ids(kGone);
  kick_push->set_close_after(true);
  im::v1::PushRequest* message_push = batch.add_pushes();
  message_push->set_frame(message.SerializeAsString());
  message_push->add_conn_ids(ConnIdOfLogin(1));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kWait);
  auto stream = GatewayStub()->PushStream(&context);
  ASSERT_TRUE(stream->Write(batch));
  im::v1::PushBatchReply reply;
  ASSERT_TRUE(stream->Read(&reply));
  ASSERT_EQ(reply.replies_size(), 2);
  EXPECT_EQ(reply.replies(0).delivered(), 1u);
  ASSERT_EQ(reply.replies(0).unknown_conn_ids_size(), 1);
  EXPECT_EQ(reply.replies(0).unknown_conn_ids(0), kGone);

  std::optional<Frame> got = kicked->Receive(kWait);
  ASSERT_TRUE(got && got->has_kick());
  EXPECT_EQ(got->kick().reason(), im::v1::Kick::LOGGED_IN_ELSEWHERE);
  EXPECT_TRUE(kicked->WaitClosed(kWait));
  got = pushed->Receive(kWait);
  ASSERT_TRUE(got && got->has_message_push()) << "a push beside a kick is not one";
  EXPECT_FALSE(pushed->WaitClosed(std::chrono::milliseconds(200)));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GatewayTest, SlowReaderIsDisconnectedAndOthersAreServed) {
  GatewayOptions options = TestOptions(logic_.target());
  options.max_write_queue_bytes = 256 * 1024;
  options.heartbeat_sec = 30;
  StartGateway(options);
  auto slow = Connect(/*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(slow->Login(TestToken("slow"), "phone", kWait).has_value());
  auto healthy = LoggedIn("healthy");
  ASSERT_NE(healthy, nullptr);

  Frame push;
  push.mutable_message_push()->add_messages()->set_body(std::string(32 * 1024, 'p'));
  im::v1::PushRequest request;
  request.add_conn_ids(ConnIdOfLogin(0));
  request.set_frame(push.SerializeAsString());
  // The slow client never reads: kernel buffers fill, then the gateway's queue hits its bound.
  uint32_t delivered = 0;
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    grpc::ClientContext context;
    im::v1::PushReply reply;
    ASSERT_TRUE(PushOne(&context, request, &reply).ok());
    delivered += reply.delivered();
    refused = reply.unknown_conn_ids_size() == 1;
  }
  EXPECT_TRUE(refused) << "the gateway kept queueing for a client that does not read";
  EXPECT_LT(delivered, 200u);
  EXPECT_TRUE(slow->WaitClosed(Millis(20'000)));

  Frame ping;
  ping.mutable_ping();
  std::optional<Frame> pong = healthy->Call(ping, kWait);
  EXPECT_TRUE(pong && pong->has_pong());
}

TEST_F(GatewayTest, SessionRefreshReportsSessionsAndClosesStaleOnes) {
  GatewayOptions options = TestOptions(logic_.target());
  options.session_refresh_ms = 100;
  options.heartbeat_sec = 30;
  StartGateway(options);
  auto kept = LoggedIn("pat");
  auto stale = LoggedIn("quinn");
  ASSERT_NE(kept, nullptr);
  ASSERT_NE(stale, nullptr);
  logic_.set_stale_conn_ids({ConnIdOfLogin(1)});
  ExpectErrorAndClose(*stale, im::v1::UNAUTHENTICATED);
  ASSERT_TRUE(logic_.WaitUntil(
      [&] {
        for (const auto& refresh : logic_.refreshes()) {
          for (const auto& session : refresh.sessions()) {
            if (session.uid() == "pat" && session.conn_id() == ConnIdOfLogin(0)) return true;
          }
        }
        return false;
      },
      kWait));
  EXPECT_FALSE(kept->closed());
}

TEST_F(GatewayTest, ClientLeavingReleasesItsSession) {
  StartGateway();
  {
    auto client = LoggedIn("rita", "watch");
    ASSERT_NE(client, nullptr);
  }
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.disconnects().size() == 1; }, kWait));
  const auto disconnect = logic_.disconnects()[0];
  EXPECT_EQ(disconnect.caller().uid(), "rita");
  EXPECT_EQ(disconnect.caller().device(), "watch");
  EXPECT_EQ(disconnect.caller().conn_id(), ConnIdOfLogin(0));
  EXPECT_EQ(disconnect.reason(), "peer");
}

TEST_F(GatewayTest, ConnectionsClosedInOneIterationReleaseTheirSessionsInOneCall) {
  GatewayOptions options = TestOptions(logic_.target());
  options.workers = 1;
  StartGateway(options);
  std::vector<std::unique_ptr<im::testing::WireClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(LoggedIn("user" + std::to_string(i), "phone"));
    ASSERT_NE(clients.back(), nullptr);
  }
  StopGateway();  // closes every connection in one loop task
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.disconnects().size() == 6; }, kWait));
  EXPECT_EQ(logic_.disconnect_many_calls(), 1);
  std::set<std::string> released;
  for (const auto& disconnect : logic_.disconnects()) released.insert(disconnect.caller().uid());
  EXPECT_EQ(released.size(), 6u);
}

TEST_F(GatewayTest, ALogicNodeWithoutDisconnectManyGetsOneDisconnectEach) {
  logic_.set_disconnect_many(false);  // a logic node of an earlier version
  StartGateway();
  {
    auto first = LoggedIn("sam", "phone");
    auto second = LoggedIn("tia", "phone");
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
  }
  ASSERT_TRUE(logic_.WaitUntil([&] { return logic_.disconnects().size() == 2; }, kWait));
  EXPECT_EQ(logic_.disconnect_many_calls(), 0);
}

TEST_F(GatewayTest, DrainSendsGoAwayAndStopsAccepting) {
  GatewayOptions options = TestOptions(logic_.target());
  options.heartbeat_sec = 30;
  options.drain_timeout_ms = 5000;
  options.goaway_reconnect_ms = 1234;
  StartGateway(options);
  auto a = LoggedIn("sam");
  auto b = LoggedIn("tom");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const uint16_t port = gateway_->client_port();
  gateway_->RequestDrain();
  for (auto* client : {a.get(), b.get()}) {
    std::optional<Frame> goaway = client->Receive(kWait);
    ASSERT_TRUE(goaway && goaway->has_go_away());
    EXPECT_EQ(goaway->go_away().reconnect_after_ms(), 1234u);
  }
  a.reset();  // clients leave; Run() returns once both are gone
  b.reset();
  gateway_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  gateway_.reset();
  EXPECT_FALSE(im::testing::WireClient::Connect("127.0.0.1", port).ok());
}

TEST_F(GatewayTest, DrainRpcSendsGoAwayWithTheGivenHint) {
  GatewayOptions options = TestOptions(logic_.target());
  options.heartbeat_sec = 30;
  options.drain_timeout_ms = 5000;
  StartGateway(options);
  auto client = LoggedIn("uma");
  ASSERT_NE(client, nullptr);
  im::v1::DrainRequest request;
  request.set_reconnect_after_ms(777);
  grpc::ClientContext context;
  im::v1::DrainReply reply;
  ASSERT_TRUE(GatewayStub()->Drain(&context, request, &reply).ok());
  EXPECT_EQ(reply.connections(), 1u);
  std::optional<im::v1::Frame> goaway = client->Receive(kWait);
  ASSERT_TRUE(goaway && goaway->has_go_away());
  EXPECT_EQ(goaway->go_away().reconnect_after_ms(), 777u);
  client.reset();
  gateway_thread_.join();  // the last client left: the gateway stops by itself
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  gateway_.reset();
}

TEST_F(GatewayTest, GoAwayHintsAreSpreadOverTheWindow) {
  GatewayOptions options = TestOptions(logic_.target());
  options.heartbeat_sec = 30;
  options.drain_timeout_ms = 8000;
  options.goaway_reconnect_ms = 100;
  options.goaway_spread_ms = 2000;
  StartGateway(options);
  std::vector<std::unique_ptr<im::testing::WireClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(LoggedIn("spread" + std::to_string(i)));
    ASSERT_NE(clients.back(), nullptr);
  }
  gateway_->RequestDrain();
  std::set<uint32_t> hints;
  for (auto& client : clients) {
    std::optional<Frame> goaway = client->Receive(kWait);
    ASSERT_TRUE(goaway && goaway->has_go_away());
    const uint32_t hint = goaway->go_away().reconnect_after_ms();
    EXPECT_GE(hint, 100u);
    EXPECT_LE(hint, 2100u);
    hints.insert(hint);
  }
  // Eight draws from 2,001 values: all equal only if the spread is not applied.
  EXPECT_GT(hints.size(), 1u);
  clients.clear();
  gateway_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  gateway_.reset();
}

TEST_F(GatewayTest, SpreadIsCutToFitTheDrain) {
  GatewayOptions options = TestOptions(logic_.target());
  options.heartbeat_sec = 30;
  options.drain_timeout_ms = 2000;  // room: 3/4 of it, 1,500 ms
  options.goaway_reconnect_ms = 1000;
  options.goaway_spread_ms = 60'000;
  StartGateway(options);
  auto client = LoggedIn("cut");
  ASSERT_NE(client, nullptr);
  gateway_->RequestDrain();
  std::optional<Frame> goaway = client->Receive(kWait);
  ASSERT_TRUE(goaway && goaway->has_go_away());
  EXPECT_GE(goaway->go_away().reconnect_after_ms(), 1000u);
  EXPECT_LE(goaway->go_away().reconnect_after_ms(), 1500u);
}

TEST_F(GatewayTest, ReadyUntilTheDrainAndAliveThroughIt) {
  GatewayOptions options = TestOptions(logic_.target());
  options.heartbeat_sec = 30;
  options.drain_timeout_ms = 5000;
  StartGateway(options);
  auto client = LoggedIn("vic");  // a call to logic: the channel is connected
  ASSERT_NE(client, nullptr);
  common::HealthReport ready = gateway_->Readiness();
  EXPECT_TRUE(ready.ok) << ready.detail;
  common::HealthReport live = gateway_->Liveness();
  EXPECT_TRUE(live.ok) << live.detail;

  gateway_->RequestDrain();
  std::optional<Frame> goaway = client->Receive(kWait);
  ASSERT_TRUE(goaway && goaway->has_go_away());
  ready = gateway_->Readiness();
  EXPECT_FALSE(ready.ok);
  EXPECT_THAT(ready.detail, ::testing::HasSubstr("draining"));
  live = gateway_->Liveness();  // the loops still run while clients leave
  EXPECT_TRUE(live.ok) << live.detail;
}

TEST_F(GatewayTest, NotReadyWhileLogicIsUnreachable) {
  // A port nobody listens on (bound, then released).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  StartGateway(TestOptions("127.0.0.1:" + std::to_string(ntohs(addr.sin_port))));
  common::HealthReport ready;
  for (int i = 0; i < 50; ++i) {  // the first probe may still find the channel idle
    ready = gateway_->Readiness();
    if (!ready.ok && ready.detail.find("unreachable") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(ready.ok);
  EXPECT_THAT(ready.detail, ::testing::HasSubstr("logic"));
  EXPECT_THAT(ready.detail, ::testing::HasSubstr("unreachable"));
  EXPECT_TRUE(gateway_->Liveness().ok);
}

}  // namespace
}  // namespace im::gateway::testing
