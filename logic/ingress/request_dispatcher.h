#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/bounded_executor.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/conversation/chat_service.h"
#include "logic/group/group_service.h"
#include "logic/ingress/admission_stage.h"
#include "logic/ingress/sender_limits.h"
#include "logic/logic_metrics.h"
#include "logic/loop/logic_loop.h"
#include "logic/presence/presence_service.h"
#include "logic/session/session_service.h"
#include "logic/webhooks/before_send_hook.h"

namespace im::logic {

// Runs a client request that a gateway forwarded (an Ingress) on the handler its frame's body
// names, on the store executor, and turns the handler's answer into the client's response frame.
// This is the one place that knows which request types logic serves: the gateway forwards any.
// A request past its deadline is answered DEADLINE_EXCEEDED without touching a store, both when
// it arrives and when the executor gets to it; a full executor answers RESOURCE_EXHAUSTED at once,
// and so does one that kept the request longer than its QueueWaitPolicy allows (with the retry
// hint, both). A stream batch's sends go to the send loop, its logins to the login loop and its
// syncs to the executor as one task each (Loops; without loops, logins have an executor of their
// own).
class RequestDispatcher {
 public:
  // Where blocking work runs.
  struct Executors {
    common::BoundedExecutor* store;  // every request but logins (and sends, given `sends`)
    common::BoundedExecutor* logins;
    // Sends, when there is no send loop: one thread, so that the batches a gateway loop hands
    // over are numbered in the order they came, as the send loop numbers them (a connection's
    // pipelined sends get seqs in the order it sent them). Null: the store executor.
    common::BoundedExecutor* sends = nullptr;
  };

  // The response frame, or nullopt for a request without one (AckReq). Called exactly once, on
  // any thread.
  using Respond = absl::AnyInvocable<void(std::optional<im::v1::Frame>) &&>;

  // The node's event loops, where work runs without a thread blocked per round trip; both null
  // in process (everything on the executors).
  struct Loops {
    // A stream batch's sends take their claims and seqs here (ChatService::SendBatchOnLoop).
    LogicLoop* send = nullptr;
    // A stream batch's logins are registered here (SessionService::LoginManyOnLoop): a queue and
    // a thread of their own, so that a login storm and a send flood do not wait for each other.
    LogicLoop* login = nullptr;
  };
  // `sender_limits` (may be null: none) answers a send over its sender's rate at once.
  // `before_send` (may be null: none) asks the app about each new message a user sends (not the
  // admin API's) before it goes to the send loop.
  RequestDispatcher(SessionService* sessions, ChatService* chat, GroupService* groups,
                    PresenceService* presence, SenderLimits* sender_limits, Executors executors,
                    LogicMetrics* metrics, common::MillisClock now_ms, Loops loops,
                    BeforeSendHook* before_send = nullptr);

  // A gateway's request: its caller is never admin (the flag is dropped).
  void Dispatch(im::v1::Ingress entry, Respond respond);
  // The admin API's request (logic/admin): its caller's admin flag stands, and its sends are not
  // held by the sender limits.
  void DispatchAdmin(im::v1::Ingress entry, Respond respond);
  // Dispatch for every entry of a batch (`respond_to(id)` makes the answer of entry `id`); its
  // sends go as one batch (to the send loop, if any; else to the executor), so that their
  // claims and seqs cost one round trip.
  void DispatchAll(std::vector<im::v1::Ingress> entries,
                   const std::function<Respond(uint64_t id)>& respond_to);

 private:
  template <typename Request, typename Response>
  struct Batch;
  // Runs `entry` on the handler its frame's body names (Dispatch without touching the caller).
  void Route(im::v1::Ingress entry, Respond respond);
  // The sends of one batch (none expired on arrival), single and group chats together: one
  // ChatService::SendBatchOnLoop on the send loop when there is one, else one
  // ChatService::SendBatch on the executor.
  void DispatchSends(std::vector<im::v1::Ingress> sends, std::vector<Respond> responds);
  // The sends of a batch past the before-send check (all of them when there is none): those the
  // app refuses are answered, those it rewrites carry the new body, the rest go on to
  // DispatchSends, once every check is answered (on the HTTP client's thread then).
  void ScreenSends(std::vector<im::v1::Ingress> sends, std::vector<Respond> responds);
  struct Screening;
  // Applies the verdict on send `i` of `screening`; the last one dispatches those let through.
  void ApplyVerdict(Screening& screening, size_t i, BeforeSendHook::Verdict verdict);
  // The logins of one batch (none expired on arrival) as one SessionService::LoginManyOnLoop on
  // the login loop when there is one, else one SessionService::LoginMany on the login executor.
  void DispatchLogins(std::vector<im::v1::Ingress> logins,
                      const std::function<Respond(uint64_t id)>& respond_to);
  // The syncs of one batch (none expired on arrival) as one ChatService::SyncMany: their pages
  // in a few round trips together.
  void DispatchSyncs(std::vector<im::v1::Ingress> syncs,
                     const std::function<Respond(uint64_t id)>& respond_to);
  // Answers DEADLINE_EXCEEDED what waited past its deadline and keeps the rest in `batch`.
  template <typename Request, typename Response>
  void RefuseExpired(Batch<Request, Response>& batch);
  template <typename Request, typename Response>
  // Refuses every request of `batch` with `code` (RESOURCE_EXHAUSTED and its retry hint unless
  // said otherwise) and `reason`, counted in `refused`.
  void RefuseOverloaded(Batch<Request, Response>& batch, const char* reason,
                        prometheus::Counter& refused,
                        im::v1::Code code = im::v1::RESOURCE_EXHAUSTED);
  // Turns a handler's response into the client's frame, counting it by method and code.
  template <typename Response>
  absl::AnyInvocable<void(Response) &&> AnswerAs(const char* method, uint64_t frame_id,
                                                 Response* (im::v1::Frame::*mutable_response)(),
                                                 Respond respond);
  bool Expired(int64_t deadline_ms) const;
  // Whether a send (or change) is over its sender's SenderLimits rate; if so it is answered
  // through `respond_to(entry.id())` at once: RESOURCE_EXHAUSTED with the wait as retry hint.
  bool RefusedBySenderLimits(const im::v1::Ingress& entry,
                             const std::function<Respond(uint64_t id)>& respond_to);

  // Moves the client request out of `entry` into a `Request` (caller + req), runs
  // `handler(request, done)` on `stage` and answers with a frame holding the response.
  template <typename Request, typename ClientRequest, typename Response, typename Handler>
  void Run(const AdmissionStage& stage, const char* method, im::v1::Ingress& entry,
           ClientRequest* (im::v1::Frame::*mutable_request)(),
           Response* (im::v1::Frame::*mutable_response)(), Handler handler, Respond respond);

  SessionService* sessions_;
  ChatService* chat_;
  GroupService* groups_;
  PresenceService* presence_;
  SenderLimits* sender_limits_;
  LogicMetrics* metrics_;
  const AdmissionStage store_;
  const AdmissionStage logins_;
  const AdmissionStage sends_;  // store_ when there is no send executor
  common::MillisClock now_ms_;
  LogicLoop* send_loop_;
  LogicLoop* login_loop_;
  BeforeSendHook* before_send_;
};

}  // namespace im::logic
