// The C++ example of sdk/README.md: log in, send one message to a peer, print what arrives until
// the peer replies. Usage: im_sdk_example_cpp <gateway host:port> <token> <peer uid>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "sdk/client.h"

namespace {

class Printer : public im::sdk::ClientListener {
 public:
  explicit Printer(std::string peer) : peer_(std::move(peer)) {}

  void OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status& reason) override {
    std::printf("state %s %s\n", im::sdk::ConnectionStateName(state), reason.message.c_str());
  }
  void OnMessages(const std::string& conv_id,
                  const std::vector<im::sdk::Message>& messages) override {
    for (const im::sdk::Message& message : messages) {
      std::printf("%s #%llu %s: %s\n", conv_id.c_str(),
                  static_cast<unsigned long long>(message.seq), message.sender.c_str(),
                  message.body.c_str());
      if (message.sender == peer_) Finish(true);
    }
  }
  void OnSendResult(const im::sdk::SendResult& result) override {
    std::printf("sent %s -> %s #%llu (code %d)\n", result.client_msg_id.c_str(),
                result.conv_id.c_str(), static_cast<unsigned long long>(result.seq),
                result.status.code);
    if (!result.status.ok()) Finish(false);
  }

  bool Wait(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait_for(lock, timeout, [this] { return finished_; });
    return finished_ && ok_;
  }

 private:
  void Finish(bool ok) {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    ok_ = ok;
    done_.notify_all();
  }

  std::string peer_;
  std::mutex mutex_;
  std::condition_variable done_;
  bool finished_ = false;
  bool ok_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <gateway host:port> <token> <peer uid>\n", argv[0]);
    return 2;
  }
  im::sdk::ClientOptions options;
  options.gateways = {argv[1]};
  options.token = argv[2];
  options.device = "cpp-example";
  Printer printer(argv[3]);
  im::sdk::Client client(options, &printer);  // state in memory; pass a SqliteStateStore to keep it
  client.Start();
  client.SendTo(argv[3], "hello from C++");
  const bool ok = printer.Wait(std::chrono::seconds(30));
  std::printf("%s\n", ok ? "done" : "failed");
  return ok ? 0 : 1;
}
