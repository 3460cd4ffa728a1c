#include "logic/ingress/request_dispatcher.h"

#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

#include "common/logging.h"
#include "logic/reply_status.h"

namespace im::logic {
namespace {

template <typename Response>
constexpr bool kHasResponseFrame = !std::is_same_v<Response, im::v1::AckReply>;

template <typename Response>
im::v1::Code AnsweredCode(const Response& response) {
  if constexpr (kHasResponseFrame<Response>) {
    return response.status().code();
  } else {
    return im::v1::OK;
  }
}

}  // namespace

template <typename Request, typename ClientRequest, typename Response, typename Handler>
void RequestDispatcher::Run(const char* method, im::v1::Ingress& entry,
                            ClientRequest* (im::v1::Frame::*mutable_request)(),
                            Response* (im::v1::Frame::*mutable_response)(), Handler handler,
                            Respond respond) {
  const uint64_t frame_id = entry.request().id();
  const int64_t deadline_ms = entry.deadline_ms();
  Request request;
  request.mutable_caller()->Swap(entry.mutable_caller());
  request.mutable_req()->Swap((entry.mutable_request()->*mutable_request)());

  const auto started = std::chrono::steady_clock::now();
  auto answer = [this, method, frame_id, mutable_response, started,
                 respond = std::move(respond)](Response response) mutable {
    metrics_->Requests(method, im::v1::Code_Name(AnsweredCode(response))).Increment();
    metrics_->Latency(method).Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if constexpr (kHasResponseFrame<Response>) {
      im::v1::Frame frame;
      frame.set_id(frame_id);
      *(frame.*mutable_response)() = std::move(response);
      std::move(respond)(std::move(frame));
    } else {
      std::move(respond)(std::nullopt);
    }
  };
  auto refusal = [](im::v1::Code code, std::string reason) {
    Response response;
    if constexpr (kHasResponseFrame<Response>) {
      SetStatus(response.mutable_status(), code, std::move(reason));
    }
    return response;
  };
  auto expired = [this, deadline_ms] { return deadline_ms != 0 && now_ms_() >= deadline_ms; };
  if (expired()) {
    return answer(refusal(im::v1::DEADLINE_EXCEEDED, "the gateway stopped waiting for it"));
  }
  // The answer comes back here when the executor refuses the task.
  auto shared_answer = std::make_shared<decltype(answer)>(std::move(answer));
  const bool queued = executor_->TrySubmit([request = std::move(request), handler, shared_answer,
                                            expired, refusal]() mutable {
    common::ScopedRequestId scope(request.caller().request_id());
    if (expired()) {
      return (*shared_answer)(
          refusal(im::v1::DEADLINE_EXCEEDED, "waited past its deadline in logic's queue"));
    }
    handler(request, [shared_answer](Response response) { (*shared_answer)(std::move(response)); });
  });
  metrics_->executor_depth.Set(static_cast<double>(executor_->depth()));
  if (!queued) {
    metrics_->overloaded.Increment();
    (*shared_answer)(
        refusal(im::v1::RESOURCE_EXHAUSTED, "logic is overloaded: store executor queue is full"));
  }
}

void RequestDispatcher::Dispatch(im::v1::Ingress entry, Respond respond) {
  metrics_->ingress_entries.Increment();
  using F = im::v1::Frame;
  namespace v1 = im::v1;
  // Each route: the metric's method name, the request and response fields, the handler.
#define IM_ROUTE(Method, Request, req_field, resp_field, service, call)               \
  return Run<v1::Request>(                                                            \
      Method, entry, &F::mutable_##req_field, &F::mutable_##resp_field,               \
      [this](const v1::Request& r, auto done) { service->call(r, std::move(done)); }, \
      std::move(respond))
  switch (entry.request().body_case()) {
    case F::kSendReq:
      IM_ROUTE("Send", SendRequest, send_req, send_resp, chat_, Send);
    case F::kSyncReq:
      IM_ROUTE("Sync", SyncRequest, sync_req, sync_resp, chat_, Sync);
    case F::kConversationsReq:
      IM_ROUTE("Conversations", ConversationsRequest, conversations_req, conversations_resp, chat_,
               Conversations);
    case F::kReadReq:
      IM_ROUTE("Read", ReadRequest, read_req, read_resp, chat_, Read);
    case F::kGroupCreateReq:
      IM_ROUTE("GroupCreate", GroupCreateRequest, group_create_req, group_create_resp, groups_,
               Create);
    case F::kGroupJoinReq:
      IM_ROUTE("GroupJoin", GroupJoinRequest, group_join_req, group_join_resp, groups_, Join);
    case F::kGroupLeaveReq:
      IM_ROUTE("GroupLeave", GroupLeaveRequest, group_leave_req, group_leave_resp, groups_, Leave);
    case F::kGroupMembersReq:
      IM_ROUTE("GroupMembers", GroupMembersRequest, group_members_req, group_members_resp, groups_,
               Members);
    case F::kGroupSetRoleReq:
      IM_ROUTE("GroupSetRole", GroupSetRoleRequest, group_set_role_req, group_set_role_resp,
               groups_, SetRole);
    case F::kAckReq:
      return Run<v1::AckRequest, v1::AckReq, v1::AckReply>(
          "Ack", entry, &F::mutable_ack_req, nullptr,
          [this](const v1::AckRequest& r, auto done) { chat_->Ack(r, std::move(done)); },
          std::move(respond));
    default:
      break;
  }
#undef IM_ROUTE
  metrics_->Requests("Unexpected", "UNEXPECTED_FRAME").Increment();
  F error;
  error.set_id(entry.request().id());
  error.mutable_error()->set_code(v1::UNEXPECTED_FRAME);
  error.mutable_error()->set_message("the server does not accept this frame from a client");
  std::move(respond)(std::move(error));
}

}  // namespace im::logic
