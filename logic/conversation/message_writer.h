#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "common/admission_limit.h"
#include "common/clock.h"
#include "logic/logic_metrics.h"
#include "store/message_store.h"

namespace im::logic {

// Group commit (DESIGN.md section 9): messages from every sender are queued, and writer threads
// persist whatever has accumulated as one MessageStore::Append batch, so throughput is batches
// per second times batch size, not one round trip per message. While one batch commits the next
// one gathers. The queue is bounded by room reserved before a send takes its seq (Reserve), so
// that a full queue refuses sends that have not been numbered yet: a numbered send the writer
// refused would leave a hole its conversation's readers must wait out (logic.hole_grace_ms).
class MessageWriter {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<store::AppendOutcome>) &&>;
  // A place for one message, from before its send is numbered until its write is answered.
  using Room = common::AdmissionLimit::Slot;
  using Clock = common::MillisClock;  // Unix milliseconds

  struct Options {
    size_t writers = 2;
    size_t batch_max = 256;
    size_t queue_capacity = 20'000;  // messages reserved, queued or being written
    // A message still queued this long after its created_ms is failed with DEADLINE_EXCEEDED
    // instead of written: Sync may already report its seq as a hole.
    int64_t write_deadline_ms = 5'000;
  };

  // Where a transaction's answers run, handed over as one task: the logic loop that owns the
  // requests, so that the writer goes back to MySQL at once. False when it refuses the task (full,
  // or stopping): the writer then answers itself.
  using AnswerOn = std::function<bool(absl::AnyInvocable<void() &&>)>;

  // Without `answer_on`, answers run on the writer thread.
  MessageWriter(store::MessageStore* store, Options options, Clock now_ms, LogicMetrics* metrics,
                AnswerOn answer_on = nullptr);
  // Persists what is queued, then joins the writers.
  ~MessageWriter();
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

  // Any thread: room for one message, or nullopt when the queue is full (counted as a refusal
  // for write_queue_full).
  std::optional<Room> Reserve();

  struct Write {
    store::NewMessage message;
    Done done;
    Room room;  // from Reserve; given back once `done` ran
  };

  // Any thread. Queues a request batch's messages together (one lock, one wake-up), so that one
  // writer takes them into one transaction. Every `done` runs exactly once: after the append,
  // where AnswerOn runs it or on the writer thread (so it must not block), or here, before this
  // returns, with UNAVAILABLE when shutting down.
  void SubmitMany(std::vector<Write> writes);

  // Refuses new messages, persists what is queued, joins the writers. Idempotent.
  void Shutdown();

 private:
  void Run();
  void WriteBatch(std::vector<Write> batch);
  // Runs each `done` with its outcome (or the batch's error), where AnswerOn says.
  void Answer(std::vector<Done> dones, absl::StatusOr<std::vector<store::AppendOutcome>> outcomes);

  store::MessageStore* store_;
  const Options options_;
  Clock now_ms_;
  LogicMetrics* metrics_;
  AnswerOn answer_on_;
  common::AdmissionLimit room_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Write> queue_;  // guarded by mutex_
  bool stopping_ = false;    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace im::logic
