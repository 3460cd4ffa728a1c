#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_options.h"
#include "bench/client_connection.h"
#include "bench/device.h"
#include "bench/histogram.h"

namespace im::bench {

// What the worker's main thread and a loop share. The worker fills it before the loops start;
// the atomics are written by the main thread (phases) and read by the loops.
struct WorkerContext {
  const BenchOptions* options = nullptr;
  uint32_t worker = 0;
  uint64_t epoch_ns = 0;  // uv_hrtime() when the worker started; tracker milliseconds count from it
  std::vector<Device>* devices = nullptr;
  std::vector<Conversation>* conversations = nullptr;
  double rate_per_sender = 0;     // messages per second each sending device is offered
  double ramp_rate_per_loop = 0;  // connects per second
  uint32_t recipients_per_message = 0;
  // Set once by the main thread: when the send phase starts and ends (uv_hrtime ns), 0 before.
  std::atomic<uint64_t> send_start_ns{0};
  std::atomic<uint64_t> send_end_ns{0};
  // After the drain (set by the main thread): kStopSending, devices send nothing new and wait for
  // the answers to what is in flight; kFinalSync, each online device syncs its conversation once,
  // so that an acknowledged message is "missing" only if the cluster does not have it at all, not
  // because its push had not arrived when the run stopped.
  enum Settle : int { kRunning = 0, kStopSending = 1, kFinalSync = 2 };
  std::atomic<int> settle{kRunning};
};

// Live figures of a loop, written by the loop (relaxed), read by the worker's progress line and
// drain check.
struct LoopStats {
  std::atomic<uint64_t> online{0}, first_logins{0}, logins{0}, login_failures{0};
  std::atomic<uint64_t> scheduled{0}, sent{0}, answered{0}, acked{0}, send_errors{0};
  std::atomic<uint64_t> refused{0};         // sends refused for overload, sent again after the hint
  std::atomic<uint64_t> errors_retried{0};  // --sdk-devices: failed with a code the SDK retries
  std::atomic<uint64_t> syncs_refused{0};   // syncs refused for overload, sent again after the hint
  std::atomic<uint64_t> expected{0}, delivered{0}, duplicates{0}, reordered{0};
  std::atomic<uint64_t> drops{0}, resumed{0}, down{0}, groups_ready{0}, setup_failures{0};
  std::atomic<uint64_t> in_flight{0};            // sends written and not answered
  std::atomic<uint64_t> syncing{0};              // devices waiting for a sync's answer
  std::atomic<uint64_t> final_syncs{0};          // devices the final sync was sent for (kFinalSync)
  std::atomic<bool> final_syncs_sent{false};     // written by the loop only
  std::atomic<uint64_t> found_by_final_sync{0};  // messages first held through the final sync
  std::atomic<uint64_t> converged{0};            // --sdk-devices: devices converged (Device)
  std::atomic<uint64_t> window_max_us{0};  // worst delivery latency since the last progress line
  std::atomic<uint64_t> last_delivery_ns{0};
};

// What a loop found, read by the worker after the loop's thread was joined.
struct LoopResults {
  Histogram login_us, ack_us, delivery_us, resume_us;
  Histogram refused_us;                         // a send's write -> its overload refusal
  std::map<std::string, uint64_t> errors;       // "login_TOKEN_INVALID", "send_UNAVAILABLE", ...
  std::map<std::string, uint64_t> disconnects;  // by reason
  uint64_t resent = 0, self_pushes = 0, unknown_messages = 0, unexpected_frames = 0;
  uint64_t planned_drops = 0, unplanned_drops = 0, go_aways = 0, kicks = 0, pongs = 0;
  uint64_t max_backlog = 0;
  // --sdk-devices: syncs made for a gap; messages of others that came under a second seq.
  uint64_t gap_syncs = 0, stored_twice = 0;
  // Requests besides the messages (--typing-every, --recall-share, --edit-share, --resume).
  uint64_t typing_sent = 0, typing_pushes = 0;
  // --watch-presence: PresenceSubscribeReq sent and answered OK, uids refused, states pushed.
  uint64_t presence_watches = 0, presence_watches_ok = 0, presence_refused = 0;
  uint64_t presence_pushes = 0;
  // --read-every: ReadReq sent and answered OK; read receipts pushed to the senders.
  uint64_t reads_sent = 0, reads_ok = 0, receipts_pushed = 0;
  struct ChangeFigures {
    uint64_t sent = 0, ok = 0;
    Histogram ok_us;  // a change's write -> its OK answer
  };
  ChangeFigures recalls, edits;
  uint64_t changes_resent = 0;     // cut off by a drop or refused for overload, sent again
  uint64_t change_deliveries = 0;  // RECALL and EDIT messages delivered (in `delivered` too)
  uint64_t resume_attempts = 0, resumes_accepted = 0, resume_fallbacks = 0;
  // Changes and resumes the cluster refused, by kind and code: "recall_NOT_CHANGEABLE",
  // "resume_FAILED_PRECONDITION", ...
  std::map<std::string, uint64_t> refusals;
  // Seqs acknowledged to this loop's devices (messages and changes): the end's "missing" check.
  struct Acked {
    uint32_t conv;
    uint64_t seq;
    uint32_t sender;
    bool change;  // a recall's or an edit's seq, not a message's
  };
  std::vector<Acked> acked;
  // Group scenario, by sending loop and message number: the earliest and latest delivery
  // latency over this loop's members (us) and how many of them got it.
  struct MemberLatency {
    uint64_t first_us = UINT64_MAX;
    uint64_t last_us = 0;
    uint32_t members = 0;
  };
  std::vector<std::vector<MemberLatency>> member_latency;
};

// One libuv loop on its own thread, owning a share of the worker's devices outright (STYLE.md's
// reactor model): it connects and logs them in at the ramp rate, sends on their open-loop
// schedule, checks what they receive, pings, and reconnects them when they drop. Other threads
// talk to it only through WorkerContext's atomics and Stop().
class BenchLoop : public ClientConnection::Handler {
 public:
  BenchLoop(uint32_t index, WorkerContext* ctx, std::vector<Device*> devices);
  ~BenchLoop() override;
  BenchLoop(const BenchLoop&) = delete;
  BenchLoop& operator=(const BenchLoop&) = delete;

  // Starts the thread. Returns false when libuv could not set the loop up.
  bool Start();
  // Any thread: closes every connection and handle, ends the thread; Join() waits for it.
  void Stop();
  // Returns uv_loop_close's result: 0 when every handle was closed.
  int Join();

  uint32_t index() const { return index_; }
  const LoopStats& stats() const { return stats_; }
  LoopStats& mutable_stats() { return stats_; }
  LoopResults& results() { return results_; }
  // Messages scheduled and not answered yet, and devices waiting to come back.
  uint64_t outstanding() const;

  // ClientConnection::Handler; on the loop's thread.
  void OnConnected(ClientConnection* conn) override;
  void OnDisconnected(ClientConnection* conn, std::string_view reason) override;
  bool OnFrame(ClientConnection* conn, im::v1::Frame&& frame) override;
  void OnDirty(ClientConnection* conn) override;

 private:
  void Run();
  void OnTick();
  void OnSweep();
  void OnStop();
  void FlushDirty();

  void StartConnect(Device* d, uint64_t now);
  void ScheduleReconnect(Device* d, uint64_t now, uint64_t delay_ms);
  void GoDown(Device* d, uint64_t now, bool planned, std::string_view reason);
  void OnLoggedIn(Device* d, const im::v1::LoginResp& resp, uint64_t now);
  void CatchUp(Device* d);
  void SendResume(Device* d, const std::string& page_token);
  void OnResumeAnswer(Device* d, im::v1::Code code, const im::v1::ResumeResp* resp, uint64_t now);
  void MarkResumed(Device* d, uint64_t now);
  void SendSync(Device* d, uint64_t after_seq);
  // A sync answered in full: the device caught up (and, after the final sync, converged unless a
  // gap is left).
  void OnSyncDone(Device* d, uint64_t now);
  // --sdk-devices: a gap in what `d` holds is synced for if it lasts kGapWaitMs, as the SDK's
  // inbox does; SyncDueGaps runs the syncs whose wait is over.
  void WaitOnGap(Device* d, uint64_t now);
  void SyncDueGaps(uint64_t now);
  // --sdk-devices: message `m` of another member came as `seq`; counts it if it came before
  // under another seq.
  void CheckStoredOnce(Device* d, const im::v1::Message& m);
  void SetSyncing(Device* d, bool syncing);
  void SendFinalSyncs();
  void Pump(Device* d);
  void SendMessage(Device* d, const Conversation& conv, uint64_t m, uint64_t now);
  void SendTypingIfDue(Device* d, const Conversation& conv);
  // --watch-presence: the device's watch of its conversation's other members, once per session,
  // when it has seen a message there; and its answer.
  void WatchPresenceIfDue(Device* d);
  void OnWatchAnswer(const im::v1::Frame& frame);
  // --read-every: marks the conversation read up to what the device holds, after every Nth
  // message it received; and the answer.
  void ReadIfDue(Device* d);
  void OnReadAnswer(const im::v1::Frame& frame);
  // Whether a request was answered OK: by its response's `status`, or refused by an Error frame
  // in its place; a refusal is counted as "<what>_<CODE>" (under refusals when for overload,
  // else under errors).
  bool AnsweredOk(const im::v1::Frame& frame, const im::v1::Status& status, const char* what);
  void ChangeIfPicked(Device* d, uint64_t m, uint64_t seq, uint64_t now);
  void SendChange(Device* d, const Device::Change& change);
  void HoldAndResend(Device* d, uint64_t m, uint64_t now, uint32_t hint_ms);
  void Hold(Device* d, uint64_t now, uint32_t hint_ms);
  void ReleaseHeld(uint64_t now);
  void RetrySyncLater(Device* d, uint64_t now, uint32_t hint_ms);
  void RetryDueSyncs(uint64_t now);
  // Removes from `waiting` each device whose `due` time has come (resetting it to 0) and runs
  // `act` on it.
  template <typename Act>
  static void TakeDue(std::vector<Device*>& waiting, uint64_t Device::*due, uint64_t now, Act act);
  void ScheduleSends(uint64_t now);
  void ScheduleDrops(uint64_t now);
  void OnErrorFrame(Device* d, const im::v1::Frame& frame, uint64_t now);
  void OnSendAnswer(Device* d, const im::v1::Frame& frame, uint64_t now);
  // False when `frame` answers no change of `d`.
  bool OnChangeAnswer(Device* d, const im::v1::Frame& frame, uint64_t now);
  void OnOwnSeqAcked(Device* d, uint64_t seq, bool change, uint64_t now);
  void OnMessage(Device* d, const im::v1::Message& m, bool pushed, uint64_t now);
  void RecordDeliveryLatency(const im::v1::Message& m, uint64_t now);
  void OnTypingPush(Device* d, const im::v1::TypingPush& push);
  // The device's conversation once it is set up (a group's ids are known); else null.
  const Conversation* ReadyConversationOf(const Device& d) const;
  LoopResults::ChangeFigures& FiguresOf(im::v1::MessageType change) {
    return change == im::v1::RECALL ? results_.recalls : results_.edits;
  }
  // When message `m` was due to be sent (uv_hrtime ns): its latencies count from then.
  uint64_t ScheduledNs(uint64_t m) const;
  void AdvanceGroupSetup(Device* d, const im::v1::Frame* answer);
  void CountError(const std::string& what) { ++results_.errors[what]; }
  // A uniform random wait in [low_ms, low_ms + spread_ms]: spreads devices that were refused or
  // cut off together, so that they do not come back together.
  uint64_t JitteredMs(uint64_t low_ms, uint64_t spread_ms) {
    return low_ms + random_() % (spread_ms + 1);
  }
  uint32_t NowMs(uint64_t now) const {
    return static_cast<uint32_t>((now - ctx_->epoch_ns) / 1'000'000);
  }

  const uint32_t index_;
  WorkerContext* const ctx_;
  const BenchOptions& options_;
  std::vector<Device*> devices_;
  std::vector<Device*> senders_;
  std::vector<Device*> droppable_;
  std::vector<Device*> held_;                // devices waiting out a retry hint (hold_until_ns)
  std::vector<Device*> sync_retries_;        // devices whose refused sync waits (sync_retry_ns)
  std::vector<Device*> gap_waits_;           // devices waiting to see if a gap fills (gap_sync_ns)
  std::minstd_rand random_;                  // this loop's thread only
  std::shared_ptr<tls::ClientContext> tls_;  // with --tls-ca: every connection's TLS settings
  std::thread thread_;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  uv_timer_t sweep_{};
  uv_async_t stop_{};
  uv_prepare_t flush_{};
  int handles_ = 0;
  int close_result_ = 0;
  std::vector<ClientConnection*> dirty_;

  // Connect attempts by time: (uv_hrtime ns, slot in devices_), earliest first.
  using Due = std::pair<uint64_t, uint32_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> connects_;

  uint64_t send_start_ = 0, send_end_ = 0;
  double send_interval_ns_ = 0;
  uint64_t next_message_ = 0;
  uint64_t next_drop_ = 0;
  bool storm_done_ = false;

  LoopStats stats_;
  LoopResults results_;
};

}  // namespace im::bench
