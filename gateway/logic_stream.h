#pragma once

#include <grpcpp/grpcpp.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/queue_wait_policy.h"
#include "gateway/gateway_metrics.h"
#include "gateway/logic_link.h"
#include "im/v1/logic.grpc.pb.h"

namespace im::gateway {

class LogicClient;

// A worker loop's end of LogicService.Stream: the client requests its connections read in one
// loop iteration leave in one IngressBatch, written when the loop is about to wait (Flush), and
// logic's answers come back batched on the same stream. One write is in flight at a time; what
// is submitted meanwhile joins the next batch, so batches grow with load.
//
// Each request carries its caller and deadline. It is answered exactly once, on the loop thread:
// by logic, or here when logic cannot answer in time (DEADLINE_EXCEEDED once sent, UNAVAILABLE
// when it never left), when too many wait or one waited too long to be written while logic
// does not take the writes (RESOURCE_EXHAUSTED, with a retry hint; controlled delay, as in
// common/queue_wait_policy.h), or when the stream breaks with
// the request unanswered. A broken stream is opened again (round robin picks a node; backoff
// while no stream gets an answer); what it left unanswered is sent again on the new one when
// that is safe: always for requests logic never read (it names the last one read when it drains),
// and for idempotent requests (sends, acks, syncs, reads) up to max_attempts.
class LogicStream final : public RequestStream {
 public:
  LogicStream(uv_loop_t* loop, LogicClient* client, Options options, GatewayMetrics* metrics,
              Post post);
  // Any thread, after Close() and after the loop stopped: waits (bounded) for the calls to end.
  ~LogicStream() override;
  LogicStream(const LogicStream&) = delete;
  LogicStream& operator=(const LogicStream&) = delete;

  // --- Loop thread.
  void Start() override;
  void Submit(im::v1::Caller caller, im::v1::Frame request, Answer done) override;
  // Writes what was submitted since the last write, unless a write is in flight.
  void Flush() override;
  // Answers what waits UNAVAILABLE, cancels the stream and closes the timer.
  void Close() override;

  size_t waiting() const override { return waiting_.size(); }

 private:
  class Call;
  struct Waiting {
    im::v1::Ingress entry;
    Answer done;
    uint64_t deadline_ms = 0;  // loop time
    // When it was submitted (or queued again after a break).
    common::QueueWaitPolicy::Clock::time_point queued_at;
    uint64_t generation = 0;  // the call it was written on; 0: not written (yet, or again)
    int attempts = 0;
    bool idempotent = false;
  };
  // What gRPC threads report, taken over by the loop in TakeReports.
  struct Reports {
    std::vector<im::v1::EgressBatch> answers;
    std::vector<Call*> writes_done;
    std::vector<Call*> reads_ended;
    struct Ended {
      Call* call;
      grpc::Status status;
      std::optional<uint64_t> last_read;  // logic drained the stream: the last entry it read
    };
    std::vector<Ended> ended;
  };

  // gRPC threads: queue a report and wake the loop.
  void Report(absl::AnyInvocable<void(Reports&) &&> add);
  // Loop thread.
  void TakeReports();
  void OpenCall();
  void OnAnswers(im::v1::EgressBatch& batch);
  void OnCallEnded(Call* call, const grpc::Status& status, std::optional<uint64_t> last_read);
  void ExpireOverdue();
  // Refuses the unsent requests the queue-wait policy sheds (oldest first in unsent_).
  void ShedQueuedTooLong();
  void Fail(Waiting& waiting, im::v1::Code code, const std::string& message);
  void AbandonCall(const char* why);

  uv_loop_t* loop_;
  LogicClient* client_;
  const Options options_;
  GatewayMetrics* metrics_;
  Post post_;
  uv_timer_t timer_;

  std::map<uint64_t, Waiting> waiting_;        // by id, which is by deadline
  std::vector<uint64_t> unsent_;               // ids to write, oldest first (expired ones pruned)
  common::QueueWaitPolicy unsent_wait_;        // over unsent_
  std::unique_ptr<Call> call_;                 // the stream requests go to
  std::vector<std::unique_ptr<Call>> ending_;  // streams that broke, until gRPC is done with them
  uint64_t next_id_ = 1;
  uint64_t next_generation_ = 1;
  uint64_t reopen_at_ms_ = 0;
  uint64_t backoff_ms_ = 0;
  bool closed_ = false;

  std::mutex reports_mutex_;
  Reports reports_;           // guarded by reports_mutex_
  bool wake_posted_ = false;  // guarded by reports_mutex_
};

}  // namespace im::gateway
