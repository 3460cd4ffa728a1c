#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/bounded_executor.h"
#include "common/in_flight_calls.h"
#include "im/v1/client.pb.h"
#include "im/v1/gateway.grpc.pb.h"
#include "logic/logic_metrics.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::logic {

// A device to push to: the user and where their session says the device is connected.
struct PushTarget {
  std::string uid;
  store::Session session;
};

// Logic's side of GatewayService: the directory of live gateways (im:gw:<id> -> push address,
// kept in `directory` with a TTL the gateways renew) and one gRPC channel per gateway.
// Pushes to one gateway travel in batches, one Push call in flight per gateway: what is pushed
// while a call is in flight waits and leaves in the next call, so pushes reach a gateway (and a
// connection) in the order they were made, and a burst costs one call, not one per message.
// Push and Kick are asynchronous: they return once the pushes are queued; replies arrive on gRPC
// threads, and follow-up store work (dropping sessions a gateway disowned) goes to `executor`.
// Methods may block on the directory, so they are called on executor threads.
class GatewayPusher {
 public:
  GatewayPusher(store::TtlMap* directory, store::SessionRegistry* sessions,
                common::BoundedExecutor* executor, std::chrono::milliseconds rpc_timeout,
                std::chrono::milliseconds gateway_ttl, LogicMetrics* metrics);
  ~GatewayPusher();

  absl::Status RegisterGateway(const std::string& gateway_id, const std::string& push_address);

  // Sends one serialized Frame (id 0) to every target. `done`, if given, runs once every call
  // carrying it has ended (delivered or failed), on a gRPC thread or, when there was nothing to
  // call, in Push itself. A gateway with `kMaxQueuedPushes` pushes waiting drops further ones
  // (counted; their recipients catch up by Sync).
  void Push(std::shared_ptr<const std::string> frame, const std::vector<PushTarget>& targets,
            std::function<void()> done = {});

  // Tells the target's gateway to send Kick{reason} and close the connection.
  void Kick(const PushTarget& target, im::v1::Kick::Reason reason, const std::string& message);

  // Blocks until no call is in flight or `timeout` passed; returns whether idle. At shutdown, so
  // that no reply outlives the objects it uses.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  struct PushCall;
  struct Completion;
  struct KickCall;
  struct QueuedPush;
  struct GatewayLane;

  static constexpr size_t kMaxQueuedPushes = 50'000;         // per gateway
  static constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;  // per Push call, about

  GatewayLane& LaneOf(const std::string& gateway_id);
  // Starts a call with what `lane` has queued; with lane->mutex held, which it leaves held.
  void StartBatchLocked(const std::string& gateway_id, GatewayLane& lane);

  // Stubs of the live gateways among `gateway_ids` (absent ones have no live registration).
  std::map<std::string, im::v1::GatewayService::Stub*> Resolve(
      const std::vector<std::string>& gateway_ids);
  void OnPushDone(PushCall* call, const grpc::Status& status);

  store::TtlMap* directory_;
  store::SessionRegistry* sessions_;
  common::BoundedExecutor* executor_;
  const std::chrono::milliseconds rpc_timeout_;
  const std::chrono::milliseconds gateway_ttl_;
  LogicMetrics* metrics_;

  // Push addresses by gateway id, read from the directory at most every 2 s, so that a
  // push does not cost a directory lookup. A gateway that died is pushed to (and fails fast) for
  // at most that long.
  struct CachedAddress {
    std::optional<std::string> address;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex addresses_mutex_;
  std::map<std::string, CachedAddress> addresses_;

  // Channels by push address. Entries are kept for the process's life: gateways are few, and a
  // restarted gateway usually comes back on the same address.
  std::mutex stubs_mutex_;
  std::map<std::string, std::unique_ptr<im::v1::GatewayService::Stub>> stubs_;

  std::mutex lanes_mutex_;
  std::map<std::string, std::unique_ptr<GatewayLane>> lanes_;  // by gateway id, kept for life

  common::InFlightCalls calls_;
};

}  // namespace im::logic
