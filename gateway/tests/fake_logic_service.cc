#include "gateway/tests/fake_logic_service.h"

#include <thread>

namespace im::gateway::testing {
namespace {

int64_t NowSec() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename T>
std::vector<T> Copy(std::mutex& mutex, const std::vector<T>& items) {
  std::lock_guard<std::mutex> lock(mutex);
  return items;
}

}  // namespace

std::string TestToken(const std::string& uid, int64_t valid_for_sec) {
  common::TokenClaims claims;
  claims.uid = uid;
  claims.exp_unix_sec = NowSec() + valid_for_sec;
  return common::SignToken(claims, kTestSecret);
}

FakeLogicService::FakeLogicService() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

FakeLogicService::~FakeLogicService() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void FakeLogicService::Notify() { changed_.notify_all(); }

grpc::Status FakeLogicService::Login(grpc::ServerContext*, const im::v1::LoginRequest* request,
                                     im::v1::LoginReply* reply) {
  const common::TokenVerdict verdict =
      verifier_.Verify(request->req().token(), request->req().device(), NowSec());
  reply->mutable_resp()->mutable_status()->set_code(verdict.code);
  reply->mutable_resp()->mutable_status()->set_message(verdict.detail);
  if (verdict.ok()) {
    reply->mutable_resp()->set_uid(verdict.claims.uid);
    reply->set_device(request->req().device());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  logins_.push_back(*request);
  Notify();
  return grpc::Status::OK;
}

grpc::Status FakeLogicService::Disconnect(grpc::ServerContext*,
                                          const im::v1::DisconnectRequest* request,
                                          im::v1::DisconnectReply* reply) {
  reply->set_removed(true);
  std::lock_guard<std::mutex> lock(mutex_);
  disconnects_.push_back(*request);
  Notify();
  return grpc::Status::OK;
}

grpc::Status FakeLogicService::RefreshSessions(grpc::ServerContext*,
                                               const im::v1::RefreshSessionsRequest* request,
                                               im::v1::RefreshSessionsReply* reply) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const im::v1::SessionRef& session : request->sessions()) {
    for (uint64_t stale : stale_conn_ids_) {
      if (session.conn_id() == stale) reply->add_stale_conn_ids(stale);
    }
  }
  refreshes_.push_back(*request);
  Notify();
  return grpc::Status::OK;
}

grpc::Status FakeLogicService::Send(grpc::ServerContext* context,
                                    const im::v1::SendRequest* request, im::v1::SendResp* reply) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    send_attempts_++;
    if (unavailable_sends_ > 0) {
      unavailable_sends_--;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "logic node going away");
    }
    delay = send_delay_;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  std::lock_guard<std::mutex> lock(mutex_);
  reply->mutable_status()->set_code(im::v1::OK);
  reply->set_conv_id(request->req().conv_id());
  reply->set_client_msg_id(request->req().client_msg_id());
  reply->set_seq(next_seq_++);
  sends_.push_back(*request);
  const auto id = context->client_metadata().find("x-request-id");
  send_request_ids_.push_back(id == context->client_metadata().end()
                                  ? std::string()
                                  : std::string(id->second.data(), id->second.size()));
  Notify();
  return grpc::Status::OK;
}

grpc::Status FakeLogicService::Ack(grpc::ServerContext*, const im::v1::AckRequest* request,
                                   im::v1::AckReply*) {
  std::lock_guard<std::mutex> lock(mutex_);
  acks_.push_back(*request);
  Notify();
  return grpc::Status::OK;
}

void FakeLogicService::set_send_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  send_delay_ = delay;
}

void FakeLogicService::set_stale_conn_ids(std::vector<uint64_t> ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  stale_conn_ids_ = std::move(ids);
}

std::vector<im::v1::LoginRequest> FakeLogicService::logins() { return Copy(mutex_, logins_); }
std::vector<im::v1::DisconnectRequest> FakeLogicService::disconnects() {
  return Copy(mutex_, disconnects_);
}
std::vector<im::v1::RefreshSessionsRequest> FakeLogicService::refreshes() {
  return Copy(mutex_, refreshes_);
}
std::vector<im::v1::SendRequest> FakeLogicService::sends() { return Copy(mutex_, sends_); }
std::vector<im::v1::AckRequest> FakeLogicService::acks() { return Copy(mutex_, acks_); }

bool FakeLogicService::WaitUntil(const std::function<bool()>& ready,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    // `ready` takes the lock itself, so wait in short slices rather than on the predicate.
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(20));
  }
  return ready();
}

std::vector<std::string> FakeLogicService::send_request_ids() {
  std::lock_guard<std::mutex> lock(mutex_);
  return send_request_ids_;
}

void FakeLogicService::FailSendsUnavailable(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  unavailable_sends_ = count;
}

int FakeLogicService::send_attempts() {
  std::lock_guard<std::mutex> lock(mutex_);
  return send_attempts_;
}

}  // namespace im::gateway::testing
