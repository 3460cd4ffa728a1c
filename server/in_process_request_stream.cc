#include "server/in_process_request_stream.h"

#include "common/clock.h"
#include "gateway/request_frames.h"

namespace im::server {

InProcessRequestStream::InProcessRequestStream(uv_loop_t* loop, Dispatch dispatch, Options options,
                                               gateway::GatewayMetrics* metrics, Post post)
    : loop_(loop), dispatch_(std::move(dispatch)), options_(options), metrics_(metrics) {
  answers_->post = std::move(post);
  answers_->stream = this;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

InProcessRequestStream::~InProcessRequestStream() {
  std::lock_guard<std::mutex> lock(answers_->mutex);
  answers_->closed = true;
  answers_->stream = nullptr;
}

void InProcessRequestStream::Start() {
  const uint64_t period_ms = DeadlineCheckMs(options_);
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<InProcessRequestStream*>(timer->data);
        self->TakeAnswers();  // in case a wake-up could not be posted
        self->ExpireOverdue();
      },
      period_ms, period_ms);
}

void InProcessRequestStream::Submit(im::v1::Caller caller, im::v1::Frame request, Answer done) {
  if (closed_) {
    std::move(done)(
        gateway::FailureResponse(request, im::v1::UNAVAILABLE, "the gateway is stopping"));
    return;
  }
  if (waiting_.size() >= options_.max_waiting) {
    metrics_->logic_errors.Increment();
    std::move(done)(
        gateway::FailureResponse(request, im::v1::RESOURCE_EXHAUSTED,
                                 "too many requests waiting for logic on this gateway"));
    return;
  }
  const uint64_t id = next_id_++;
  Waiting& waiting = waiting_[id];
  waiting.done = std::move(done);
  waiting.deadline_ms = uv_now(loop_) + static_cast<uint64_t>(options_.timeout.count());
  waiting.frame_id = request.id();
  waiting.request_body = request.body_case();
  im::v1::Ingress& entry = unsent_.emplace_back();
  entry.set_id(id);
  entry.set_deadline_ms(common::UnixMillis() + options_.timeout.count());
  entry.mutable_caller()->Swap(&caller);
  entry.mutable_request()->Swap(&request);
}

void InProcessRequestStream::Flush() {
  if (unsent_.empty() || closed_) return;
  metrics_->logic_batch_entries.Observe(static_cast<double>(unsent_.size()));
  std::vector<im::v1::Ingress> batch;
  batch.swap(unsent_);
  dispatch_(std::move(batch), [answers = answers_](uint64_t id) {
    return [answers, id](std::optional<im::v1::Frame> response) {
      Deliver(answers, id, std::move(response));
    };
  });
}

void InProcessRequestStream::Deliver(const std::shared_ptr<Answers>& answers, uint64_t id,
                                     std::optional<im::v1::Frame> response) {
  std::lock_guard<std::mutex> lock(answers->mutex);
  if (answers->closed) return;
  answers->ready.emplace_back(id, std::move(response));
  if (answers->wake_posted) return;
  // One task takes every answer made until it runs; if the loop refuses it (full), the timer does.
  InProcessRequestStream* stream = answers->stream;
  answers->wake_posted = answers->post([stream] { stream->TakeAnswers(); });
}

void InProcessRequestStream::TakeAnswers() {
  std::vector<std::pair<uint64_t, std::optional<im::v1::Frame>>> ready;
  {
    std::lock_guard<std::mutex> lock(answers_->mutex);
    ready.swap(answers_->ready);
    answers_->wake_posted = false;
  }
  for (auto& [id, response] : ready) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;  // answered here already (expired)
    Answer done = std::move(it->second.done);
    waiting_.erase(it);
    std::move(done)(std::move(response));
  }
}

void InProcessRequestStream::ExpireOverdue() {
  const uint64_t now = uv_now(loop_);
  // Ids grow with submission time and every request has the same timeout: the overdue ones are
  // the first.
  while (!waiting_.empty() && waiting_.begin()->second.deadline_ms <= now) {
    metrics_->logic_errors.Increment();
    FailOldest(im::v1::DEADLINE_EXCEEDED, "logic did not answer in time");
  }
}

void InProcessRequestStream::FailOldest(im::v1::Code code, const std::string& message) {
  Waiting& oldest = waiting_.begin()->second;
  std::optional<im::v1::Frame> response =
      gateway::FailureResponse(oldest.frame_id, oldest.request_body, code, message);
  Answer done = std::move(oldest.done);
  waiting_.erase(waiting_.begin());  // before the answer runs: it may submit again
  std::move(done)(std::move(response));
}

void InProcessRequestStream::Close() {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(answers_->mutex);
    answers_->closed = true;
    answers_->ready.clear();
  }
  unsent_.clear();
  while (!waiting_.empty()) {
    FailOldest(im::v1::UNAVAILABLE, "the gateway is stopping");
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace im::server
