#include "logic/conversation/chat_service.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/parse_int.h"
#include "fmt/format.h"
#include "logic/conversation/dedup_entry.h"
#include "logic/reply_status.h"
#include "store/message_rules.h"

namespace im::logic {
namespace {

using common::ParseInt;

// A send's answer, given once by a callback that must be copyable (std::function): when the
// pushes of a message have ended, or the fan-out bus holds it.
std::function<void()> AnswerLater(im::v1::SendResp resp,
                                  ChatService::Respond<im::v1::SendResp> respond) {
  auto answer =
      std::make_shared<std::pair<im::v1::SendResp, ChatService::Respond<im::v1::SendResp>>>(
          std::move(resp), std::move(respond));
  return [answer] { std::move(answer->second)(std::move(answer->first)); };
}

constexpr size_t kMaxClientMsgIdBytes = 64;
constexpr auto kPendingPoll = std::chrono::milliseconds(5);
// Receipts waiting to be pushed, at most; past it they are dropped (a sender can still ask).
constexpr size_t kMaxWaitingReceipts = 100'000;
// A read that jumps far gives receipts to the senders of this many messages before it, at most.
constexpr uint32_t kReceiptScanMessages = 200;
// Reader names per ReadersResp page, at most.
constexpr uint32_t kReadersPageMax = 500;
// Users typing at once that a node keeps track of (TypingLimiter): about 100 bytes each.
constexpr size_t kMaxTypingUsers = 100'000;

// Conversations page tokens: "<updated_ms>:<conv_id>" of the last conversation returned.
std::string EncodePageToken(const im::v1::Conversation& last) {
  return fmt::format("{}:{}", last.updated_ms(), last.conv_id());
}

std::optional<store::ConversationPosition> DecodePageToken(std::string_view token) {
  const size_t colon = token.find(':');
  store::ConversationPosition position;
  if (colon == std::string_view::npos || !ParseInt(token.substr(0, colon), &position.updated_ms)) {
    return std::nullopt;
  }
  position.conv_id = std::string(token.substr(colon + 1));
  return position;
}

// The groups that sends of the batch go to (sorted, unique).
std::vector<std::string> GroupsOf(const std::vector<im::v1::SendRequest>& requests) {
  std::vector<std::string> groups;
  for (const im::v1::SendRequest& request : requests) {
    std::optional<ConversationId> conversation = ConversationId::Parse(request.req().conv_id());
    if (conversation && conversation->kind == ConversationId::Kind::kGroup) {
      groups.push_back(conversation->group_id);
    }
  }
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

}  // namespace

ChatService::ChatService(const LogicOptions& options, ChatDependencies deps, Clock now_ms)
    : options_(options),
      deps_(deps),
      now_ms_(std::move(now_ms)),
      // As many persisted messages may wait for delivery as may wait to be persisted.
      delivery_(
          [this](common::BoundedExecutor::Task task) { return SubmitDelivery(std::move(task)); },
          options.delivery_queue,
          [this](std::vector<Persisted>& batch) { DeliverPersisted(batch); }),
      publishing_(deps.executor, options.delivery_queue,
                  [this](std::vector<GroupPublish>& batch) { PublishAll(batch); }),
      order_(PendingTtlMs(), common::SteadyMillis),
      typing_(options.typing_interval_ms, kMaxTypingUsers),
      resume_tokens_(options.token_secret, int64_t{options.resume_window_sec} * 1000),
      receipts_(deps.executor, kMaxWaitingReceipts,
                [this](std::vector<GroupReceipt>& batch) { PushReceipts(batch); }) {}

ChatService::Access ChatService::Authorize(const im::v1::Caller& caller, const std::string& conv_id,
                                           const KnownMembers* known) {
  if (!IsSystemAdmin(caller)) return Authorize(caller.uid(), conv_id, known);
  // The system (the admin API) may use every conversation, as an OWNER would a group.
  Access access;
  access.conversation = ConversationId::Parse(conv_id);
  access.role = im::v1::OWNER;
  if (!access.conversation) {
    access.code = im::v1::INVALID_CONVERSATION;
    access.reason = "conversation id must be s:<uid>:<uid> (ordered, distinct) or g:<group id>";
  }
  return access;
}

ChatService::Access ChatService::Authorize(const std::string& uid, const std::string& conv_id,
                                           const KnownMembers* known) {
  Access access;
  access.conversation = ConversationId::Parse(conv_id);
  if (!access.conversation) {
    access.code = im::v1::INVALID_CONVERSATION;
    access.reason = "conversation id must be s:<uid>:<uid> (ordered, distinct) or g:<group id>";
  } else if (access.conversation->kind == ConversationId::Kind::kGroup) {
    absl::StatusOr<std::optional<store::GroupMember>> member =
        FindMember(access.conversation->group_id, uid, known);
    if (!member.ok()) {
      access.code = CodeOf(member.status());
      access.reason = fmt::format("group membership unknown: {}", member.status().ToString());
    } else if (!member->has_value()) {
      access.code = im::v1::NOT_MEMBER;
      access.reason = "not a member of this group";
    } else {
      access.visible_after = (*member)->joined_seq;
      access.role = (*member)->role;
    }
  } else if (!access.conversation->Includes(uid)) {
    access.code = im::v1::PERMISSION_DENIED;
    access.reason = "not a participant of this conversation";
  }
  if (access.code != im::v1::OK) access.conversation.reset();
  return access;
}

bool ChatService::IsSystemAdmin(const im::v1::Caller& caller) {
  return caller.admin() && caller.uid() == kSystemUid;
}

int64_t ChatService::MutedUntil(const im::v1::Caller& caller) const {
  if (IsSystemAdmin(caller) || deps_.restrictions == nullptr) return 0;
  return deps_.restrictions->UserMutedUntil(caller.uid());
}

int64_t ChatService::GroupMutedFor(const im::v1::Caller& caller, const Access& access) const {
  if (IsSystemAdmin(caller) || deps_.restrictions == nullptr ||
      access.conversation->kind != ConversationId::Kind::kGroup || access.role != im::v1::MEMBER) {
    return 0;
  }
  return deps_.restrictions->GroupMutedUntil(access.conversation->group_id);
}

absl::StatusOr<std::optional<store::GroupMember>> ChatService::FindMember(
    const std::string& group_id, const std::string& uid, const KnownMembers* known) {
  const auto list = known != nullptr ? known->find(group_id) : KnownMembers::const_iterator();
  if (known == nullptr || list == known->end()) return deps_.members->Find(group_id, uid);
  return MemberLists::MemberOf(*list->second, uid);
}

ChatService::Access ChatService::ResolveSendTarget(const im::v1::Caller& caller,
                                                   const im::v1::SendReq& req,
                                                   const KnownMembers* known) {
  if (req.conv_id().empty()) {
    Access access;
    access.conversation = ConversationId::Single(caller.uid(), req.to_uid());
    if (!access.conversation) {
      access.code = im::v1::INVALID_CONVERSATION;
      access.reason = "to_uid must be a valid uid other than the sender";
    }
    return access;
  }
  Access access = Authorize(caller, req.conv_id(), known);
  if (access.conversation && !req.to_uid().empty() &&
      (access.conversation->kind == ConversationId::Kind::kGroup ||
       access.conversation->PeerOf(caller.uid()) != req.to_uid())) {
    access.conversation.reset();
    access.code = im::v1::INVALID_ARGUMENT;
    access.reason = "conv_id and to_uid name different conversations";
  }
  return access;
}

std::optional<ChatService::Claim> ChatService::ClaimOf(
    const absl::StatusOr<store::SendLedger::Outcome>& outcome) {
  // Without Redis the send goes on unclaimed (and asks for its seq again, which is refused
  // while Redis is down): MySQL's unique key still stores it once.
  if (!outcome.ok()) return Claim{};
  if (!outcome->existing) {
    Claim owned;
    owned.owned = true;
    owned.seq = outcome->seq;
    return owned;
  }
  if (*outcome->existing != kPendingSend) {
    Claim found;
    found.stored = DecodeDedup(*outcome->existing);
    return found;
  }
  return std::nullopt;  // another attempt of this very send is being stored
}

int64_t ChatService::PendingTtlMs() const {
  return int64_t{options_.write_deadline_ms} + options_.mysql.read_write_timeout.count();
}

ChatService::Claim ChatService::ClaimSend(const std::string& dedup_key,
                                          const std::string& conv_id) {
  // Real time, not the injectable clock: this bounds how long the thread actually waits.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(PendingTtlMs());
  for (;;) {
    absl::StatusOr<store::SendLedger::Outcome> outcome =
        std::move(ClaimInSeqOrder({store::SendLedger::Claim{dedup_key, conv_id}}).front());
    if (std::optional<Claim> claim = ClaimOf(outcome)) return std::move(*claim);
    // Another attempt of this very send is being stored: wait for its answer rather than take a
    // second seq (which would leave a hole that Sync must wait out).
    if (std::chrono::steady_clock::now() >= give_up) {
      Claim busy;
      busy.refusal = absl::DeadlineExceededError(
          "an earlier attempt of this send is still being stored; retry");
      return busy;
    }
    std::this_thread::sleep_for(kPendingPoll);
  }
}

store::AsyncSendLedger::Outcomes ChatService::ClaimInSeqOrder(
    const std::vector<store::SendLedger::Claim>& claims) {
  // One claim call at a time on the executor, its seqs expected by SeqOrder before the next
  // call claims: otherwise a thread that took seq 6 could persist and deliver it while the thread
  // that took 5 has not said so yet (a descheduled thread may take milliseconds), and 6 would
  // overtake 5 at every device. The send loop needs no lock: its replies arrive in claim order on
  // its one thread.
  std::lock_guard<std::mutex> lock(executor_claims_mutex_);
  StoreTimer timer(&deps_.metrics->store_dedup_claim);
  store::AsyncSendLedger::Outcomes outcomes =
      deps_.ledger->ClaimAndNumberMany(claims, kPendingSend, PendingTtlMs());
  for (size_t k = 0; k < claims.size(); ++k) {
    if (outcomes[k].ok() && outcomes[k]->seq) order_.Expect(claims[k].conv_id, *outcomes[k]->seq);
  }
  return outcomes;
}

absl::Status ChatService::OnSeqTaken(const std::string& conv_id, uint64_t seq) {
  deps_.metrics->seq_counters_behind.Increment();
  IM_LOG_RATE_LIMITED(spdlog::level::warn,
                      "{}: seq {} was handed out again (the counter is behind the stored "
                      "messages: Redis lost writes); the counter is restored from MySQL",
                      conv_id, seq);
  auto forget = [this, conv_id] {
    if (absl::Status status = deps_.seqs->Forget(conv_id); !status.ok()) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "{}: the seq counter is not dropped: {}", conv_id,
                          status.ToString());
    }
  };
  const bool on_loop = deps_.loop != nullptr && deps_.loop->InLoopThread();
  if (!deps_.executor->TrySubmit(forget)) {
    // A writer thread may wait for Redis; the loop must not: the next send that finds the counter
    // behind tries again.
    if (!on_loop) forget();
  }
  return absl::AbortedError(
      "the conversation's sequence counter was behind its stored messages and is restored: send "
      "again");
}

void ChatService::ReleaseClaimAfterWrite(const std::string& dedup_key) {
  if (deps_.loop != nullptr && deps_.loop->InLoopThread()) {
    return deps_.loop->dedup()->Delete(dedup_key, [](absl::Status status) {
      if (!status.ok()) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "send claim not released (it expires): {}",
                            status.ToString());
      }
    });
  }
  // A writer thread: the round trip goes to the executor, or is made here when it is full.
  if (!deps_.executor->TrySubmit([this, dedup_key] { ReleaseClaim(dedup_key); })) {
    ReleaseClaim(dedup_key);
  }
}

void ChatService::ReleaseClaim(const std::string& dedup_key) {
  if (absl::Status status = deps_.dedup->Delete(dedup_key); !status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "send claim not released (it expires): {}",
                        status.ToString());
  }
}

void ChatService::Send(const im::v1::SendRequest& request, Respond<im::v1::SendResp> respond) {
  std::optional<SendTarget> target = PrepareSend(request, respond);
  if (!target) return;
  PersistOne(ContinueSend(request, *target, ClaimSend(target->dedup_key, target->conv_id),
                          std::move(respond)));
}

void ChatService::PersistOne(std::optional<MessageWriter::Write> write) {
  if (!write) return;
  std::vector<MessageWriter::Write> writes;
  writes.push_back(std::move(*write));
  deps_.writer->SubmitMany(std::move(writes));
}

ChatService::PreparedBatch ChatService::Prepare(std::vector<im::v1::SendRequest> requests,
                                                std::vector<Respond<im::v1::SendResp>> responds,
                                                const KnownMembers* known) {
  PreparedBatch batch;
  batch.requests = std::move(requests);
  batch.responds = std::move(responds);
  for (size_t i = 0; i < batch.requests.size(); ++i) {
    common::ScopedRequestId scope(batch.requests[i].caller().request_id());
    if (std::optional<SendTarget> target =
            PrepareSend(batch.requests[i], batch.responds[i], known)) {
      batch.claims.push_back(store::SendLedger::Claim{target->dedup_key, target->conv_id});
      batch.targets.push_back(std::move(*target));
      batch.prepared.push_back(i);
    }
  }
  return batch;
}

void ChatService::SendBatch(std::vector<im::v1::SendRequest> requests,
                            std::vector<Respond<im::v1::SendResp>> responds) {
  auto batch = std::make_shared<PreparedBatch>(Prepare(std::move(requests), std::move(responds)));
  if (batch->claims.empty()) return;
  // Every claim and seq of the batch in one round trip.
  store::AsyncSendLedger::Outcomes outcomes = ClaimInSeqOrder(batch->claims);
  ContinueBatch(batch, outcomes, /*on_loop=*/false);
}

void ChatService::SendBatchOnLoop(std::vector<im::v1::SendRequest> requests,
                                  std::vector<Respond<im::v1::SendResp>> responds,
                                  store::AsyncSendLedger* ledger) {
  SendBatchOnLoop(
      std::make_shared<ArrivedBatch>(ArrivedBatch{std::move(requests), std::move(responds)}),
      ledger, /*lists_loaded=*/false);
}

void ChatService::SendBatchOnLoop(const std::shared_ptr<ArrivedBatch>& sends,
                                  store::AsyncSendLedger* ledger, bool lists_loaded) {
  std::vector<std::string> groups = GroupsOf(sends->requests);
  if (groups.empty()) return ClaimOnLoop(*sends, nullptr, ledger);
  if (deps_.loop->versions() == nullptr) return SendBatchOnExecutor(sends);
  deps_.loop->versions()->VersionMany(
      groups, [this, sends, ledger, lists_loaded,
               groups](absl::StatusOr<std::vector<std::string>> versions) mutable {
        // Redis failing: the executor's blocking path answers with what it finds.
        if (!versions.ok()) return SendBatchOnExecutor(sends);
        KnownMembers known;
        std::vector<std::string> missing;
        for (size_t i = 0; i < groups.size(); ++i) {
          if (auto list = deps_.members->LocalCopyOf(groups[i], (*versions)[i])) {
            known.emplace(groups[i], std::move(list));
          } else {
            missing.push_back(groups[i]);
          }
        }
        if (missing.empty()) return ClaimOnLoop(*sends, &known, ledger);
        // Changed again while they were loaded (rare): the blocking path.
        if (lists_loaded) return SendBatchOnExecutor(sends);
        LoadListsThenSendOnLoop(sends, std::move(missing), ledger);
      });
}

void ChatService::LoadListsThenSendOnLoop(const std::shared_ptr<ArrivedBatch>& sends,
                                          std::vector<std::string> groups,
                                          store::AsyncSendLedger* ledger) {
  SubmitOrRefuse(sends, [this, sends, groups = std::move(groups), ledger] {
    for (const std::string& group_id : groups) {
      // A list that cannot be loaded is asked for again by the blocking path, which answers.
      if (absl::Status status = deps_.members->Get(group_id).status(); !status.ok()) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "member list of {} not loaded: {}", group_id,
                            status.ToString());
      }
    }
    // Back to the loop, so that the batch's seqs are taken there, in order with the others.
    if (!deps_.loop->Post([this, sends, ledger] { SendBatchOnLoop(sends, ledger, true); })) {
      SendBatch(std::move(sends->requests), std::move(sends->responds));
    }
  });
}

void ChatService::SendBatchOnExecutor(const std::shared_ptr<ArrivedBatch>& sends) {
  SubmitOrRefuse(
      sends, [this, sends] { SendBatch(std::move(sends->requests), std::move(sends->responds)); });
}

void ChatService::SubmitOrRefuse(const std::shared_ptr<ArrivedBatch>& sends,
                                 common::BoundedExecutor::Task run) {
  auto refuse_all = [this, sends](const char* reason, prometheus::Counter& counter) {
    for (size_t i = 0; i < sends->requests.size(); ++i) {
      RefuseOverloaded(sends->requests[i], std::move(sends->responds[i]), reason, counter);
    }
  };
  const bool queued = deps_.executor->TrySubmit(std::move(run), [this, refuse_all] {
    refuse_all(kWaitedTooLongReason, deps_.metrics->overloaded_executor_wait);
  });
  if (!queued) refuse_all(kExecutorFullReason, deps_.metrics->overloaded_executor);
}

void ChatService::RefuseOverloaded(const im::v1::SendRequest& request,
                                   Respond<im::v1::SendResp> respond, const char* reason,
                                   prometheus::Counter& counter) {
  counter.Increment();
  im::v1::SendResp resp;
  resp.set_client_msg_id(request.req().client_msg_id());
  SetStatus(resp.mutable_status(), im::v1::RESOURCE_EXHAUSTED, reason);
  std::move(respond)(std::move(resp));
}

void ChatService::ClaimOnLoop(ArrivedBatch& sends, const KnownMembers* known,
                              store::AsyncSendLedger* ledger) {
  auto batch = std::make_shared<PreparedBatch>(
      Prepare(std::move(sends.requests), std::move(sends.responds), known));
  if (batch->claims.empty()) return;
  deps_.metrics->send_loop_batches.Increment();
  const auto started = std::chrono::steady_clock::now();
  ledger->ClaimAndNumberMany(
      batch->claims, kPendingSend, PendingTtlMs(),
      [this, batch, started](store::AsyncSendLedger::Outcomes outcomes) {
        deps_.metrics->store_dedup_claim.Observe(common::SecondsSince(started));
        ContinueBatch(batch, outcomes, /*on_loop=*/true);
      });
}

void ChatService::ContinueBatch(const std::shared_ptr<PreparedBatch>& batch,
                                store::AsyncSendLedger::Outcomes& outcomes, bool on_loop) {
  std::vector<MessageWriter::Write> writes;
  // Sends that need a blocking step: another attempt of the same send is being stored (or came
  // earlier in this batch, and is now with the writer) and this one waits for its answer; and,
  // on a loop, a counter to restore from MySQL or a claim Redis could not take.
  std::vector<std::pair<size_t, std::optional<Claim>>> blocking;
  for (size_t k = 0; k < batch->prepared.size(); ++k) {
    const im::v1::SendRequest& request = batch->requests[batch->prepared[k]];
    common::ScopedRequestId scope(request.caller().request_id());
    std::optional<Claim> claim = ClaimOf(outcomes[k]);
    const bool answered_or_numbered =
        claim && (claim->stored || !claim->refusal.ok() || (claim->owned && claim->seq));
    if (!claim || (on_loop && !answered_or_numbered)) {
      blocking.emplace_back(k, std::move(claim));
      continue;
    }
    if (std::optional<MessageWriter::Write> write =
            ContinueSend(request, batch->targets[k], std::move(*claim),
                         std::move(batch->responds[batch->prepared[k]]))) {
      writes.push_back(std::move(*write));
    }
  }
  // The batch's messages reach the writer together: one transaction stores them all.
  deps_.writer->SubmitMany(std::move(writes));
  for (auto& [k, claim] : blocking) {
    const bool owned = claim && claim->owned;
    // Claimed without a seq (the conversation's counter is restored from MySQL first): numbered
    // on the executor while the loop numbers the conversation's next sends, which wait in SeqOrder
    // until this one's seq is expected rather than overtake it. Not a send that waits for another
    // attempt of itself: that attempt's delivery would wait for this hold, and the hold for it.
    SeqOrder::Hold hold = on_loop && owned && !claim->seq
                              ? order_.HoldConversation(batch->targets[k].conv_id)
                              : SeqOrder::Hold();
    auto finish = [this, batch, k = k, claim = std::move(claim), hold = std::move(hold)]() mutable {
      const im::v1::SendRequest& request = batch->requests[batch->prepared[k]];
      common::ScopedRequestId scope(request.caller().request_id());
      SendTarget& target = batch->targets[k];
      PersistOne(ContinueSend(
          request, target, claim ? std::move(*claim) : ClaimSend(target.dedup_key, target.conv_id),
          std::move(batch->responds[batch->prepared[k]])));
      hold.Release();  // its seq, if it took one, is expected by now
    };
    if (!on_loop) {
      finish();
    } else if (!deps_.executor->TrySubmit(std::move(finish))) {
      // Overloaded: refused now. A claim this attempt took is released: its resend (the same
      // client_msg_id, after the retry hint) would otherwise find it "being stored", wait for it
      // on the executor and be refused again, until the claim expired (PendingTtlMs).
      if (owned) ReleaseClaimAfterWrite(batch->targets[k].dedup_key);
      RefuseOverloaded(batch->requests[batch->prepared[k]],
                       std::move(batch->responds[batch->prepared[k]]), kExecutorFullReason,
                       deps_.metrics->overloaded_executor);
    }
  }
}

std::optional<ChatService::SendTarget> ChatService::PrepareSend(const im::v1::SendRequest& request,
                                                                Respond<im::v1::SendResp>& respond,
                                                                const KnownMembers* known,
                                                                bool checked_change) {
  const im::v1::Caller& caller = request.caller();
  const im::v1::SendReq& req = request.req();
  auto refuse = [&](im::v1::Code code, std::string reason) -> std::optional<SendTarget> {
    im::v1::SendResp resp;
    resp.set_client_msg_id(req.client_msg_id());
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
    return std::nullopt;
  };
  if (req.client_msg_id().empty() || req.client_msg_id().size() > kMaxClientMsgIdBytes) {
    return refuse(im::v1::INVALID_ARGUMENT, "client_msg_id must be 1-64 bytes");
  }
  if (req.body().size() > options_.max_body_bytes) {
    return refuse(im::v1::BODY_TOO_LARGE, fmt::format("body is {} bytes; the limit is {}",
                                                      req.body().size(), options_.max_body_bytes));
  }
  if (!im::v1::MessageType_IsValid(req.type()) ||
      (req.type() == im::v1::SYSTEM && !caller.admin()) ||
      (store::IsChange(req.type()) && !checked_change)) {
    return refuse(im::v1::INVALID_ARGUMENT,
                  "message type must be TEXT, IMAGE, FILE, CUSTOM, RECALL or EDIT");
  }
  if (const int64_t until = MutedUntil(caller); until != 0) {
    return refuse(im::v1::MUTED,
                  fmt::format("muted by an administrator until {} (Unix ms)", until));
  }
  if (req.ref_seq() != 0 && !store::IsChange(req.type())) {
    return refuse(im::v1::INVALID_ARGUMENT, "ref_seq is for RECALL and EDIT only");
  }
  // Room with the writer before anything touches Redis: past it the send is refused now,
  // before it takes a seq.
  std::optional<MessageWriter::Room> room = deps_.writer->Reserve();
  if (!room) return refuse(im::v1::RESOURCE_EXHAUSTED, kWriteQueueFullReason);
  Access access = ResolveSendTarget(caller, req, known);
  if (!access.conversation) return refuse(access.code, access.reason);
  if (const int64_t until = GroupMutedFor(caller, access); until != 0) {
    return refuse(im::v1::MUTED,
                  fmt::format("the group is muted for its members until {} (Unix ms)", until));
  }
  return SendTarget{*access.conversation, access.conversation->ToString(),
                    DedupKey(caller.uid(), req.client_msg_id()), std::move(*room)};
}

std::optional<MessageWriter::Write> ChatService::ContinueSend(const im::v1::SendRequest& request,
                                                              SendTarget& target, Claim claim,
                                                              Respond<im::v1::SendResp> respond) {
  const im::v1::Caller& caller = request.caller();
  const im::v1::SendReq& req = request.req();
  const ConversationId& conversation = target.conversation;
  const std::string& conv_id = target.conv_id;
  const std::string& dedup_key = target.dedup_key;
  im::v1::SendResp resp;
  resp.set_client_msg_id(req.client_msg_id());
  auto refuse = [&](im::v1::Code code, std::string reason) -> std::optional<MessageWriter::Write> {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
    return std::nullopt;
  };
  if (!claim.refusal.ok()) {
    return refuse(CodeOf(claim.refusal), std::string(claim.refusal.message()));
  }
  if (claim.stored) {
    claim.stored->set_client_msg_id(req.client_msg_id());
    SetStatus(claim.stored->mutable_status(), im::v1::OK);
    if (conversation.kind == ConversationId::Kind::kGroup) {
      RepublishThenRespond(caller, std::move(*claim.stored), std::move(respond));
    } else {
      RedeliverThenRespond(caller, conversation, std::move(*claim.stored), std::move(respond));
    }
    return std::nullopt;
  }
  absl::StatusOr<uint64_t> seq = [&]() -> absl::StatusOr<uint64_t> {
    if (claim.seq) return *claim.seq;
    StoreTimer timer(&deps_.metrics->store_seq_next);  // unclaimed: Redis failed the claim
    return deps_.seqs->Next(conv_id);
  }();
  if (!seq.ok()) {
    if (claim.owned) ReleaseClaim(dedup_key);
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "send {}: no seq for {}: {}", caller.request_id(),
                        conv_id, seq.status().ToString());
    return refuse(CodeOf(seq.status()), std::string(seq.status().message()));
  }
  spdlog::debug("send {}: {}#{} from {}", caller.request_id(), conv_id, *seq, caller.uid());
  order_.Expect(conv_id, *seq);

  store::NewMessage message;
  im::v1::Message& m = message.message;
  m.set_conv_id(conv_id);
  m.set_seq(*seq);
  m.set_msg_id(deps_.msg_ids->Next());
  m.set_sender(caller.uid());
  m.set_client_msg_id(req.client_msg_id());
  m.set_type(req.type());
  m.set_body(req.body());
  m.set_ref_seq(req.ref_seq());
  m.set_created_ms(now_ms_());
  // A group's members got their conversation rows when they joined.
  if (conversation.kind == ConversationId::Kind::kSingle) {
    message.participants = {conversation.first_uid, conversation.second_uid};
  }

  // The writer answers through OnPersisted, also when it refuses the message (queue full).
  MessageWriter::Done persisted =
      [this, caller, conversation, conv_id, taken = *seq, dedup_key, claimed = claim.owned,
       respond = std::move(respond)](absl::StatusOr<store::AppendOutcome> outcome) mutable {
        common::ScopedRequestId scope(caller.request_id());  // the loop or a writer thread
        if (outcome.ok() && outcome->seq_taken) outcome = OnSeqTaken(conv_id, taken);
        // Not stored: free the client_msg_id for the client's retry.
        if (!outcome.ok() && claimed) ReleaseClaimAfterWrite(dedup_key);
        order_.Complete(conv_id, taken,
                        OnPersisted(caller, conversation, std::move(outcome), std::move(respond)));
      };
  return MessageWriter::Write{std::move(message), std::move(persisted), std::move(target.room)};
}

SeqOrder::Deliver ChatService::OnPersisted(const im::v1::Caller& caller,
                                           const ConversationId& conversation,
                                           absl::StatusOr<store::AppendOutcome> outcome,
                                           Respond<im::v1::SendResp> respond) {
  im::v1::SendResp resp;
  if (!outcome.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "send {}: not stored: {}", caller.request_id(),
                        outcome.status().ToString());
    SetStatus(resp.mutable_status(), outcome.status());
    std::move(respond)(std::move(resp));
    return nullptr;
  }
  const im::v1::Message& stored = outcome->stored;
  spdlog::debug("send {}: stored {}#{}{}", caller.request_id(), stored.conv_id(), stored.seq(),
                outcome->inserted ? "" : " (a retry: the original)");
  SetStatus(resp.mutable_status(), im::v1::OK);
  resp.set_conv_id(stored.conv_id());
  resp.set_seq(stored.seq());
  resp.set_msg_id(stored.msg_id());
  resp.set_server_time_ms(stored.created_ms());
  resp.set_client_msg_id(stored.client_msg_id());
  auto message = std::make_shared<im::v1::Message>(stored);
  if (conversation.kind == ConversationId::Kind::kGroup) {
    // Answered once published: the publish, and so the answer, waits for lower seqs.
    return [this, caller, message, resp = std::move(resp), respond = std::move(respond)]() mutable {
      PublishThenRespond(caller, message, std::move(resp), std::move(respond));
    };
  }
  // Answered once pushed (Persisted).
  return [this, persisted = Persisted{caller, conversation, std::move(message), std::move(resp),
                                      std::move(respond)}]() mutable {
    Deliver(std::move(persisted));
  };
}

void ChatService::Deliver(Persisted persisted) {
  if (deps_.webhooks != nullptr) {
    persisted.respond = deps_.webhooks->AfterSend(persisted.message, std::move(persisted.respond));
  }
  if (!delivery_.TryAdd(std::move(persisted))) {
    // Retries must find the answer, so that one is written here; the sender is told to send
    // again (the message is stored: the retry is answered with it, and pushes it).
    // (Off the loop, a round trip under SeqOrder's lock, but only while delivery is a full queue
    // behind.)
    RecordAnswers({DedupAnswer(*persisted.message)});
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "send {}: push of {}#{} skipped: delivery is behind",
                        persisted.sender.request_id(), persisted.message->conv_id(),
                        persisted.message->seq());
    SetStatus(persisted.resp.mutable_status(), im::v1::RESOURCE_EXHAUSTED,
              "stored, but its delivery is behind: send it again");
    std::move(persisted.respond)(std::move(persisted.resp));
  }
}

void ChatService::WithStoredMessage(im::v1::SendResp resp, Respond<im::v1::SendResp> respond,
                                    StoredThen then) {
  // A task TrySubmit refuses is dropped with what it holds: the answer is shared, so that it is
  // given here then.
  auto answer = std::make_shared<std::pair<im::v1::SendResp, Respond<im::v1::SendResp>>>(
      std::move(resp), std::move(respond));
  auto next = std::make_shared<StoredThen>(std::move(then));
  const bool queued = deps_.executor->TrySubmit([this, answer, next] {
    auto& [stored_resp, answer_to] = *answer;
    absl::StatusOr<std::optional<im::v1::Message>> stored =
        deps_.messages->MessageAt(stored_resp.conv_id(), stored_resp.seq());
    if (!stored.ok() || !stored->has_value()) {
      return std::move(answer_to)(std::move(stored_resp));  // its recipients get it by Sync
    }
    std::move (*next)(std::make_shared<const im::v1::Message>(std::move(**stored)),
                      std::move(stored_resp), std::move(answer_to));
  });
  if (!queued) std::move(answer->second)(std::move(answer->first));
}

void ChatService::RedeliverThenRespond(const im::v1::Caller& caller,
                                       const ConversationId& conversation, im::v1::SendResp resp,
                                       Respond<im::v1::SendResp> respond) {
  WithStoredMessage(std::move(resp), std::move(respond),
                    [this, caller, conversation](std::shared_ptr<const im::v1::Message> message,
                                                 im::v1::SendResp stored_resp,
                                                 Respond<im::v1::SendResp> answer_to) {
                      Deliver(Persisted{caller, conversation, std::move(message),
                                        std::move(stored_resp), std::move(answer_to)});
                    });
}

bool ChatService::SubmitDelivery(common::BoundedExecutor::Task task) {
  // Refused by the loop (a full queue, or stopping), the adding thread delivers the batch with
  // blocking calls; its pushes may then overtake those of a batch still waiting for its reply on
  // the loop (under overload or at shutdown only).
  if (deps_.loop != nullptr) return deps_.loop->Post(std::move(task));
  return deps_.executor->TrySubmit(std::move(task));
}

ChatService::DeliveryPlan ChatService::PlanDelivery(const std::vector<Persisted>& batch) {
  DeliveryPlan plan;
  plan.answers.reserve(batch.size());
  for (const Persisted& persisted : batch) {
    plan.answers.push_back(DedupAnswer(*persisted.message));
    plan.uids.push_back(persisted.conversation.first_uid);
    plan.uids.push_back(persisted.conversation.second_uid);
  }
  std::sort(plan.uids.begin(), plan.uids.end());
  plan.uids.erase(std::unique(plan.uids.begin(), plan.uids.end()), plan.uids.end());
  return plan;
}

void ChatService::DeliverPersisted(std::vector<Persisted>& batch) {
  DeliveryPlan plan = PlanDelivery(batch);
  RecordAnswers(plan.answers);
  deps_.recipients->LookupMany(
      std::move(plan.uids),
      [this, delivered = std::move(batch)](const std::vector<std::string>& uids,
                                           RecipientLookup::Sessions sessions) mutable {
        // Counted before the answers go: what the batch cost has happened when it shows.
        deps_.metrics->delivery_batch_size.Observe(static_cast<double>(delivered.size()));
        PushPersisted(delivered, uids, sessions);
      });
}

void ChatService::RecordAnswers(const store::TtlMap::Entries& answers) {
  if (deps_.loop != nullptr && deps_.loop->InLoopThread()) {
    deps_.loop->dedup()->PutMany(answers, DedupTtlMs(), &WarnIfAnswersNotRecorded);
  } else {
    RecordStored(answers);
  }
}

void ChatService::PushPersisted(
    std::vector<Persisted>& batch, const std::vector<std::string>& uids,
    const absl::StatusOr<std::vector<std::vector<store::Session>>>& sessions) {
  if (!sessions.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "sessions not found for {} pushes: {}", batch.size(),
                        sessions.status().ToString());
    for (Persisted& persisted : batch) {
      SetStatus(persisted.resp.mutable_status(), im::v1::UNAVAILABLE,
                "stored, but not pushed (the recipients' sessions could not be read): send it "
                "again");
      std::move(persisted.respond)(std::move(persisted.resp));
    }
    return;
  }
  auto sessions_of = [&](const std::string& uid) -> const std::vector<store::Session>& {
    return (*sessions)[std::lower_bound(uids.begin(), uids.end(), uid) - uids.begin()];
  };
  for (Persisted& persisted : batch) {
    common::ScopedRequestId scope(persisted.sender.request_id());
    std::vector<PushTarget> targets;
    for (const std::string& uid :
         {persisted.conversation.first_uid, persisted.conversation.second_uid}) {
      AddTargets(uid, sessions_of(uid), persisted.sender, &targets);
    }
    spdlog::debug("push {}: {} devices", persisted.sender.request_id(), targets.size());
    if (deps_.webhooks != nullptr && deps_.webhooks->WantsOffline()) {
      const std::string& peer = persisted.conversation.PeerOf(persisted.message->sender());
      if (sessions_of(peer).empty()) {
        persisted.respond =
            deps_.webhooks->Offline(persisted.message, {peer}, std::move(persisted.respond));
      }
    }
    if (targets.empty()) {
      std::move(persisted.respond)(std::move(persisted.resp));
      continue;
    }
    im::v1::Frame frame;
    *frame.mutable_message_push()->add_messages() = *persisted.message;
    deps_.pusher->Push(SerializePush(frame), targets,
                       AnswerLater(std::move(persisted.resp), std::move(persisted.respond)));
  }
}

void ChatService::RepublishThenRespond(const im::v1::Caller& caller, im::v1::SendResp resp,
                                       Respond<im::v1::SendResp> respond) {
  WithStoredMessage(
      std::move(resp), std::move(respond),
      [this, caller](std::shared_ptr<const im::v1::Message> message, im::v1::SendResp stored_resp,
                     Respond<im::v1::SendResp> answer_to) {
        PublishThenRespond(caller, std::move(message), std::move(stored_resp),
                           std::move(answer_to));
      });
}

void ChatService::PublishThenRespond(const im::v1::Caller& caller,
                                     std::shared_ptr<const im::v1::Message> message,
                                     im::v1::SendResp resp, Respond<im::v1::SendResp> respond) {
  // A group message is acknowledged only once the fan-out bus holds it (on Kafka, or queued here
  // for pushing when Kafka does not take it), so no node death after the answer loses its pushes.
  // A retry publishes again: the first attempt's node may have died before publishing; members
  // drop the duplicate by seq.
  if (deps_.webhooks != nullptr) respond = deps_.webhooks->AfterSend(message, std::move(respond));
  GroupPublish publish{caller, std::move(message), std::move(resp), std::move(respond)};
  if (!publishing_.TryAdd(std::move(publish))) {
    RecordAnswers({DedupAnswer(*publish.message)});
    IM_LOG_RATE_LIMITED(spdlog::level::warn,
                        "send {}: fan-out of {}#{} skipped: publishing is behind",
                        caller.request_id(), publish.message->conv_id(), publish.message->seq());
    std::move(publish.respond)(std::move(publish.resp));
  }
}

void ChatService::PublishAll(std::vector<GroupPublish>& batch) {
  store::TtlMap::Entries answers;
  answers.reserve(batch.size());
  for (const GroupPublish& publish : batch) answers.push_back(DedupAnswer(*publish.message));
  RecordStored(answers);
  for (GroupPublish& publish : batch) {
    common::ScopedRequestId scope(publish.caller.request_id());
    Publish(publish.caller, *publish.message,
            AnswerLater(std::move(publish.resp), std::move(publish.respond)));
  }
}

void ChatService::Publish(const im::v1::Caller& sender, const im::v1::Message& message,
                          FanoutBus::HandedOver handed_over) {
  im::v1::FanoutRecord record;
  *record.mutable_message() = message;
  record.set_sender_gateway_id(sender.gateway_id());
  record.set_sender_conn_id(sender.conn_id());
  record.set_published_ms(now_ms_());
  record.set_request_id(sender.request_id());
  FanoutLane lane = FanoutLane::kSmall;
  // Only the lane depends on the list, and only on its size: this node's copy (the send's
  // membership check read it) tells without a round trip to Redis.
  const std::string group_id = ConversationId::Parse(message.conv_id())->group_id;
  std::shared_ptr<const MemberLists::List> members = deps_.members->LastLocalCopy(group_id);
  if (members == nullptr) {
    absl::StatusOr<std::shared_ptr<const MemberLists::List>> read = deps_.members->Get(group_id);
    if (read.ok()) members = *std::move(read);
  }
  if (members != nullptr && members->size() > options_.group_large_threshold) {
    lane = FanoutLane::kLarge;
  }
  deps_.fanout->Publish(record, lane, std::move(handed_over));
}

std::pair<std::string, std::string> ChatService::DedupAnswer(const im::v1::Message& message) {
  return {DedupKey(message.sender(), message.client_msg_id()), EncodeDedup(message)};
}

void ChatService::RecordStored(const store::TtlMap::Entries& answers) {
  // The answers for any later attempt of these sends (they replace the pending claims).
  WarnIfAnswersNotRecorded(deps_.dedup->PutMany(answers, DedupTtlMs()));
}

int64_t ChatService::DedupTtlMs() const { return int64_t{options_.dedup_ttl_sec} * 1000; }

void ChatService::WarnIfAnswersNotRecorded(absl::Status status) {
  // Logged only: the claims expire, and MySQL's unique key still stores a retry once.
  if (!status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "dedup entries not written: {}", status.ToString());
  }
}

void ChatService::PushToUsers(std::shared_ptr<const std::string> frame,
                              std::vector<std::string> uids, const im::v1::Caller& skip) {
  deps_.recipients->LookupMany(std::move(uids), [this, frame = std::move(frame), skip](
                                                    const std::vector<std::string>& looked_up,
                                                    RecipientLookup::Sessions sessions) {
    if (!sessions.ok()) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "sessions not found for a push: {}",
                          sessions.status().ToString());
      return;
    }
    std::vector<PushTarget> targets;
    for (size_t i = 0; i < looked_up.size(); ++i) {
      AddTargets(looked_up[i], (*sessions)[i], skip, &targets);
    }
    spdlog::debug("push {}: {} devices", skip.request_id(), targets.size());
    if (!targets.empty()) deps_.pusher->Push(frame, targets);
  });
}

void ChatService::AddTargets(const std::string& uid, const std::vector<store::Session>& sessions,
                             const im::v1::Caller& skip, std::vector<PushTarget>* targets) {
  for (const store::Session& session : sessions) {
    if (uid == skip.uid() && session.IsAt(skip.gateway_id(), skip.conn_id())) continue;
    targets->push_back(PushTarget{uid, session});
  }
}

void ChatService::Change(const im::v1::SendRequest& request, Respond<im::v1::SendResp> respond) {
  const im::v1::SendReq& req = request.req();
  // A retry of a change that is stored already (its answer was lost) is answered as a retried
  // send is, and applies the change again; judged again, it would find the change made.
  absl::StatusOr<std::optional<im::v1::Message>> sent =
      deps_.messages->FindSent(request.caller().uid(), req.client_msg_id());
  ChangeVerdict verdict;
  if (!sent.ok()) {
    verdict = {CodeOf(sent.status()), std::string(sent.status().message())};
  } else if (!sent->has_value()) {
    verdict = JudgeChangeRequest(request);
  } else if ((*sent)->type() != req.type() || (*sent)->ref_seq() != req.ref_seq()) {
    verdict = {im::v1::INVALID_ARGUMENT, "client_msg_id names another message already"};
  }
  if (!verdict.ok()) {
    im::v1::SendResp resp;
    resp.set_client_msg_id(req.client_msg_id());
    SetStatus(resp.mutable_status(), verdict.code, std::move(verdict.reason));
    return std::move(respond)(std::move(resp));
  }
  std::optional<SendTarget> target = PrepareSend(request, respond, nullptr, true);
  if (!target) return;
  // A retry applies the change as it was stored (its body, not the retry's).
  std::optional<im::v1::Message> stored = sent.ok() ? std::move(*sent) : std::nullopt;
  auto apply = [this, req, stored = std::move(stored),
                respond = std::move(respond)](im::v1::SendResp resp) mutable {
    if (resp.status().code() != im::v1::OK) return std::move(respond)(std::move(resp));
    im::v1::Message change = stored ? *stored : ChangeOf(req, resp);
    ApplyThenRespond(std::move(change), std::move(resp), std::move(respond));
  };
  PersistOne(ContinueSend(request, *target, ClaimSend(target->dedup_key, target->conv_id),
                          std::move(apply)));
}

ChangeVerdict ChatService::JudgeChangeRequest(const im::v1::SendRequest& request) {
  const im::v1::SendReq& req = request.req();
  const std::string& uid = request.caller().uid();
  if (!store::IsChange(req.type()) || req.ref_seq() == 0 || req.conv_id().empty()) {
    return {im::v1::INVALID_ARGUMENT, "a RECALL or EDIT names conv_id and the ref_seq it changes"};
  }
  Access access = Authorize(uid, req.conv_id());
  if (!access.conversation) return {access.code, std::move(access.reason)};
  absl::StatusOr<im::v1::Message> found = VisibleMessage(access, req.conv_id(), req.ref_seq());
  if (!found.ok()) return {CodeOf(found.status()), std::string(found.status().message())};
  const im::v1::Message& original = *found;
  ChangeAuthor author{uid, false};
  if (access.conversation->kind == ConversationId::Kind::kGroup && original.sender() != uid) {
    absl::StatusOr<std::optional<store::GroupMember>> member =
        FindMember(access.conversation->group_id, uid, nullptr);
    if (!member.ok()) return {CodeOf(member.status()), std::string(member.status().message())};
    author.group_admin = member->has_value() && (*member)->role >= im::v1::ADMIN;
  }
  return JudgeChange(original, req.type(), author, now_ms_(),
                     {options_.recall_window_ms, options_.edit_window_ms});
}

void ChatService::ApplyThenRespond(im::v1::Message change, im::v1::SendResp resp,
                                   Respond<im::v1::SendResp> respond) {
  // The answer may come on a writer thread or the loop: the store call goes to the executor.
  auto shared_respond = std::make_shared<Respond<im::v1::SendResp>>(std::move(respond));
  auto shared_resp = std::make_shared<im::v1::SendResp>(std::move(resp));
  const bool queued = deps_.executor->TrySubmit([this, change = std::move(change), shared_resp,
                                                 shared_respond] {
    if (absl::Status applied = deps_.messages->ApplyChange(change); !applied.ok()) {
      // The change is stored; the client's retry finds it and applies it again.
      spdlog::warn("{} {}: not applied: {}", change.conv_id(), change.seq(), applied.ToString());
      SetStatus(shared_resp->mutable_status(), applied);
    }
    std::move (*shared_respond)(std::move(*shared_resp));
  });
  if (!queued) {
    SetStatus(shared_resp->mutable_status(), im::v1::RESOURCE_EXHAUSTED, kExecutorFullReason);
    std::move (*shared_respond)(std::move(*shared_resp));
  }
}

void ChatService::Readers(const im::v1::ReadersRequest& request,
                          Respond<im::v1::ReadersResp> respond) {
  const im::v1::ReadersReq& req = request.req();
  im::v1::ReadersResp resp;
  auto refuse = [&](im::v1::Code code, std::string reason) {
    SetStatus(resp.mutable_status(), code, std::move(reason));
    std::move(respond)(std::move(resp));
  };
  Access access = Authorize(request.caller().uid(), req.conv_id());
  if (!access.conversation) return refuse(access.code, std::move(access.reason));
  if (access.conversation->kind != ConversationId::Kind::kGroup) {
    return refuse(im::v1::INVALID_CONVERSATION,
                  "receipts by member are for groups; a single chat has peer_read_seq");
  }
  absl::StatusOr<im::v1::Message> found = VisibleMessage(access, req.conv_id(), req.seq());
  if (!found.ok()) return refuse(CodeOf(found.status()), std::string(found.status().message()));
  const im::v1::Message& message = *found;
  absl::StatusOr<store::MessageStore::ReaderCount> count = deps_.messages->CountReaders(
      req.conv_id(), req.seq(), message.sender(), message.created_ms());
  if (!count.ok()) return refuse(CodeOf(count.status()), std::string(count.status().message()));
  resp.set_read_count(count->read);
  resp.set_unread_count(count->members - count->read);
  resp.set_counts_only(
      !GroupWithin(access.conversation->group_id, options_.receipt_max_group_members));
  if (req.names() && !resp.counts_only()) {
    const uint32_t limit =
        req.limit() == 0 ? kReadersPageMax : std::min(req.limit(), kReadersPageMax);
    absl::StatusOr<std::vector<std::string>> readers =
        deps_.messages->ListReaders(req.conv_id(), req.seq(), message.sender(),
                                    message.created_ms(), req.page_token(), limit + 1);
    if (!readers.ok()) {
      return refuse(CodeOf(readers.status()), std::string(readers.status().message()));
    }
    if (readers->size() > limit) {
      readers->resize(limit);
      resp.set_next_page_token(readers->back());
    }
    for (std::string& uid : *readers) resp.add_readers(std::move(uid));
  }
  SetStatus(resp.mutable_status(), im::v1::OK);
  std::move(respond)(std::move(resp));
}

absl::StatusOr<im::v1::Message> ChatService::VisibleMessage(const Access& access,
                                                            const std::string& conv_id,
                                                            uint64_t seq) {
  absl::StatusOr<std::optional<im::v1::Message>> stored = [&] {
    StoreTimer timer(&deps_.metrics->store_message_read);
    return deps_.messages->MessageAt(conv_id, seq);
  }();
  if (!stored.ok()) return stored.status();
  if (!stored->has_value() || seq <= access.visible_after) {
    return absl::NotFoundError(fmt::format("no message {} in {}", seq, conv_id));
  }
  return std::move(**stored);
}

bool ChatService::GroupWithin(const std::string& group_id, uint32_t limit) {
  absl::StatusOr<std::shared_ptr<const MemberLists::List>> members = deps_.members->Get(group_id);
  return members.ok() && (*members)->size() <= limit;
}

void ChatService::QueueReceipts(const im::v1::Caller& reader, const std::string& conv_id,
                                uint64_t before, uint64_t after) {
  const uint64_t from =
      std::max(before, after > kReceiptScanMessages ? after - kReceiptScanMessages : 0);
  absl::StatusOr<store::MessagePage> page =
      deps_.messages->ReadMessages(conv_id, from, static_cast<uint32_t>(after - from));
  if (!page.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "no receipts for {}: {}", conv_id,
                        page.status().ToString());
    return;
  }
  std::set<std::string> senders;
  for (const im::v1::Message& message : page->messages) {
    if (message.seq() <= after && message.sender() != reader.uid() &&
        !store::IsChange(message.type())) {
      senders.insert(message.sender());
    }
  }
  for (const std::string& sender : senders) {
    GroupReceipt receipt{sender, {}};
    receipt.receipt.set_conv_id(conv_id);
    receipt.receipt.set_reader(reader.uid());
    receipt.receipt.set_read_seq(after);
    if (!receipts_.TryAdd(std::move(receipt))) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "receipts dropped: {} wait already",
                          kMaxWaitingReceipts);
      return;
    }
  }
}

void ChatService::PushReceipts(std::vector<GroupReceipt>& batch) {
  // sender -> (conv_id, reader) -> the latest cursor
  std::map<std::string, std::map<std::pair<std::string, std::string>, uint64_t>> latest;
  for (const GroupReceipt& item : batch) {
    uint64_t& cursor = latest[item.sender][{item.receipt.conv_id(), item.receipt.reader()}];
    cursor = std::max(cursor, item.receipt.read_seq());
  }
  for (const auto& [sender, receipts] : latest) {
    im::v1::Frame frame;
    for (const auto& [where, read_seq] : receipts) {
      im::v1::ReadPush* receipt = frame.mutable_receipts_push()->add_receipts();
      receipt->set_conv_id(where.first);
      receipt->set_reader(where.second);
      receipt->set_read_seq(read_seq);
    }
    PushToUsers(SerializePush(frame), {sender}, im::v1::Caller());
  }
}

void ChatService::Resume(const im::v1::ResumeRequest& request,
                         Respond<im::v1::ResumeResp> respond) {
  const im::v1::Caller& caller = request.caller();
  const im::v1::ResumeReq& req = request.req();
  auto refuse = [&respond](const absl::Status& why) {
    im::v1::ResumeResp resp;
    SetStatus(resp.mutable_status(), why);
    std::move(respond)(std::move(resp));
  };
  const int64_t now_ms = now_ms_();
  absl::StatusOr<ResumeTokens::Claims> claims =
      resume_tokens_.Verify(req.resume_token(), caller.uid(), caller.device(), now_ms);
  if (!claims.ok()) return refuse(claims.status());
  // A token is spent by the connection that presents it first; only that connection may go on
  // to the later pages of its answer.
  const std::string spender = absl::StrCat(caller.gateway_id(), "/", caller.conn_id());
  absl::StatusOr<std::optional<std::string>> spent =
      deps_.resumes->PutIfAbsent(claims->id, spender, claims->expires_ms - now_ms);
  if (!spent.ok()) return refuse(spent.status());
  if (spent->has_value() && (req.page_token().empty() || **spent != spender)) {
    return refuse(absl::FailedPreconditionError("resume token used already"));
  }
  im::v1::ConversationsRequest list;
  *list.mutable_caller() = caller;
  list.mutable_req()->set_updated_after_ms(static_cast<uint64_t>(
      std::max<int64_t>(0, claims->since_ms - int64_t{options_.resume_margin_ms})));
  list.mutable_req()->set_page_token(req.page_token());
  list.mutable_req()->set_limit(req.limit());
  Conversations(list, [this, uid = caller.uid(), device = caller.device(), now_ms,
                       respond = std::move(respond)](im::v1::ConversationsResp page) mutable {
    im::v1::ResumeResp resp;
    *resp.mutable_status() = std::move(*page.mutable_status());
    resp.mutable_conversations()->Swap(page.mutable_conversations());
    resp.set_next_page_token(std::move(*page.mutable_next_page_token()));
    if (resp.status().code() == im::v1::OK && resp.next_page_token().empty()) {
      resp.set_resume_token(resume_tokens_.Issue(uid, device, now_ms, now_ms));
    }
    std::move(respond)(std::move(resp));
  });
}

void ChatService::ResumeRenew(const im::v1::ResumeRenewRequest& request,
                              Respond<im::v1::ResumeRenewResp> respond) {
  const int64_t now_ms = now_ms_();
  absl::StatusOr<ResumeTokens::Claims> claims = resume_tokens_.Verify(
      request.req().resume_token(), request.caller().uid(), request.caller().device(), now_ms);
  im::v1::ResumeRenewResp resp;
  if (!claims.ok()) {
    SetStatus(resp.mutable_status(), claims.status());
  } else {
    SetStatus(resp.mutable_status(), im::v1::OK);
    resp.set_resume_token(resume_tokens_.Renew(*claims, now_ms));
  }
  std::move(respond)(std::move(resp));
}

void ChatService::Typing(const im::v1::TypingRequest& request, Respond<im::v1::AckReply> respond) {
  std::move(respond)(im::v1::AckReply());
  const im::v1::Caller& caller = request.caller();
  const std::string& conv_id = request.req().conv_id();
  if (!typing_.Allow(caller.uid(), conv_id, now_ms_())) return;
  Access access = Authorize(caller.uid(), conv_id);
  if (!access.conversation) {
    spdlog::debug("typing {}: dropped: {}", caller.request_id(), access.reason);
    return;
  }
  std::vector<std::string> others;
  if (access.conversation->kind == ConversationId::Kind::kSingle) {
    others.push_back(access.conversation->PeerOf(caller.uid()));
  } else {
    absl::StatusOr<std::shared_ptr<const MemberLists::List>> members =
        deps_.members->Get(access.conversation->group_id);
    if (!members.ok() || (*members)->size() > options_.typing_max_group_members) return;
    for (const store::GroupMember& member : **members) {
      if (member.uid != caller.uid()) others.push_back(member.uid);
    }
  }
  im::v1::Frame frame;
  frame.mutable_typing_push()->set_conv_id(conv_id);
  frame.mutable_typing_push()->set_uid(caller.uid());
  PushToUsers(SerializePush(frame), std::move(others), caller);
}

void ChatService::Ack(const im::v1::AckRequest& request, Respond<im::v1::AckReply> respond) {
  const std::string uid = request.caller().uid();  // the request ends with the reply
  std::vector<store::Cursor> cursors;
  for (const im::v1::AckReq::Cursor& cursor : request.req().cursors()) {
    if (cursors.size() >= options_.max_ack_cursors) break;
    // No membership lookup per cursor: a user's cursors only move in conversations it has a row
    // in, and leaving a group drops the row.
    std::optional<ConversationId> conversation = ConversationId::Parse(cursor.conv_id());
    if (!conversation ||
        (conversation->kind == ConversationId::Kind::kSingle && !conversation->Includes(uid))) {
      continue;  // nothing to move there
    }
    cursors.push_back(store::Cursor{cursor.conv_id(), cursor.seq()});
  }
  // Acks have no response frame; the reply only ends the call.
  std::move(respond)(im::v1::AckReply());
  if (cursors.empty()) return;
  if (absl::Status status = deps_.messages->AdvanceDelivered(uid, cursors); !status.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "delivered cursors of {} not stored: {}", uid,
                        status.ToString());
  }
}

void ChatService::Sync(const im::v1::SyncRequest& request, Respond<im::v1::SyncResp> respond) {
  std::vector<Respond<im::v1::SyncResp>> responds;
  responds.push_back(std::move(respond));
  SyncMany({request}, std::move(responds));
}

void ChatService::SyncMany(const std::vector<im::v1::SyncRequest>& requests,
                           std::vector<Respond<im::v1::SyncResp>> responds) {
  std::vector<store::MessageStore::MessageRead> reads;
  std::vector<size_t> read_for;  // reads[k] answers requests[read_for[k]]
  for (size_t i = 0; i < requests.size(); ++i) {
    const im::v1::SyncReq& req = requests[i].req();
    Access access = Authorize(requests[i].caller(), req.conv_id());
    if (!access.conversation) {
      im::v1::SyncResp resp;
      resp.set_conv_id(req.conv_id());
      SetStatus(resp.mutable_status(), access.code, access.reason);
      std::move(responds[i])(std::move(resp));
      continue;
    }
    const uint32_t limit = req.limit() == 0 ? options_.sync_page_default
                                            : std::min(req.limit(), options_.sync_page_max);
    // A group member never sees what was sent before it joined.
    reads.push_back({req.conv_id(), std::max(req.after_seq(), access.visible_after), limit});
    read_for.push_back(i);
  }
  if (reads.empty()) return;
  absl::StatusOr<std::vector<store::MessagePage>> pages = [&] {
    StoreTimer timer(&deps_.metrics->store_message_read);
    return deps_.messages->ReadMessagesMany(reads);
  }();
  for (size_t k = 0; k < reads.size(); ++k) {
    const size_t i = read_for[k];
    AnswerSync(
        requests[i].req(), reads[k].after_seq,
        pages.ok() ? absl::StatusOr<store::MessagePage>(std::move((*pages)[k])) : pages.status(),
        std::move(responds[i]));
  }
}

void ChatService::AnswerSync(const im::v1::SyncReq& req, uint64_t after_seq,
                             absl::StatusOr<store::MessagePage> page,
                             Respond<im::v1::SyncResp> respond) const {
  im::v1::SyncResp resp;
  resp.set_conv_id(req.conv_id());
  if (!page.ok()) {
    SetStatus(resp.mutable_status(), page.status());
    return std::move(respond)(std::move(resp));
  }
  SetStatus(resp.mutable_status(), im::v1::OK);
  resp.set_max_seq(page->max_seq);
  // What came before the join will never be this member's: report it as a hole, or a client
  // that asked from an earlier seq would wait for it forever.
  if (after_seq > req.after_seq()) {
    im::v1::SeqRange* before_join = resp.add_holes();
    before_join->set_first(req.after_seq() + 1);
    before_join->set_last(after_seq);
  }
  for (im::v1::Message& message : page->messages) *resp.add_messages() = std::move(message);
  const bool cut_short = ApplyHoles(after_seq, &resp);
  const uint64_t last =
      resp.messages().empty() ? after_seq : resp.messages(resp.messages_size() - 1).seq();
  resp.set_has_more(cut_short || last < page->max_seq);
  std::move(respond)(std::move(resp));
}

bool ChatService::ApplyHoles(uint64_t after_seq, im::v1::SyncResp* resp) const {
  const int64_t now = now_ms_();
  uint64_t expected = after_seq + 1;
  for (int i = 0; i < resp->messages_size(); ++i) {
    const im::v1::Message& message = resp->messages(i);
    if (message.seq() > expected) {
      // A message with a higher seq is stored. Once it is older than the grace period, no write
      // of a lower seq can still land (writes past their deadline are failed), so the gap is a
      // hole for good; before that, stop here and let the client ask again. On a sole writer a
      // message stored before the node started is as good: whatever wrote it is gone.
      const bool before_start = message.created_ms() < deps_.sole_writer_since_ms;
      if (!before_start &&
          now - message.created_ms() < static_cast<int64_t>(options_.hole_grace_ms)) {
        resp->mutable_messages()->DeleteSubrange(i, resp->messages_size() - i);
        return true;
      }
      im::v1::SeqRange* hole = resp->add_holes();
      hole->set_first(expected);
      hole->set_last(message.seq() - 1);
    }
    expected = message.seq() + 1;
  }
  return false;
}

void ChatService::Conversations(const im::v1::ConversationsRequest& request,
                                Respond<im::v1::ConversationsResp> respond) {
  const im::v1::ConversationsReq& req = request.req();
  im::v1::ConversationsResp resp;
  std::optional<store::ConversationPosition> after;
  if (!req.page_token().empty()) {
    after = DecodePageToken(req.page_token());
    if (!after) {
      SetStatus(resp.mutable_status(), im::v1::INVALID_ARGUMENT, "malformed page_token");
      return std::move(respond)(std::move(resp));
    }
  }
  const uint32_t limit = req.limit() == 0 ? options_.conversations_page_max
                                          : std::min(req.limit(), options_.conversations_page_max);
  // One more than asked tells whether another page follows.
  absl::StatusOr<std::vector<im::v1::Conversation>> page = deps_.messages->ListConversations(
      request.caller().uid(), static_cast<int64_t>(req.updated_after_ms()), after, limit + 1);
  if (!page.ok()) {
    SetStatus(resp.mutable_status(), page.status());
    return std::move(respond)(std::move(resp));
  }
  SetStatus(resp.mutable_status(), im::v1::OK);
  if (page->size() > limit) {
    page->resize(limit);
    resp.set_next_page_token(EncodePageToken(page->back()));
  }
  for (im::v1::Conversation& conversation : *page) {
    *resp.add_conversations() = std::move(conversation);
  }
  std::move(respond)(std::move(resp));
}

void ChatService::Read(const im::v1::ReadRequest& request, Respond<im::v1::ReadResp> respond) {
  const im::v1::Caller caller = request.caller();
  const std::string conv_id = request.req().conv_id();
  im::v1::ReadResp resp;
  Access access = Authorize(caller.uid(), conv_id);
  if (!access.conversation) {
    SetStatus(resp.mutable_status(), access.code, access.reason);
    return std::move(respond)(std::move(resp));
  }
  const ConversationId& conversation = *access.conversation;
  // In a group small enough for receipts, where the cursor was: the senders of what lies between
  // it and the new one get a receipt.
  std::optional<uint64_t> before;
  if (conversation.kind == ConversationId::Kind::kGroup &&
      GroupWithin(conversation.group_id, options_.receipt_max_group_members)) {
    absl::StatusOr<uint64_t> cursor = deps_.messages->ReadCursor(caller.uid(), conv_id);
    if (cursor.ok()) before = *cursor;
  }
  absl::StatusOr<uint64_t> read_seq =
      deps_.messages->AdvanceRead(caller.uid(), conv_id, request.req().read_seq());
  if (!read_seq.ok()) {
    SetStatus(resp.mutable_status(), read_seq.status());
    return std::move(respond)(std::move(resp));
  }
  SetStatus(resp.mutable_status(), im::v1::OK);
  resp.set_read_seq(*read_seq);
  std::move(respond)(std::move(resp));

  im::v1::Frame frame;
  im::v1::ReadPush* push = frame.mutable_read_push();
  push->set_conv_id(conv_id);
  push->set_reader(caller.uid());
  push->set_read_seq(*read_seq);
  if (conversation.kind == ConversationId::Kind::kGroup) {
    if (before && *read_seq > *before) QueueReceipts(caller, conv_id, *before, *read_seq);
    // The reader's other devices only: a read in a big group is not news for every member, who
    // see peers' read cursors in Conversations.
    return PushToUsers(SerializePush(frame), {caller.uid()}, caller);
  }
  PushToUsers(SerializePush(frame), {conversation.first_uid, conversation.second_uid}, caller);
}

}  // namespace im::logic
