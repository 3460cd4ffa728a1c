#include "logic/conversation/message_writer.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/allocator.h"
#include "common/burst_scope.h"
#include "common/logging.h"

namespace im::logic {

MessageWriter::MessageWriter(store::MessageStore* store, Options options, Clock now_ms,
                             LogicMetrics* metrics, AnswerOn answer_on)
    : store_(store),
      options_(options),
      now_ms_(std::move(now_ms)),
      metrics_(metrics),
      answer_on_(std::move(answer_on)),
      room_(static_cast<uint32_t>(options.queue_capacity)) {
  for (size_t i = 0; i < options_.writers; ++i) threads_.emplace_back([this] { Run(); });
}

MessageWriter::~MessageWriter() { Shutdown(); }

std::optional<MessageWriter::Room> MessageWriter::Reserve() {
  std::optional<Room> room = room_.TryAdmit();
  if (!room) metrics_->overloaded_write_queue.Increment();
  return room;
}

void MessageWriter::SubmitMany(std::vector<Write> writes) {
  if (writes.empty()) return;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping = stopping_;
    if (!stopping) {
      for (Write& write : writes) queue_.push_back(std::move(write));
      metrics_->write_queue_depth.Set(static_cast<double>(queue_.size()));
    }
  }
  if (!stopping) {
    wake_.notify_one();
    return;
  }
  for (Write& write : writes) {
    std::move(write.done)(absl::UnavailableError("the node is shutting down"));
  }
}

void MessageWriter::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void MessageWriter::Run() {
  for (;;) {
    std::vector<Write> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      common::WaitReleasingCacheWhenIdle(wake_, lock,
                                         [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      while (!queue_.empty() && batch.size() < options_.batch_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      metrics_->write_queue_depth.Set(static_cast<double>(queue_.size()));
    }
    WriteBatch(std::move(batch));
  }
}

void MessageWriter::WriteBatch(std::vector<Write> batch) {
  const int64_t now = now_ms_();
  std::vector<store::NewMessage> messages;
  std::vector<Done> dones;
  for (Write& pending : batch) {
    if (now - pending.message.message.created_ms() > options_.write_deadline_ms) {
      metrics_->writes_expired.Increment();
      std::move(pending.done)(absl::DeadlineExceededError(absl::StrCat(
          "message waited more than ", options_.write_deadline_ms, " ms to be persisted")));
      continue;
    }
    messages.push_back(std::move(pending.message));
    dones.push_back(std::move(pending.done));
  }
  if (messages.empty()) return;
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<store::AppendOutcome>> outcomes = store_->Append(messages);
  const double seconds = common::SecondsSince(started);
  metrics_->write_seconds.Observe(seconds);
  metrics_->store_message_append.Observe(seconds);
  metrics_->write_batch_size.Observe(static_cast<double>(messages.size()));
  if (!outcomes.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::err, "persisting {} messages failed: {}", messages.size(),
                        outcomes.status().ToString());
  } else if (outcomes->size() != dones.size()) {
    outcomes = absl::InternalError("message store returned a wrong number of outcomes");
  }
  Answer(std::move(dones), std::move(outcomes));
}

void MessageWriter::Answer(std::vector<Done> dones,
                           absl::StatusOr<std::vector<store::AppendOutcome>> outcomes) {
  struct Answers {
    std::vector<Done> dones;
    absl::StatusOr<std::vector<store::AppendOutcome>> outcomes;
    void Run() {
      // What the answers hand on (deliveries) goes on once for the whole batch.
      common::BurstScope burst;
      for (size_t i = 0; i < dones.size(); ++i) {
        if (outcomes.ok()) {
          std::move(dones[i])(std::move((*outcomes)[i]));
        } else {
          std::move(dones[i])(outcomes.status());
        }
      }
    }
  };
  // A refused task is destroyed without running, so the answers live outside it.
  auto answers = std::make_shared<Answers>(Answers{std::move(dones), std::move(outcomes)});
  if (answer_on_ && answer_on_([answers] { answers->Run(); })) return;
  answers->Run();
}

}  // namespace im::logic
