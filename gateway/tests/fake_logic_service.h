#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/token.h"
#include "im/v1/logic.grpc.pb.h"

namespace im::gateway::testing {

inline constexpr char kTestSecret[] = "test-secret";

// A LogicService test double served over real gRPC on 127.0.0.1:<port>, so the gateway is tested
// through its real client. Logins are checked with real token verification; every call is recorded
// for the test to inspect. Group and sync calls are left UNIMPLEMENTED on purpose.
class FakeLogicService final : public im::v1::LogicService::Service {
 public:
  FakeLogicService();
  ~FakeLogicService() override;

  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  grpc::Status Login(grpc::ServerContext*, const im::v1::LoginRequest* request,
                     im::v1::LoginReply* reply) override;
  grpc::Status Disconnect(grpc::ServerContext*, const im::v1::DisconnectRequest* request,
                          im::v1::DisconnectReply* reply) override;
  grpc::Status RefreshSessions(grpc::ServerContext*, const im::v1::RefreshSessionsRequest* request,
                               im::v1::RefreshSessionsReply* reply) override;
  grpc::Status Send(grpc::ServerContext*, const im::v1::SendRequest* request,
                    im::v1::SendResp* reply) override;
  grpc::Status Ack(grpc::ServerContext*, const im::v1::AckRequest* request,
                   im::v1::AckReply* reply) override;

  // Test controls.
  void set_send_delay(std::chrono::milliseconds delay);
  void set_stale_conn_ids(std::vector<uint64_t> ids);

  // Recorded calls (copies, thread-safe).
  std::vector<im::v1::LoginRequest> logins();
  std::vector<im::v1::DisconnectRequest> disconnects();
  std::vector<im::v1::RefreshSessionsRequest> refreshes();
  std::vector<im::v1::SendRequest> sends();
  // The x-request-id metadata of each recorded send, in order.
  std::vector<std::string> send_request_ids();
  // The next `count` Send calls fail UNAVAILABLE (a logic node going away) without recording.
  void FailSendsUnavailable(int count);
  int send_attempts();  // every Send call, failed or not
  std::vector<im::v1::AckRequest> acks();

  // Waits until `ready` holds (checked under the lock after every recorded call).
  bool WaitUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

 private:
  void Notify();

  common::TokenVerifier verifier_{kTestSecret};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::chrono::milliseconds send_delay_{0};
  std::vector<uint64_t> stale_conn_ids_;
  uint64_t next_seq_ = 1;
  std::vector<im::v1::LoginRequest> logins_;
  std::vector<im::v1::DisconnectRequest> disconnects_;
  std::vector<im::v1::RefreshSessionsRequest> refreshes_;
  std::vector<im::v1::SendRequest> sends_;
  std::vector<std::string> send_request_ids_;
  int unavailable_sends_ = 0;
  int send_attempts_ = 0;
  std::vector<im::v1::AckRequest> acks_;
};

// A token for `uid` signed with kTestSecret, valid for an hour unless told otherwise.
std::string TestToken(const std::string& uid, int64_t valid_for_sec = 3600);

}  // namespace im::gateway::testing
