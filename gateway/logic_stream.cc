#include "gateway/logic_stream.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/logging.h"
#include "common/logic_stream_trailer.h"
#include "fmt/format.h"
#include "gateway/logic_client.h"
#include "gateway/request_frames.h"

namespace im::gateway {
namespace {

constexpr uint64_t kMinBackoffMs = 20;
constexpr uint64_t kMaxBackoffMs = 1'000;

std::optional<uint64_t> LastReadId(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto it = trailers.find(common::kLastReadIdTrailer);
  if (it == trailers.end()) return std::nullopt;
  uint64_t id = 0;
  const auto [end, error] =
      std::from_chars(it->second.data(), it->second.data() + it->second.size(), id);
  if (error != std::errc()) return std::nullopt;
  return id;
}

}  // namespace

// One LogicService.Stream call. Its reactions run on gRPC threads and only report to the owner;
// everything else happens on the loop thread. A hold keeps gRPC from finishing the call (OnDone)
// until the loop has seen its reads end (or gave it up), so the loop never writes to a call gRPC
// is done with.
class LogicStream::Call final
    : public grpc::ClientBidiReactor<im::v1::IngressBatch, im::v1::EgressBatch> {
 public:
  Call(LogicStream* owner, uint64_t generation, uint64_t now_ms)
      : owner_(owner), generation_(generation), last_answer_ms_(now_ms) {}

  void Begin(im::v1::LogicService::Stub* stub) {
    // A stream opened while logic restarts waits for it rather than failing at once.
    context_.set_wait_for_ready(true);
    stub->async()->Stream(&context_, this);
    AddHold();
    StartRead(&incoming_);
    StartCall();
  }
  // Loop thread.
  void Write(im::v1::IngressBatch batch) {
    outgoing_ = std::move(batch);
    write_in_flight_ = true;
    StartWrite(&outgoing_);
  }
  void Cancel() { context_.TryCancel(); }
  // Loop thread, once: lets gRPC finish the call.
  void Release() {
    if (released_) return;
    released_ = true;
    RemoveHold();
  }
  // Any thread: whether OnDone has returned its last access to this object.
  bool WaitDone(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(done_mutex_);
    return done_cv_.wait_for(lock, timeout, [this] { return done_; });
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      owner_->Report([call = this](Reports& r) { r.reads_ended.push_back(call); });
      return;
    }
    auto batch = std::make_shared<im::v1::EgressBatch>();
    batch->Swap(&incoming_);
    owner_->Report([batch](Reports& r) { r.answers.push_back(std::move(*batch)); });
    StartRead(&incoming_);
  }
  void OnWriteDone(bool /*ok*/) override {
    owner_->Report([call = this](Reports& r) { r.writes_done.push_back(call); });
  }
  void OnDone(const grpc::Status& status) override {
    owner_->Report([call = this, status, last_read = LastReadId(context_)](Reports& r) {
      r.ended.push_back(Reports::Ended{call, status, last_read});
    });
    std::lock_guard<std::mutex> lock(done_mutex_);
    done_ = true;
    done_cv_.notify_all();
  }

  uint64_t generation() const { return generation_; }
  bool write_in_flight() const { return write_in_flight_; }
  void set_write_done() { write_in_flight_ = false; }
  uint64_t last_answer_ms() const { return last_answer_ms_; }
  void set_answered(uint64_t now_ms) {
    last_answer_ms_ = now_ms;
    answered_ = true;
  }
  bool answered() const { return answered_; }

 private:
  LogicStream* owner_;
  const uint64_t generation_;
  grpc::ClientContext context_;
  im::v1::IngressBatch outgoing_;
  im::v1::EgressBatch incoming_;
  // Loop thread.
  bool write_in_flight_ = false;
  bool released_ = false;
  bool answered_ = false;
  uint64_t last_answer_ms_;

  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

LogicStream::LogicStream(uv_loop_t* loop, LogicClient* client, Options options,
                         GatewayMetrics* metrics, Post post)
    : loop_(loop),
      client_(client),
      options_(options),
      metrics_(metrics),
      post_(std::move(post)),
      unsent_wait_(options.queue_wait) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

LogicStream::~LogicStream() {
  if (call_) ending_.push_back(std::move(call_));
  for (std::unique_ptr<Call>& call : ending_) {
    call->Cancel();
    call->Release();
    if (!call->WaitDone(std::chrono::seconds(5))) {
      spdlog::error("a logic stream did not end within 5 s of its cancellation; left behind");
      (void)call.release();
    }
  }
}

void LogicStream::Start() {
  // Deadlines are checked a few times per timeout; a broken stream's backoff is timed here too.
  const uint64_t period_ms = DeadlineCheckMs(options_);
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<LogicStream*>(timer->data);
        self->TakeReports();  // in case a wake-up could not be posted
        self->ExpireOverdue();
        self->Flush();
      },
      period_ms, period_ms);
}

void LogicStream::Submit(im::v1::Caller caller, im::v1::Frame request, Answer done) {
  if (closed_) {
    std::move(done)(FailureResponse(request, im::v1::UNAVAILABLE, "the gateway is stopping"));
    return;
  }
  if (waiting_.size() >= options_.max_waiting) {
    metrics_->logic_errors.Increment();
    std::move(done)(FailureResponse(request, im::v1::RESOURCE_EXHAUSTED,
                                    "too many requests waiting for logic on this gateway"));
    return;
  }
  const uint64_t id = next_id_++;
  Waiting& waiting = waiting_[id];
  waiting.queued_at = common::QueueWaitPolicy::Clock::now();
  if (unsent_.empty()) unsent_wait_.OnEmpty(waiting.queued_at);  // it was empty until now
  waiting.deadline_ms = uv_now(loop_) + static_cast<uint64_t>(options_.timeout.count());
  waiting.idempotent = IsIdempotent(request);
  waiting.done = std::move(done);
  waiting.entry.set_id(id);
  waiting.entry.set_deadline_ms(common::UnixMillis() + options_.timeout.count());
  waiting.entry.mutable_caller()->Swap(&caller);
  waiting.entry.mutable_request()->Swap(&request);
  unsent_.push_back(id);
}

void LogicStream::Flush() {
  if (unsent_.empty() || closed_) return;
  if (!call_) {
    if (uv_now(loop_) < reopen_at_ms_) return;  // the timer comes back
    OpenCall();
  }
  if (call_->write_in_flight()) {  // its completion flushes again
    // A stream that answers but does not take the next write: logic reads slower than requests
    // come. (A stream that has answered nothing yet is still connecting: its requests wait.)
    if (call_->answered()) ShedQueuedTooLong();
    return;
  }
  im::v1::IngressBatch batch;
  size_t taken = 0;
  for (; taken < unsent_.size() &&
         static_cast<size_t>(batch.entries_size()) < options_.max_batch_entries;
       ++taken) {
    auto it = waiting_.find(unsent_[taken]);
    if (it == waiting_.end()) continue;  // answered meanwhile (expired)
    Waiting& waiting = it->second;
    metrics_->logic_queue_wait.Observe(common::SecondsSince(waiting.queued_at));
    waiting.generation = call_->generation();
    waiting.attempts++;
    // A copy: the request is sent again if the stream breaks before it is answered.
    *batch.add_entries() = waiting.entry;
  }
  unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (unsent_.empty()) unsent_wait_.OnEmpty(common::QueueWaitPolicy::Clock::now());
  if (batch.entries_size() == 0) return;
  metrics_->logic_batch_entries.Observe(batch.entries_size());
  call_->Write(std::move(batch));
}

void LogicStream::OpenCall() {
  call_ = std::make_unique<Call>(this, next_generation_++, uv_now(loop_));
  metrics_->logic_streams_opened.Increment();
  call_->Begin(client_->stub());
}

void LogicStream::Report(absl::AnyInvocable<void(Reports&) &&> add) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(reports_mutex_);
    std::move(add)(reports_);
    if (!wake_posted_) wake_posted_ = wake = true;
  }
  // One task drains every report made until it runs. If the loop refuses it (full, or stopped),
  // the timer takes the reports.
  if (wake && !post_([this] { TakeReports(); })) {
    std::lock_guard<std::mutex> lock(reports_mutex_);
    wake_posted_ = false;
  }
}

void LogicStream::TakeReports() {
  Reports reports;
  {
    std::lock_guard<std::mutex> lock(reports_mutex_);
    std::swap(reports, reports_);
    wake_posted_ = false;
  }
  for (im::v1::EgressBatch& batch : reports.answers) OnAnswers(batch);
  // A failed write means the stream broke: its reads end too, and that is handled below.
  for (Call* call : reports.writes_done) call->set_write_done();
  for (Call* call : reports.reads_ended) {
    // Logic ended the stream (or it broke): new requests go to a new one, and gRPC may finish
    // this call once its last write is done.
    call->Release();
    if (call_.get() == call) ending_.push_back(std::move(call_));
  }
  for (Reports::Ended& ended : reports.ended) {
    OnCallEnded(ended.call, ended.status, ended.last_read);
  }
  Flush();
}

void LogicStream::OnAnswers(im::v1::EgressBatch& batch) {
  const uint64_t now = uv_now(loop_);
  if (call_) call_->set_answered(now);
  for (im::v1::Egress& egress : *batch.mutable_entries()) {
    auto it = waiting_.find(egress.id());
    if (it == waiting_.end()) {
      metrics_->late_responses.Increment();  // answered here already (its deadline passed)
      continue;
    }
    const uint64_t submitted_ms =
        it->second.deadline_ms - static_cast<uint64_t>(options_.timeout.count());
    metrics_->logic_latency.Observe(static_cast<double>(now - submitted_ms) / 1000.0);
    Answer done = std::move(it->second.done);
    waiting_.erase(it);
    if (egress.has_response()) {
      std::move(done)(std::move(*egress.mutable_response()));
    } else {
      std::move(done)(std::nullopt);
    }
  }
  backoff_ms_ = 0;
}

void LogicStream::OnCallEnded(Call* ended, const grpc::Status& status,
                              std::optional<uint64_t> last_read) {
  auto it = std::find_if(ending_.begin(), ending_.end(),
                         [ended](const std::unique_ptr<Call>& c) { return c.get() == ended; });
  if (it == ending_.end()) return;  // not ours (cannot happen: calls end only after release)
  std::unique_ptr<Call> call = std::move(*it);
  ending_.erase(it);
  call->WaitDone(std::chrono::seconds(5));  // OnDone reported before it returned
  const uint64_t generation = call->generation();
  if (!call->answered()) {
    backoff_ms_ = std::clamp<uint64_t>(backoff_ms_ * 2, kMinBackoffMs, kMaxBackoffMs);
  }
  reopen_at_ms_ = uv_now(loop_) + backoff_ms_;

  size_t resent = 0, failed = 0;
  std::vector<uint64_t> again;
  for (auto& [id, waiting] : waiting_) {
    if (waiting.generation != generation) continue;
    const bool never_read = last_read && id > *last_read;
    if (never_read) waiting.attempts--;  // logic never saw it: not an attempt
    if (never_read || (waiting.idempotent && waiting.attempts < options_.max_attempts)) {
      waiting.generation = 0;
      waiting.queued_at = common::QueueWaitPolicy::Clock::now();  // its wait starts again
      again.push_back(id);
      ++resent;
    }
  }
  for (auto wit = waiting_.begin(); wit != waiting_.end();) {
    Waiting& waiting = wit->second;
    if (waiting.generation != generation) {
      ++wit;
      continue;
    }
    ++failed;
    Fail(waiting, im::v1::UNAVAILABLE,
         "logic: the stream ended before an answer (" + status.error_message() +
             "); the request may or may not have been carried out");
    wit = waiting_.erase(wit);
  }
  if (!again.empty()) {
    // Oldest first, ahead of what was submitted since.
    again.insert(again.end(), unsent_.begin(), unsent_.end());
    unsent_ = std::move(again);
  }
  if (closed_) return;
  if (status.ok() || (last_read && failed == 0)) {
    spdlog::info("logic stream ended ({}); {} requests go to the next one", status.error_message(),
                 resent);
  } else {
    IM_LOG_RATE_LIMITED(
        spdlog::level::warn, "logic stream broke: {} {}; {} requests sent again, {} failed",
        static_cast<int>(status.error_code()), status.error_message(), resent, failed);
  }
}

void LogicStream::Fail(Waiting& waiting, im::v1::Code code, const std::string& message) {
  metrics_->logic_errors.Increment();
  spdlog::debug("request {}: {}", waiting.entry.caller().request_id(), message);
  std::move(waiting.done)(FailureResponse(waiting.entry.request(), code, message));
}

void LogicStream::ShedQueuedTooLong() {
  const auto now = common::QueueWaitPolicy::Clock::now();
  size_t shed = 0;
  for (; shed < unsent_.size(); ++shed) {
    auto it = waiting_.find(unsent_[shed]);
    if (it == waiting_.end()) continue;  // answered meanwhile (expired)
    if (!unsent_wait_.ShouldShed(it->second.queued_at, now)) break;
    metrics_->logic_queue_shed.Increment();
    Fail(it->second, im::v1::RESOURCE_EXHAUSTED,
         fmt::format(
             "logic is not keeping up: waited {} ms on the gateway to be sent",
             std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second.queued_at)
                 .count()));
    waiting_.erase(it);
  }
  unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<std::ptrdiff_t>(shed));
  if (unsent_.empty()) unsent_wait_.OnEmpty(now);
}

void LogicStream::ExpireOverdue() {
  const uint64_t now = uv_now(loop_);
  bool current_call_overdue = false;
  bool expired_unsent = false;
  while (!waiting_.empty() && waiting_.begin()->second.deadline_ms <= now) {
    Waiting& waiting = waiting_.begin()->second;
    if (waiting.generation == 0) {
      expired_unsent = true;
      Fail(waiting, im::v1::UNAVAILABLE, "logic is unreachable");
    } else if (call_ && waiting.generation == call_->generation() && !call_->answered()) {
      // Written on a stream that has answered nothing (no node connected, or it hangs): to the
      // client, logic is unreachable.
      current_call_overdue = true;
      Fail(waiting, im::v1::UNAVAILABLE, "logic is unreachable: nothing answered on the stream");
    } else {
      if (call_ && waiting.generation == call_->generation()) current_call_overdue = true;
      Fail(waiting, im::v1::DEADLINE_EXCEEDED, "logic did not answer in time");
    }
    waiting_.erase(waiting_.begin());
  }
  // While no write can leave (logic unreachable), the ids of what expired unsent would pile up.
  if (expired_unsent) {
    std::erase_if(unsent_, [this](uint64_t id) { return !waiting_.contains(id); });
  }
  // Requests time out on a stream that has not answered anything for as long: the node hangs
  // (or the path to it does). Move on rather than wait for keepalive to notice.
  if (current_call_overdue &&
      now - call_->last_answer_ms() >= static_cast<uint64_t>(options_.timeout.count())) {
    AbandonCall("logic answered nothing within the request timeout");
  }
}

void LogicStream::AbandonCall(const char* why) {
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "logic stream given up: {}", why);
  call_->Cancel();  // its reads end; TakeReports moves it to ending_
}

void LogicStream::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, waiting] : waiting_)
    Fail(waiting, im::v1::UNAVAILABLE, "the gateway is stopping");
  waiting_.clear();
  unsent_.clear();
  if (call_) {
    call_->Cancel();
    call_->Release();
    ending_.push_back(std::move(call_));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace im::gateway
