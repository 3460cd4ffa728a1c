#include "tests/e2e/sdk_recorder.h"

#include <algorithm>
#include <string>
#include <vector>

#include "tests/e2e/chat_deployment.h"

namespace im::e2e {

std::string Address(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

std::string SingleChat(const std::string& a, const std::string& b) {
  return "s:" + std::min(a, b) + ":" + std::max(a, b);
}

im::sdk::ClientOptions OptionsFor(const std::string& uid, const std::string& device,
                                  std::vector<std::string> gateways) {
  im::sdk::ClientOptions options;
  options.gateways = std::move(gateways);
  options.token = ChatDeployment::Token(uid);
  options.device = device;
  options.start_at_random_gateway = false;
  // Tests cut connections every second: come back quickly.
  options.reconnect_initial_ms = 50;
  options.reconnect_max_ms = 1000;
  return options;
}

bool StartAndWait(im::sdk::Client& client, SdkRecorder& seen) {
  client.Start();
  return seen.WaitConnected(std::chrono::seconds(15));
}

void SdkRecorder::OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status&) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = state;
  if (state == im::sdk::ConnectionState::kConnected) ++connects_;
  changed_.notify_all();
}

void SdkRecorder::OnMessages(const std::string& conv_id,
                             const std::vector<im::sdk::Message>& messages) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const im::sdk::Message& message : messages) {
    const bool notice = message.type == im::sdk::kMessageSystem && message.sender == "@system";
    (notice ? notices_ : delivered_)[conv_id].push_back(message);
    stream_[conv_id].push_back(message);
  }
  changed_.notify_all();
}

std::vector<im::sdk::Message> SdkRecorder::StreamCopy(const std::string& conv_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = stream_.find(conv_id);
  return found == stream_.end() ? std::vector<im::sdk::Message>{} : found->second;
}

size_t SdkRecorder::notice_count(const std::string& conv_id) const {
  const auto found = notices_.find(conv_id);
  return found == notices_.end() ? 0 : found->second.size();
}

void SdkRecorder::OnSendResult(const im::sdk::SendResult& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  send_results_[result.client_msg_id].push_back(result);
  if (result.status.ok()) {
    ++sent_ok_;
  } else {
    ++send_failures_;
  }
  changed_.notify_all();
}

void SdkRecorder::OnReadReceipt(const im::sdk::ReadReceipt& receipt) {
  std::lock_guard<std::mutex> lock(mutex_);
  read_receipts_.push_back(receipt);
  changed_.notify_all();
}

void SdkRecorder::OnTyping(const im::sdk::TypingNotice& notice) {
  std::lock_guard<std::mutex> lock(mutex_);
  typing_.push_back(notice);
  changed_.notify_all();
}

void SdkRecorder::OnPresence(const std::vector<im::sdk::Presence>& presences) {
  std::lock_guard<std::mutex> lock(mutex_);
  presences_.insert(presences_.end(), presences.begin(), presences.end());
  changed_.notify_all();
}

bool SdkRecorder::WaitFor(const std::function<bool(const SdkRecorder&)>& done,
                          std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return done(*this); });
}

bool SdkRecorder::WaitConnected(std::chrono::milliseconds timeout) {
  return WaitFor(
      [](const SdkRecorder& r) { return r.state_ == im::sdk::ConnectionState::kConnected; },
      timeout);
}

const std::vector<im::sdk::Message>& SdkRecorder::delivered(const std::string& conv_id) const {
  static const std::vector<im::sdk::Message> kNone;
  auto it = delivered_.find(conv_id);
  return it == delivered_.end() ? kNone : it->second;
}

std::vector<im::sdk::Message> SdkRecorder::DeliveredCopy(const std::string& conv_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return delivered(conv_id);
}

size_t SdkRecorder::SentOkCopy() {
  std::lock_guard<std::mutex> lock(mutex_);
  return sent_ok_;
}

int SdkRecorder::ConnectsCopy() {
  std::lock_guard<std::mutex> lock(mutex_);
  return connects_;
}

std::string CheckContiguous(const std::vector<im::sdk::Message>& messages, uint64_t first_seq) {
  uint64_t expected = first_seq;
  for (const im::sdk::Message& message : messages) {
    if (message.seq != expected) {
      return "expected seq " + std::to_string(expected) + ", got " + std::to_string(message.seq);
    }
    ++expected;
  }
  return "";
}

}  // namespace im::e2e
