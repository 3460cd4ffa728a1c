#include "logic/delivery/gateway_pusher.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <optional>
#include <set>

#include "common/logging.h"
#include "common/status_macros.h"

namespace im::logic {
namespace {

constexpr std::chrono::milliseconds kAddressCacheTime{2000};
// How long a gateway found absent from the directory (dead, its sessions not yet expired) is taken
// as absent: pushes to its stale sessions then cost no directory read each (Push may run on the
// send loop), and a gateway that comes back with the same id is pushed to soon after it registers.
constexpr std::chrono::milliseconds kAbsentCacheTime{250};

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
  bool kick = false;  // the frame is a Kick: the gateway closes the connections after it
};

// Pushes for one gateway taken from its lane's queue, as sent in one request.
struct GatewayPusher::Batch {
  im::v1::PushBatchRequest request;
  // As in the request: targets, to drop the sessions the gateway disowns; completions, to
  // release once the batch was answered or failed.
  std::vector<QueuedPush> pushes;
  std::chrono::steady_clock::time_point sent;
};

// One gateway's pushes: those waiting for a batch in flight to be answered, and where to send.
struct GatewayPusher::GatewayLane {
  std::string gateway_id;
  std::mutex mutex;
  std::vector<QueuedPush> queued;                // guarded by mutex
  size_t batches_in_flight = 0;                  // guarded by mutex; sent, not yet answered
  im::v1::GatewayService::Stub* stub = nullptr;  // guarded by mutex; the latest resolved
  PushStream* stream = nullptr;                  // guarded by mutex; the open stream, if any
  bool unary_only = false;     // guarded by mutex; the gateway has no PushStream (an older one)
  uint64_t next_batch_id = 1;  // guarded by mutex
};

// A batch sent as one unary Push call (to a gateway without PushStream).
struct GatewayPusher::PushCall {
  grpc::ClientContext context;
  im::v1::PushBatchReply reply;
  Batch batch;
  GatewayLane* lane = nullptr;
};

// gRPC operations decided under a lane's mutex and started once it is released: gRPC may run a
// reaction inline in the thread that starts an operation, and the reactions take that mutex.
struct GatewayPusher::Starts {
  PushStream* open = nullptr;  // a stream to begin
  PushStream* write_on = nullptr;
  const im::v1::PushBatchRequest* write = nullptr;  // held by write_on until answered
  PushCall* call = nullptr;                         // a Push call to start
  PushStream* cancel = nullptr;                     // with a hold taken for the cancel
  PushStream* release = nullptr;                    // its reads and writes are over

  void Run(GatewayPusher* pusher);
};

// Logic's end of one GatewayService.PushStream: batches written one at a time in lane order,
// each answered by its id (answers may cross). A hold keeps gRPC from finishing the call (OnDone)
// until its reads ended and no write is in flight, so that the lane never writes to a call gRPC is
// done with; it deletes itself in OnDone. Fields are guarded by the lane's mutex.
class GatewayPusher::PushStream final
    : public grpc::ClientBidiReactor<im::v1::PushBatchRequest, im::v1::PushBatchReply> {
 public:
  PushStream(GatewayPusher* pusher, GatewayLane* lane, im::v1::GatewayService::Stub* stub)
      : pusher_(pusher), lane_(lane), stub_(stub) {}

  // Once, without the lane's mutex, before any other operation of the creating thread.
  void Begin() {
    stub_->async()->PushStream(&context_, this);
    AddHold();
    StartRead(&reply_);
    StartCall();
  }

  bool writing() const { return writing_; }

  // With the lane's mutex held and no write in flight; the caller starts the write (Starts).
  void QueueWriteLocked(Batch batch, Starts* starts) {
    unanswered_.push_back(std::make_unique<Batch>(std::move(batch)));
    writing_ = true;
    starts->write_on = this;
    starts->write = &unanswered_.back()->request;
  }

  // With the lane's mutex held: cancels (through `starts`) when the oldest unanswered batch
  // waited longer than `limit`.
  void CancelIfStuckLocked(std::chrono::milliseconds limit, Starts* starts) {
    if (!unanswered_.empty() &&
        std::chrono::steady_clock::now() - unanswered_.front()->sent > limit) {
      CancelLocked(starts);
    }
  }
  // With the lane's mutex held: cancels (through `starts`) unless its reads ended already.
  void CancelLocked(Starts* starts) {
    if (reads_ended_ || cancelling_) return;
    cancelling_ = true;
    AddHold();  // keeps the call (and this object) until the cancel was made
    starts->cancel = this;
  }
  void CancelNow() {
    context_.TryCancel();
    RemoveHold();
  }

  void OnWriteDone(bool ok) override {
    Starts starts;
    {
      std::lock_guard<std::mutex> lock(lane_->mutex);
      writing_ = false;
      if (reads_ended_) {
        starts.release = this;
      } else if (ok && lane_->stream == this) {
        // A failed write is followed by the failed read, which ends the stream.
        starts = pusher_->SendQueuedLocked(*lane_);
      }
    }
    starts.Run(pusher_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Starts starts;
      {
        std::lock_guard<std::mutex> lock(lane_->mutex);
        reads_ended_ = true;
        if (lane_->stream == this) lane_->stream = nullptr;  // the next batch opens another
        if (!writing_) starts.release = this;                // else once the write is done
      }
      return starts.Run(pusher_);
    }
    std::unique_ptr<Batch> answered;
    Starts starts;
    {
      std::lock_guard<std::mutex> lock(lane_->mutex);
      // Usually the oldest: a gateway answers a batch once every loop has taken its share, so
      // two batches' answers may cross.
      auto it = std::find_if(unanswered_.begin(), unanswered_.end(),
                             [&](const auto& batch) { return batch->request.id() == reply_.id(); });
      if (it != unanswered_.end()) {
        answered = std::move(*it);
        unanswered_.erase(it);
        lane_->batches_in_flight--;
        if (lane_->stream == this && !writing_) starts = pusher_->SendQueuedLocked(*lane_);
      }
    }
    starts.Run(pusher_);
    if (answered) {
      pusher_->Settle(lane_->gateway_id, std::move(*answered), grpc::Status::OK, reply_);
    } else {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "gateway {} answered push batch {}, not sent",
                          lane_->gateway_id, reply_.id());
    }
    StartRead(&reply_);
  }

  void OnDone(const grpc::Status& status) override {
    std::deque<std::unique_ptr<Batch>> failed;
    Starts starts;
    {
      std::lock_guard<std::mutex> lock(lane_->mutex);
      if (lane_->stream == this) lane_->stream = nullptr;
      lane_->batches_in_flight -= unanswered_.size();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        // An older gateway: what it did not take goes again, one Push call per batch.
        spdlog::info("gateway {} has no PushStream: pushing with one Push call per batch",
                     lane_->gateway_id);
        lane_->unary_only = true;
        for (auto batch = unanswered_.rbegin(); batch != unanswered_.rend(); ++batch) {
          lane_->queued.insert(lane_->queued.begin(),
                               std::make_move_iterator((*batch)->pushes.begin()),
                               std::make_move_iterator((*batch)->pushes.end()));
          pusher_->calls_.Finished();
        }
      } else {
        failed.swap(unanswered_);
      }
      starts = pusher_->SendQueuedLocked(*lane_);
    }
    starts.Run(pusher_);
    for (std::unique_ptr<Batch>& batch : failed) {
      pusher_->Settle(lane_->gateway_id, std::move(*batch), status, im::v1::PushBatchReply());
    }
    GatewayPusher* pusher = pusher_;
    delete this;
    pusher->streams_.Finished();
  }

 private:
  GatewayPusher* pusher_;
  GatewayLane* lane_;
  im::v1::GatewayService::Stub* stub_;
  grpc::ClientContext context_;
  im::v1::PushBatchReply reply_;
  // Written or being written, in order; by pointer, so that the one being written stays put
  // while others are answered.
  std::deque<std::unique_ptr<Batch>> unanswered_;
  bool writing_ = false;
  bool reads_ended_ = false;
  bool cancelling_ = false;
};

void GatewayPusher::Starts::Run(GatewayPusher* pusher) {
  if (open != nullptr) open->Begin();
  if (write_on != nullptr) write_on->StartWrite(write);
  if (call != nullptr) pusher->StartPushCall(call);
  if (cancel != nullptr) cancel->CancelNow();
  if (release != nullptr) release->RemoveHold();
}

GatewayPusher::GatewayPusher(store::TtlMap* directory, store::SessionRegistry* sessions,
                             common::BoundedExecutor* executor,
                             std::chrono::milliseconds rpc_timeout,
                             std::chrono::milliseconds gateway_ttl, LogicMetrics* metrics,
                             size_t calls_per_gateway, common::GrpcCredentials credentials)
    : directory_(directory),
      sessions_(sessions),
      executor_(executor),
      rpc_timeout_(rpc_timeout),
      gateway_ttl_(gateway_ttl),
      metrics_(metrics),
      calls_per_gateway_(std::max<size_t>(1, calls_per_gateway)),
      credentials_(std::move(credentials)) {}

GatewayPusher::~GatewayPusher() {
  WaitIdle(rpc_timeout_ + std::chrono::seconds(1));
  // Then the streams themselves: cancelled, and waited for, so that none outlives the pusher.
  {
    std::lock_guard<std::mutex> lanes_lock(lanes_mutex_);
    for (auto& [id, lane] : lanes_) {
      Starts starts;
      {
        std::lock_guard<std::mutex> lock(lane->mutex);
        if (lane->stream != nullptr) lane->stream->CancelLocked(&starts);
      }
      starts.Run(this);
    }
  }
  streams_.WaitIdle(rpc_timeout_ + std::chrono::seconds(1));
}

absl::Status GatewayPusher::RegisterGateway(const std::string& gateway_id,
                                            const std::string& push_address) {
  IM_RETURN_IF_ERROR(directory_->Put(gateway_id, push_address, gateway_ttl_.count()));
  // Known here at once (another node learns it from the directory, within kAbsentCacheTime).
  std::lock_guard<std::mutex> lock(addresses_mutex_);
  addresses_[gateway_id] = CachedAddress{push_address, std::chrono::steady_clock::now()};
  return absl::OkStatus();
}

std::map<std::string, im::v1::GatewayService::Stub*> GatewayPusher::Resolve(
    const std::vector<std::string>& gateway_ids) {
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::optional<std::string>> addresses;
  std::vector<std::string> unknown;  // never read: read now
  std::vector<std::string> expired;  // read a while ago: used, and read again on the executor
  {
    std::lock_guard<std::mutex> lock(addresses_mutex_);
    for (const std::string& id : gateway_ids) {
      auto it = addresses_.find(id);
      if (it == addresses_.end()) {
        unknown.push_back(id);
        continue;
      }
      CachedAddress& cached = it->second;
      addresses[id] = cached.address;
      const auto keep = cached.address ? kAddressCacheTime : kAbsentCacheTime;
      if (now - cached.fetched >= keep && !cached.refreshing) {
        cached.refreshing = true;
        expired.push_back(id);
      }
    }
  }
  if (!unknown.empty()) {
    for (auto& [id, address] : ReadAddresses(unknown)) addresses[id] = std::move(address);
  }
  // Push may run on the send loop, which must not wait for the directory on every expiry.
  if (!expired.empty() && !executor_->TrySubmit([this, expired] { ReadAddresses(expired); })) {
    std::lock_guard<std::mutex> lock(addresses_mutex_);
    for (const std::string& id : expired) addresses_[id].refreshing = false;  // next push tries
  }
  std::map<std::string, im::v1::GatewayService::Stub*> stubs;
  std::lock_guard<std::mutex> lock(stubs_mutex_);
  for (const auto& [id, address] : addresses) {
    if (!address) continue;
    std::unique_ptr<im::v1::GatewayService::Stub>& stub = stubs_[*address];
    if (!stub) {
      stub = im::v1::GatewayService::NewStub(credentials_.Channel(*address));
    }
    stubs[id] = stub.get();
  }
  return stubs;
}

std::map<std::string, std::optional<std::string>> GatewayPusher::ReadAddresses(
    const std::vector<std::string>& gateway_ids) {
  std::map<std::string, std::optional<std::string>> read;
  absl::StatusOr<std::vector<std::optional<std::string>>> fetched = directory_->Get(gateway_ids);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(addresses_mutex_);
  if (!fetched.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "gateway directory lookup failed: {}",
                        fetched.status().ToString());
    // What was known stays in use; the next push after the expiry reads again.
    for (const std::string& id : gateway_ids) {
      if (auto it = addresses_.find(id); it != addresses_.end()) it->second.refreshing = false;
    }
    return read;
  }
  for (size_t i = 0; i < gateway_ids.size(); ++i) {
    read[gateway_ids[i]] = (*fetched)[i];
    addresses_[gateway_ids[i]] = CachedAddress{(*fetched)[i], now};
  }
  return read;
}

GatewayPusher::GatewayLane& GatewayPusher::LaneOf(const std::string& gateway_id) {
  std::lock_guard<std::mutex> lock(lanes_mutex_);
  std::unique_ptr<GatewayLane>& lane = lanes_[gateway_id];
  if (!lane) {
    lane = std::make_unique<GatewayLane>();
    lane->gateway_id = gateway_id;
  }
  return *lane;
}

void GatewayPusher::Push(std::shared_ptr<const std::string> frame,
                         const std::vector<PushTarget>& targets, std::function<void()> done) {
  Queue(std::move(frame), targets, std::move(done), /*kick=*/false);
}

void GatewayPusher::Kick(const PushTarget& target, im::v1::Kick::Reason reason,
                         const std::string& message) {
  Queue(SerializedKick(reason, message), {target}, {}, /*kick=*/true);
}

void GatewayPusher::Queue(std::shared_ptr<const std::string> frame,
                          const std::vector<PushTarget>& targets, std::function<void()> done,
                          bool kick) {
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
    (kick ? metrics_->kicks : metrics_->push_connections)
        .Increment(static_cast<double>(gateway_targets.size()));
    GatewayLane& lane = LaneOf(gateway_id);
    Starts starts;
    {
      std::lock_guard<std::mutex> lock(lane.mutex);
      lane.stub = stub->second;
      // A dropped push is caught up by Sync; a dropped kick would leave the old connection open,
      // so kicks (as few as the logins that make them) pass the cap, as their unary calls did.
      if (!kick && lane.queued.size() >= kMaxQueuedPushes) {
        metrics_->push_dropped.Increment(static_cast<double>(gateway_targets.size()));
        IM_LOG_RATE_LIMITED(spdlog::level::warn,
                            "gateway {} is {} pushes behind: push dropped (recipients sync)",
                            gateway_id, lane.queued.size());
        continue;
      }
      lane.queued.push_back(QueuedPush{frame, std::move(gateway_targets), completion, kick});
      if (lane.stream != nullptr) {
        // Its batches fail when cancelled; the next batch opens a new stream.
        lane.stream->CancelIfStuckLocked(rpc_timeout_, &starts);
      }
      if (starts.cancel == nullptr) starts = SendQueuedLocked(lane);
    }
    if (starts.cancel != nullptr) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn,
                          "gateway {} left a push batch unanswered for {} ms: stream cancelled",
                          gateway_id, rpc_timeout_.count());
    }
    starts.Run(this);
  }
}

GatewayPusher::Batch GatewayPusher::TakeBatchLocked(GatewayLane& lane) {
  Batch batch;
  batch.request.set_id(lane.next_batch_id++);
  batch.sent = std::chrono::steady_clock::now();
  size_t bytes = 0, taken = 0;
  for (; taken < lane.queued.size() && (taken == 0 || bytes < kMaxBatchBytes); ++taken) {
    QueuedPush& queued = lane.queued[taken];
    im::v1::PushRequest* push = batch.request.add_pushes();
    push->set_frame(*queued.frame);
    push->set_close_after(queued.kick);
    for (const PushTarget& target : queued.targets) push->add_conn_ids(target.session.conn_id);
    bytes += queued.frame->size() + 9 * queued.targets.size();
    batch.pushes.push_back(std::move(queued));
  }
  lane.queued.erase(lane.queued.begin(), lane.queued.begin() + static_cast<std::ptrdiff_t>(taken));
  lane.batches_in_flight++;
  metrics_->push_batch_size.Observe(static_cast<double>(taken));
  calls_.Started();
  return batch;
}

GatewayPusher::Starts GatewayPusher::SendQueuedLocked(GatewayLane& lane) {
  Starts starts;
  if (lane.queued.empty() || lane.batches_in_flight >= calls_per_gateway_) return starts;
  if (lane.unary_only) {
    auto* call = new PushCall;
    call->lane = &lane;
    call->batch = TakeBatchLocked(lane);
    starts.call = call;
    return starts;
  }
  if (lane.stream == nullptr) {
    streams_.Started();
    lane.stream = new PushStream(this, &lane, lane.stub);
    starts.open = lane.stream;
  }
  // One write at a time: what is queued meanwhile leaves when it is done (OnWriteDone).
  if (!lane.stream->writing()) lane.stream->QueueWriteLocked(TakeBatchLocked(lane), &starts);
  return starts;
}

void GatewayPusher::StartPushCall(PushCall* call) {
  call->context.set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
  GatewayLane& lane = *call->lane;
  im::v1::GatewayService::Stub* stub = nullptr;
  {
    std::lock_guard<std::mutex> lock(lane.mutex);
    stub = lane.stub;
  }
  stub->async()->Push(&call->context, &call->batch.request, &call->reply,
                      [this, call](grpc::Status status) {
                        std::unique_ptr<PushCall> owned(call);
                        GatewayLane& owner = *call->lane;
                        Starts starts;
                        {
                          std::lock_guard<std::mutex> lock(owner.mutex);
                          owner.batches_in_flight--;
                          starts = SendQueuedLocked(owner);
                        }
                        starts.Run(this);
                        Settle(owner.gateway_id, std::move(call->batch), status, call->reply);
                      });
}

void GatewayPusher::Settle(const std::string& gateway_id, Batch batch, const grpc::Status& status,
                           const im::v1::PushBatchReply& reply) {
  if (!status.ok()) {
    metrics_->push_rpcs_failed.Increment();
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "push to gateway {} failed: {} {}", gateway_id,
                        static_cast<int>(status.error_code()), status.error_message());
  } else {
    metrics_->push_rpcs_ok.Increment();
  }
  std::vector<PushTarget> disowned;
  const int answered = std::min(reply.replies_size(), static_cast<int>(batch.pushes.size()));
  for (int i = 0; i < answered; ++i) {
    const im::v1::PushReply& push_reply = reply.replies(i);
    if (push_reply.unknown_conn_ids().empty() || batch.pushes[i].kick) continue;
    const std::set<uint64_t> unknown(push_reply.unknown_conn_ids().begin(),
                                     push_reply.unknown_conn_ids().end());
    for (PushTarget& target : batch.pushes[i].targets) {
      if (unknown.count(target.session.conn_id) > 0) disowned.push_back(std::move(target));
    }
  }
  batch.pushes.clear();  // releases the completions: the senders may go on
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
  calls_.Finished();
}

bool GatewayPusher::WaitIdle(std::chrono::milliseconds timeout) { return calls_.WaitIdle(timeout); }

}  // namespace im::logic
