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
#include "common/grpc_tls.h"
#include "common/in_flight_calls.h"
#include "im/v1/client.pb.h"
#include "im/v1/gateway.grpc.pb.h"
#include "logic/delivery/pusher.h"
#include "logic/logic_metrics.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::logic {

// Logic's side of GatewayService: the directory of live gateways (im:gw:<id> -> push address,
// kept in `directory` with a TTL the gateways renew) and one gRPC channel per gateway.
// Pushes to one gateway travel in batches on one long-lived GatewayService.PushStream, a few
// batches unanswered at a time: what is pushed while a batch is being written, or while the limit
// is reached, waits and leaves in the next batch, so a burst costs a few stream messages, not a
// call per message. The stream keeps the batches' order, so a connection gets its pushes in the
// order they were made. A gateway without PushStream (an older one, UNIMPLEMENTED) gets one Push
// call per batch instead; a stream that breaks fails its unanswered batches (their recipients
// catch up by Sync) and the next batch opens a new one.
// Kicks are pushes too (a Kick frame the gateway closes the connection after).
// Push and Kick are asynchronous: they return once the pushes are queued; replies arrive on gRPC
// threads, and follow-up store work (dropping sessions a gateway disowned) goes to `executor`.
// Push blocks on the directory only the first time it meets a gateway (later reads, every 2 s, or
// every 250 ms while a gateway is absent, go to the executor), so it may run on the send loop;
// the other methods are called on executor threads.
class GatewayPusher final : public Pusher {
 public:
  // `calls_per_gateway`: batches unanswered by one gateway at most, so that a big fan-out's
  // batches overlap (the gateway decodes one while its loops write another). On the stream their
  // order holds whatever the limit; on Push calls (older gateways) only 1 keeps it.
  GatewayPusher(store::TtlMap* directory, store::SessionRegistry* sessions,
                common::BoundedExecutor* executor, std::chrono::milliseconds rpc_timeout,
                std::chrono::milliseconds gateway_ttl, LogicMetrics* metrics,
                size_t calls_per_gateway = 4,
                common::GrpcCredentials credentials = common::GrpcCredentials());
  ~GatewayPusher() override;

  absl::Status RegisterGateway(const std::string& gateway_id,
                               const std::string& push_address) override;

  // Sends one serialized Frame (id 0) to every target. `done`, if given, runs once every call
  // carrying it has ended (delivered or failed), on a gRPC thread or, when there was nothing to
  // call, in Push itself. A gateway with `kMaxQueuedPushes` pushes waiting drops further ones
  // (counted; their recipients catch up by Sync); kicks are never dropped.
  void Push(std::shared_ptr<const std::string> frame, const std::vector<PushTarget>& targets,
            std::function<void()> done = {}) override;

  // Tells the target's gateway to send Kick{reason} and close the connection: a push with
  // close_after, so that the kicks made while a batch is in flight (a login batch's) leave
  // together in the next one, in order with the pushes.
  void Kick(const PushTarget& target, im::v1::Kick::Reason reason,
            const std::string& message) override;

  // Blocks until no call is in flight or `timeout` passed; returns whether idle. At shutdown, so
  // that no reply outlives the objects it uses.
  bool WaitIdle(std::chrono::milliseconds timeout) override;

 private:
  struct Batch;
  struct PushCall;
  struct Completion;
  struct QueuedPush;
  struct GatewayLane;
  struct Starts;
  class PushStream;

  static constexpr size_t kMaxQueuedPushes = 50'000;  // per gateway
  // Per Push call, about: big enough to carry a burst of small pushes, small enough that the
  // gateway starts writing a big fan-out's first pushes while later calls are still on the way.
  static constexpr size_t kMaxBatchBytes = 256 * 1024;

  // Push and Kick: queues `frame` for `targets` on their gateways' lanes and sends what it can.
  void Queue(std::shared_ptr<const std::string> frame, const std::vector<PushTarget>& targets,
             std::function<void()> done, bool kick);
  GatewayLane& LaneOf(const std::string& gateway_id);
  // With lane.mutex held: sends what `lane` has queued, when fewer than calls_per_gateway_
  // batches are unanswered: on the lane's stream (opened if none), or as a Push call to a
  // gateway without PushStream.
  // Returns the gRPC operations to start once the mutex is released.
  Starts SendQueuedLocked(GatewayLane& lane);
  // With lane.mutex held: takes the next batch off the queue (counted in flight).
  Batch TakeBatchLocked(GatewayLane& lane);
  // Sends `call`'s batch as one Push call (to a gateway without PushStream).
  void StartPushCall(PushCall* call);
  // A batch answered (or failed with `status`): drops the sessions the gateway disowned and
  // releases the pushes' completions. Without any lane's mutex.
  void Settle(const std::string& gateway_id, Batch batch, const grpc::Status& status,
              const im::v1::PushBatchReply& reply);

  // Stubs of the live gateways among `gateway_ids` (absent ones have no live registration).
  // Blocks on the directory only for a gateway never looked up; an expired address is used
  // while the executor reads it again.
  std::map<std::string, im::v1::GatewayService::Stub*> Resolve(
      const std::vector<std::string>& gateway_ids);
  // Reads the addresses of `gateway_ids` from the directory into the cache; returns what it read
  // (nothing when the directory failed).
  std::map<std::string, std::optional<std::string>> ReadAddresses(
      const std::vector<std::string>& gateway_ids);

  store::TtlMap* directory_;
  store::SessionRegistry* sessions_;
  common::BoundedExecutor* executor_;
  const std::chrono::milliseconds rpc_timeout_;
  const std::chrono::milliseconds gateway_ttl_;
  LogicMetrics* metrics_;
  const size_t calls_per_gateway_;
  const common::GrpcCredentials credentials_;  // of the channels to gateways

  // Push addresses by gateway id (nullopt: absent), read from the directory again every 2 s
  // (every 250 ms while absent), so that a push does not cost a directory lookup. A gateway that
  // died is pushed to (and fails fast) for about 2 s.
  struct CachedAddress {
    std::optional<std::string> address;
    std::chrono::steady_clock::time_point fetched;
    bool refreshing = false;  // a read of the directory is on its way
  };
  std::mutex addresses_mutex_;
  std::map<std::string, CachedAddress> addresses_;

  // Channels by push address. Entries are kept for the process's life: gateways are few, and a
  // restarted gateway usually comes back on the same address.
  std::mutex stubs_mutex_;
  std::map<std::string, std::unique_ptr<im::v1::GatewayService::Stub>> stubs_;

  std::mutex lanes_mutex_;
  std::map<std::string, std::unique_ptr<GatewayLane>> lanes_;  // by gateway id, kept for life

  common::InFlightCalls calls_;    // batches sent and not yet answered
  common::InFlightCalls streams_;  // open PushStreams
};

}  // namespace im::logic
