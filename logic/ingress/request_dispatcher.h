#pragma once

#include <optional>

#include "absl/functional/any_invocable.h"
#include "common/bounded_executor.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/chat_service.h"
#include "logic/group_service.h"
#include "logic/logic_metrics.h"

namespace im::logic {

// Runs a client request that a gateway forwarded (an Ingress) on the handler its frame's body
// names, on the store executor, and turns the handler's answer into the client's response frame.
// This is the one place that knows which request types logic serves: the gateway forwards any.
// A request past its deadline is answered DEADLINE_EXCEEDED without touching a store, both when
// it arrives and when the executor gets to it; a full executor answers RESOURCE_EXHAUSTED at once.
class RequestDispatcher {
 public:
  // The response frame, or nullopt for a request without one (AckReq). Called exactly once, on
  // any thread.
  using Respond = absl::AnyInvocable<void(std::optional<im::v1::Frame>) &&>;

  RequestDispatcher(ChatService* chat, GroupService* groups, common::BoundedExecutor* executor,
                    LogicMetrics* metrics, common::MillisClock now_ms)
      : chat_(chat),
        groups_(groups),
        executor_(executor),
        metrics_(metrics),
        now_ms_(std::move(now_ms)) {}

  void Dispatch(im::v1::Ingress entry, Respond respond);

 private:
  // Moves the client request out of `entry` into a `Request` (caller + req), runs
  // `handler(request, done)` on the executor and answers with a frame holding the response.
  template <typename Request, typename ClientRequest, typename Response, typename Handler>
  void Run(const char* method, im::v1::Ingress& entry,
           ClientRequest* (im::v1::Frame::*mutable_request)(),
           Response* (im::v1::Frame::*mutable_response)(), Handler handler, Respond respond);

  ChatService* chat_;
  GroupService* groups_;
  common::BoundedExecutor* executor_;
  LogicMetrics* metrics_;
  common::MillisClock now_ms_;
};

}  // namespace im::logic
