#include "logic/ingress/ingress_stream.h"

#include <string>
#include <utility>

#include "absl/random/random.h"
#include "common/logging.h"

namespace im::logic {
namespace {

constexpr char kShuttingDown[] = "logic is shutting down";
constexpr char kReachedMaxAge[] = "stream reached logic.max_connection_age_ms; open a new one";

}  // namespace

IngressStream::IngressStream(grpc::CallbackServerContext* context, RequestDispatcher* dispatcher,
                             Limits limits, bool draining,
                             std::function<void(IngressStream*)> on_done)
    : context_(context), dispatcher_(dispatcher), limits_(limits), on_done_(std::move(on_done)) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->stream = this;
  if (draining) {
    DrainLocked(kShuttingDown);  // a stream opened while this node shuts down ends at once
  } else {
    ReadMoreLocked();
    if (limits_.max_age.count() > 0) ScheduleAgeDrain();
  }
}

void IngressStream::ScheduleAgeDrain() {
  const double jitter = absl::Uniform(absl::BitGen(), 0.8, 1.0);
  const auto age = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(limits_.max_age.count()) * jitter));
  // The callback holds only the shared part: it may run after the stream is gone.
  age_alarm_.Set(std::chrono::system_clock::now() + age, [shared = shared_](bool fired) {
    if (!fired) return;  // cancelled: the stream ended first
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (shared->stream != nullptr) shared->stream->DrainLocked(kReachedMaxAge);
  });
}

void IngressStream::Drain() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  DrainLocked(kShuttingDown);
}

void IngressStream::DrainLocked(const char* reason) {
  if (draining_) return;
  draining_ = true;
  drain_reason_ = reason;
  WriteOrFinishLocked();
}

void IngressStream::OnReadDone(bool ok) {
  std::vector<im::v1::Ingress> entries;
  const std::shared_ptr<Shared> shared = shared_;  // this stream may end while dispatching
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    reading_ = false;
    if (!ok) {
      reads_ended_ = true;
      WriteOrFinishLocked();
      return;
    }
    // Read after the stream was finished: the trailer told the gateway these were never seen.
    if (finished_) return;
    entries.reserve(incoming_.entries_size());
    for (im::v1::Ingress& entry : *incoming_.mutable_entries()) {
      last_read_id_ = std::max(last_read_id_, entry.id());
      entries.push_back(std::move(entry));
    }
    incoming_.Clear();
    in_flight_ += entries.size();
    dispatching_ = true;
  }
  // Outside the lock: a handler may answer on this very thread.
  dispatcher_->DispatchAll(std::move(entries), [shared](uint64_t id) {
    return [shared, id](std::optional<im::v1::Frame> response) {
      std::lock_guard<std::mutex> lock(shared->mutex);
      if (shared->stream != nullptr) shared->stream->Answer(id, std::move(response));
    };
  });
  // Only now the next batch: read while this one was being dispatched, it could be dispatched
  // first on another thread, and its sends numbered ahead of this batch's.
  std::lock_guard<std::mutex> lock(shared->mutex);
  if (shared->stream == nullptr) return;  // cancelled and ended meanwhile
  dispatching_ = false;
  ReadMoreLocked();
}

void IngressStream::Answer(uint64_t id, std::optional<im::v1::Frame> response) {
  in_flight_--;
  im::v1::Egress* egress = answered_.add_entries();
  egress->set_id(id);
  if (response) egress->mutable_response()->Swap(&*response);
  ReadMoreLocked();
  WriteOrFinishLocked();
}

void IngressStream::ReadMoreLocked() {
  if (reading_ || dispatching_ || reads_ended_ || draining_ || cancelled_ || finished_) return;
  if (in_flight_ >= limits_.max_in_flight) return;  // resumed by the answer that makes room
  reading_ = true;
  StartRead(&incoming_);
}

void IngressStream::WriteOrFinishLocked() {
  if (finished_ || write_in_flight_) return;
  if (!cancelled_ && answered_.entries_size() > 0) {
    writing_.Clear();
    if (static_cast<size_t>(answered_.entries_size()) <= limits_.max_batch_entries) {
      writing_.Swap(&answered_);
    } else {
      // Oldest answers first; the rest go in the next write.
      auto* from = answered_.mutable_entries();
      for (size_t i = 0; i < limits_.max_batch_entries; ++i) {
        writing_.add_entries()->Swap(from->Mutable(static_cast<int>(i)));
      }
      from->DeleteSubrange(0, static_cast<int>(limits_.max_batch_entries));
    }
    write_in_flight_ = true;
    StartWrite(&writing_);
    return;
  }
  if (cancelled_) {
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
  } else if (in_flight_ == 0 && reads_ended_) {
    finished_ = true;
    Finish(grpc::Status::OK);
  } else if (in_flight_ == 0 && draining_) {
    finished_ = true;
    // Safe with a read still outstanding: whatever it brings is dropped (see OnReadDone).
    context_->AddTrailingMetadata(common::kLastReadIdTrailer, std::to_string(last_read_id_));
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, drain_reason_));
  }
}

void IngressStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  write_in_flight_ = false;
  if (!ok) cancelled_ = true;  // the gateway is gone: nobody reads what is left
  WriteOrFinishLocked();
}

void IngressStream::OnCancel() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  cancelled_ = true;
  WriteOrFinishLocked();
}

void IngressStream::OnDone() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stream = nullptr;
    if (in_flight_ > 0) {
      spdlog::debug("ingress stream ended with {} requests unanswered", in_flight_);
    }
  }
  if (on_done_) on_done_(this);
  delete this;
}

}  // namespace im::logic
