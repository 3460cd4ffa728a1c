#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "gateway/gateway.h"
#include "gateway/tests/fake_logic_service.h"
#include "im/v1/gateway.grpc.pb.h"
#include "tests/support/wire_client.h"

namespace im::gateway::testing {

using Millis = std::chrono::milliseconds;
inline constexpr Millis kWait{5000};

// Options for a gateway under test: loopback, port 0 everywhere, two loops, short timeouts.
GatewayOptions TestOptions(const std::string& logic_target);

// A SendReq frame.
im::v1::Frame SendFrame(const std::string& conv, const std::string& client_msg_id,
                        const std::string& body = "hello");

// The Error frame a server sends before closing, and the close itself.
void ExpectErrorAndClose(im::testing::WireClient& client, im::v1::Code code);

// A gateway running in this process on its own thread, talking to a FakeLogicService.
class GatewayTest : public ::testing::Test {
 protected:
  void StartGateway(GatewayOptions options);
  void StartGateway() { StartGateway(TestOptions(logic_.target())); }
  // Drains the gateway and waits for Run() to return OK.
  void StopGateway();
  void TearDown() override;

  std::unique_ptr<im::testing::WireClient> Connect(int receive_buffer_bytes = 0);
  // Connects and logs in as `uid`, asserting success.
  std::unique_ptr<im::testing::WireClient> LoggedIn(const std::string& uid,
                                                    const std::string& device = "phone");
  std::unique_ptr<im::v1::GatewayService::Stub> GatewayStub();
  // GatewayService.Push with a batch of one.
  grpc::Status PushOne(grpc::ClientContext* context, const im::v1::PushRequest& push,
                       im::v1::PushReply* reply);
  // The conn_id logic saw for the n-th login.
  uint64_t ConnIdOfLogin(size_t n);
  // A counter's or gauge's value in registry_: the metric named `name` whose labels include
  // `labels` (0 when there is none).
  double MetricValue(const std::string& name,
                     const std::map<std::string, std::string>& labels = {});

  FakeLogicService logic_;
  prometheus::Registry registry_;
  std::unique_ptr<Gateway> gateway_;
  std::thread gateway_thread_;
  absl::Status run_status_;
};

}  // namespace im::gateway::testing
