#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "sdk/client.h"

namespace im::e2e {

// An SDK listener that records everything the client reports, for tests to wait on and check.
// Callbacks arrive on the client's network thread; readers use the accessors from the test thread.
class SdkRecorder : public im::sdk::ClientListener {
 public:
  void OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status& reason) override;
  void OnMessages(const std::string& conv_id,
                  const std::vector<im::sdk::Message>& messages) override;
  void OnSendResult(const im::sdk::SendResult& result) override;
  void OnReadReceipt(const im::sdk::ReadReceipt& receipt) override;
  void OnTyping(const im::sdk::TypingNotice& notice) override;
  void OnPresence(const std::vector<im::sdk::Presence>& presences) override;

  // Waits until `done` holds (checked under the recorder's lock after every callback).
  bool WaitFor(const std::function<bool(const SdkRecorder&)>& done,
               std::chrono::milliseconds timeout);
  bool WaitConnected(std::chrono::milliseconds timeout);

  // Valid inside WaitFor's predicate, or when the client is destroyed or quiet. Delivered
  // messages without the system notices (type SYSTEM from @system: group changes), which tests
  // count apart.
  const std::vector<im::sdk::Message>& delivered(const std::string& conv_id) const;
  size_t notice_count(const std::string& conv_id) const;
  size_t delivered_count(const std::string& conv_id) const { return delivered(conv_id).size(); }
  // Every SendResult by client_msg_id, in arrival order per id (more than one is a defect).
  const std::map<std::string, std::vector<im::sdk::SendResult>>& send_results() const {
    return send_results_;
  }
  size_t sent_ok() const { return sent_ok_; }
  size_t send_failures() const { return send_failures_; }
  int connects() const { return connects_; }
  const std::vector<im::sdk::ReadReceipt>& read_receipts() const { return read_receipts_; }
  const std::vector<im::sdk::TypingNotice>& typing() const { return typing_; }
  const std::vector<im::sdk::Presence>& presences() const { return presences_; }
  im::sdk::ConnectionState state() const { return state_; }

  // Copies made under the lock, for use from the test thread at any time.
  std::vector<im::sdk::Message> DeliveredCopy(const std::string& conv_id);
  // Everything delivered, notices included, in delivery order.
  std::vector<im::sdk::Message> StreamCopy(const std::string& conv_id);
  size_t SentOkCopy();
  int ConnectsCopy();

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<im::sdk::Message>> delivered_;
  std::map<std::string, std::vector<im::sdk::Message>> notices_;
  std::map<std::string, std::vector<im::sdk::Message>> stream_;  // both, in delivery order
  std::map<std::string, std::vector<im::sdk::SendResult>> send_results_;
  size_t sent_ok_ = 0;
  size_t send_failures_ = 0;
  int connects_ = 0;
  std::vector<im::sdk::ReadReceipt> read_receipts_;
  std::vector<im::sdk::TypingNotice> typing_;
  std::vector<im::sdk::Presence> presences_;
  im::sdk::ConnectionState state_ = im::sdk::ConnectionState::kIdle;
};

// "127.0.0.1:<port>".
std::string Address(uint16_t port);
// The single chat of two uids, as the server names it.
std::string SingleChat(const std::string& a, const std::string& b);
// A client of `uid` (a token from ChatDeployment::Token) on `gateways`, in that order, that comes
// back quickly after a cut.
im::sdk::ClientOptions OptionsFor(const std::string& uid, const std::string& device,
                                  std::vector<std::string> gateways);
// Starts a client and waits until it is logged in.
bool StartAndWait(im::sdk::Client& client, SdkRecorder& seen);

// Checks a conversation as one device shows it: seqs first_seq, first_seq + 1, ... without
// a gap or a repeat. Returns a description of the first defect, empty when none.
std::string CheckContiguous(const std::vector<im::sdk::Message>& messages, uint64_t first_seq);

}  // namespace im::e2e
