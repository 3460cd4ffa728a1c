#include "gateway/gateway_push_stream.h"

#include <utility>

#include "gateway/gateway_service_impl.h"

namespace im::gateway {

GatewayPushStream::GatewayPushStream(GatewayServiceImpl* service,
                                     grpc::CallbackServerContext* context)
    : service_(service), context_(context) {
  shared_->stream = this;
  std::lock_guard<std::mutex> lock(shared_->mutex);
  ReadMoreLocked();
}

void GatewayPushStream::ReadMoreLocked() {
  if (reading_ || reads_ended_ || finished_ || in_flight_ >= kMaxBatchesInFlight) return;
  reading_ = true;
  StartRead(&incoming_);
}

void GatewayPushStream::OnReadDone(bool ok) {
  std::unique_lock<std::mutex> lock(shared_->mutex);
  if (!ok) {
    reading_ = false;
    reads_ended_ = true;  // logic closed its side, or the stream broke
    return WriteOrFinishLocked();
  }
  ++in_flight_;
  auto batch = std::make_unique<im::v1::PushBatchRequest>(std::move(incoming_));
  auto reply = std::make_unique<im::v1::PushBatchReply>();
  reply->set_id(batch->id());
  im::v1::PushBatchReply* filled = reply.get();
  // The loops report into `reply`; the last one answers. The lock is not held across the call:
  // `done` may run right here (a refused batch, or no connection on this gateway).
  lock.unlock();
  service_->DeliverBatch(*batch, filled,
                         [shared = shared_, reply = std::move(reply)](grpc::Status status) mutable {
                           std::lock_guard<std::mutex> done_lock(shared->mutex);
                           if (shared->stream != nullptr) {
                             shared->stream->Answer(std::move(reply), status);
                           }
                         });
  lock.lock();
  // Only now may the next batch be read: reading_ stayed set while this one was handed to the
  // loops, so that an answer finishing meanwhile (Answer -> ReadMoreLocked) cannot start a read
  // whose batch would reach the loops before this one.
  reading_ = false;
  ReadMoreLocked();
}

// With shared_->mutex held (the caller's).
void GatewayPushStream::Answer(std::unique_ptr<im::v1::PushBatchReply> reply,
                               const grpc::Status& status) {
  --in_flight_;
  if (!status.ok() && refusal_.ok()) refusal_ = status;
  answered_.push_back(std::move(reply));
  WriteOrFinishLocked();
  ReadMoreLocked();
}

void GatewayPushStream::WriteOrFinishLocked() {
  if (writing_ || finished_) return;
  if (!refusal_.ok()) {
    finished_ = true;
    return Finish(refusal_);
  }
  if (!answered_.empty()) {
    writing_ = std::move(answered_.front());
    answered_.pop_front();
    return StartWrite(writing_.get());
  }
  if (reads_ended_ && in_flight_ == 0) {
    finished_ = true;
    Finish(grpc::Status::OK);
  }
}

void GatewayPushStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  writing_.reset();
  if (!ok && !finished_) {
    // Logic is gone: nothing more can be answered.
    finished_ = true;
    return Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "push stream broken"));
  }
  WriteOrFinishLocked();
}

void GatewayPushStream::OnDone() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stream = nullptr;
  }
  service_->ForgetPushStream(context_);
  delete this;
}

}  // namespace im::gateway
