#include "logic/ingress/request_dispatcher.h"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "common/logging.h"
#include "logic/reply_status.h"
#include "store/message_rules.h"

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

template <typename Response>
Response Refusal(im::v1::Code code, std::string reason) {
  Response response;
  if constexpr (kHasResponseFrame<Response>) {
    SetStatus(response.mutable_status(), code, std::move(reason));
  }
  return response;
}

constexpr char kExpiredOnArrival[] = "the gateway stopped waiting for it";
constexpr char kLoopOverloaded[] = "logic is overloaded: send loop queue is full";
constexpr char kRedisBehind[] = "logic is overloaded: Redis is behind";
constexpr char kRedisNotAnswering[] = "logic's Redis is not answering";

}  // namespace

RequestDispatcher::RequestDispatcher(SessionService* sessions, ChatService* chat,
                                     GroupService* groups, PresenceService* presence,
                                     SenderLimits* sender_limits, Executors executors,
                                     LogicMetrics* metrics, common::MillisClock now_ms, Loops loops,
                                     BeforeSendHook* before_send)
    : sessions_(sessions),
      chat_(chat),
      groups_(groups),
      presence_(presence),
      sender_limits_(sender_limits),
      metrics_(metrics),
      store_(AdmissionStage::Store(executors.store, metrics)),
      logins_(AdmissionStage::Logins(executors.logins, metrics)),
      sends_(executors.sends != nullptr ? AdmissionStage::Sends(executors.sends, metrics)
                                        : AdmissionStage::Store(executors.store, metrics)),
      now_ms_(std::move(now_ms)),
      send_loop_(loops.send),
      login_loop_(loops.login),
      before_send_(before_send) {}

template <typename Response>
absl::AnyInvocable<void(Response) &&> RequestDispatcher::AnswerAs(
    const char* method, uint64_t frame_id, Response* (im::v1::Frame::*mutable_response)(),
    Respond respond) {
  const auto started = std::chrono::steady_clock::now();
  return [this, method, frame_id, mutable_response, started,
          respond = std::move(respond)](Response response) mutable {
    metrics_->Requests(method, im::v1::Code_Name(AnsweredCode(response))).Increment();
    metrics_->Latency(method).Observe(common::SecondsSince(started));
    if constexpr (kHasResponseFrame<Response>) {
      im::v1::Frame frame;
      frame.set_id(frame_id);
      *(frame.*mutable_response)() = std::move(response);
      std::move(respond)(std::move(frame));
    } else {
      // Requests without a response frame (ack, typing) have no use for these.
      static_cast<void>(frame_id);
      static_cast<void>(mutable_response);
      std::move(respond)(std::nullopt);
    }
  };
}

bool RequestDispatcher::Expired(int64_t deadline_ms) const {
  return deadline_ms != 0 && now_ms_() >= deadline_ms;
}

bool RequestDispatcher::RefusedBySenderLimits(
    const im::v1::Ingress& entry, const std::function<Respond(uint64_t id)>& respond_to) {
  if (sender_limits_ == nullptr || entry.caller().admin()) return false;
  const im::v1::SendReq& send = entry.request().send_req();
  const SenderLimits::Refusal refusal =
      sender_limits_->Take(entry.caller().uid(), send.conv_id(), now_ms_());
  if (refusal.limit == SenderLimits::Limit::kNone) return false;
  (refusal.limit == SenderLimits::Limit::kUserInGroup ? metrics_->limited_group_sends
                                                      : metrics_->limited_user_sends)
      .Increment();
  auto refused = Refusal<im::v1::SendResp>(im::v1::RESOURCE_EXHAUSTED, refusal.reason());
  refused.mutable_status()->set_retry_after_ms(static_cast<uint32_t>(refusal.retry_after_ms));
  const char* method = store::IsChange(send.type()) ? "Change" : "Send";
  AnswerAs<im::v1::SendResp>(method, entry.request().id(), &im::v1::Frame::mutable_send_resp,
                             respond_to(entry.id()))(std::move(refused));
  return true;
}

template <typename Request, typename ClientRequest, typename Response, typename Handler>
void RequestDispatcher::Run(const AdmissionStage& stage, const char* method, im::v1::Ingress& entry,
                            ClientRequest* (im::v1::Frame::*mutable_request)(),
                            Response* (im::v1::Frame::*mutable_response)(), Handler handler,
                            Respond respond) {
  const uint64_t frame_id = entry.request().id();
  const int64_t deadline_ms = entry.deadline_ms();
  Request request;
  request.mutable_caller()->Swap(entry.mutable_caller());
  request.mutable_req()->Swap((entry.mutable_request()->*mutable_request)());

  auto answer = AnswerAs<Response>(method, frame_id, mutable_response, std::move(respond));
  if (Expired(deadline_ms)) {
    metrics_->expired_on_arrival.Increment();
    return std::move(answer)(Refusal<Response>(im::v1::DEADLINE_EXCEEDED, kExpiredOnArrival));
  }
  // Answered once: by the handler, or refused by the executor (full, or shed after waiting).
  auto shared_answer = std::make_shared<decltype(answer)>(std::move(answer));
  stage.Submit(
      [this, request = std::move(request), handler, shared_answer, deadline_ms]() mutable {
        common::ScopedRequestId scope(request.caller().request_id());
        if (Expired(deadline_ms)) {
          metrics_->expired_in_queue.Increment();
          return std::move(*shared_answer)(
              Refusal<Response>(im::v1::DEADLINE_EXCEEDED, kExpiredInQueueReason));
        }
        handler(request, [shared_answer](Response response) {
          std::move (*shared_answer)(std::move(response));
        });
      },
      [shared_answer](const char* reason, prometheus::Counter& refused) {
        refused.Increment();
        std::move (*shared_answer)(Refusal<Response>(im::v1::RESOURCE_EXHAUSTED, reason));
      });
}

void RequestDispatcher::Dispatch(im::v1::Ingress entry, Respond respond) {
  entry.mutable_caller()->clear_admin();  // a gateway's word is not the admin API's
  Route(std::move(entry), std::move(respond));
}

void RequestDispatcher::DispatchAdmin(im::v1::Ingress entry, Respond respond) {
  Route(std::move(entry), std::move(respond));
}

void RequestDispatcher::Route(im::v1::Ingress entry, Respond respond) {
  metrics_->ingress_entries.Increment();
  using F = im::v1::Frame;
  namespace v1 = im::v1;
  // Each route: the metric's method name, the request and response fields, the handler.
#define IM_ROUTE(Method, Request, req_field, resp_field, service, call)               \
  return Run<v1::Request>(                                                            \
      store_, Method, entry, &F::mutable_##req_field, &F::mutable_##resp_field,       \
      [this](const v1::Request& r, auto done) { service->call(r, std::move(done)); }, \
      std::move(respond))
  switch (entry.request().body_case()) {
    case F::kLoginReq:
      return Run<v1::LoginRequest>(
          logins_, "Login", entry, &F::mutable_login_req, &F::mutable_login_resp,
          [this](const v1::LoginRequest& r, auto done) {
            v1::LoginRequest login = r;
            login.set_gateway_id(r.caller().gateway_id());
            login.set_conn_id(r.caller().conn_id());
            login.set_remote_addr(r.caller().remote_addr());
            done(sessions_->Login(login).resp());
          },
          std::move(respond));
    case F::kSendReq:
      if (RefusedBySenderLimits(entry, [&respond](uint64_t) { return std::move(respond); })) {
        return;
      }
      if (store::IsChange(entry.request().send_req().type())) {
        IM_ROUTE("Change", SendRequest, send_req, send_resp, chat_, Change);
      }
      if (before_send_ != nullptr && !entry.caller().admin()) {
        std::vector<Respond> responds;
        responds.push_back(std::move(respond));
        std::vector<v1::Ingress> sends;
        sends.push_back(std::move(entry));
        return ScreenSends(std::move(sends), std::move(responds));
      }
      IM_ROUTE("Send", SendRequest, send_req, send_resp, chat_, Send);
    case F::kSyncReq:
      IM_ROUTE("Sync", SyncRequest, sync_req, sync_resp, chat_, Sync);
    case F::kConversationsReq:
      IM_ROUTE("Conversations", ConversationsRequest, conversations_req, conversations_resp, chat_,
               Conversations);
    case F::kReadReq:
      IM_ROUTE("Read", ReadRequest, read_req, read_resp, chat_, Read);
    case F::kReadersReq:
      IM_ROUTE("Readers", ReadersRequest, readers_req, readers_resp, chat_, Readers);
    case F::kResumeReq:
      IM_ROUTE("Resume", ResumeRequest, resume_req, resume_resp, chat_, Resume);
    case F::kResumeRenewReq:
      IM_ROUTE("ResumeRenew", ResumeRenewRequest, resume_renew_req, resume_renew_resp, chat_,
               ResumeRenew);
    case F::kPresenceSubscribeReq:
      IM_ROUTE("PresenceSubscribe", PresenceSubscribeRequest, presence_subscribe_req,
               presence_subscribe_resp, presence_, Subscribe);
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
          store_, "Ack", entry, &F::mutable_ack_req, nullptr,
          [this](const v1::AckRequest& r, auto done) { chat_->Ack(r, std::move(done)); },
          std::move(respond));
    case F::kTypingReq:
      return Run<v1::TypingRequest, v1::TypingReq, v1::AckReply>(
          store_, "Typing", entry, &F::mutable_typing_req, nullptr,
          [this](const v1::TypingRequest& r, auto done) { chat_->Typing(r, std::move(done)); },
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

void RequestDispatcher::DispatchAll(std::vector<im::v1::Ingress> entries,
                                    const std::function<Respond(uint64_t id)>& respond_to) {
  std::vector<im::v1::Ingress> sends;
  std::vector<im::v1::Ingress> logins;
  std::vector<im::v1::Ingress> syncs;
  for (im::v1::Ingress& entry : entries) {
    entry.mutable_caller()->clear_admin();  // a gateway's word is not the admin API's
    // Changes (RECALL, EDIT) read the message they change first: each on its own (Dispatch).
    if (entry.request().has_send_req() && !Expired(entry.deadline_ms()) &&
        !store::IsChange(entry.request().send_req().type())) {
      if (RefusedBySenderLimits(entry, respond_to)) {
        metrics_->ingress_entries.Increment();
        continue;
      }
      sends.push_back(std::move(entry));
    } else if (entry.request().has_login_req() && !Expired(entry.deadline_ms())) {
      logins.push_back(std::move(entry));
    } else if (entry.request().has_sync_req() && !Expired(entry.deadline_ms())) {
      syncs.push_back(std::move(entry));
    } else {
      const uint64_t id = entry.id();
      Route(std::move(entry), respond_to(id));
    }
  }
  if (!sends.empty()) {
    std::vector<Respond> responds;
    responds.reserve(sends.size());
    for (const im::v1::Ingress& send : sends) responds.push_back(respond_to(send.id()));
    ScreenSends(std::move(sends), std::move(responds));
  }
  if (!logins.empty()) DispatchLogins(std::move(logins), respond_to);
  if (!syncs.empty()) DispatchSyncs(std::move(syncs), respond_to);
}

// Requests of one stream batch bound for one place and one handler, and their answers.
template <typename Request, typename Response>
struct RequestDispatcher::Batch {
  std::vector<Request> requests;
  std::vector<absl::AnyInvocable<void(Response) &&>> responds;
  std::vector<int64_t> deadlines_ms;

  // Moves the client request out of `entry` (its body is `(entry.request().*mutable_body)()`)
  // into a Request (caller + req) answered through `respond`.
  template <typename ClientRequest>
  Request& Add(im::v1::Ingress& entry, ClientRequest* (im::v1::Frame::*mutable_body)(),
               absl::AnyInvocable<void(Response) &&> respond) {
    Request& request = requests.emplace_back();
    request.mutable_caller()->Swap(entry.mutable_caller());
    request.mutable_req()->Swap((entry.mutable_request()->*mutable_body)());
    responds.push_back(std::move(respond));
    deadlines_ms.push_back(entry.deadline_ms());
    return request;
  }
};

template <typename Request, typename Response>
void RequestDispatcher::RefuseExpired(Batch<Request, Response>& batch) {
  Batch<Request, Response> live;
  for (size_t i = 0; i < batch.requests.size(); ++i) {
    if (Expired(batch.deadlines_ms[i])) {
      metrics_->expired_in_queue.Increment();
      std::move(batch.responds[i])(
          Refusal<Response>(im::v1::DEADLINE_EXCEEDED, kExpiredInQueueReason));
      continue;
    }
    live.requests.push_back(std::move(batch.requests[i]));
    live.responds.push_back(std::move(batch.responds[i]));
  }
  batch = std::move(live);
}

template <typename Request, typename Response>
void RequestDispatcher::RefuseOverloaded(Batch<Request, Response>& batch, const char* reason,
                                         prometheus::Counter& refused, im::v1::Code code) {
  refused.Increment(static_cast<double>(batch.responds.size()));
  for (auto& respond : batch.responds) std::move(respond)(Refusal<Response>(code, reason));
}

// The logins of one stream batch as one SessionService::LoginManyOnLoop on the login loop, or
// one SessionService::LoginMany on the login executor.
void RequestDispatcher::DispatchLogins(std::vector<im::v1::Ingress> logins,
                                       const std::function<Respond(uint64_t id)>& respond_to) {
  using LoginBatch = Batch<im::v1::LoginRequest, im::v1::LoginResp>;
  auto batch = std::make_shared<LoginBatch>();
  for (im::v1::Ingress& entry : logins) {
    metrics_->ingress_entries.Increment();
    im::v1::LoginRequest& request = batch->Add(
        entry, &im::v1::Frame::mutable_login_req,
        AnswerAs<im::v1::LoginResp>("Login", entry.request().id(),
                                    &im::v1::Frame::mutable_login_resp, respond_to(entry.id())));
    request.set_gateway_id(request.caller().gateway_id());
    request.set_conn_id(request.caller().conn_id());
    request.set_remote_addr(request.caller().remote_addr());
  }
  auto answer = [batch](std::vector<im::v1::LoginReply> replies) {
    for (size_t i = 0; i < replies.size(); ++i) {
      std::move(batch->responds[i])(std::move(*replies[i].mutable_resp()));
    }
  };
  auto refuse = [this, batch](const char* reason, prometheus::Counter& refused) {
    RefuseOverloaded(*batch, reason, refused);
  };
  if (login_loop_ == nullptr) {
    return logins_.Submit(
        [this, batch, answer] {
          RefuseExpired(*batch);
          answer(sessions_->LoginMany(batch->requests));
        },
        refuse);
  }
  const bool queued = login_loop_->PostSheddable(
      [this, batch, answer, refuse] {
        // Logins have no backlog of their own to protect on this connection (the send loop's
        // deliveries are on another): a Redis that stopped answering is a dependency down, and
        // the clients back off as from any UNAVAILABLE login.
        if (login_loop_->RedisBehind()) {
          return RefuseOverloaded(*batch, kRedisNotAnswering, metrics_->overloaded_redis_behind,
                                  im::v1::UNAVAILABLE);
        }
        RefuseExpired(*batch);
        if (batch->requests.empty()) return;
        metrics_->login_loop_batches.Increment();
        sessions_->LoginManyOnLoop(batch->requests, login_loop_->sessions(), answer);
      },
      [refuse, this] { refuse(kWaitedTooLongReason, metrics_->overloaded_login_wait); });
  if (!queued) refuse(kLoginQueueFullReason, metrics_->overloaded_login_queue);
}

// The syncs of one stream batch as one ChatService::SyncMany on the store executor.
void RequestDispatcher::DispatchSyncs(std::vector<im::v1::Ingress> syncs,
                                      const std::function<Respond(uint64_t id)>& respond_to) {
  auto batch = std::make_shared<Batch<im::v1::SyncRequest, im::v1::SyncResp>>();
  for (im::v1::Ingress& entry : syncs) {
    metrics_->ingress_entries.Increment();
    batch->Add(
        entry, &im::v1::Frame::mutable_sync_req,
        AnswerAs<im::v1::SyncResp>("Sync", entry.request().id(), &im::v1::Frame::mutable_sync_resp,
                                   respond_to(entry.id())));
  }
  store_.Submit(
      [this, batch] {
        RefuseExpired(*batch);
        chat_->SyncMany(batch->requests, std::move(batch->responds));
      },
      [this, batch](const char* reason, prometheus::Counter& refused) {
        RefuseOverloaded(*batch, reason, refused);
      });
}

// Where a batch's sends wait for their before-send checks: the entries and answers of those
// let through, in the order they came.
struct RequestDispatcher::Screening {
  std::mutex mutex;
  std::vector<im::v1::Ingress> sends;
  std::vector<Respond> responds;
  std::vector<bool> passed;
  size_t unanswered = 0;
};

void RequestDispatcher::ScreenSends(std::vector<im::v1::Ingress> sends,
                                    std::vector<Respond> responds) {
  if (before_send_ == nullptr) return DispatchSends(std::move(sends), std::move(responds));
  auto screening = std::make_shared<Screening>();
  screening->sends = std::move(sends);
  screening->responds = std::move(responds);
  screening->passed.assign(screening->sends.size(), true);
  screening->unanswered = screening->sends.size();
  // Copied: a verdict may come (and change its entry) while later checks are still being asked.
  std::vector<std::pair<im::v1::Caller, im::v1::SendReq>> asked;
  for (const im::v1::Ingress& entry : screening->sends) {
    asked.emplace_back(entry.caller(), entry.request().send_req());
  }
  for (size_t i = 0; i < asked.size(); ++i) {
    before_send_->Check(asked[i].first, asked[i].second,
                        [this, screening, i](BeforeSendHook::Verdict verdict) {
                          ApplyVerdict(*screening, i, std::move(verdict));
                        });
  }
}

void RequestDispatcher::ApplyVerdict(Screening& screening, size_t i,
                                     BeforeSendHook::Verdict verdict) {
  std::unique_lock lock(screening.mutex);
  im::v1::Ingress& entry = screening.sends[i];
  if (verdict.kind == BeforeSendHook::Verdict::Kind::kReplace) {
    entry.mutable_request()->mutable_send_req()->set_body(std::move(verdict.body));
  } else if (verdict.kind == BeforeSendHook::Verdict::Kind::kRefuse) {
    screening.passed[i] = false;
    metrics_->ingress_entries.Increment();
    auto refused = Refusal<im::v1::SendResp>(verdict.code, std::move(verdict.reason));
    refused.mutable_status()->set_retry_after_ms(verdict.retry_after_ms);
    AnswerAs<im::v1::SendResp>("Send", entry.request().id(), &im::v1::Frame::mutable_send_resp,
                               std::move(screening.responds[i]))(std::move(refused));
  }
  if (--screening.unanswered > 0) return;
  std::vector<im::v1::Ingress> passed;
  std::vector<Respond> responds;
  for (size_t k = 0; k < screening.sends.size(); ++k) {
    if (!screening.passed[k]) continue;
    passed.push_back(std::move(screening.sends[k]));
    responds.push_back(std::move(screening.responds[k]));
  }
  lock.unlock();
  if (!passed.empty()) DispatchSends(std::move(passed), std::move(responds));
}

void RequestDispatcher::DispatchSends(std::vector<im::v1::Ingress> sends,
                                      std::vector<Respond> responds) {
  using SendBatch = Batch<im::v1::SendRequest, im::v1::SendResp>;
  auto on_executor = std::make_shared<SendBatch>();
  auto on_loop = std::make_shared<SendBatch>();
  for (size_t i = 0; i < sends.size(); ++i) {
    im::v1::Ingress& entry = sends[i];
    metrics_->ingress_entries.Increment();
    SendBatch& batch = send_loop_ != nullptr ? *on_loop : *on_executor;
    batch.Add(
        entry, &im::v1::Frame::mutable_send_req,
        AnswerAs<im::v1::SendResp>("Send", entry.request().id(), &im::v1::Frame::mutable_send_resp,
                                   std::move(responds[i])));
  }
  if (!on_executor->requests.empty()) {
    sends_.Submit(
        [this, on_executor] {
          RefuseExpired(*on_executor);
          chat_->SendBatch(std::move(on_executor->requests), std::move(on_executor->responds));
        },
        [this, on_executor](const char* reason, prometheus::Counter& refused) {
          RefuseOverloaded(*on_executor, reason, refused);
        });
  }
  if (!on_loop->requests.empty()) {
    // Refused at once rather than after waiting its turn in the loop's queue (which, under an
    // overload that has put Redis behind, is a long one).
    if (send_loop_->RedisBehindLately()) {
      return RefuseOverloaded(*on_loop, kRedisBehind, metrics_->overloaded_redis_behind);
    }
    const bool queued = send_loop_->PostSheddable(
        [this, on_loop] {
          if (send_loop_->RedisBehind())
            return RefuseOverloaded(*on_loop, kRedisBehind, metrics_->overloaded_redis_behind);
          RefuseExpired(*on_loop);
          chat_->SendBatchOnLoop(std::move(on_loop->requests), std::move(on_loop->responds),
                                 send_loop_->ledger());
        },
        [this, on_loop] {
          RefuseOverloaded(*on_loop, kWaitedTooLongReason, metrics_->overloaded_send_loop_wait);
        });
    if (!queued) RefuseOverloaded(*on_loop, kLoopOverloaded, metrics_->overloaded_send_loop);
  }
}

}  // namespace im::logic
