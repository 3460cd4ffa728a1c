#include "gateway/tests/gateway_fixture.h"

namespace im::gateway::testing {

GatewayOptions TestOptions(const std::string& logic_target) {
  GatewayOptions options;
  options.gateway_id = "gw-test";
  options.listen_address = "127.0.0.1:0";
  options.grpc_address = "127.0.0.1:0";
  options.logic_target = logic_target;
  options.workers = 2;
  options.login_timeout_ms = 300;
  options.heartbeat_sec = 1;
  options.idle_heartbeats = 1;
  options.close_linger_ms = 300;
  options.logic_timeout_ms = 2000;
  options.drain_timeout_ms = 500;
  options.goaway_spread_ms = 0;  // exact GoAway hints; the spread has a test of its own
  return options;
}

void GatewayTest::StartGateway(GatewayOptions options) {
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Create(options, registry_);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  gateway_ = std::move(*gateway);
  gateway_thread_ = std::thread([this] { run_status_ = gateway_->Run(); });
}

void GatewayTest::StopGateway() {
  if (!gateway_) return;
  gateway_->RequestDrain();
  gateway_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  gateway_.reset();
}

void GatewayTest::TearDown() { StopGateway(); }

std::unique_ptr<im::testing::WireClient> GatewayTest::Connect(int receive_buffer_bytes) {
  auto client =
      im::testing::WireClient::Connect("127.0.0.1", gateway_->client_port(), receive_buffer_bytes);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

std::unique_ptr<im::testing::WireClient> GatewayTest::LoggedIn(const std::string& uid,
                                                               const std::string& device) {
  auto client = Connect();
  if (!client) return nullptr;
  std::optional<im::v1::Frame> resp = client->Login(TestToken(uid), device, kWait);
  EXPECT_TRUE(resp && resp->has_login_resp());
  if (!resp || !resp->has_login_resp()) return nullptr;
  EXPECT_EQ(resp->login_resp().status().code(), im::v1::OK) << resp->DebugString();
  return client;
}

grpc::Status GatewayTest::PushOne(grpc::ClientContext* context, const im::v1::PushRequest& push,
                                  im::v1::PushReply* reply) {
  im::v1::PushBatchRequest batch;
  *batch.add_pushes() = push;
  im::v1::PushBatchReply replies;
  grpc::Status status = GatewayStub()->Push(context, batch, &replies);
  if (status.ok() && replies.replies_size() == 1) *reply = replies.replies(0);
  return status;
}

std::unique_ptr<im::v1::GatewayService::Stub> GatewayTest::GatewayStub() {
  return im::v1::GatewayService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(gateway_->grpc_port()), grpc::InsecureChannelCredentials()));
}

uint64_t GatewayTest::ConnIdOfLogin(size_t n) {
  const auto logins = logic_.logins();
  EXPECT_GT(logins.size(), n);
  return logins.size() > n ? logins[n].conn_id() : 0;
}

double GatewayTest::MetricValue(const std::string& name,
                                const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : registry_.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      size_t matched = 0;
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        auto wanted = labels.find(label.name);
        if (wanted != labels.end() && wanted->second == label.value) ++matched;
      }
      if (matched != labels.size()) continue;
      return family.type == prometheus::MetricType::Gauge ? metric.gauge.value
                                                          : metric.counter.value;
    }
  }
  return 0;
}

im::v1::Frame SendFrame(const std::string& conv, const std::string& client_msg_id,
                        const std::string& body) {
  im::v1::Frame frame;
  frame.mutable_send_req()->set_conv_id(conv);
  frame.mutable_send_req()->set_client_msg_id(client_msg_id);
  frame.mutable_send_req()->set_body(body);
  return frame;
}

void ExpectErrorAndClose(im::testing::WireClient& client, im::v1::Code code) {
  std::optional<im::v1::Frame> frame = client.Receive(kWait);
  ASSERT_TRUE(frame.has_value()) << "no frame before close";
  ASSERT_TRUE(frame->has_error()) << frame->DebugString();
  EXPECT_EQ(frame->error().code(), code) << frame->DebugString();
  EXPECT_TRUE(client.WaitClosed(kWait));
}

}  // namespace im::gateway::testing
