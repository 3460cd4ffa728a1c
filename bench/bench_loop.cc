#include "bench/bench_loop.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bench/message_body.h"
#include "common/retry_hint.h"

namespace im::bench {
namespace {

// The sender of a group's system notices (logic's kSystemUid).
constexpr char kSystemSender[] = "@system";

using im::v1::Frame;

constexpr uint64_t kMsPerNs = 1'000'000;
constexpr uint64_t kTickMs = 1;
constexpr uint64_t kSweepMs = 1000;
constexpr uint64_t kLoginTimeoutNs = 15'000 * kMsPerNs;
constexpr uint32_t kFirstBackoffMs = 100;
constexpr uint32_t kMaxBackoffMs = 10'000;
// A login the cluster refused (overloaded, or a deadline passed) backs off from this, as an SDK
// should: retrying at once keeps an overloaded cluster overloaded.
constexpr uint32_t kRefusedBackoffMs = 1000;
constexpr uint32_t kSyncPage = 200;
// A message id is (sending loop << 40) | number within that loop's schedule; bit 63 in a backlog
// entry marks a resend.
constexpr int kLoopShift = 40;
constexpr uint64_t kNumberMask = (uint64_t{1} << kLoopShift) - 1;
constexpr uint64_t kResend = uint64_t{1} << 63;
// Bit 62 of a TypingReq's frame id: a TypingReq has no answer, but the gateway may refuse it with
// an Error frame (TOO_MANY_IN_FLIGHT), which this bit tells from an answer to a send.
constexpr uint64_t kTypingFrame = uint64_t{1} << 62;
// The frame ids of PresenceSubscribeReq carry this bit, so their answers are told apart.
constexpr uint64_t kWatchFrame = uint64_t{1} << 61;
// ... and those of ReadReq (--read-every).
constexpr uint64_t kReadFrame = uint64_t{1} << 60;
// Members one device watches at most (the cluster's logic.presence_max_watch is 200).
constexpr size_t kMaxPresenceWatch = 200;
constexpr uint32_t kResumePage = 100;
// --sdk-devices: how long a gap may last before the device syncs (the SDK's gap_wait_ms), and the
// wait before a send failed with a code the SDK retries goes again (the SDK waits its
// reconnect_initial_ms, 250 ms, plus up to a second; Hold waits this plus up to as much again).
constexpr uint32_t kGapWaitMs = 300;
constexpr uint32_t kErrorRetryMs = 500;

void StoreMax(std::atomic<uint64_t>& target, uint64_t value) {
  for (uint64_t seen = target.load(std::memory_order_relaxed);
       value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed);) {
  }
}

std::string CodeName(im::v1::Code code) {
  const std::string& name = im::v1::Code_Name(code);
  return name.empty() ? absl::StrCat(static_cast<int>(code)) : name;
}

// The codes besides the overload refusals (handled first, with their hint) after which the SDK
// sends the same message again.
bool RetriedBySdk(im::v1::Code code) {
  return common::IsRetryable(code) && !common::IsOverloadRefusal(code);
}

// A send's (or a change's) answer: a SendResp, or an Error frame carrying the request's id.
im::v1::Code SendAnswerCode(const Frame& frame) {
  return frame.has_send_resp() ? frame.send_resp().status().code() : frame.error().code();
}

uint32_t SendAnswerRetryHintMs(const Frame& frame) {
  return frame.has_send_resp() ? frame.send_resp().status().retry_after_ms()
                               : frame.error().retry_after_ms();
}

// A send or a change refused for overload: the device's window shrinks (as the SDK's does) and it
// waits the cluster's hint, or its own back-off without one. Returns the wait.
uint32_t ShrinkWindowForRefusal(Device* d, const Frame& frame, uint64_t now) {
  const uint32_t hint = SendAnswerRetryHintMs(frame);
  const uint32_t wait_ms = hint > 0 ? hint : kRefusedBackoffMs;
  d->window.OnRefused(static_cast<int64_t>(now / kMsPerNs), wait_ms);
  return wait_ms;
}

// "recall" / "edit": the prefix of a change's refusals and of its client_msg_id.
const char* ChangeName(im::v1::MessageType change) {
  return change == im::v1::RECALL ? "recall" : "edit";
}

// One per loop, for its connections (Resolve() checked the CA file already).
std::shared_ptr<tls::ClientContext> MakeTlsContext(const BenchOptions& options) {
  if (options.tls_ca.empty()) return nullptr;
  tls::ClientTlsOptions trust;
  trust.ca_file = options.tls_ca;
  trust.resume_sessions = options.tls_resume;
  absl::StatusOr<std::shared_ptr<tls::ClientContext>> context = tls::ClientContext::Create(trust);
  return context.ok() ? std::move(*context) : nullptr;
}

}  // namespace

BenchLoop::BenchLoop(uint32_t index, WorkerContext* ctx, std::vector<Device*> devices)
    : index_(index),
      ctx_(ctx),
      options_(*ctx->options),
      devices_(std::move(devices)),
      random_(static_cast<uint32_t>(uv_hrtime()) ^ index),
      tls_(MakeTlsContext(options_)) {
  for (uint32_t slot = 0; slot < devices_.size(); ++slot) {
    Device* d = devices_[slot];
    d->loop_slot = slot;
    d->conn =
        std::make_unique<ClientConnection>(&loop_, this, slot, tls_.get(), options_.transport);
    if (d->sender) senders_.push_back(d);
  }
  if (options_.scenario == Scenario::kReconnect) {
    const size_t n = static_cast<size_t>(std::ceil(options_.fraction * devices_.size()));
    droppable_.assign(devices_.begin(), devices_.begin() + std::min(n, devices_.size()));
  }
}

BenchLoop::~BenchLoop() {
  if (thread_.joinable()) {
    Stop();
    Join();
  }
}

bool BenchLoop::Start() {
  if (uv_loop_init(&loop_) != 0) return false;
  uv_timer_init(&loop_, &tick_);
  uv_timer_init(&loop_, &sweep_);
  uv_prepare_init(&loop_, &flush_);
  uv_async_init(&loop_, &stop_, [](uv_async_t* a) { static_cast<BenchLoop*>(a->data)->OnStop(); });
  tick_.data = sweep_.data = flush_.data = stop_.data = this;
  const uint64_t now = uv_hrtime();
  const double interval = 1e9 / ctx_->ramp_rate_per_loop;
  for (uint32_t slot = 0; slot < devices_.size(); ++slot) {
    connects_.push({now + static_cast<uint64_t>(slot * interval), slot});
  }
  thread_ = std::thread([this] { Run(); });
  return true;
}

void BenchLoop::Stop() { uv_async_send(&stop_); }

int BenchLoop::Join() {
  if (thread_.joinable()) thread_.join();
  return close_result_;
}

void BenchLoop::Run() {
  uv_timer_start(
      &tick_, [](uv_timer_t* t) { static_cast<BenchLoop*>(t->data)->OnTick(); }, 0, kTickMs);
  uv_timer_start(
      &sweep_, [](uv_timer_t* t) { static_cast<BenchLoop*>(t->data)->OnSweep(); }, kSweepMs,
      kSweepMs);
  uv_prepare_start(&flush_,
                   [](uv_prepare_t* p) { static_cast<BenchLoop*>(p->data)->FlushDirty(); });
  uv_run(&loop_, UV_RUN_DEFAULT);
  close_result_ = uv_loop_close(&loop_);
}

void BenchLoop::OnStop() {
  for (Device* d : devices_) d->conn->Close();
  dirty_.clear();
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&tick_), reinterpret_cast<uv_handle_t*>(&sweep_),
        reinterpret_cast<uv_handle_t*>(&flush_), reinterpret_cast<uv_handle_t*>(&stop_)}) {
    uv_close(h, nullptr);
  }
}

void BenchLoop::OnDirty(ClientConnection* conn) { dirty_.push_back(conn); }

void BenchLoop::FlushDirty() {
  // Once per loop iteration, as Redis flushes replies: every frame a connection got queued since
  // the last pass goes out in one write. Write completions come later, never inside this pass.
  std::vector<ClientConnection*> dirty;
  dirty.swap(dirty_);
  for (ClientConnection* c : dirty) c->Flush();
}

void BenchLoop::OnTick() {
  const uint64_t now = uv_hrtime();
  while (!connects_.empty() && connects_.top().first <= now) {
    Device* d = devices_[connects_.top().second];
    connects_.pop();
    if (d->state == Device::State::kIdle || d->state == Device::State::kDown) StartConnect(d, now);
  }
  ReleaseHeld(now);
  RetryDueSyncs(now);
  SyncDueGaps(now);
  ScheduleSends(now);
  if (!stats_.final_syncs_sent.load(std::memory_order_relaxed) &&
      ctx_->settle.load(std::memory_order_relaxed) == WorkerContext::kFinalSync) {
    SendFinalSyncs();
  }
  if (options_.scenario == Scenario::kReconnect) ScheduleDrops(now);
}

void BenchLoop::OnSweep() {
  const uint64_t now = uv_hrtime();
  for (Device* d : devices_) {
    if ((d->state == Device::State::kConnecting || d->state == Device::State::kLoggingIn) &&
        now - d->attempt_ns > kLoginTimeoutNs) {
      stats_.login_failures.fetch_add(1, std::memory_order_relaxed);
      CountError("login_timeout");
      GoDown(d, now, false, "login_timeout");
    } else if (d->state == Device::State::kOnline && d->down_since_ns != 0 && !d->syncing &&
               d->sync_retry_ns == 0 && d->conv != kNoConversation) {
      // Logged in again but its catch-up sync failed (not for overload, whose retry waits for
      // its hint): retry, as the SDK does, once a second.
      SendSync(d, d->tracker->Contiguous());
    } else if (d->state == Device::State::kOnline && now - d->last_ping_ns >= d->heartbeat_ns) {
      // Once per heartbeat, as the SDK does (the gateway closes a device silent for three; pushes
      // to it do not count as life).
      d->last_ping_ns = now;
      Frame ping;
      ping.set_id(d->next_frame_id++);
      ping.mutable_ping()->set_client_time_ms(static_cast<int64_t>(now / kMsPerNs));
      d->conn->Send(ping);
    }
  }
}

void BenchLoop::StartConnect(Device* d, uint64_t now) {
  d->attempt_ns = now;
  d->state = Device::State::kConnecting;
  const absl::Status status = d->conn->Connect(options_.gateway_addrs[d->gateway], d->source);
  if (!status.ok()) {
    // Out of ports or file descriptors: a failed attempt like any other, retried with backoff.
    stats_.login_failures.fetch_add(1, std::memory_order_relaxed);
    CountError("connect_error");
    GoDown(d, now, false, "connect_error");
  }
}

void BenchLoop::ScheduleReconnect(Device* d, uint64_t now, uint64_t delay_ms) {
  connects_.push({now + delay_ms * kMsPerNs, d->loop_slot});
}

void BenchLoop::GoDown(Device* d, uint64_t now, bool planned, std::string_view reason) {
  d->conn->Close();
  if (d->state == Device::State::kOnline) stats_.online.fetch_sub(1, std::memory_order_relaxed);
  d->state = Device::State::kDown;
  SetSyncing(d, false);
  ++results_.disconnects[std::string(reason)];
  d->reconnected = d->reconnected || d->ever_online;
  if (d->ever_online && d->down_since_ns == 0) {
    d->down_since_ns = now;
    stats_.down.fetch_add(1, std::memory_order_relaxed);
    stats_.drops.fetch_add(1, std::memory_order_relaxed);
    ++(planned ? results_.planned_drops : results_.unplanned_drops);
  }
  // What was sent and not answered is sent again after the login, with the same client_msg_id:
  // the cluster answers a resend with the original seq, as the SDK relies on.
  if (!d->in_flight.empty()) {
    std::vector<uint64_t> backlog;
    backlog.reserve(d->in_flight.size() + d->backlog_size());
    for (const Device::InFlightSend& send : d->in_flight) backlog.push_back(send.message | kResend);
    std::sort(backlog.begin(), backlog.end());
    backlog.insert(backlog.end(), d->backlog.begin() + static_cast<ptrdiff_t>(d->backlog_head),
                   d->backlog.end());
    results_.resent += d->in_flight.size();
    stats_.in_flight.fetch_sub(d->in_flight.size(), std::memory_order_relaxed);
    d->in_flight.clear();
    d->backlog.swap(backlog);
    d->backlog_head = 0;
  }
  for (const Device::InFlightChange& sent : d->changes_in_flight) {
    d->changes_due.push_back(sent.change);
  }
  results_.changes_resent += d->changes_in_flight.size();
  stats_.in_flight.fetch_sub(d->changes_in_flight.size(), std::memory_order_relaxed);
  d->changes_in_flight.clear();
  d->resume_call = 0;  // its answer will not come; the next connection presents the token again
  if (d->setup_call != 0) {
    // A group setup call cut off: whether it took effect is unknown, so the run cannot go on.
    d->setup_call = 0;
    stats_.setup_failures.fetch_add(1, std::memory_order_relaxed);
    CountError("setup_interrupted");
  }
  uint64_t delay_ms = options_.down_ms;
  if (!planned) {
    d->backoff_ms = std::clamp(d->backoff_ms * 2, kFirstBackoffMs, kMaxBackoffMs);
    // Jitter spreads a storm of reconnects over the backoff instead of one instant.
    delay_ms = JitteredMs(d->backoff_ms / 2, d->backoff_ms / 2);
    if (reason == "connect_refused" || reason == "go_away") {
      d->gateway = (d->gateway + 1) % static_cast<uint32_t>(options_.gateway_addrs.size());
    }
  }
  ScheduleReconnect(d, now, delay_ms);
}

void BenchLoop::OnConnected(ClientConnection* conn) {
  Device* d = devices_[conn->index()];
  d->state = Device::State::kLoggingIn;
  Frame login;
  login.set_id(d->next_frame_id++);
  login.mutable_login_req()->set_token(d->token);
  login.mutable_login_req()->set_device("bench");
  login.mutable_login_req()->set_platform("im-bench");
  conn->Send(login);
}

void BenchLoop::OnDisconnected(ClientConnection* conn, std::string_view reason) {
  Device* d = devices_[conn->index()];
  if (d->state == Device::State::kConnecting || d->state == Device::State::kLoggingIn) {
    stats_.login_failures.fetch_add(1, std::memory_order_relaxed);
    CountError(absl::StrCat("login_", std::string(reason)));
  }
  GoDown(d, uv_hrtime(), false, reason);
}

void BenchLoop::OnLoggedIn(Device* d, const im::v1::LoginResp& resp, uint64_t now) {
  d->state = Device::State::kOnline;
  stats_.online.fetch_add(1, std::memory_order_relaxed);
  stats_.logins.fetch_add(1, std::memory_order_relaxed);
  if (!d->ever_online) {
    d->ever_online = true;
    stats_.first_logins.fetch_add(1, std::memory_order_relaxed);
  }
  results_.login_us.Record((now - d->attempt_ns) / 1000);
  if (resp.heartbeat_sec() > 0) d->heartbeat_ns = uint64_t{resp.heartbeat_sec()} * 1'000'000'000;
  d->last_ping_ns = now;
  d->backoff_ms = 0;
  d->watched_presence = false;  // a new session watches again, as the SDK does
  if (options_.resume) d->next_resume_token = resp.resume_token();
  if (d->down_since_ns != 0 && ReadyConversationOf(*d) != nullptr) {
    CatchUp(d);
  } else {
    MarkResumed(d, now);  // nothing to catch up on
  }
  if (options_.scenario == Scenario::kGroup && d->setup_call == 0 && d->setup_next == 0 &&
      (*ctx_->conversations)[d->conv].members[0] == d->index) {
    AdvanceGroupSetup(d, nullptr);  // the owner's first login: create the group
  }
  Pump(d);
}

// What the SDK does after a reconnect: resume the last session when it has its token (--resume),
// else fetch what came while it was away.
void BenchLoop::CatchUp(Device* d) {
  if (d->resume_token.empty()) return SendSync(d, d->tracker->Contiguous());
  ++results_.resume_attempts;
  d->resume_found_newer = false;
  SendResume(d, "");
}

void BenchLoop::SendResume(Device* d, const std::string& page_token) {
  SetSyncing(d, true);  // catching up: neither dropped on purpose nor synced by OnSweep meanwhile
  Frame frame;
  frame.set_id(d->next_frame_id++);
  im::v1::ResumeReq* req = frame.mutable_resume_req();
  req->set_resume_token(d->resume_token);
  req->set_page_token(page_token);
  req->set_limit(kResumePage);
  d->resume_call = frame.id();
  d->conn->Send(frame);
}

// The answer lists the conversations changed since the token's session (less a margin); the device
// syncs its conversation only when it is listed beyond what the device holds. `resp` is null when
// an Error frame answered.
void BenchLoop::OnResumeAnswer(Device* d, im::v1::Code code, const im::v1::ResumeResp* resp,
                               uint64_t now) {
  d->resume_call = 0;
  if (code != im::v1::OK) {
    // Spent, expired or refused: the token is no use now. Catch up as without --resume.
    ++results_.resume_fallbacks;
    ++results_.refusals[absl::StrCat("resume_", CodeName(code))];
    d->resume_token.clear();
    return SendSync(d, d->tracker->Contiguous());
  }
  const std::string& conv_id = (*ctx_->conversations)[d->conv].conv_id;
  for (const im::v1::Conversation& listed : resp->conversations()) {
    if (listed.conv_id() == conv_id && listed.max_seq() > d->tracker->Contiguous()) {
      d->resume_found_newer = true;
    }
  }
  if (!resp->next_page_token().empty()) return SendResume(d, resp->next_page_token());
  ++results_.resumes_accepted;
  d->next_resume_token = resp->resume_token();
  // A device catching up when the final sync was sent got none: it syncs now whatever the list.
  if (d->resume_found_newer || stats_.final_syncs_sent.load(std::memory_order_relaxed)) {
    return SendSync(d, d->tracker->Contiguous());
  }
  OnSyncDone(d, now);
}

void BenchLoop::MarkResumed(Device* d, uint64_t now) {
  // Caught up: this session's token is what the next connection resumes with.
  if (!d->next_resume_token.empty()) d->resume_token = std::exchange(d->next_resume_token, {});
  if (d->down_since_ns == 0) return;
  results_.resume_us.Record((now - d->down_since_ns) / 1000);
  d->down_since_ns = 0;
  stats_.resumed.fetch_add(1, std::memory_order_relaxed);
  stats_.down.fetch_sub(1, std::memory_order_relaxed);
}

void BenchLoop::OnSyncDone(Device* d, uint64_t now) {
  SetSyncing(d, false);
  MarkResumed(d, now);
  if (!options_.sdk_devices) return;
  // A gap the sync could not fill: a message not stored yet, or a hole the cluster reports only
  // once logic.hole_grace_ms passed. The SDK keeps syncing for it, and so does the device.
  if (d->tracker->HasGap()) return WaitOnGap(d, now);
  if (stats_.final_syncs_sent.load(std::memory_order_relaxed) && !d->converged) {
    d->converged = true;
    stats_.converged.fetch_add(1, std::memory_order_relaxed);
  }
}

void BenchLoop::WaitOnGap(Device* d, uint64_t now) {
  if (!options_.sdk_devices || d->gap_sync_ns != 0 || !d->tracker->HasGap()) return;
  d->gap_sync_ns = now + kGapWaitMs * kMsPerNs;
  gap_waits_.push_back(d);
}

void BenchLoop::SyncDueGaps(uint64_t now) {
  TakeDue(gap_waits_, &Device::gap_sync_ns, now, [this](Device* d) {
    // Offline, its login catches up; syncing or waiting to, that sync's end looks again.
    if (!d->tracker->HasGap() || d->state != Device::State::kOnline || d->syncing ||
        d->sync_retry_ns != 0) {
      return;
    }
    ++results_.gap_syncs;
    SendSync(d, d->tracker->Contiguous());
  });
}

void BenchLoop::SetSyncing(Device* d, bool syncing) {
  if (d->syncing == syncing) return;
  d->syncing = syncing;
  if (syncing) {
    stats_.syncing.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.syncing.fetch_sub(1, std::memory_order_relaxed);
  }
}

void BenchLoop::SendFinalSyncs() {
  stats_.final_syncs_sent.store(true, std::memory_order_relaxed);
  for (Device* d : devices_) {
    if (d->state != Device::State::kOnline || d->conv == kNoConversation || d->syncing) continue;
    stats_.final_syncs.fetch_add(1, std::memory_order_relaxed);
    SendSync(d, d->tracker->Contiguous());
  }
}

void BenchLoop::SendSync(Device* d, uint64_t after_seq) {
  SetSyncing(d, true);
  Frame sync;
  sync.set_id(d->next_frame_id++);
  sync.mutable_sync_req()->set_conv_id((*ctx_->conversations)[d->conv].conv_id);
  sync.mutable_sync_req()->set_after_seq(after_seq);
  sync.mutable_sync_req()->set_limit(kSyncPage);
  d->conn->Send(sync);
}

// A send refused for overload goes first in its device's backlog, with the same client_msg_id
// (a resend), and the device holds its sends for the hint plus up to as much again, its window
// halved (Device::window): what the SDK's outbox does, so an overload run measures what apps
// would see.
void BenchLoop::HoldAndResend(Device* d, uint64_t m, uint64_t now, uint32_t hint_ms) {
  if (d->backlog_head > 0) {
    d->backlog[--d->backlog_head] = m | kResend;
  } else {
    d->backlog.insert(d->backlog.begin(), m | kResend);
  }
  Hold(d, now, hint_ms);
}

void BenchLoop::Hold(Device* d, uint64_t now, uint32_t hint_ms) {
  const uint64_t wait_ms = JitteredMs(hint_ms, hint_ms);
  if (d->hold_until_ns == 0) held_.push_back(d);
  d->hold_until_ns = std::max(d->hold_until_ns, now + wait_ms * kMsPerNs);
}

template <typename Act>
void BenchLoop::TakeDue(std::vector<Device*>& waiting, uint64_t Device::*due, uint64_t now,
                        Act act) {
  for (size_t i = 0; i < waiting.size();) {
    Device* d = waiting[i];
    if (d->*due > now) {
      ++i;
      continue;
    }
    d->*due = 0;
    waiting[i] = waiting.back();
    waiting.pop_back();
    act(d);
  }
}

// Pumps the held devices whose wait is over.
void BenchLoop::ReleaseHeld(uint64_t now) {
  TakeDue(held_, &Device::hold_until_ns, now, [this](Device* d) { Pump(d); });
}

void BenchLoop::RetrySyncLater(Device* d, uint64_t now, uint32_t hint_ms) {
  if (d->sync_retry_ns == 0) sync_retries_.push_back(d);
  d->sync_retry_ns = now + JitteredMs(hint_ms, hint_ms) * kMsPerNs;
}

void BenchLoop::RetryDueSyncs(uint64_t now) {
  TakeDue(sync_retries_, &Device::sync_retry_ns, now, [this](Device* d) {
    if (d->state == Device::State::kOnline && !d->syncing && d->conv != kNoConversation) {
      SendSync(d, d->tracker->Contiguous());
    }
  });
}

void BenchLoop::Pump(Device* d) {
  if (d->state != Device::State::kOnline || d->hold_until_ns != 0 ||
      (d->backlog_size() == 0 && d->changes_due.empty()) ||
      ctx_->settle.load(std::memory_order_relaxed) != WorkerContext::kRunning) {
    return;
  }
  while (!d->changes_due.empty() && d->requests_in_flight() < d->window.size()) {
    SendChange(d, d->changes_due.back());
    d->changes_due.pop_back();
  }
  const Conversation& conv = (*ctx_->conversations)[d->conv];
  const uint64_t now = uv_hrtime();
  while (d->backlog_size() > 0 && d->requests_in_flight() < d->window.size()) {
    const uint64_t entry = d->backlog[d->backlog_head++];
    if ((entry & kResend) == 0) {
      stats_.sent.fetch_add(1, std::memory_order_relaxed);
      SendTypingIfDue(d, conv);
    }
    SendMessage(d, conv, entry & ~kResend, now);
  }
  if (d->backlog_head == d->backlog.size()) {
    d->backlog.clear();
    d->backlog_head = 0;
  }
}

uint64_t BenchLoop::ScheduledNs(uint64_t m) const {
  return send_start_ +
         static_cast<uint64_t>(static_cast<double>(m & kNumberMask) * send_interval_ns_);
}

void BenchLoop::SendMessage(Device* d, const Conversation& conv, uint64_t m, uint64_t now) {
  Frame frame;
  frame.set_id(d->next_frame_id++);
  im::v1::SendReq* req = frame.mutable_send_req();
  if (d->to_uid.empty()) {
    req->set_conv_id(conv.conv_id);
  } else {
    req->set_to_uid(d->to_uid);
  }
  req->set_client_msg_id(absl::StrCat(m));
  req->set_type(im::v1::TEXT);
  *req->mutable_body() = MessageBody({m, ScheduledNs(m)}, options_.body_bytes, 'x');
  d->in_flight.push_back({frame.id(), m, now});
  stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
  d->conn->Send(frame);
}

// --typing-every N: the device "types" before every Nth message it sends. The cluster passes one
// TypingPush per user and conversation every logic.typing_interval_ms at most.
void BenchLoop::SendTypingIfDue(Device* d, const Conversation& conv) {
  ++d->messages_sent;
  if (options_.typing_every == 0 || d->messages_sent % options_.typing_every != 0) return;
  Frame frame;
  frame.set_id(kTypingFrame | d->next_frame_id++);
  frame.mutable_typing_req()->set_conv_id(conv.conv_id);
  ++results_.typing_sent;
  d->conn->Send(frame);
}

void BenchLoop::WatchPresenceIfDue(Device* d) {
  if (!options_.watch_presence || d->watched_presence) return;
  const Conversation* conv = ReadyConversationOf(*d);
  if (conv == nullptr) return;
  d->watched_presence = true;
  Frame frame;
  frame.set_id(kWatchFrame | d->next_frame_id++);
  im::v1::PresenceSubscribeReq* watch = frame.mutable_presence_subscribe_req();
  for (uint32_t member : conv->members) {
    if (member == d->index) continue;
    if (static_cast<size_t>(watch->uids_size()) == kMaxPresenceWatch) break;
    watch->add_uids((*ctx_->devices)[member].uid);
  }
  ++results_.presence_watches;
  d->conn->Send(frame);
}

bool BenchLoop::AnsweredOk(const Frame& frame, const im::v1::Status& status, const char* what) {
  const im::v1::Code code = frame.has_error() ? frame.error().code() : status.code();
  if (code == im::v1::OK) return true;
  // An overload refusal is the cluster's answer under load, not a fault: not sent again (the
  // next watch or read supersedes it), counted apart.
  if (common::IsOverloadRefusal(code)) {
    ++results_.refusals[absl::StrCat(what, "_", CodeName(code))];
  } else {
    CountError(absl::StrCat(what, "_", CodeName(code)));
  }
  return false;
}

void BenchLoop::OnWatchAnswer(const Frame& frame) {
  if (!AnsweredOk(frame, frame.presence_subscribe_resp().status(), "presence")) return;
  ++results_.presence_watches_ok;
  results_.presence_refused += frame.presence_subscribe_resp().refused_size();
}

void BenchLoop::ReadIfDue(Device* d) {
  ++d->messages_received;
  if (options_.read_every == 0 || d->messages_received % options_.read_every != 0) return;
  const Conversation* conv = ReadyConversationOf(*d);
  if (conv == nullptr || d->tracker->Contiguous() == 0) return;
  Frame frame;
  frame.set_id(kReadFrame | d->next_frame_id++);
  frame.mutable_read_req()->set_conv_id(conv->conv_id);
  frame.mutable_read_req()->set_read_seq(d->tracker->Contiguous());
  ++results_.reads_sent;
  d->conn->Send(frame);
}

void BenchLoop::OnReadAnswer(const Frame& frame) {
  if (AnsweredOk(frame, frame.read_resp().status(), "read")) ++results_.reads_ok;
}

// --recall-share, --edit-share: message `m`, acknowledged as `seq`, is recalled or edited at once
// if its device's picker says so, while the send phase runs.
void BenchLoop::ChangeIfPicked(Device* d, uint64_t m, uint64_t seq, uint64_t now) {
  if (seq == 0 || ctx_->settle.load(std::memory_order_relaxed) != WorkerContext::kRunning) return;
  const std::optional<im::v1::MessageType> type = d->change_picker.Next();
  if (!type) return;
  ++FiguresOf(*type).sent;
  SendChange(d, {*type, m, seq, now});
}

void BenchLoop::SendChange(Device* d, const Device::Change& change) {
  Frame frame;
  frame.set_id(d->next_frame_id++);
  im::v1::SendReq* req = frame.mutable_send_req();
  req->set_conv_id((*ctx_->conversations)[d->conv].conv_id);  // a change names it, not the peer
  req->set_client_msg_id(absl::StrCat(ChangeName(change.type), "-", change.message));
  req->set_type(change.type);
  req->set_ref_seq(change.ref_seq);
  if (change.type == im::v1::EDIT) {
    const BodyHeader edited{change.message, ScheduledNs(change.message)};
    *req->mutable_body() = MessageBody(edited, options_.body_bytes, 'e');
  }
  d->changes_in_flight.push_back({frame.id(), change});
  stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
  d->conn->Send(frame);
}

void BenchLoop::ScheduleSends(uint64_t now) {
  if (senders_.empty()) return;
  if (send_start_ == 0) {
    const uint64_t start = ctx_->send_start_ns.load(std::memory_order_acquire);
    if (start == 0 || now < start) return;
    send_start_ = start;
    send_end_ = ctx_->send_end_ns.load(std::memory_order_relaxed);
    send_interval_ns_ = 1e9 / (ctx_->rate_per_sender * static_cast<double>(senders_.size()));
  }
  const uint64_t base = uint64_t{index_} << kLoopShift;
  for (;;) {
    const uint64_t at =
        send_start_ + static_cast<uint64_t>(static_cast<double>(next_message_) * send_interval_ns_);
    if (at > now || at >= send_end_) break;
    Device* d = senders_[next_message_ % senders_.size()];
    d->backlog.push_back(base | next_message_);
    ++next_message_;
    stats_.scheduled.fetch_add(1, std::memory_order_relaxed);
    Pump(d);
    results_.max_backlog = std::max<uint64_t>(results_.max_backlog, d->backlog_size());
  }
}

void BenchLoop::ScheduleDrops(uint64_t now) {
  if (send_start_ == 0 || now >= send_end_ || droppable_.empty()) return;
  if (options_.reconnect_rate > 0) {
    const double interval = 1e9 * options_.procs * options_.threads / options_.reconnect_rate;
    while (send_start_ + static_cast<uint64_t>(static_cast<double>(next_drop_) * interval) <= now) {
      Device* d = droppable_[next_drop_ % droppable_.size()];
      ++next_drop_;
      if (d->state == Device::State::kOnline && !d->syncing) GoDown(d, now, true, "dropped");
    }
  } else if (!storm_done_ &&
             now >= send_start_ + static_cast<uint64_t>(options_.storm_at_sec * 1e9)) {
    storm_done_ = true;
    for (Device* d : droppable_) {
      if (d->state == Device::State::kOnline) GoDown(d, now, true, "dropped");
    }
  }
}

bool BenchLoop::OnFrame(ClientConnection* conn, Frame&& frame) {
  Device* d = devices_[conn->index()];
  const uint64_t now = uv_hrtime();
  switch (frame.body_case()) {
    case Frame::kLoginResp:
      if (d->state != Device::State::kLoggingIn) {
        ++results_.unexpected_frames;
      } else if (frame.login_resp().status().code() == im::v1::OK) {
        OnLoggedIn(d, frame.login_resp(), now);
      } else {
        stats_.login_failures.fetch_add(1, std::memory_order_relaxed);
        CountError(absl::StrCat("login_", CodeName(frame.login_resp().status().code())));
        // GoDown doubles this and waits between half and all of it: [hint, 2 x hint] when the
        // cluster said when to come back (an overload refusal), as the SDK does.
        const uint32_t hint = frame.login_resp().status().retry_after_ms();
        d->backoff_ms = std::max(d->backoff_ms, hint > 0 ? hint : kRefusedBackoffMs / 2);
        GoDown(d, now, false, "login_refused");
      }
      break;
    case Frame::kSendResp:
      if (!OnChangeAnswer(d, frame, now)) OnSendAnswer(d, frame, now);
      break;
    case Frame::kResumeResp:
      if (frame.id() != 0 && frame.id() == d->resume_call) {
        OnResumeAnswer(d, frame.resume_resp().status().code(), &frame.resume_resp(), now);
      } else {
        ++results_.unexpected_frames;
      }
      break;
    case Frame::kTypingPush:
      OnTypingPush(d, frame.typing_push());
      break;
    case Frame::kPresenceSubscribeResp:
      OnWatchAnswer(frame);
      break;
    case Frame::kPresencePush:
      results_.presence_pushes += frame.presence_push().presences_size();
      break;
    case Frame::kReadResp:
      OnReadAnswer(frame);
      break;
    case Frame::kReadPush:  // a single chat's peer read
      ++results_.receipts_pushed;
      break;
    case Frame::kReceiptsPush:  // group members read what this device sent
      results_.receipts_pushed += frame.receipts_push().receipts_size();
      break;
    case Frame::kMessagePush:
      for (const im::v1::Message& m : frame.message_push().messages()) OnMessage(d, m, true, now);
      break;
    case Frame::kSyncResp: {
      const im::v1::SyncResp& resp = frame.sync_resp();
      if (resp.status().code() != im::v1::OK) {
        SetSyncing(d, false);
        if (common::IsOverloadRefusal(resp.status().code())) {
          // Not an error: the cluster said when to come back, as it does for sends.
          stats_.syncs_refused.fetch_add(1, std::memory_order_relaxed);
          const uint32_t hint = resp.status().retry_after_ms();
          RetrySyncLater(d, now, hint > 0 ? hint : kRefusedBackoffMs);
        } else if (options_.sdk_devices && RetriedBySdk(resp.status().code())) {
          // A tier away: the SDK's inbox syncs again after four gap waits.
          ++results_.refusals[absl::StrCat("sync_", CodeName(resp.status().code()))];
          RetrySyncLater(d, now, 4 * kGapWaitMs);
        } else {
          CountError(absl::StrCat("sync_", CodeName(resp.status().code())));
        }
        break;
      }
      for (const im::v1::Message& m : resp.messages()) OnMessage(d, m, false, now);
      for (const im::v1::SeqRange& hole : resp.holes()) {
        d->tracker->HoldRange(hole.first(), hole.last(), NowMs(now));
      }
      if (resp.has_more() && resp.messages_size() > 0) {
        SendSync(d, resp.messages(resp.messages_size() - 1).seq());
      } else {
        OnSyncDone(d, now);
      }
      break;
    }
    case Frame::kPong:
      ++results_.pongs;
      break;
    case Frame::kGoAway:
      ++results_.go_aways;
      GoDown(d, now, false, "go_away");
      break;
    case Frame::kKick:
      ++results_.kicks;
      CountError("kicked");
      break;
    case Frame::kGroupCreateResp:
    case Frame::kGroupJoinResp:
      if (frame.id() != 0 && frame.id() == d->setup_call) {
        AdvanceGroupSetup(d, &frame);
      } else {
        ++results_.unexpected_frames;
      }
      break;
    case Frame::kError:
      OnErrorFrame(d, frame, now);
      break;
    default:
      ++results_.unexpected_frames;
  }
  return d->state != Device::State::kDown;
}

// An Error frame answers the request whose frame id it carries, or none (id 0).
void BenchLoop::OnErrorFrame(Device* d, const Frame& frame, uint64_t now) {
  const uint64_t id = frame.id();
  if (id == 0) {
    CountError(absl::StrCat("error_", CodeName(frame.error().code())));
  } else if (id == d->setup_call) {
    AdvanceGroupSetup(d, &frame);
  } else if (id == d->resume_call) {
    OnResumeAnswer(d, frame.error().code(), nullptr, now);
  } else if ((id & kTypingFrame) != 0) {
    CountError(absl::StrCat("typing_", CodeName(frame.error().code())));
  } else if ((id & kWatchFrame) != 0) {
    OnWatchAnswer(frame);
  } else if ((id & kReadFrame) != 0) {
    OnReadAnswer(frame);
  } else if (!OnChangeAnswer(d, frame, now)) {
    OnSendAnswer(d, frame, now);
  }
}

void BenchLoop::OnSendAnswer(Device* d, const Frame& frame, uint64_t now) {
  auto it = std::find_if(d->in_flight.begin(), d->in_flight.end(),
                         [&](const auto& entry) { return entry.frame_id == frame.id(); });
  if (it == d->in_flight.end()) {
    ++results_.unexpected_frames;
    return;
  }
  const uint64_t m = it->message;
  const uint64_t sent_ns = it->sent_ns;
  *it = d->in_flight.back();
  d->in_flight.pop_back();
  stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  const im::v1::Code code = SendAnswerCode(frame);
  const bool retried = options_.sdk_devices && RetriedBySdk(code);
  // A refusal is not the message's answer: it is sent again (and answered then), so the drain,
  // which waits until every scheduled message is answered, goes on while one is held.
  if (!common::IsOverloadRefusal(code) && !retried) {
    stats_.answered.fetch_add(1, std::memory_order_relaxed);
  }
  if (code == im::v1::OK) {
    const uint64_t scheduled = ScheduledNs(m);
    stats_.acked.fetch_add(1, std::memory_order_relaxed);
    d->window.OnAcked();
    results_.ack_us.Record(now > scheduled ? (now - scheduled) / 1000 : 0);
    const uint64_t seq = frame.send_resp().seq();
    OnOwnSeqAcked(d, seq, false, now);
    ChangeIfPicked(d, m, seq, now);
    WatchPresenceIfDue(d);
  } else if (common::IsOverloadRefusal(code)) {
    stats_.refused.fetch_add(1, std::memory_order_relaxed);
    results_.refused_us.Record(now > sent_ns ? (now - sent_ns) / 1000 : 0);
    HoldAndResend(d, m, now, ShrinkWindowForRefusal(d, frame, now));
  } else if (retried) {
    stats_.errors_retried.fetch_add(1, std::memory_order_relaxed);
    ++results_.refusals[absl::StrCat("send_", CodeName(code))];
    HoldAndResend(d, m, now, kErrorRetryMs);
  } else {
    stats_.send_errors.fetch_add(1, std::memory_order_relaxed);
    CountError(absl::StrCat(frame.has_send_resp() ? "send_" : "send_error_", CodeName(code)));
  }
  Pump(d);
}

// A change is answered as a send is: refused for overload, it is sent again after the hint; any
// other refusal is final and counted by its code.
bool BenchLoop::OnChangeAnswer(Device* d, const Frame& frame, uint64_t now) {
  auto it = std::find_if(d->changes_in_flight.begin(), d->changes_in_flight.end(),
                         [&](const auto& entry) { return entry.frame_id == frame.id(); });
  if (it == d->changes_in_flight.end()) return false;
  const Device::Change change = it->change;
  *it = d->changes_in_flight.back();
  d->changes_in_flight.pop_back();
  stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  const im::v1::Code code = SendAnswerCode(frame);
  if (code == im::v1::OK) {
    LoopResults::ChangeFigures& figures = FiguresOf(change.type);
    ++figures.ok;
    figures.ok_us.Record((now - change.first_sent_ns) / 1000);
    OnOwnSeqAcked(d, frame.send_resp().seq(), true, now);
  } else if (common::IsOverloadRefusal(code)) {
    ++results_.changes_resent;
    d->changes_due.push_back(change);
    Hold(d, now, ShrinkWindowForRefusal(d, frame, now));
  } else {
    ++results_.refusals[absl::StrCat(ChangeName(change.type), "_", CodeName(code))];
  }
  Pump(d);
  return true;
}

// A seq the cluster acknowledged to `d` (a message's or a change's): `d` holds it, every other
// member is to get it, and the end checks that they did.
void BenchLoop::OnOwnSeqAcked(Device* d, uint64_t seq, bool change, uint64_t now) {
  results_.acked.push_back({d->conv, seq, d->index, change});
  d->tracker->OnHeld(seq, NowMs(now));
  stats_.expected.fetch_add(ctx_->recipients_per_message, std::memory_order_relaxed);
  WaitOnGap(d, now);  // a message of the peer's below it may not have come yet
}

void BenchLoop::OnTypingPush(Device* d, const im::v1::TypingPush& push) {
  const Conversation* conv = ReadyConversationOf(*d);
  if (conv == nullptr || push.conv_id() != conv->conv_id) {
    ++results_.unknown_messages;
  } else if (push.uid() == d->uid) {
    ++results_.self_pushes;  // typing goes to the other members only
  } else {
    ++results_.typing_pushes;
  }
}

const Conversation* BenchLoop::ReadyConversationOf(const Device& d) const {
  if (d.conv == kNoConversation) return nullptr;
  const Conversation& conv = (*ctx_->conversations)[d.conv];
  return conv.ready.load(std::memory_order_acquire) ? &conv : nullptr;
}

void BenchLoop::OnMessage(Device* d, const im::v1::Message& m, bool pushed, uint64_t now) {
  const Conversation* conv = ReadyConversationOf(*d);
  if (conv == nullptr || m.conv_id() != conv->conv_id) {
    ++results_.unknown_messages;
    return;
  }
  if (m.type() == im::v1::SYSTEM && m.sender() == kSystemSender) {
    // A group's notice (its creation, a join): it holds its seq, and is no message of the run.
    d->tracker->OnHeld(m.seq(), NowMs(now));
    WaitOnGap(d, now);
    return;
  }
  if (m.sender() == d->uid) {
    // The sending connection gets a SendResp, never a push of its own message. After a drop the
    // device is another connection, which the fan-out of a send made before the drop may reach
    // (before or after the resend's SendResp): held, not an error.
    if (pushed && !d->reconnected) ++results_.self_pushes;
    d->tracker->OnHeld(m.seq(), NowMs(now));
    return;
  }
  CheckStoredOnce(d, m);
  const uint64_t reordered_before = d->tracker->reordered();
  const SeqTracker::Arrival arrival =
      pushed ? d->tracker->OnPush(m.seq(), NowMs(now)) : d->tracker->OnHeld(m.seq(), NowMs(now));
  WaitOnGap(d, now);
  if (d->tracker->reordered() != reordered_before) {
    stats_.reordered.fetch_add(1, std::memory_order_relaxed);
  }
  if (arrival == SeqTracker::Arrival::kDuplicate) {
    stats_.duplicates.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (arrival == SeqTracker::Arrival::kInvalid) {
    ++results_.unknown_messages;
    return;
  }
  WatchPresenceIfDue(d);
  if (arrival != SeqTracker::Arrival::kNew) return;
  ReadIfDue(d);
  stats_.delivered.fetch_add(1, std::memory_order_relaxed);
  if (!pushed && stats_.final_syncs_sent.load(std::memory_order_relaxed)) {
    stats_.found_by_final_sync.fetch_add(1, std::memory_order_relaxed);
  }
  stats_.last_delivery_ns.store(now, std::memory_order_relaxed);
  if (IsChange(m.type())) {
    // Its own seq, checked as any other above; its latency is not the changed message's.
    ++results_.change_deliveries;
    return;
  }
  // A message read back (by sync) after its recall has no body left, so no latency.
  if (!m.recalled()) RecordDeliveryLatency(m, now);
}

void BenchLoop::CheckStoredOnce(Device* d, const im::v1::Message& m) {
  if (!options_.sdk_devices || m.type() != im::v1::TEXT) return;  // an edit names its message too
  const std::optional<BodyHeader> header = ReadBodyHeader(m.body());
  if (!header) return;  // recalled: read back by sync without its body
  const auto [it, first] = d->seq_of_message.emplace(header->message, m.seq());
  if (!first && it->second != m.seq()) ++results_.stored_twice;
}

void BenchLoop::RecordDeliveryLatency(const im::v1::Message& m, uint64_t now) {
  const std::optional<BodyHeader> header = ReadBodyHeader(m.body());
  if (!header) {
    ++results_.unknown_messages;
    return;
  }
  const uint64_t id = header->message, scheduled = header->scheduled_ns;
  const uint64_t latency_us = now > scheduled ? (now - scheduled) / 1000 : 0;
  results_.delivery_us.Record(latency_us);
  StoreMax(stats_.window_max_us, latency_us);
  if (options_.scenario == Scenario::kGroup) {
    const uint64_t loop = id >> kLoopShift, number = id & kNumberMask;
    if (loop >= options_.threads || number > (uint64_t{1} << 32)) {
      ++results_.unknown_messages;
      return;
    }
    auto& by_loop = results_.member_latency;
    if (by_loop.size() <= loop) by_loop.resize(loop + 1);
    if (by_loop[loop].size() <= number)
      by_loop[loop].resize(std::max(number + 1, by_loop[loop].size() * 2));
    LoopResults::MemberLatency& ml = by_loop[loop][number];
    ml.first_us = std::min(ml.first_us, latency_us);
    ml.last_us = std::max(ml.last_us, latency_us);
    ++ml.members;
  }
}

void BenchLoop::AdvanceGroupSetup(Device* d, const Frame* answer) {
  Conversation& conv = (*ctx_->conversations)[d->conv];
  if (answer != nullptr) {
    d->setup_call = 0;
    im::v1::Code code = im::v1::OK;
    std::string detail;
    if (answer->has_group_create_resp()) {
      code = answer->group_create_resp().status().code();
      detail = answer->group_create_resp().status().message();
    } else if (answer->has_group_join_resp()) {
      code = answer->group_join_resp().status().code();
      detail = answer->group_join_resp().status().message();
    } else {
      code = answer->error().code();
      detail = answer->error().message();
    }
    if (code != im::v1::OK) {
      stats_.setup_failures.fetch_add(1, std::memory_order_relaxed);
      CountError(absl::StrCat("setup_", CodeName(code)));
      return;
    }
    if (answer->has_group_create_resp()) {
      conv.group_id = answer->group_create_resp().group_id();
      conv.conv_id = answer->group_create_resp().conv_id().empty()
                         ? absl::StrCat("g:", conv.group_id)
                         : answer->group_create_resp().conv_id();
    }
  }
  const uint32_t size = static_cast<uint32_t>(conv.members.size());
  Frame call;
  call.set_id(d->next_frame_id++);
  if (d->setup_next == 0) {
    // The creator is a member already; the first chunk goes with the create.
    auto* create = call.mutable_group_create_req();
    create->set_name(absl::StrCat(options_.run_id, " group"));
    uint32_t next = 1;
    for (; next < size && next < options_.join_chunk; ++next) {
      create->add_members((*ctx_->devices)[conv.members[next]].uid);
    }
    d->setup_next = next;
  } else if (d->setup_next < size) {
    auto* join = call.mutable_group_join_req();
    join->set_group_id(conv.group_id);
    for (uint32_t n = 0; n < options_.join_chunk && d->setup_next < size; ++n, ++d->setup_next) {
      join->add_uids((*ctx_->devices)[conv.members[d->setup_next]].uid);
    }
  } else {
    conv.ready.store(true, std::memory_order_release);
    stats_.groups_ready.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  d->setup_call = call.id();
  d->conn->Send(call);
}

}  // namespace im::bench
