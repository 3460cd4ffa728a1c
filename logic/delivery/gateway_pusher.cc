#include "logic/delivery/gateway_pusher.h"

#include <algorithm>
#include <set>

#include "common/logging.h"

namespace im::logic {
namespace {

constexpr std::chrono::milliseconds kAddressCacheTime{2000};

}  // namespace

// Runs `done` when the last call holding it lets go.
struct GatewayPusher::Completion {
  std::function<void()> done;
  ~Completion() {
    if (done) done();
  }
};

struct GatewayPusher::QueuedPush {
  std::shared_ptr<const std::string> frame;
  std::vector<PushTarget> targets;  // all on the lane's gateway
  std::shared_ptr<Completion> completion;
};

// One gateway's pushes: those waiting for the call in flight to end, and where to call.
struct GatewayPusher::GatewayLane {
  std::mutex mutex;
  std::vector<QueuedPush> queued;                // guarded by mutex
  size_t calls_in_flight = 0;                    // guarded by mutex
  im::v1::GatewayService::Stub* stub = nullptr;  // guarded by mutex; the latest resolved
};

struct GatewayPusher::PushCall {
  grpc::ClientContext context;
  im::v1::PushBatchRequest request;
  im::v1::PushBatchReply reply;
  // As in the request: targets, to drop the sessions the gateway disowns; completions, to
  // release once the call ended.
  std::vector<QueuedPush> pushes;
  std::string gateway_id;
  GatewayLane* lane = nullptr;
};

struct GatewayPusher::KickCall {
  grpc::ClientContext context;
  im::v1::KickRequest request;
  im::v1::KickReply reply;
};

GatewayPusher::GatewayPusher(store::TtlMap* directory, store::SessionRegistry* sessions,
                             common::BoundedExecutor* executor,
                             std::chrono::milliseconds rpc_timeout,
                             std::chrono::milliseconds gateway_ttl, LogicMetrics* metrics,
                             size_t calls_per_gateway)
    : directory_(directory),
      sessions_(sessions),
      executor_(executor),
      rpc_timeout_(rpc_timeout),
      gateway_ttl_(gateway_ttl),
      metrics_(metrics),
      calls_per_gateway_(std::max<size_t>(1, calls_per_gateway)) {}

GatewayPusher::~GatewayPusher() { WaitIdle(rpc_timeout_ + std::chrono::seconds(1)); }

absl::Status GatewayPusher::RegisterGateway(const std::string& gateway_id,
                                            const std::string& push_address) {
  return directory_->Put(gateway_id, push_address, gateway_ttl_.count());
}

std::map<std::string, im::v1::GatewayService::Stub*> GatewayPusher::Resolve(
    const std::vector<std::string>& gateway_ids) {
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::optional<std::string>> addresses;
  std::vector<std::string> stale;
  {
    std::lock_guard<std::mutex> lock(addresses_mutex_);
    for (const std::string& id : gateway_ids) {
      auto it = addresses_.find(id);
      if (it != addresses_.end() && now - it->second.fetched < kAddressCacheTime) {
        addresses[id] = it->second.address;
      } else {
        stale.push_back(id);
      }
    }
  }
  if (!stale.empty()) {
    absl::StatusOr<std::vector<std::optional<std::string>>> fetched = directory_->Get(stale);
    if (!fetched.ok()) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "gateway directory lookup failed: {}",
                          fetched.status().ToString());
    } else {
      std::lock_guard<std::mutex> lock(addresses_mutex_);
      for (size_t i = 0; i < stale.size(); ++i) {
        addresses[stale[i]] = (*fetched)[i];
        // Only live addresses are kept: a gateway that registers is pushed to at once.
        if ((*fetched)[i]) {
          addresses_[stale[i]] = CachedAddress{(*fetched)[i], now};
        } else {
          addresses_.erase(stale[i]);
        }
      }
    }
  }
  std::map<std::string, im::v1::GatewayService::Stub*> stubs;
  std::lock_guard<std::mutex> lock(stubs_mutex_);
  for (const auto& [id, address] : addresses) {
    if (!address) continue;
    std::unique_ptr<im::v1::GatewayService::Stub>& stub = stubs_[*address];
    if (!stub) {
      stub = im::v1::GatewayService::NewStub(
          grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
    }
    stubs[id] = stub.get();
  }
  return stubs;
}

GatewayPusher::GatewayLane& GatewayPusher::LaneOf(const std::string& gateway_id) {
  std::lock_guard<std::mutex> lock(lanes_mutex_);
  std::unique_ptr<GatewayLane>& lane = lanes_[gateway_id];
  if (!lane) lane = std::make_unique<GatewayLane>();
  return *lane;
}

void GatewayPusher::Push(std::shared_ptr<const std::string> frame,
                         const std::vector<PushTarget>& targets, std::function<void()> done) {
  auto completion = std::make_shared<Completion>();
  completion->done = std::move(done);
  std::map<std::string, std::vector<PushTarget>> by_gateway;
  for (const PushTarget& target : targets) {
    by_gateway[target.session.gateway_id].push_back(target);
  }
  std::vector<std::string> gateway_ids;
  for (const auto& [gateway_id, unused] : by_gateway) gateway_ids.push_back(gateway_id);
  const std::map<std::string, im::v1::GatewayService::Stub*> stubs = Resolve(gateway_ids);
  for (auto& [gateway_id, gateway_targets] : by_gateway) {
    auto stub = stubs.find(gateway_id);
    if (stub == stubs.end()) {
      // Its registration lapsed: it died, and its sessions will expire too.
      metrics_->push_unknown_gateway.Increment(static_cast<double>(gateway_targets.size()));
      continue;
    }
    metrics_->push_connections.Increment(static_cast<double>(gateway_targets.size()));
    GatewayLane& lane = LaneOf(gateway_id);
    std::lock_guard<std::mutex> lock(lane.mutex);
    lane.stub = stub->second;
    if (lane.queued.size() >= kMaxQueuedPushes) {
      metrics_->push_dropped.Increment(static_cast<double>(gateway_targets.size()));
      IM_LOG_RATE_LIMITED(spdlog::level::warn,
                          "gateway {} is {} pushes behind: push dropped (recipients sync)",
                          gateway_id, lane.queued.size());
      continue;
    }
    lane.queued.push_back(QueuedPush{frame, std::move(gateway_targets), completion});
    if (lane.calls_in_flight < calls_per_gateway_) StartBatchLocked(gateway_id, lane);
  }
}

void GatewayPusher::StartBatchLocked(const std::string& gateway_id, GatewayLane& lane) {
  auto* call = new PushCall;
  call->gateway_id = gateway_id;
  call->lane = &lane;
  call->context.set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
  size_t bytes = 0, taken = 0;
  for (; taken < lane.queued.size() && (taken == 0 || bytes < kMaxBatchBytes); ++taken) {
    QueuedPush& queued = lane.queued[taken];
    im::v1::PushRequest* push = call->request.add_pushes();
    push->set_frame(*queued.frame);
    for (const PushTarget& target : queued.targets) push->add_conn_ids(target.session.conn_id);
    bytes += queued.frame->size() + 9 * queued.targets.size();
    call->pushes.push_back(std::move(queued));
  }
  lane.queued.erase(lane.queued.begin(), lane.queued.begin() + static_cast<std::ptrdiff_t>(taken));
  lane.calls_in_flight++;
  metrics_->push_batch_size.Observe(static_cast<double>(taken));
  calls_.Started();
  lane.stub->async()->Push(&call->context, &call->request, &call->reply,
                           [this, call](grpc::Status status) { OnPushDone(call, status); });
}

void GatewayPusher::OnPushDone(PushCall* call, const grpc::Status& status) {
  std::unique_ptr<PushCall> owned(call);
  if (!status.ok()) {
    metrics_->push_rpcs_failed.Increment();
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "push to gateway {} failed: {} {}", call->gateway_id,
                        static_cast<int>(status.error_code()), status.error_message());
  } else {
    metrics_->push_rpcs_ok.Increment();
  }
  std::vector<PushTarget> disowned;
  const int answered = std::min(call->reply.replies_size(), static_cast<int>(call->pushes.size()));
  for (int i = 0; i < answered; ++i) {
    const im::v1::PushReply& reply = call->reply.replies(i);
    if (reply.unknown_conn_ids().empty()) continue;
    const std::set<uint64_t> unknown(reply.unknown_conn_ids().begin(),
                                     reply.unknown_conn_ids().end());
    for (PushTarget& target : call->pushes[i].targets) {
      if (unknown.count(target.session.conn_id) > 0) disowned.push_back(std::move(target));
    }
  }
  call->pushes.clear();  // releases the completions: the senders may go on
  if (!disowned.empty()) {
    // The gateway no longer holds these connections: drop their sessions now rather than pushing
    // into the void until they expire. Best effort; expiry removes them anyway.
    executor_->TrySubmit([this, disowned = std::move(disowned)] {
      for (const PushTarget& target : disowned) {
        absl::StatusOr<bool> removed = sessions_->Unregister(
            target.uid, target.session.device, target.session.gateway_id, target.session.conn_id);
        if (removed.ok() && *removed) metrics_->push_stale_sessions.Increment();
      }
    });
  }
  {
    GatewayLane& lane = *call->lane;
    std::lock_guard<std::mutex> lock(lane.mutex);
    lane.calls_in_flight--;
    // The next batch leaves from here: what was pushed while the calls were in flight.
    if (!lane.queued.empty()) StartBatchLocked(call->gateway_id, lane);
  }
  calls_.Finished();
}

void GatewayPusher::Kick(const PushTarget& target, im::v1::Kick::Reason reason,
                         const std::string& message) {
  const auto stubs = Resolve({target.session.gateway_id});
  auto stub = stubs.find(target.session.gateway_id);
  if (stub == stubs.end()) return;  // that gateway is gone, and the connection with it
  auto* call = new KickCall;
  call->context.set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
  call->request.set_conn_id(target.session.conn_id);
  call->request.set_reason(reason);
  call->request.set_message(message);
  metrics_->kicks.Increment();
  calls_.Started();
  stub->second->async()->Kick(
      &call->context, &call->request, &call->reply, [this, call](grpc::Status status) {
        std::unique_ptr<KickCall> owned(call);
        if (!status.ok()) {
          IM_LOG_RATE_LIMITED(spdlog::level::warn, "kick failed: {} {}",
                              static_cast<int>(status.error_code()), status.error_message());
        }
        calls_.Finished();
      });
}

bool GatewayPusher::WaitIdle(std::chrono::milliseconds timeout) { return calls_.WaitIdle(timeout); }

}  // namespace im::logic
