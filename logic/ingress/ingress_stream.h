#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/logic_stream_trailer.h"
#include "im/v1/logic.grpc.pb.h"
#include "logic/ingress/request_dispatcher.h"

namespace im::logic {

// Logic's end of one LogicService.Stream (one per gateway worker loop). Each entry read goes to
// the RequestDispatcher; answers, finished on whatever thread, are gathered and written back in
// one EgressBatch per write, so a burst of answers costs one message. At most `max_in_flight`
// entries are being handled at once: past that the stream stops reading, and HTTP/2 flow control
// holds the gateway back. Deleted by gRPC's OnDone; answers that finish later are dropped.
class IngressStream final
    : public grpc::ServerBidiReactor<im::v1::IngressBatch, im::v1::EgressBatch> {
 public:
  struct Limits {
    size_t max_in_flight = 10'000;
    size_t max_batch_entries = 512;  // answers per EgressBatch
    // A stream older than this (times a random 0.8..1, so that a gateway's streams do not all
    // end at once) is drained, and the gateway opens a new one: on a new connection once logic's
    // gRPC server told the old one to go away (logic.max_connection_age_ms), so after a scale-up
    // new logic nodes get their share. Zero: streams live as long as their connection.
    std::chrono::milliseconds max_age{0};
  };
  // `on_done` runs once from OnDone, before the stream is deleted (the owner's registry).
  IngressStream(grpc::CallbackServerContext* context, RequestDispatcher* dispatcher, Limits limits,
                bool draining, std::function<void(IngressStream*)> on_done);

  // Any thread, as this node shuts down. Stops reading; once every entry read is answered the
  // stream ends UNAVAILABLE with common::kLastReadIdTrailer, and the gateway sends the rest
  // elsewhere. (A stream past limits_.max_age drains the same way.)
  void Drain();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What outlives the stream: answers hold it, so one that finishes after OnDone finds no stream.
  struct Shared {
    std::mutex mutex;
    IngressStream* stream = nullptr;  // guarded by mutex; null once the stream is done
  };

  void Answer(uint64_t id, std::optional<im::v1::Frame> response);
  // Drains the stream once it reached limits_.max_age (jittered).
  void ScheduleAgeDrain();
  // All below: with shared_->mutex held. `reason`: the message of the stream's final status.
  void DrainLocked(const char* reason);
  void ReadMoreLocked();
  void WriteOrFinishLocked();

  grpc::CallbackServerContext* context_;
  RequestDispatcher* dispatcher_;
  const Limits limits_;
  std::function<void(IngressStream*)> on_done_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();

  im::v1::IngressBatch incoming_;
  im::v1::EgressBatch answered_;  // finished answers not yet handed to a write
  im::v1::EgressBatch writing_;   // the write in flight
  size_t in_flight_ = 0;          // entries read and not yet answered
  uint64_t last_read_id_ = 0;
  bool reading_ = false;      // a read is outstanding
  bool dispatching_ = false;  // the last batch read is being dispatched: the next read waits
  bool reads_ended_ = false;  // the gateway closed its side (or the stream broke)
  bool draining_ = false;
  std::string drain_reason_;
  bool cancelled_ = false;
  bool write_in_flight_ = false;
  bool finished_ = false;
  grpc::Alarm age_alarm_;  // cancelled by its destructor (the callback then sees ok=false)
};

}  // namespace im::logic
