#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/token.h"
#include "im/v1/logic.grpc.pb.h"

namespace im::gateway::testing {

inline constexpr char kTestSecret[] = "test-secret";

// A LogicService test double served over real gRPC on 127.0.0.1:<port>, so the gateway is tested
// through its real client. Logins (on the stream, or as calls) are checked with real token
// verification; every call is recorded for the test to inspect. Requests other than logins, sends,
// acks and group creates are left UNIMPLEMENTED on purpose.
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
  grpc::Status DisconnectMany(grpc::ServerContext*, const im::v1::DisconnectManyRequest* request,
                              im::v1::DisconnectManyReply* reply) override;
  grpc::Status RefreshSessions(grpc::ServerContext*, const im::v1::RefreshSessionsRequest* request,
                               im::v1::RefreshSessionsReply* reply) override;
  // Client requests: sends, acks and group creates are served; any other body is answered
  // with an Error frame UNIMPLEMENTED.
  grpc::Status Stream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<im::v1::EgressBatch, im::v1::IngressBatch>* stream) override;

  // Test controls.
  void set_send_delay(std::chrono::milliseconds delay);
  // false: once it has answered the batch at hand, the stream reads nothing more until set back
  // (the gateway's writes then back up behind HTTP/2 flow control, as on an overloaded node).
  void set_reading(bool reading);
  // How long a login on the stream takes to be answered.
  void set_login_delay(std::chrono::milliseconds delay);
  int logins_received();  // logins on the stream, counted on arrival (before the delay)
  // The connection of each login on the stream, on arrival (before the delay).
  std::vector<uint64_t> login_conn_ids_received();
  // false: logins on the stream are answered UNEXPECTED_FRAME, as by a logic node of an earlier
  // version, so that the gateway logs in by the Login call instead.
  void set_stream_logins(bool on_stream);
  // false: DisconnectMany is UNIMPLEMENTED, as on a logic node of an earlier version.
  void set_disconnect_many(bool served);
  void set_stale_conn_ids(std::vector<uint64_t> ids);

  // Recorded calls (copies, thread-safe).
  std::vector<im::v1::LoginRequest> logins();            // on the stream and by call
  int login_calls();                                     // logins made by the Login call
  std::vector<im::v1::DisconnectRequest> disconnects();  // one by one and in batches
  int disconnect_many_calls();
  std::vector<im::v1::RefreshSessionsRequest> refreshes();
  std::vector<im::v1::SendRequest> sends();
  // The next `count` batches holding a send or group create end their stream UNAVAILABLE
  // unanswered, as a logic node dying mid-batch does.
  void BreakStreamOnNextRequests(int count);
  // The next batch holding a send or group create ends its stream as a draining logic node does:
  // unanswered, with a trailer saying that nothing of it was read.
  void DrainOnNextRequest();
  int send_attempts();          // every SendReq received, answered or not
  int group_create_attempts();  // every GroupCreateReq received, answered or not
  int streams_opened();
  std::vector<im::v1::AckRequest> acks();

  // Waits until `ready` holds (checked under the lock after every recorded call).
  bool WaitUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

 private:
  void Notify();
  // Waits while reading is off; false when the call was cancelled meanwhile.
  bool WaitUntilReading(grpc::ServerContext* context);
  // The answer to one entry; nullopt for an ack.
  std::optional<im::v1::Frame> Serve(im::v1::Ingress& entry);
  im::v1::LoginReply ServeLogin(const im::v1::LoginRequest& request);

  common::TokenVerifier verifier_{kTestSecret};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::chrono::milliseconds send_delay_{0};
  bool reading_ = true;
  std::chrono::milliseconds login_delay_{0};
  int logins_received_ = 0;
  std::vector<uint64_t> login_conn_ids_received_;
  std::vector<uint64_t> stale_conn_ids_;
  uint64_t next_seq_ = 1;
  std::vector<im::v1::LoginRequest> logins_;
  bool stream_logins_ = true;
  bool disconnect_many_ = true;
  int disconnect_many_calls_ = 0;
  int login_calls_ = 0;
  std::vector<im::v1::DisconnectRequest> disconnects_;
  std::vector<im::v1::RefreshSessionsRequest> refreshes_;
  std::vector<im::v1::SendRequest> sends_;
  int streams_to_break_ = 0;
  bool drain_next_ = false;
  int send_attempts_ = 0;
  int group_create_attempts_ = 0;
  int streams_opened_ = 0;
  uint64_t next_group_ = 1;
  std::vector<im::v1::AckRequest> acks_;
};

// A token for `uid` signed with kTestSecret, valid for an hour unless told otherwise.
std::string TestToken(const std::string& uid, int64_t valid_for_sec = 3600);

}  // namespace im::gateway::testing
