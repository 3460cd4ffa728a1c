#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/frame_codec.h"
#include "im/v1/client.pb.h"

namespace im::sdk {

// A gateway for loop tests of the SDK: it listens on 127.0.0.1 (port 0), takes the client's
// connections one at a time and logs each in as `uid`, and answers what a gateway of a user
// without conversations answers without the test (Ping, ConversationsReq). The test reads the
// client's other frames and writes answers and pushes. Blocking calls with timeouts, for the test
// thread only; the client runs on its own thread.
class FakeGateway {
 public:
  using Millis = std::chrono::milliseconds;
  using FrameMatch = std::function<bool(const im::v1::Frame&)>;

  static absl::StatusOr<std::unique_ptr<FakeGateway>> Start(std::string uid);
  // Matches the frames whose body is `body`.
  static FrameMatch Is(im::v1::Frame::BodyCase body);
  ~FakeGateway();
  FakeGateway(const FakeGateway&) = delete;
  FakeGateway& operator=(const FakeGateway&) = delete;

  // "127.0.0.1:<port>", for ClientOptions::gateways.
  std::string address() const;
  // Waits for the client's next connection and its LoginReq, and answers it OK (the connection
  // before, if any, is closed). False on timeout.
  bool AcceptLogin(Millis timeout);
  // The client's next frame that `match` accepts; the frames before it are answered as said
  // above or dropped. nullopt on timeout or when the client closed the connection.
  std::optional<im::v1::Frame> Receive(const FrameMatch& match, Millis timeout);
  bool Send(const im::v1::Frame& frame);
  // Closes the client's connection (it reconnects).
  void Disconnect();

 private:
  FakeGateway(int listen_fd, uint16_t port, std::string uid)
      : listen_fd_(listen_fd), port_(port), uid_(std::move(uid)) {}
  // Reads what arrives within `timeout` into the queue; false on timeout or a closed connection.
  bool Pump(Millis timeout);
  // Answers a frame the test does not see when it is a ping or the conversation list.
  void AnswerRoutine(const im::v1::Frame& frame);

  int listen_fd_;
  uint16_t port_;
  std::string uid_;
  int fd_ = -1;  // the client's connection; -1: none
  std::unique_ptr<common::FrameDecoder> decoder_;
  std::deque<im::v1::Frame> queue_;
};

}  // namespace im::sdk
