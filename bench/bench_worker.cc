#include "bench/bench_worker.h"

#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_loop.h"
#include "bench/device.h"
#include "common/clock.h"
#include "common/token.h"
#include "nlohmann/json.hpp"

namespace im::bench {
namespace {

using Json = nlohmann::json;

constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr uint64_t kProgressNs = 1'000'000'000;
constexpr uint64_t kSendLeadNs = 100'000'000;  // loops see the start before it comes
// Each step of the final sync waits at most this long (the gateway answers a request within 5 s).
constexpr uint64_t kSettleNs = 10'000'000'000;
// --sdk-devices: how long devices may take to converge after the final sync: a gap left by a seq
// that was taken but never stored is reported as a hole only after logic.hole_grace_ms (15 s).
constexpr uint64_t kConvergeNs = 30'000'000'000;
constexpr size_t kMissingSamples = 5;

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void WriteLine(int fd, const Json& json) {
  const std::string line = json.dump() + "\n";
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n <= 0) return;  // the parent is gone; nothing to report to
    done += static_cast<size_t>(n);
  }
}

// Builds the devices and conversations of worker `worker`: uids derive from the global index, so
// the workers of a run never share a user.
void BuildDevices(const BenchOptions& o, uint32_t worker, std::vector<Device>* devices,
                  std::vector<Conversation>* conversations) {
  const uint32_t per_worker = o.connections / o.procs + (o.scenario == Scenario::kConnect &&
                                                         worker < o.connections % o.procs);
  const uint32_t base =
      worker * (o.connections / o.procs) +
      (o.scenario == Scenario::kConnect ? std::min(worker, o.connections % o.procs) : 0);
  const int64_t exp = common::UnixMillis() / 1000 +
                      static_cast<int64_t>(o.duration_sec + o.setup_timeout_sec + o.drain_sec) +
                      3600;
  *devices = std::vector<Device>(per_worker);
  for (uint32_t i = 0; i < per_worker; ++i) {
    Device& d = (*devices)[i];
    const uint32_t global = base + i;
    d.index = i;
    d.window = common::SendWindow(o.window);
    d.change_picker = ChangePicker(o.recall_share, o.edit_share);
    d.gateway = global % static_cast<uint32_t>(o.gateway_addrs.size());
    if (!o.source_addrs.empty()) d.source = &o.source_addrs[global % o.source_addrs.size()];
    switch (o.scenario) {
      case Scenario::kConnect:
        d.uid = absl::StrCat(o.run_id, "-c", global);
        break;
      case Scenario::kChat:
      case Scenario::kReconnect:
        d.uid = absl::StrCat(o.run_id, "-u", global);
        break;
      case Scenario::kGroup: {
        const uint32_t group = global / o.group_size, member = global % o.group_size;
        d.uid = absl::StrCat(o.run_id, "-g", group, "-m", member);
        d.sender = member < o.senders;
        break;
      }
    }
    d.token = im::common::SignToken({d.uid, exp, ""}, o.secret);
  }
  conversations->clear();
  if (o.scenario == Scenario::kConnect) return;
  const uint32_t size = o.scenario == Scenario::kGroup ? o.group_size : 2;
  *conversations = std::vector<Conversation>(per_worker / size);
  for (uint32_t c = 0; c < conversations->size(); ++c) {
    Conversation& conv = (*conversations)[c];
    for (uint32_t m = 0; m < size; ++m) {
      Device& d = (*devices)[c * size + m];
      conv.members.push_back(d.index);
      d.conv = c;
      d.tracker = std::make_unique<SeqTracker>(
          o.reorder_window_ms, o.sdk_devices ? SeqTracker::Ordering::kHoldsBySeq
                                             : SeqTracker::Ordering::kShowsOnArrival);
    }
    if (o.scenario != Scenario::kGroup) {
      Device& a = (*devices)[c * 2];
      Device& b = (*devices)[c * 2 + 1];
      a.to_uid = b.uid;
      b.to_uid = a.uid;
      a.sender = b.sender = true;
      conv.senders = 2;
      conv.conv_id = absl::StrCat("s:", std::min(a.uid, b.uid), ":", std::max(a.uid, b.uid));
      conv.ready.store(true, std::memory_order_relaxed);
    } else {
      conv.senders = o.senders;
    }
  }
}

struct Totals {
  uint64_t online = 0, first_logins = 0, login_failures = 0, scheduled = 0, sent = 0, answered = 0;
  uint64_t acked = 0, send_errors = 0, refused = 0, expected = 0, delivered = 0, duplicates = 0;
  uint64_t errors_retried = 0;
  uint64_t syncs_refused = 0;
  uint64_t reordered = 0;
  uint64_t drops = 0, resumed = 0, down = 0, groups_ready = 0, setup_failures = 0;
  uint64_t window_max_us = 0, last_delivery_ns = 0;
  uint64_t in_flight = 0, syncing = 0, final_syncs = 0, found_by_final_sync = 0;
  uint64_t loops_final_synced = 0, converged = 0;
};

Totals Sum(const std::vector<std::unique_ptr<BenchLoop>>& loops, bool take_window) {
  Totals t;
  for (const auto& loop : loops) {
    LoopStats& s = loop->mutable_stats();
    auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    t.online += get(s.online);
    t.first_logins += get(s.first_logins);
    t.login_failures += get(s.login_failures);
    t.scheduled += get(s.scheduled);
    t.sent += get(s.sent);
    t.answered += get(s.answered);
    t.acked += get(s.acked);
    t.send_errors += get(s.send_errors);
    t.refused += get(s.refused);
    t.errors_retried += get(s.errors_retried);
    t.syncs_refused += get(s.syncs_refused);
    t.expected += get(s.expected);
    t.delivered += get(s.delivered);
    t.duplicates += get(s.duplicates);
    t.reordered += get(s.reordered);
    t.drops += get(s.drops);
    t.resumed += get(s.resumed);
    t.down += get(s.down);
    t.groups_ready += get(s.groups_ready);
    t.setup_failures += get(s.setup_failures);
    t.in_flight += get(s.in_flight);
    t.syncing += get(s.syncing);
    t.final_syncs += get(s.final_syncs);
    t.found_by_final_sync += get(s.found_by_final_sync);
    t.converged += get(s.converged);
    t.loops_final_synced += s.final_syncs_sent.load(std::memory_order_relaxed) ? 1 : 0;
    t.last_delivery_ns = std::max(t.last_delivery_ns, get(s.last_delivery_ns));
    if (take_window) {
      t.window_max_us =
          std::max(t.window_max_us, s.window_max_us.exchange(0, std::memory_order_relaxed));
    }
  }
  return t;
}

// The figures of the requests besides the messages (typing, changes, resumes) of loop result `r`,
// added to `all`.
void MergeRequestFigures(const LoopResults& r, LoopResults* all) {
  all->typing_sent += r.typing_sent;
  all->typing_pushes += r.typing_pushes;
  all->presence_watches += r.presence_watches;
  all->presence_watches_ok += r.presence_watches_ok;
  all->presence_refused += r.presence_refused;
  all->presence_pushes += r.presence_pushes;
  all->reads_sent += r.reads_sent;
  all->reads_ok += r.reads_ok;
  all->receipts_pushed += r.receipts_pushed;
  for (auto [into, from] :
       {std::pair{&all->recalls, &r.recalls}, std::pair{&all->edits, &r.edits}}) {
    into->sent += from->sent;
    into->ok += from->ok;
    into->ok_us.Merge(from->ok_us);
  }
  all->changes_resent += r.changes_resent;
  all->change_deliveries += r.change_deliveries;
  all->resume_attempts += r.resume_attempts;
  all->resumes_accepted += r.resumes_accepted;
  all->resume_fallbacks += r.resume_fallbacks;
  for (const auto& [k, v] : r.refusals) all->refusals[k] += v;
}

// Their part of the worker's result: counters, refusals by code, the changes' latencies.
void AddRequestFigures(const LoopResults& all, Json* result) {
  Json& counters = (*result)["counters"];
  counters["typing_sent"] = all.typing_sent;
  counters["typing_pushes"] = all.typing_pushes;
  counters["presence_watches"] = all.presence_watches;
  counters["presence_watches_ok"] = all.presence_watches_ok;
  counters["presence_refused"] = all.presence_refused;
  counters["presence_pushes"] = all.presence_pushes;
  counters["reads_sent"] = all.reads_sent;
  counters["reads_ok"] = all.reads_ok;
  counters["receipts_pushed"] = all.receipts_pushed;
  counters["recalls_sent"] = all.recalls.sent;
  counters["recalls_ok"] = all.recalls.ok;
  counters["edits_sent"] = all.edits.sent;
  counters["edits_ok"] = all.edits.ok;
  counters["changes_resent"] = all.changes_resent;
  counters["change_deliveries"] = all.change_deliveries;
  counters["resume_attempts"] = all.resume_attempts;
  counters["resumes_accepted"] = all.resumes_accepted;
  counters["resume_fallbacks"] = all.resume_fallbacks;
  Json refusals = Json::object();
  for (const auto& [k, v] : all.refusals) refusals[k] = v;
  (*result)["refusals"] = refusals;
  (*result)["histograms"]["recall_us"] = all.recalls.ok_us.ToJson();
  (*result)["histograms"]["edit_us"] = all.edits.ok_us.ToJson();
}

}  // namespace

int RunWorker(const BenchOptions& o, uint32_t worker, int out_fd, const std::atomic<bool>* stop) {
  std::vector<Device> devices;
  std::vector<Conversation> conversations;
  BuildDevices(o, worker, &devices, &conversations);

  WorkerContext ctx;
  ctx.options = &o;
  ctx.worker = worker;
  ctx.epoch_ns = uv_hrtime();
  ctx.devices = &devices;
  ctx.conversations = &conversations;
  const double total_senders = o.scenario == Scenario::kGroup
                                   ? static_cast<double>(o.groups()) * o.senders
                                   : static_cast<double>(o.connections);
  ctx.rate_per_sender = o.rate / total_senders;
  ctx.ramp_rate_per_loop =
      (o.scenario == Scenario::kConnect ? o.rate : o.login_rate) / (o.procs * o.threads);
  ctx.recipients_per_message = o.scenario == Scenario::kGroup ? o.group_size - 1 : 1;

  std::vector<std::unique_ptr<BenchLoop>> loops;
  for (uint32_t l = 0; l < o.threads; ++l) {
    std::vector<Device*> mine;
    for (uint32_t i = l; i < devices.size(); i += o.threads) mine.push_back(&devices[i]);
    loops.push_back(std::make_unique<BenchLoop>(l, &ctx, std::move(mine)));
  }
  const uint64_t start_ns = uv_hrtime();
  for (auto& loop : loops) {
    if (!loop->Start()) {
      WriteLine(out_fd, {{"type", "error"}, {"worker", worker}, {"error", "uv_loop_init failed"}});
      return 2;
    }
  }

  std::string phase = "login";
  std::string setup_error;
  uint64_t next_progress = start_ns + kProgressNs;
  const uint64_t groups_here = o.scenario == Scenario::kGroup ? conversations.size() : 0;
  auto progress = [&](uint64_t now) {
    if (now < next_progress) return;
    next_progress = now + kProgressNs;
    const Totals t = Sum(loops, true);
    WriteLine(out_fd, {{"type", "progress"},
                       {"worker", worker},
                       {"phase", phase},
                       {"t", Seconds(now - start_ns)},
                       {"devices", devices.size()},
                       {"online", t.online},
                       {"login_failures", t.login_failures},
                       {"sent", t.sent},
                       {"acked", t.acked},
                       {"errors", t.send_errors},
                       {"retried", t.errors_retried},
                       {"delivered", t.delivered},
                       {"duplicates", t.duplicates},
                       {"reordered", t.reordered},
                       {"drops", t.drops},
                       {"resumed", t.resumed},
                       {"window_max_us", t.window_max_us}});
  };
  auto stopped = [&] { return stop->load(std::memory_order_relaxed); };
  // Waits, writing progress, until `done` or `deadline_ns` (0: none) or a stop signal.
  auto wait_until = [&](auto done, uint64_t deadline_ns) {
    for (;;) {
      const uint64_t now = uv_hrtime();
      progress(now);
      if (done() || stopped() || (deadline_ns != 0 && now >= deadline_ns)) return done();
      std::this_thread::sleep_for(kPoll);
    }
  };

  const uint64_t setup_deadline = start_ns + static_cast<uint64_t>(o.setup_timeout_sec * 1e9);
  const bool set_up = wait_until(
      [&] {
        const Totals t = Sum(loops, false);
        if (t.setup_failures > 0) return true;
        return t.first_logins == devices.size() && t.groups_ready == groups_here;
      },
      setup_deadline);
  const uint64_t setup_end = uv_hrtime();
  Totals at_setup = Sum(loops, false);
  if (at_setup.setup_failures > 0) {
    setup_error = "group setup failed (see errors)";
  } else if (!set_up && o.scenario != Scenario::kConnect && !stopped()) {
    setup_error = absl::StrCat("setup timed out: ", at_setup.first_logins, " of ", devices.size(),
                               " devices logged in, ", at_setup.groups_ready, " of ", groups_here,
                               " groups set up");
  }

  uint64_t send_start = 0, send_end = 0, drain_end = 0;
  double cpu_at_send = 0, cpu_after_send = 0;
  if (setup_error.empty() && !stopped()) {
    if (o.scenario == Scenario::kConnect) {
      phase = "hold";
      send_start = uv_hrtime();
      cpu_at_send = CpuSeconds();
      send_end = send_start + static_cast<uint64_t>(o.duration_sec * 1e9);
      wait_until([] { return false; }, send_end);
      cpu_after_send = CpuSeconds();
    } else {
      phase = "send";
      send_start = uv_hrtime() + kSendLeadNs;
      send_end = send_start + static_cast<uint64_t>(o.duration_sec * 1e9);
      ctx.send_end_ns.store(send_end, std::memory_order_relaxed);
      ctx.send_start_ns.store(send_start, std::memory_order_release);
      cpu_at_send = CpuSeconds();
      wait_until([] { return false; }, send_end);
      cpu_after_send = CpuSeconds();
      phase = "drain";
      wait_until(
          [&] {
            const Totals t = Sum(loops, false);
            // in_flight: changes too, whose acknowledgements add to what is expected.
            return t.scheduled == t.answered && t.in_flight == 0 && t.delivered >= t.expected &&
                   t.down == 0;
          },
          uv_hrtime() + static_cast<uint64_t>(o.drain_sec * 1e9));
      drain_end = uv_hrtime();
      // Nothing new is sent; what is in flight is answered (the gateway answers within its
      // deadline); then each device syncs once, so that "missing" means not in the cluster.
      phase = "final sync";
      ctx.settle.store(WorkerContext::kStopSending, std::memory_order_relaxed);
      wait_until([&] { return Sum(loops, false).in_flight == 0; }, uv_hrtime() + kSettleNs);
      ctx.settle.store(WorkerContext::kFinalSync, std::memory_order_relaxed);
      wait_until(
          [&] {
            const Totals t = Sum(loops, false);
            return t.loops_final_synced == loops.size() && t.syncing == 0 &&
                   (!o.sdk_devices || t.converged >= t.online);
          },
          uv_hrtime() + (o.sdk_devices ? kConvergeNs : kSettleNs));
    }
  }
  phase = "done";
  const Totals end = Sum(loops, false);
  for (auto& loop : loops) loop->Stop();
  int unclosed = 0;
  for (auto& loop : loops) unclosed += loop->Join() != 0;

  // Everything below reads what the joined loops left.
  LoopResults all;
  uint64_t overtaken = 0, reordered = 0, duplicates = 0, max_depth = 0, max_wait_ms = 0;
  uint64_t waited_past_window = 0;
  for (const Device& d : devices) {
    if (!d.tracker) continue;
    overtaken += d.tracker->overtaken();
    waited_past_window += d.tracker->waited_past_window();
    reordered += d.tracker->reordered();
    duplicates += d.tracker->duplicates();
    max_depth = std::max(max_depth, d.tracker->max_depth());
    max_wait_ms = std::max<uint64_t>(max_wait_ms, d.tracker->max_wait_ms());
  }
  // By conversation: (seq, sender, whether a change's).
  std::vector<std::vector<std::tuple<uint64_t, uint32_t, bool>>> acked_by_conv(
      conversations.size());
  for (auto& loop : loops) {
    LoopResults& r = loop->results();
    all.login_us.Merge(r.login_us);
    all.ack_us.Merge(r.ack_us);
    all.delivery_us.Merge(r.delivery_us);
    all.resume_us.Merge(r.resume_us);
    all.refused_us.Merge(r.refused_us);
    for (const auto& [k, v] : r.errors) all.errors[k] += v;
    for (const auto& [k, v] : r.disconnects) all.disconnects[k] += v;
    all.resent += r.resent;
    all.self_pushes += r.self_pushes;
    all.unknown_messages += r.unknown_messages;
    all.unexpected_frames += r.unexpected_frames;
    all.planned_drops += r.planned_drops;
    all.unplanned_drops += r.unplanned_drops;
    all.go_aways += r.go_aways;
    all.kicks += r.kicks;
    all.max_backlog = std::max(all.max_backlog, r.max_backlog);
    all.gap_syncs += r.gap_syncs;
    all.stored_twice += r.stored_twice;
    MergeRequestFigures(r, &all);
    for (const LoopResults::Acked& a : r.acked) {
      acked_by_conv[a.conv].push_back({a.seq, a.sender, a.change});
    }
    if (all.member_latency.size() < r.member_latency.size()) {
      all.member_latency.resize(r.member_latency.size());
    }
    for (size_t l = 0; l < r.member_latency.size(); ++l) {
      auto& into = all.member_latency[l];
      if (into.size() < r.member_latency[l].size()) into.resize(r.member_latency[l].size());
      for (size_t k = 0; k < r.member_latency[l].size(); ++k) {
        const LoopResults::MemberLatency& from = r.member_latency[l][k];
        into[k].first_us = std::min(into[k].first_us, from.first_us);
        into[k].last_us = std::max(into[k].last_us, from.last_us);
        into[k].members += from.members;
      }
    }
  }

  // Missing: an acknowledged seq (a message's or a change's) a member of its conversation (other
  // than its sender) does not hold by the end, after pushes, syncs and the drain. Late: one it
  // got only after the drain (the final sync found it, or a push came that late).
  const uint32_t drain_end_ms =
      drain_end > ctx.epoch_ns ? static_cast<uint32_t>((drain_end - ctx.epoch_ns) / 1'000'000) : 0;
  uint64_t missing = 0, acked_unique = 0, acked_after_drain = 0;
  Json missing_samples = Json::array();
  for (size_t c = 0; c < acked_by_conv.size(); ++c) {
    auto& acked = acked_by_conv[c];
    std::sort(acked.begin(), acked.end());
    acked.erase(std::unique(acked.begin(), acked.end()), acked.end());
    for (const auto& [seq, sender, change] : acked) {
      acked_unique += change ? 0 : 1;
      for (uint32_t member : conversations[c].members) {
        if (member == sender) continue;
        const SeqTracker& held = *devices[member].tracker;
        if (held.Has(seq)) {
          if (drain_end != 0 && held.HeldAtMs(seq) >= drain_end_ms) ++acked_after_drain;
          continue;
        }
        ++missing;
        if (missing_samples.size() < kMissingSamples) {
          missing_samples.push_back(
              absl::StrCat(devices[member].uid, " lacks ", conversations[c].conv_id, " seq ", seq));
        }
      }
    }
  }
  Histogram first_member_us, last_member_us;
  uint64_t reached_all = 0;
  for (const auto& by_number : all.member_latency) {
    for (const LoopResults::MemberLatency& ml : by_number) {
      if (ml.members == 0) continue;
      first_member_us.Record(ml.first_us);
      if (ml.members >= ctx.recipients_per_message) {
        last_member_us.Record(ml.last_us);
        ++reached_all;
      }
    }
  }
  uint64_t not_resumed = 0, not_converged = 0;
  for (Device& d : devices) {
    not_resumed += d.down_since_ns != 0;
    if (o.sdk_devices && d.tracker && (!d.converged || d.tracker->HasGap())) ++not_converged;
  }

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  Json errors = Json::object(), disconnects = Json::object();
  for (const auto& [k, v] : all.errors) errors[k] = v;
  for (const auto& [k, v] : all.disconnects) disconnects[k] = v;
  Json result = {{"type", "result"},
                 {"worker", worker},
                 {"interrupted", stopped()},
                 {"setup_error", setup_error},
                 {"unclosed_loops", unclosed},
                 {"counters",
                  {{"devices", devices.size()},
                   {"conversations", conversations.size()},
                   {"online_at_end", end.online},
                   {"first_logins", end.first_logins},
                   {"login_failures", end.login_failures},
                   {"scheduled", end.scheduled},
                   {"sent", end.sent},
                   {"resent", all.resent},
                   {"acked", end.acked},
                   {"acked_unique", acked_unique},
                   {"send_errors", end.send_errors},
                   {"refused_and_resent", end.refused},
                   {"syncs_refused_and_retried", end.syncs_refused},
                   {"in_flight_at_end", end.in_flight},
                   {"final_syncs", end.final_syncs},
                   {"found_by_final_sync", end.found_by_final_sync},
                   {"unanswered", end.scheduled - std::min(end.scheduled, end.answered)},
                   {"expected_deliveries", end.expected},
                   {"delivered", end.delivered},
                   {"duplicates", duplicates},
                   {"overtaken", overtaken},
                   {"held_back_past_window", waited_past_window},
                   {"reordered", reordered},
                   {"missing", missing},
                   {"self_pushes", all.self_pushes},
                   {"unknown_messages", all.unknown_messages},
                   {"unexpected_frames", all.unexpected_frames},
                   {"planned_drops", all.planned_drops},
                   {"unplanned_drops", all.unplanned_drops},
                   {"resumed", end.resumed},
                   {"not_resumed", not_resumed},
                   {"go_aways", all.go_aways},
                   {"kicks", all.kicks},
                   {"errors_retried", end.errors_retried},
                   {"gap_syncs", all.gap_syncs},
                   {"stored_twice", all.stored_twice},
                   {"acked_after_drain", acked_after_drain},
                   {"not_converged", not_converged},
                   {"messages_reached_all", reached_all}}},
                 {"max",
                  {{"backlog", all.max_backlog},
                   {"reorder_depth", max_depth},
                   {"reorder_wait_ms", max_wait_ms}}},
                 {"errors", errors},
                 {"disconnects", disconnects},
                 {"histograms",
                  {{"login_us", all.login_us.ToJson()},
                   {"ack_us", all.ack_us.ToJson()},
                   {"delivery_us", all.delivery_us.ToJson()},
                   {"resume_us", all.resume_us.ToJson()},
                   {"refused_us", all.refused_us.ToJson()},
                   {"first_member_us", first_member_us.ToJson()},
                   {"last_member_us", last_member_us.ToJson()}}},
                 {"times",
                  {{"setup_sec", Seconds(setup_end - start_ns)},
                   {"send_sec", send_end > send_start ? Seconds(send_end - send_start) : 0.0},
                   {"last_delivery_sec", end.last_delivery_ns > send_start && send_start != 0
                                             ? Seconds(end.last_delivery_ns - send_start)
                                             : 0.0},
                   {"drain_sec", drain_end > send_end ? Seconds(drain_end - send_end) : 0.0}}},
                 {"cpu",
                  {{"total_sec", CpuSeconds()},
                   {"send_phase_sec", cpu_after_send - cpu_at_send},
                   {"max_rss_kb", usage.ru_maxrss}}},
                 {"missing_samples", missing_samples}};
  AddRequestFigures(all, &result);
  WriteLine(out_fd, result);
  return setup_error.empty() && unclosed == 0 ? 0 : 2;
}

}  // namespace im::bench
