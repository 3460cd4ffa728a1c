#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "im/v1/client.pb.h"
#include "store/session_registry.h"

namespace im::logic {

// A device to push to: the user and where their session says the device is connected.
struct PushTarget {
  std::string uid;
  store::Session session;
};

// How logic hands frames to the gateways holding its users' connections: GatewayPusher over gRPC
// in a cluster, InProcessPusher to the gateway of the same process in the embedded node. Pushes
// made one after another reach a connection in that order. Thread-safe; Push and Kick return once
// the pushes are queued.
// A push frame serialized once, to be shared by every push of it.
inline std::shared_ptr<const std::string> SerializePush(const im::v1::Frame& frame) {
  return std::make_shared<const std::string>(frame.SerializeAsString());
}

// The frame of a Kick: a push the gateway closes the connection after.
inline std::shared_ptr<const std::string> SerializedKick(im::v1::Kick::Reason reason,
                                                         const std::string& message) {
  im::v1::Frame frame;
  frame.mutable_kick()->set_reason(reason);
  frame.mutable_kick()->set_message(message);
  return SerializePush(frame);
}

class Pusher {
 public:
  virtual ~Pusher() = default;

  // A gateway says where it takes pushes; renewed by the gateway before it lapses.
  virtual absl::Status RegisterGateway(const std::string& gateway_id,
                                       const std::string& push_address) = 0;

  // Sends one serialized Frame (id 0) to every target. `done`, if given, runs once every push of
  // it has ended (delivered or failed), on any thread, or in Push itself when there was nothing to
  // do. A push that cannot be delivered is dropped (its recipients catch up by Sync).
  virtual void Push(std::shared_ptr<const std::string> frame,
                    const std::vector<PushTarget>& targets, std::function<void()> done = {}) = 0;

  // Tells the target's gateway to send Kick{reason} and close the connection, in order with the
  // pushes to it; never dropped for load.
  virtual void Kick(const PushTarget& target, im::v1::Kick::Reason reason,
                    const std::string& message) = 0;

  // Blocks until no push is in flight or `timeout` passed; returns whether idle. At shutdown, so
  // that no reply outlives the objects it uses.
  virtual bool WaitIdle(std::chrono::milliseconds timeout) = 0;
};

}  // namespace im::logic
