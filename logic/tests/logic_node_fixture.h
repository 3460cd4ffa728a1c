#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "logic/backends/logic_stores.h"
#include "logic/logic_server.h"

namespace im::logic::testing {

using Stream = grpc::ClientReaderWriter<im::v1::IngressBatch, im::v1::EgressBatch>;

// One LogicServer on the loopback, seen as a gateway sees it: entries written on its stream,
// answers read back.
class LogicNodeFixture : public ::testing::Test {
 protected:
  // Starts the node on `stores` with options_ (the gRPC address and token secret set here).
  void StartServer(LogicStores stores) {
    options_.grpc_address = "127.0.0.1:0";
    options_.token_secret = "logic-node-test-secret-0123456789";
    absl::StatusOr<std::unique_ptr<LogicServer>> server =
        LogicServer::Start(options_, std::move(stores), &metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = im::v1::LogicService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(1000));
  }

  static im::v1::Ingress Entry(uint64_t id, const std::string& uid, im::v1::Frame request,
                               int64_t deadline_ms = common::UnixMillis() + 5'000) {
    im::v1::Ingress entry;
    entry.set_id(id);
    entry.set_deadline_ms(deadline_ms);
    entry.mutable_caller()->set_uid(uid);
    entry.mutable_caller()->set_device("phone");
    entry.mutable_caller()->set_gateway_id("gw-1");
    entry.mutable_caller()->set_conn_id(7);
    request.set_id(id * 10);  // the client's frame id, distinct from the stream's entry id
    *entry.mutable_request() = std::move(request);
    return entry;
  }
  static im::v1::Frame SendTo(const std::string& to, const std::string& client_msg_id) {
    im::v1::Frame frame;
    frame.mutable_send_req()->set_to_uid(to);
    frame.mutable_send_req()->set_client_msg_id(client_msg_id);
    frame.mutable_send_req()->set_body("hello");
    return frame;
  }
  // Reads answers until `count` entries are answered; by entry id.
  static std::map<uint64_t, im::v1::Egress> ReadAnswers(Stream& stream, size_t count) {
    std::map<uint64_t, im::v1::Egress> answers;
    im::v1::EgressBatch batch;
    while (answers.size() < count && stream.Read(&batch)) {
      for (const im::v1::Egress& egress : batch.entries()) answers[egress.id()] = egress;
    }
    return answers;
  }

  // Tests send hundreds of messages from one user at once: without the sender limits, which have
  // tests of their own (logic/tests/sender_limits_test.cc, tests/e2e/abuse_limits_test.cc).
  static LogicOptions WithoutSenderLimits() {
    LogicOptions options;
    options.send_rate_per_user = 0;
    options.group_send_rate_per_user = 0;
    return options;
  }

  LogicOptions options_ = WithoutSenderLimits();
  prometheus::Registry registry_;
  LogicMetrics metrics_{registry_};  // outlives server_
  std::unique_ptr<LogicServer> server_;
  std::unique_ptr<im::v1::LogicService::Stub> stub_;
};

}  // namespace im::logic::testing
