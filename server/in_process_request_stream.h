#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "gateway/gateway_metrics.h"
#include "gateway/logic_link.h"
#include "logic/ingress/request_dispatcher.h"

namespace im::server {

// A gateway worker loop's requests handed straight to logic's RequestDispatcher in this process:
// what the loop submitted in one iteration is dispatched as one batch when it flushes (so a
// batch's sends take their seqs together, as over the cluster's stream), and the answers, made on
// logic's threads, are gathered and taken back to the loop by one posted task however many there
// are. Each request is answered exactly once: by logic, or here with DEADLINE_EXCEEDED once its
// deadline passed (logic's late answer is then dropped), RESOURCE_EXHAUSTED when max_waiting
// requests wait already, UNAVAILABLE once closed.
class InProcessRequestStream final : public gateway::RequestStream {
 public:
  // Hands a batch to logic (RequestDispatcher::DispatchAll in the embedded node): each entry is
  // to be answered, exactly once and on any thread, through what `respond_to(entry id)` makes.
  using Dispatch = std::function<void(
      std::vector<im::v1::Ingress> batch,
      const std::function<logic::RequestDispatcher::Respond(uint64_t id)>& respond_to)>;

  InProcessRequestStream(uv_loop_t* loop, Dispatch dispatch, Options options,
                         gateway::GatewayMetrics* metrics, Post post);
  ~InProcessRequestStream() override;
  InProcessRequestStream(const InProcessRequestStream&) = delete;
  InProcessRequestStream& operator=(const InProcessRequestStream&) = delete;

  void Start() override;
  void Submit(im::v1::Caller caller, im::v1::Frame request, Answer done) override;
  void Flush() override;
  void Close() override;
  size_t waiting() const override { return waiting_.size(); }

 private:
  struct Waiting {
    Answer done;
    uint64_t deadline_ms = 0;  // loop time
    uint64_t frame_id = 0;
    im::v1::Frame::BodyCase request_body = im::v1::Frame::BODY_NOT_SET;
  };
  // Answers made on logic's threads, until the loop takes them. Shared with the answers' callbacks,
  // which may outlive the stream.
  struct Answers {
    std::mutex mutex;
    std::vector<std::pair<uint64_t, std::optional<im::v1::Frame>>> ready;  // by request id
    bool wake_posted = false;
    bool closed = false;
    Post post;
    InProcessRequestStream* stream = nullptr;
  };

  // Any thread: records the answer of request `id` and wakes the loop.
  static void Deliver(const std::shared_ptr<Answers>& answers, uint64_t id,
                      std::optional<im::v1::Frame> response);
  // Loop thread.
  void TakeAnswers();
  void ExpireOverdue();
  // Answers the request submitted first, and forgets it.
  void FailOldest(im::v1::Code code, const std::string& message);

  uv_loop_t* loop_;
  Dispatch dispatch_;
  const Options options_;
  gateway::GatewayMetrics* metrics_;
  uv_timer_t timer_;
  std::shared_ptr<Answers> answers_ = std::make_shared<Answers>();
  std::map<uint64_t, Waiting> waiting_;  // by id, which is by deadline
  std::vector<im::v1::Ingress> unsent_;  // submitted since the last flush
  uint64_t next_id_ = 1;
  bool closed_ = false;
};

}  // namespace im::server
