// Session resume against the real binaries, on the cluster and on the embedded node: after a
// network switch the SDK asks only for what changed and gets exactly the messages it missed; a
// resume token works once and within its window, and every bad one is refused cleanly.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/v1/client.pb.h"
#include "sdk/client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/sdk_recorder.h"
#include "tests/e2e/test_device.h"
#include "tests/support/tcp_proxy.h"

namespace im::e2e {
namespace {

using im::testing::TcpProxy;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kWindowSec = 2;
// As short as the write deadline allows, so that the test need not wait long for its setup to be
// older than a resume looks back.
constexpr int kMarginMs = 5'000;
constexpr int kConversations = 40;
constexpr int kMissed = 3;

class SessionResumeTest : public DeploymentTest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.logic_env = {{"IM_LOGIC_RESUME_WINDOW_SEC", std::to_string(kWindowSec)},
                         {"IM_LOGIC_RESUME_MARGIN_MS", std::to_string(kMarginMs)}};
    cluster_ = Deploy(options);
    ASSERT_TRUE(cluster_->Start());
  }

  // A ResumeReq on `device`'s connection.
  static im::v1::ResumeResp Resume(TestDevice& device, const std::string& token) {
    im::v1::Frame frame;
    frame.mutable_resume_req()->set_resume_token(token);
    std::optional<im::v1::Frame> answer = device.Call(frame);
    EXPECT_TRUE(answer && answer->has_resume_resp()) << "no ResumeResp";
    return answer && answer->has_resume_resp() ? answer->resume_resp() : im::v1::ResumeResp();
  }

  // The bytes `uid`'s client (resume on or off) receives to get back kMissed messages after its
  // connection is cut, once it has kConversations conversations; EXPECTs the messages arrive
  // exactly once and in order.
  uint64_t BytesToCatchUp(const std::string& uid, bool resume) {
    std::unique_ptr<TcpProxy> proxy = TcpProxy::Start(cluster_->client_port(0)).value();
    SdkRecorder seen;
    im::sdk::ClientOptions options = OptionsFor(uid, "phone", {Address(proxy->port())});
    options.resume_sessions = resume;
    im::sdk::Client client(options, &seen);
    EXPECT_TRUE(StartAndWait(client, seen));
    for (int i = 0; i < kConversations; ++i) {
      client.SendTo(cluster_->Uid("peer" + std::to_string(i)), "hello");
    }
    EXPECT_TRUE(seen.WaitFor([](const SdkRecorder& r) { return r.sent_ok() == kConversations; },
                             seconds(30)));
    // Then a reconnect once the setup is older than a resume looks back: the session's baseline
    // is past the new conversations, as for a user who has had them for a while.
    std::this_thread::sleep_for(milliseconds(kMarginMs + 500));
    proxy->CutAll();
    EXPECT_TRUE(seen.WaitFor([](const SdkRecorder& r) { return r.connects() == 2; }, seconds(10)));
    std::this_thread::sleep_for(milliseconds(500));  // its resume or listing has been answered
    // The network switches: the old path is gone (refusing), messages arrive meanwhile.
    proxy->set_refusing(true);
    proxy->CutAll();
    EXPECT_TRUE(seen.WaitFor(
        [](const SdkRecorder& r) { return r.state() != im::sdk::ConnectionState::kConnected; },
        seconds(10)));
    std::unique_ptr<TestDevice> peer = cluster_->Device("peer0", "phone");
    EXPECT_TRUE(peer->Login(cluster_->client_port(0)));
    for (int i = 0; i < kMissed; ++i) {
      std::optional<im::v1::SendResp> sent =
          peer->SendTo(uid, uid + "-" + std::to_string(i), "away");
      EXPECT_TRUE(sent && sent->status().code() == im::v1::OK);
    }
    const std::string conv = SingleChat(uid, cluster_->Uid("peer0"));
    const uint64_t before = client.stats().bytes_received;
    proxy->set_refusing(false);
    EXPECT_TRUE(seen.WaitFor([&](const SdkRecorder& r) { return r.delivered_count(conv) >= 4; },
                             seconds(20)))
        << "the missed messages did not arrive";
    std::this_thread::sleep_for(milliseconds(300));  // a duplicate would come late
    const std::vector<im::sdk::Message> held = seen.DeliveredCopy(conv);
    EXPECT_EQ(held.size(), 1u + kMissed) << "exactly the missed ones, once each";
    EXPECT_EQ(CheckContiguous(held, 1), "");
    return client.stats().bytes_received - before;
  }

  std::unique_ptr<ChatDeployment> cluster_;
};
IM_INSTANTIATE_DEPLOYMENTS(SessionResumeTest);

TEST_P(SessionResumeTest, ANetworkSwitchCatchesUpWithOnlyWhatChanged) {
  const uint64_t listing = BytesToCatchUp(cluster_->Uid("lister"), false);
  const uint64_t resuming = BytesToCatchUp(cluster_->Uid("resumer"), true);
  // Listing sends every conversation with its last message; resuming, the one that changed.
  EXPECT_LT(resuming * 3, listing) << "resume " << resuming << " B, list " << listing << " B";
}

TEST_P(SessionResumeTest, ATokenIsGoodOnceForItsDeviceAndWithinTheWindow) {
  std::unique_ptr<TestDevice> phone = cluster_->Device("alice", "phone");
  std::optional<im::v1::LoginResp> first = phone->Connect(cluster_->client_port(0));
  ASSERT_TRUE(first && first->status().code() == im::v1::OK);
  ASSERT_FALSE(first->resume_token().empty());
  EXPECT_EQ(first->resume_window_sec(), static_cast<uint32_t>(kWindowSec));

  ASSERT_TRUE(phone->Login(cluster_->client_port(0)));  // a new connection
  const im::v1::ResumeResp resumed = Resume(*phone, first->resume_token());
  EXPECT_EQ(resumed.status().code(), im::v1::OK) << resumed.status().message();
  EXPECT_FALSE(resumed.resume_token().empty());
  EXPECT_EQ(Resume(*phone, first->resume_token()).status().code(), im::v1::FAILED_PRECONDITION)
      << "a token used twice";

  std::unique_ptr<TestDevice> tablet = cluster_->Device("alice", "tablet");
  ASSERT_TRUE(tablet->Login(cluster_->client_port(0)));
  EXPECT_EQ(Resume(*tablet, resumed.resume_token()).status().code(), im::v1::FAILED_PRECONDITION)
      << "another device's token";
  for (const std::string& bad :
       {std::string(), std::string("garbage"), ChatDeployment::Token(cluster_->Uid("alice"))}) {
    EXPECT_EQ(Resume(*tablet, bad).status().code(), im::v1::INVALID_ARGUMENT) << bad;
  }
  std::this_thread::sleep_for(seconds(kWindowSec) + milliseconds(200));
  EXPECT_EQ(Resume(*phone, resumed.resume_token()).status().code(), im::v1::FAILED_PRECONDITION)
      << "after the window";
  EXPECT_TRUE(phone->connected() && tablet->connected()) << "refusals cost no connection";
}

}  // namespace
}  // namespace im::e2e
