#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/bounded_executor.h"
#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/admin/restrictions.h"
#include "logic/conversation/conversation_id.h"
#include "logic/conversation/message_change.h"
#include "logic/conversation/message_writer.h"
#include "logic/conversation/msg_id_generator.h"
#include "logic/conversation/typing_limiter.h"
#include "logic/delivery/coalescing_stage.h"
#include "logic/delivery/pusher.h"
#include "logic/delivery/recipient_lookup.h"
#include "logic/delivery/seq_order.h"
#include "logic/group/fanout_bus.h"
#include "logic/group/member_lists.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/loop/logic_loop.h"
#include "logic/session/resume_tokens.h"
#include "logic/webhooks/webhooks.h"
#include "store/message_store.h"
#include "store/send_ledger.h"
#include "store/seq_allocator.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::logic {

// Where ChatService keeps and finds things. Every pointer outlives the service.
struct ChatDependencies {
  RecipientLookup* recipients;  // where the devices to push to are connected
  store::SeqAllocator* seqs;
  store::MessageStore* messages;
  store::TtlMap* dedup;       // im:dedup:<uid>:<client_msg_id> -> the stored message's coordinates
  store::TtlMap* resumes;     // im:resume:<token id>: resume tokens spent (each is good once)
  store::SendLedger* ledger;  // a send's claim on its dedup key and its seq, in one step
  MessageWriter* writer;
  Pusher* pusher;
  MsgIdGenerator* msg_ids;
  common::BoundedExecutor* executor;  // where work after a reply (pushes) runs
  MemberLists* members;               // group membership
  FanoutBus* fanout;                  // where persisted group messages go to be pushed
  LogicMetrics* metrics;              // store latencies; required
  // Where persisted single-chat messages are delivered without blocking (its asynchronous
  // Redis client); null: on the executor.
  LogicLoop* loop;
  // Set when this node is the only one that writes its conversations (the embedded node): the
  // Unix ms it started at. A gap before a message stored earlier than that is a hole at once, as
  // no write from before the start can still land; 0: other nodes may (a cluster).
  int64_t sole_writer_since_ms = 0;
  // Mutes in force (the admin API's); null: none.
  Restrictions* restrictions = nullptr;
  // The after-send and offline-message webhooks; null: none.
  Webhooks* webhooks = nullptr;
};

// Conversations (DESIGN.md sections 5 and 6): Send, Ack, Sync, Conversations and Read, for
// single chats and groups. A group message is published on the FanoutBus once persisted; a
// single chat's is pushed from here, in batches: the messages persisted while the previous batch
// was being delivered go together (the dedup writes and session lookups of a batch in one round
// trip, on the loop when there is one).
// Methods run on the store executor and may block. Each answers through `respond` exactly once;
// work that follows an answer (pushes) happens after it so that the client's latency does not
// include it. `respond` may run on another thread (a writer thread for Send).
class ChatService {
 public:
  template <typename Response>
  using Respond = absl::AnyInvocable<void(Response) &&>;
  using Clock = common::MillisClock;  // Unix milliseconds

  ChatService(const LogicOptions& options, ChatDependencies deps, Clock now_ms);

  void Send(const im::v1::SendRequest& request, Respond<im::v1::SendResp> respond);
  // Send for each request (responds[i] answers requests[i]), with every claim and seq of the
  // batch taken in one round trip. On the store executor.
  void SendBatch(std::vector<im::v1::SendRequest> requests,
                 std::vector<Respond<im::v1::SendResp>> responds);
  // SendBatch on the LogicLoop (deps.loop): the claims and seqs through that loop's `ledger`,
  // without blocking; the batch goes on from the reply, on the loop. A group send's membership is
  // checked against this node's copy of the member list once the group's version token (read on
  // the loop's client, a batch's groups in one round trip) says the copy is current; a list the
  // node does not hold is loaded on the executor, and the batch comes back to the loop. What
  // needs a blocking step (a counter to restore, a repeat to wait for, Redis failing) goes on on
  // the executor.
  void SendBatchOnLoop(std::vector<im::v1::SendRequest> requests,
                       std::vector<Respond<im::v1::SendResp>> responds,
                       store::AsyncSendLedger* ledger);
  // A RECALL or EDIT (a SendReq with ref_seq): checked against the message it changes (see
  // JudgeChange), then sent as a message of its own through Send, and answered once the change is
  // applied to the stored original (a retry applies it again, so an answer always means both).
  // Rare next to sends, so it blocks on the executor rather than joining a send batch.
  void Change(const im::v1::SendRequest& request, Respond<im::v1::SendResp> respond);
  // Passes "typing" on to the other participants' online devices (TypingPush), at most once per
  // typing_interval_ms per user and conversation; dropped without a word when it is more often,
  // from a non-member, or in a group above typing_max_group_members. Answers at once (no frame).
  void Typing(const im::v1::TypingRequest& request, Respond<im::v1::AckReply> respond);
  void Ack(const im::v1::AckRequest& request, Respond<im::v1::AckReply> respond);
  void Sync(const im::v1::SyncRequest& request, Respond<im::v1::SyncResp> respond);
  // Sync for each request (responds[i] answers requests[i]): the pages of them all in one
  // MessageStore::ReadMessagesMany, so a reconnect storm's syncs cost a few round trips per
  // stream batch rather than two each.
  void SyncMany(const std::vector<im::v1::SyncRequest>& requests,
                std::vector<Respond<im::v1::SyncResp>> responds);
  void Conversations(const im::v1::ConversationsRequest& request,
                     Respond<im::v1::ConversationsResp> respond);
  void Read(const im::v1::ReadRequest& request, Respond<im::v1::ReadResp> respond);
  // Group read receipts: how many members have read the message at seq, and who (in groups of
  // at most receipt_max_group_members; above, counts only). A single chat is
  // INVALID_CONVERSATION: its receipt is Conversation.peer_read_seq.
  void Readers(const im::v1::ReadersRequest& request, Respond<im::v1::ReadersResp> respond);
  // Session resume: the conversations changed since the token's baseline (less a margin for
  // writes in flight and clock skew between nodes), paged as Conversations pages, and a new token
  // on the last page. The first page spends the token; a spent, expired or foreign token is
  // FAILED_PRECONDITION (the client lists every conversation instead).
  void Resume(const im::v1::ResumeRequest& request, Respond<im::v1::ResumeResp> respond);
  void ResumeRenew(const im::v1::ResumeRenewRequest& request,
                   Respond<im::v1::ResumeRenewResp> respond);

 private:
  // A single-chat message just persisted (or found stored by a retry), on its way to the dedup
  // record and the devices. Its sender is answered once every push of it has ended: an OK means
  // the recipients' gateways have it, so no logic node death after the answer loses the push. A
  // retry pushes again (the first attempt's node may have died before pushing); devices drop the
  // repeat by seq.
  struct Persisted {
    im::v1::Caller sender;
    ConversationId conversation;
    std::shared_ptr<const im::v1::Message> message;
    im::v1::SendResp resp;
    Respond<im::v1::SendResp> respond;
  };
  // A stored group message on its way to the fan-out bus, and its sender's answer.
  struct GroupPublish {
    im::v1::Caller caller;
    std::shared_ptr<const im::v1::Message> message;
    im::v1::SendResp resp;
    Respond<im::v1::SendResp> respond;
  };
  // Records the batch's answers for retries (one round trip), then publishes each message in
  // order, answering each sender once the bus holds it. On the executor.
  void PublishAll(std::vector<GroupPublish>& batch);
  // Where a batch of persisted messages goes: the answers to record for retries, and everyone
  // to push to (sorted, unique).
  struct DeliveryPlan {
    store::TtlMap::Entries answers;
    std::vector<std::string> uids;
  };
  static DeliveryPlan PlanDelivery(const std::vector<Persisted>& batch);
  // Records the batch's answers for retries (one round trip), looks up the sessions of everyone
  // it goes to (one round trip) and pushes each message, in order. On the loop nothing blocks:
  // the answers and the lookups leave in one write, and the pushes go from the lookups' reply.
  // On the executor (or on a thread the loop refused) the answers are written with a blocking
  // round trip.
  void DeliverPersisted(std::vector<Persisted>& batch);
  // Writes answers for retries: on the loop's client when called on the loop, else blocking.
  void RecordAnswers(const store::TtlMap::Entries& answers);
  // Pushes each message of `batch` to the sessions of its participants (`sessions[i]` those of
  // `uids[i]`), in order, answering each sender once its pushes ended. Without the sessions
  // nothing is pushed, and the senders are told UNAVAILABLE: their retry pushes again.
  void PushPersisted(std::vector<Persisted>& batch, const std::vector<std::string>& uids,
                     const absl::StatusOr<std::vector<std::vector<store::Session>>>& sessions);
  // A retry of a stored send: reads the stored message on the executor (a store read never runs
  // on the send loop), then hands it, with the answer, to `then`; answers itself when nothing is
  // stored (the recipients sync) or the executor is full.
  using StoredThen = absl::AnyInvocable<void(std::shared_ptr<const im::v1::Message>,
                                             im::v1::SendResp, Respond<im::v1::SendResp>) &&>;
  void WithStoredMessage(im::v1::SendResp resp, Respond<im::v1::SendResp> respond, StoredThen then);
  // A retry of a stored single-chat send: delivers the stored message again, which answers.
  void RedeliverThenRespond(const im::v1::Caller& caller, const ConversationId& conversation,
                            im::v1::SendResp resp, Respond<im::v1::SendResp> respond);
  // Runs a delivery task on the loop, or on the executor without one.
  bool SubmitDelivery(common::BoundedExecutor::Task task);

  // The conversation `uid` may use, or the code that refuses it.
  struct Access {
    std::optional<ConversationId> conversation;
    uint64_t visible_after = 0;  // a group member sees seqs above its joined_seq
    im::v1::GroupRole role = im::v1::GROUP_ROLE_UNSPECIFIED;  // in a group: the member's
    im::v1::Code code = im::v1::OK;
    std::string reason;
  };
  // Member lists known to be current (by their version tokens), by group id: a membership
  // check against them does not block.
  using KnownMembers = std::map<std::string, std::shared_ptr<const MemberLists::List>>;
  // `known`: lists to check group membership against; a group not in it is read from
  // MemberLists (which may block).
  Access Authorize(const std::string& uid, const std::string& conv_id,
                   const KnownMembers* known = nullptr);
  // Authorize for `caller`: the system (IsSystemAdmin) may use any conversation.
  Access Authorize(const im::v1::Caller& caller, const std::string& conv_id,
                   const KnownMembers* known = nullptr);
  // The admin API acting as the system, not as a user.
  static bool IsSystemAdmin(const im::v1::Caller& caller);
  // Until when (Unix ms) the caller is muted (0: not), or its group mutes it (`access` to a group).
  // A mute holds the user's sends through the admin API too; the system is never muted.
  int64_t MutedUntil(const im::v1::Caller& caller) const;
  int64_t GroupMutedFor(const im::v1::Caller& caller, const Access& access) const;
  Access ResolveSendTarget(const im::v1::Caller& caller, const im::v1::SendReq& req,
                           const KnownMembers* known);
  // uid's membership of the group: from `known` when it holds the group's list, without
  // blocking; else from MemberLists.
  absl::StatusOr<std::optional<store::GroupMember>> FindMember(const std::string& group_id,
                                                               const std::string& uid,
                                                               const KnownMembers* known);

  // What claiming a send's (sender, client_msg_id) found.
  struct Claim {
    bool owned = false;                      // this attempt stores it (and releases on failure)
    std::optional<uint64_t> seq;             // with owned: the message's seq
    std::optional<im::v1::SendResp> stored;  // an earlier attempt stored it: answer with this
    absl::Status refusal;                    // an earlier attempt is still being stored
  };
  // Claims the send in the dedup map, or finds the stored answer, waiting (bounded) while
  // another attempt of the same send is being stored, so concurrent retries take one seq.
  // An owned claim comes with the message's seq in `conv_id` (one step with the ledger).
  Claim ClaimSend(const std::string& dedup_key, const std::string& conv_id);
  // The claim an outcome of the ledger means; nullopt: another attempt is being stored.
  static std::optional<Claim> ClaimOf(const absl::StatusOr<store::SendLedger::Outcome>& outcome);
  int64_t PendingTtlMs() const;  // how long a claim marks a send as being stored
  // The ledger's outcome for each claim, on the executor, with each seq taken already expected
  // by SeqOrder (see executor_claims_mutex_).
  store::AsyncSendLedger::Outcomes ClaimInSeqOrder(
      const std::vector<store::SendLedger::Claim>& claims);

  // A send that passed validation: where it goes, its dedup key, and its room with the writer
  // (taken before the send is numbered: see MessageWriter).
  struct SendTarget {
    ConversationId conversation;
    std::string conv_id;
    std::string dedup_key;
    MessageWriter::Room room;
  };
  // A batch of sends, validated: targets[k] and claims[k] are those of requests[prepared[k]]
  // (the others were refused).
  struct PreparedBatch {
    std::vector<im::v1::SendRequest> requests;
    std::vector<Respond<im::v1::SendResp>> responds;
    std::vector<size_t> prepared;
    std::vector<SendTarget> targets;
    std::vector<store::SendLedger::Claim> claims;
  };
  PreparedBatch Prepare(std::vector<im::v1::SendRequest> requests,
                        std::vector<Respond<im::v1::SendResp>> responds,
                        const KnownMembers* known = nullptr);
  // A batch of sends as it arrived, kept outside the tasks that carry it between the loop and
  // the executor (a refused task is destroyed, and its sends must still be answered).
  struct ArrivedBatch {
    std::vector<im::v1::SendRequest> requests;
    std::vector<Respond<im::v1::SendResp>> responds;
  };
  // SendBatchOnLoop; `lists_loaded`: the executor just loaded the lists this node lacked.
  void SendBatchOnLoop(const std::shared_ptr<ArrivedBatch>& sends, store::AsyncSendLedger* ledger,
                       bool lists_loaded);
  // On the loop: validates the batch (group membership against `known`), then takes every
  // claim and seq in one round trip.
  void ClaimOnLoop(ArrivedBatch& sends, const KnownMembers* known, store::AsyncSendLedger* ledger);
  // On the executor: loads the member lists of `groups`, then hands the batch back to the loop.
  void LoadListsThenSendOnLoop(const std::shared_ptr<ArrivedBatch>& sends,
                               std::vector<std::string> groups, store::AsyncSendLedger* ledger);
  // SendBatch on the executor.
  void SendBatchOnExecutor(const std::shared_ptr<ArrivedBatch>& sends);
  // Runs `run` on the executor; when it is full, or `run` waited there longer than its
  // queue-wait policy allows, every send of `sends` is refused RESOURCE_EXHAUSTED instead.
  void SubmitOrRefuse(const std::shared_ptr<ArrivedBatch>& sends,
                      common::BoundedExecutor::Task run);
  // Answers a send RESOURCE_EXHAUSTED with `reason`, counted in `counter`.
  void RefuseOverloaded(const im::v1::SendRequest& request, Respond<im::v1::SendResp> respond,
                        const char* reason, prometheus::Counter& counter);
  // Goes on with each send of `batch` once the ledger answered (outcomes[k] for claims[k]):
  // the numbered ones to the writer together, the rest each on its own (on the executor when
  // `on_loop`, where nothing may block).
  void ContinueBatch(const std::shared_ptr<PreparedBatch>& batch,
                     store::AsyncSendLedger::Outcomes& outcomes, bool on_loop);
  // Validates `request`; a refusal is answered through `respond` (then nullopt). A RECALL or
  // EDIT passes only as a `checked_change` (Change judged it).
  std::optional<SendTarget> PrepareSend(const im::v1::SendRequest& request,
                                        Respond<im::v1::SendResp>& respond,
                                        const KnownMembers* known = nullptr,
                                        bool checked_change = false);
  // Change's check of `request` against the message it changes; OK or the refusal.
  ChangeVerdict JudgeChangeRequest(const im::v1::SendRequest& request);
  // A group member's read cursor moved past a message of `sender`: a receipt for its devices.
  struct GroupReceipt {
    std::string sender;
    im::v1::ReadPush receipt;
  };
  // The message at `seq` of conv_id as `access` lets its user see it; NOT_FOUND when none is
  // stored there or it is from before the user joined.
  absl::StatusOr<im::v1::Message> VisibleMessage(const Access& access, const std::string& conv_id,
                                                 uint64_t seq);
  // Whether group_id has at most `limit` members (false when its list cannot be read).
  bool GroupWithin(const std::string& group_id, uint32_t limit);
  // After the reader's cursor in a group moved from `before` to `after`: receipts for the senders
  // of the messages in between (of the last kReceiptScanMessages of them).
  void QueueReceipts(const im::v1::Caller& reader, const std::string& conv_id, uint64_t before,
                     uint64_t after);
  // One ReceiptsPush per sender of the batch, holding the latest cursor of each reader.
  void PushReceipts(std::vector<GroupReceipt>& batch);
  // Applies a stored change to its original on the executor, then answers `resp`.
  void ApplyThenRespond(im::v1::Message change, im::v1::SendResp resp,
                        Respond<im::v1::SendResp> respond);
  // Goes on with a validated send once its claim is known: answers a stored one, else numbers,
  // persists and (after the commit) answers it.
  // Answers the send itself (refused, or a retry of a stored one), or returns the message to
  // persist, whose write answers it.
  std::optional<MessageWriter::Write> ContinueSend(const im::v1::SendRequest& request,
                                                   SendTarget& target, Claim claim,
                                                   Respond<im::v1::SendResp> respond);
  // Hands a message ContinueSend returned (if any) to the writer.
  void PersistOne(std::optional<MessageWriter::Write> write);
  void ReleaseClaim(const std::string& dedup_key);  // blocks
  // A message not stored because its seq is held by another (AppendOutcome::seq_taken): the
  // conversation's counter is dropped (on the executor; on a writer thread when that is full,
  // never on the loop), to be restored from the store, and the send answered ABORTED, which the
  // client retries with the same client_msg_id.
  absl::Status OnSeqTaken(const std::string& conv_id, uint64_t seq);
  // ReleaseClaim for a send whose write failed (from where the writer answers) or that was
  // refused after it claimed: without blocking on the loop, else on the executor.
  void ReleaseClaimAfterWrite(const std::string& dedup_key);
  // Writes the dedup answer of stored messages, for later attempts of their sends (one round
  // trip); failures are logged (the claims expire, and MySQL's unique key still holds).
  void RecordStored(const store::TtlMap::Entries& answers);
  static std::pair<std::string, std::string> DedupAnswer(const im::v1::Message& message);
  int64_t DedupTtlMs() const;  // how long a stored send's answer is kept for its retries
  static void WarnIfAnswersNotRecorded(absl::Status status);
  // Hands a stored group message to the fan-out bus, on the lane its group's size calls for.
  void Publish(const im::v1::Caller& sender, const im::v1::Message& message,
               FanoutBus::HandedOver handed_over);
  // Answers a group send once its message is on the fan-out bus.
  void PublishThenRespond(const im::v1::Caller& caller,
                          std::shared_ptr<const im::v1::Message> message, im::v1::SendResp resp,
                          Respond<im::v1::SendResp> respond);
  // A retry of a stored group send: publishes the stored message again (WithStoredMessage), then
  // answers.
  void RepublishThenRespond(const im::v1::Caller& caller, im::v1::SendResp resp,
                            Respond<im::v1::SendResp> respond);
  // Answers a send whose write ended and returns what delivers its message (null when it was
  // not stored), for SeqOrder to run in seq order. A group send is answered once published.
  SeqOrder::Deliver OnPersisted(const im::v1::Caller& caller, const ConversationId& conversation,
                                absl::StatusOr<store::AppendOutcome> outcome,
                                Respond<im::v1::SendResp> respond);
  // Hands a persisted single-chat message to the delivery stage (or, when that is full, writes
  // its dedup answer and leaves the push to Sync).
  void Deliver(Persisted persisted);
  // Appends the devices of `uid` (its `sessions`) except the connection of `skip`.
  static void AddTargets(const std::string& uid, const std::vector<store::Session>& sessions,
                         const im::v1::Caller& skip, std::vector<PushTarget>* targets);
  // Pushes `frame` to every device of `uids`, except the connection of `skip`.
  void PushToUsers(std::shared_ptr<const std::string> frame, std::vector<std::string> uids,
                   const im::v1::Caller& skip);
  // Drops the page's messages from the first gap that a write in flight may still fill, and
  // reports older gaps as holes. Returns whether the page was cut short.
  bool ApplyHoles(uint64_t after_seq, im::v1::SyncResp* resp) const;
  // Answers a sync of `req` from `page`, read after `after_seq` (req's, or the join's if later).
  void AnswerSync(const im::v1::SyncReq& req, uint64_t after_seq,
                  absl::StatusOr<store::MessagePage> page, Respond<im::v1::SyncResp> respond) const;

  const LogicOptions& options_;
  ChatDependencies deps_;
  Clock now_ms_;
  CoalescingStage<Persisted> delivery_;
  CoalescingStage<GroupPublish> publishing_;
  SeqOrder order_;
  TypingLimiter typing_;
  const ResumeTokens resume_tokens_;
  CoalescingStage<GroupReceipt> receipts_;
  // Held from a claim call on the executor until its seqs are expected by order_.
  std::mutex executor_claims_mutex_;
};

}  // namespace im::logic
