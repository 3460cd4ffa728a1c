#include "bench/bench_loop.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/retry_hint.h"

namespace im::bench {
namespace {

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
// The body starts with the message id and its scheduled send time (both little-endian u64), so a
// receiver in any loop or process (CLOCK_MONOTONIC is system-wide) measures latency without a
// lookup.
constexpr size_t kBodyHeader = 16;

void StoreMax(std::atomic<uint64_t>& target, uint64_t value) {
  for (uint64_t seen = target.load(std::memory_order_relaxed);
       value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed);) {
  }
}

std::string CodeName(im::v1::Code code) {
  const std::string& name = im::v1::Code_Name(code);
  return name.empty() ? absl::StrCat(static_cast<int>(code)) : name;
}

}  // namespace

BenchLoop::BenchLoop(uint32_t index, WorkerContext* ctx, std::vector<Device*> devices)
    : index_(index),
      ctx_(ctx),
      options_(*ctx->options),
      devices_(std::move(devices)),
      random_(static_cast<uint32_t>(uv_hrtime()) ^ index) {
  for (uint32_t slot = 0; slot < devices_.size(); ++slot) {
    Device* d = devices_[slot];
    d->loop_slot = slot;
    d->conn = std::make_unique<ClientConnection>(&loop_, this, slot);
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
  if (d->down_since_ns != 0) {
    const Conversation* conv =
        d->conv == kNoConversation ? nullptr : &(*ctx_->conversations)[d->conv];
    if (conv != nullptr && conv->ready.load(std::memory_order_acquire)) {
      // What the SDK does after a reconnect: fetch what came while it was away.
      SendSync(d, d->tracker->Contiguous());
    } else {
      MarkResumed(d, now);
    }
  }
  if (options_.scenario == Scenario::kGroup && d->setup_call == 0 && d->setup_next == 0 &&
      (*ctx_->conversations)[d->conv].members[0] == d->index) {
    AdvanceGroupSetup(d, nullptr);  // the owner's first login: create the group
  }
  Pump(d);
}

void BenchLoop::MarkResumed(Device* d, uint64_t now) {
  if (d->down_since_ns == 0) return;
  results_.resume_us.Record((now - d->down_since_ns) / 1000);
  d->down_since_ns = 0;
  stats_.resumed.fetch_add(1, std::memory_order_relaxed);
  stats_.down.fetch_sub(1, std::memory_order_relaxed);
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
  if (d->state != Device::State::kOnline || d->backlog_size() == 0 || d->hold_until_ns != 0 ||
      ctx_->settle.load(std::memory_order_relaxed) != WorkerContext::kRunning) {
    return;
  }
  const Conversation& conv = (*ctx_->conversations)[d->conv];
  const uint64_t now = uv_hrtime();
  while (d->backlog_size() > 0 && d->in_flight.size() < d->window.size()) {
    const uint64_t entry = d->backlog[d->backlog_head++];
    const uint64_t m = entry & ~kResend;
    const uint64_t scheduled =
        send_start_ +
        static_cast<uint64_t>(static_cast<double>(m & kNumberMask) * send_interval_ns_);
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
    std::string* body = req->mutable_body();
    body->assign(options_.body_bytes, 'x');
    std::memcpy(body->data(), &m, sizeof(m));
    std::memcpy(body->data() + sizeof(m), &scheduled, sizeof(scheduled));
    d->in_flight.push_back({frame.id(), m, now});
    stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
    if ((entry & kResend) == 0) stats_.sent.fetch_add(1, std::memory_order_relaxed);
    d->conn->Send(frame);
  }
  if (d->backlog_head == d->backlog.size()) {
    d->backlog.clear();
    d->backlog_head = 0;
  }
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
      OnSendAnswer(d, frame, now);
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
        SetSyncing(d, false);
        MarkResumed(d, now);
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
      if (frame.id() != 0 && frame.id() == d->setup_call) {
        AdvanceGroupSetup(d, &frame);
      } else if (frame.id() != 0) {
        OnSendAnswer(d, frame, now);
      } else {
        CountError(absl::StrCat("error_", CodeName(frame.error().code())));
      }
      break;
    default:
      ++results_.unexpected_frames;
  }
  return d->state != Device::State::kDown;
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
  const im::v1::Code code =
      frame.has_send_resp() ? frame.send_resp().status().code() : frame.error().code();
  // A refusal is not the message's answer: it is sent again (and answered then), so the drain,
  // which waits until every scheduled message is answered, goes on while one is held.
  if (!common::IsOverloadRefusal(code)) stats_.answered.fetch_add(1, std::memory_order_relaxed);
  if (code == im::v1::OK) {
    const uint64_t scheduled =
        send_start_ +
        static_cast<uint64_t>(static_cast<double>(m & kNumberMask) * send_interval_ns_);
    stats_.acked.fetch_add(1, std::memory_order_relaxed);
    d->window.OnAcked();
    results_.ack_us.Record(now > scheduled ? (now - scheduled) / 1000 : 0);
    const uint64_t seq = frame.send_resp().seq();
    results_.acked.push_back({d->conv, seq, d->index});
    d->tracker->OnHeld(seq, NowMs(now));
    stats_.expected.fetch_add(ctx_->recipients_per_message, std::memory_order_relaxed);
  } else if (common::IsOverloadRefusal(code)) {
    stats_.refused.fetch_add(1, std::memory_order_relaxed);
    results_.refused_us.Record(now > sent_ns ? (now - sent_ns) / 1000 : 0);
    const uint32_t hint = frame.has_send_resp() ? frame.send_resp().status().retry_after_ms()
                                                : frame.error().retry_after_ms();
    const uint32_t wait_ms = hint > 0 ? hint : kRefusedBackoffMs;
    d->window.OnRefused(static_cast<int64_t>(now / kMsPerNs), wait_ms);
    HoldAndResend(d, m, now, wait_ms);
  } else {
    stats_.send_errors.fetch_add(1, std::memory_order_relaxed);
    CountError(absl::StrCat(frame.has_send_resp() ? "send_" : "send_error_", CodeName(code)));
  }
  Pump(d);
}

void BenchLoop::OnMessage(Device* d, const im::v1::Message& m, bool pushed, uint64_t now) {
  if (d->conv == kNoConversation) {
    ++results_.unknown_messages;
    return;
  }
  const Conversation& conv = (*ctx_->conversations)[d->conv];
  if (!conv.ready.load(std::memory_order_acquire) || m.conv_id() != conv.conv_id) {
    ++results_.unknown_messages;
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
  const uint64_t reordered_before = d->tracker->reordered();
  const SeqTracker::Arrival arrival =
      pushed ? d->tracker->OnPush(m.seq(), NowMs(now)) : d->tracker->OnHeld(m.seq(), NowMs(now));
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
  if (arrival != SeqTracker::Arrival::kNew) return;
  stats_.delivered.fetch_add(1, std::memory_order_relaxed);
  if (!pushed && stats_.final_syncs_sent.load(std::memory_order_relaxed)) {
    stats_.found_by_final_sync.fetch_add(1, std::memory_order_relaxed);
  }
  stats_.last_delivery_ns.store(now, std::memory_order_relaxed);
  if (m.body().size() < kBodyHeader) {
    ++results_.unknown_messages;
    return;
  }
  uint64_t id = 0, scheduled = 0;
  std::memcpy(&id, m.body().data(), sizeof(id));
  std::memcpy(&scheduled, m.body().data() + sizeof(id), sizeof(scheduled));
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
