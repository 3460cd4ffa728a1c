#include "gateway/tests/fake_logic_service.h"

#include <thread>

#include "common/logic_stream_trailer.h"

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
  // Flow control windows stay at their initial size, so that a stream that stops reading
  // (set_reading) holds the gateway's writes back after a predictable amount.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

FakeLogicService::~FakeLogicService() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void FakeLogicService::Notify() { changed_.notify_all(); }

grpc::Status FakeLogicService::Login(grpc::ServerContext*, const im::v1::LoginRequest* request,
                                     im::v1::LoginReply* reply) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    login_calls_++;
  }
  *reply = ServeLogin(*request);
  return grpc::Status::OK;
}

im::v1::LoginReply FakeLogicService::ServeLogin(const im::v1::LoginRequest& request) {
  im::v1::LoginReply reply;
  const common::TokenVerdict verdict =
      verifier_.Verify(request.req().token(), request.req().device(), NowSec());
  reply.mutable_resp()->mutable_status()->set_code(verdict.code);
  reply.mutable_resp()->mutable_status()->set_message(verdict.detail);
  if (verdict.ok()) {
    reply.mutable_resp()->set_uid(verdict.claims.uid);
    reply.set_device(request.req().device());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  logins_.push_back(request);
  Notify();
  return reply;
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

grpc::Status FakeLogicService::DisconnectMany(grpc::ServerContext*,
                                              const im::v1::DisconnectManyRequest* request,
                                              im::v1::DisconnectManyReply* reply) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!disconnect_many_) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "an earlier logic version");
  }
  disconnect_many_calls_++;
  for (const im::v1::DisconnectRequest& one : request->disconnects()) disconnects_.push_back(one);
  reply->set_removed(static_cast<uint32_t>(request->disconnects_size()));
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

grpc::Status FakeLogicService::Stream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<im::v1::EgressBatch, im::v1::IngressBatch>* stream) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    streams_opened_++;
  }
  im::v1::IngressBatch batch;
  while (WaitUntilReading(context) && stream->Read(&batch)) {
    bool breaks = false, drains = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bool consequential = false;
      for (const im::v1::Ingress& entry : batch.entries()) {
        if (entry.request().has_send_req()) send_attempts_++, consequential = true;
        if (entry.request().has_group_create_req()) group_create_attempts_++, consequential = true;
      }
      if (consequential && drain_next_) {
        drain_next_ = false;
        drains = true;
      } else if (consequential && streams_to_break_ > 0) {
        streams_to_break_--;
        breaks = true;
      }
      Notify();
    }
    if (drains) {
      // The entry before this batch's first is the last one "read": none of it was seen.
      context->AddTrailingMetadata(common::kLastReadIdTrailer,
                                   std::to_string(batch.entries(0).id() - 1));
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "logic is shutting down");
    }
    if (breaks) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "logic node going away");
    im::v1::EgressBatch answers;
    for (im::v1::Ingress& entry : *batch.mutable_entries()) {
      im::v1::Egress* answer = answers.add_entries();
      answer->set_id(entry.id());
      if (std::optional<im::v1::Frame> response = Serve(entry)) {
        *answer->mutable_response() = std::move(*response);
      }
    }
    stream->Write(answers);
  }
  return grpc::Status::OK;
}

std::optional<im::v1::Frame> FakeLogicService::Serve(im::v1::Ingress& entry) {
  const im::v1::Frame& request = entry.request();
  im::v1::Frame response;
  response.set_id(request.id());
  if (request.has_ack_req()) {
    std::lock_guard<std::mutex> lock(mutex_);
    im::v1::AckRequest ack;
    *ack.mutable_caller() = entry.caller();
    *ack.mutable_req() = request.ack_req();
    acks_.push_back(std::move(ack));
    Notify();
    return std::nullopt;
  }
  if (request.has_login_req()) {
    bool on_stream = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      on_stream = stream_logins_;
    }
    if (!on_stream) {  // as a logic node of an earlier version answers
      response.mutable_error()->set_code(im::v1::UNEXPECTED_FRAME);
      response.mutable_error()->set_message("the server does not accept this frame from a client");
      return response;
    }
    std::chrono::milliseconds delay;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      delay = login_delay_;
      ++logins_received_;
      login_conn_ids_received_.push_back(entry.caller().conn_id());
      Notify();
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    im::v1::LoginRequest login;
    *login.mutable_req() = request.login_req();
    login.set_gateway_id(entry.caller().gateway_id());
    login.set_conn_id(entry.caller().conn_id());
    login.set_remote_addr(entry.caller().remote_addr());
    *login.mutable_caller() = entry.caller();
    *response.mutable_login_resp() = ServeLogin(login).resp();
    return response;
  }
  if (request.has_group_create_req()) {
    std::lock_guard<std::mutex> lock(mutex_);
    response.mutable_group_create_resp()->mutable_status()->set_code(im::v1::OK);
    response.mutable_group_create_resp()->set_group_id(std::to_string(next_group_++));
    return response;
  }
  if (!request.has_send_req()) {
    response.mutable_error()->set_code(im::v1::UNIMPLEMENTED);
    response.mutable_error()->set_message("the fake serves sends, acks and group creates");
    return response;
  }
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    delay = send_delay_;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  std::lock_guard<std::mutex> lock(mutex_);
  im::v1::SendResp* reply = response.mutable_send_resp();
  reply->mutable_status()->set_code(im::v1::OK);
  reply->set_conv_id(request.send_req().conv_id());
  reply->set_client_msg_id(request.send_req().client_msg_id());
  reply->set_seq(next_seq_++);
  im::v1::SendRequest send;
  *send.mutable_caller() = entry.caller();
  *send.mutable_req() = request.send_req();
  sends_.push_back(std::move(send));
  Notify();
  return response;
}

void FakeLogicService::set_disconnect_many(bool served) {
  std::lock_guard<std::mutex> lock(mutex_);
  disconnect_many_ = served;
}

int FakeLogicService::disconnect_many_calls() {
  std::lock_guard<std::mutex> lock(mutex_);
  return disconnect_many_calls_;
}

void FakeLogicService::set_stream_logins(bool on_stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  stream_logins_ = on_stream;
}

int FakeLogicService::login_calls() {
  std::lock_guard<std::mutex> lock(mutex_);
  return login_calls_;
}

void FakeLogicService::set_send_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  send_delay_ = delay;
}

void FakeLogicService::set_reading(bool reading) {
  std::lock_guard<std::mutex> lock(mutex_);
  reading_ = reading;
  changed_.notify_all();
}

bool FakeLogicService::WaitUntilReading(grpc::ServerContext* context) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!reading_) {
    if (context->IsCancelled()) return false;
    changed_.wait_for(lock, std::chrono::milliseconds(50));
  }
  return true;
}

int FakeLogicService::logins_received() {
  std::lock_guard<std::mutex> lock(mutex_);
  return logins_received_;
}

std::vector<uint64_t> FakeLogicService::login_conn_ids_received() {
  return Copy(mutex_, login_conn_ids_received_);
}

void FakeLogicService::set_login_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  login_delay_ = delay;
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

void FakeLogicService::BreakStreamOnNextRequests(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  streams_to_break_ = count;
}

void FakeLogicService::DrainOnNextRequest() {
  std::lock_guard<std::mutex> lock(mutex_);
  drain_next_ = true;
}

int FakeLogicService::send_attempts() {
  std::lock_guard<std::mutex> lock(mutex_);
  return send_attempts_;
}

int FakeLogicService::group_create_attempts() {
  std::lock_guard<std::mutex> lock(mutex_);
  return group_create_attempts_;
}

int FakeLogicService::streams_opened() {
  std::lock_guard<std::mutex> lock(mutex_);
  return streams_opened_;
}

}  // namespace im::gateway::testing
