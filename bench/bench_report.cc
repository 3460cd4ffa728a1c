#include "bench/bench_report.h"

#include <algorithm>

#include "bench/histogram.h"
#include "fmt/format.h"

namespace im::bench {
namespace {

using Json = nlohmann::json;

constexpr const char* kHistograms[] = {"login_us",       "ack_us",     "delivery_us",
                                       "resume_us",      "refused_us", "first_member_us",
                                       "last_member_us", "recall_us",  "edit_us"};

Json Percentiles(const Histogram& h) {
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"count", h.count()},           {"p50", ms(h.ValueAt(0.50))},
          {"p90", ms(h.ValueAt(0.90))},   {"p99", ms(h.ValueAt(0.99))},
          {"p999", ms(h.ValueAt(0.999))}, {"max", ms(h.max())},
          {"mean", h.mean() / 1000.0}};
}

uint64_t U(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<uint64_t>() : 0;
}

double D(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

// "tcp", "tls", "ws" or "wss", from a report's params.
std::string TransportLabel(const Json& params) {
  const bool tls = params.value("tls", false);
  if (params.value("transport", "tcp") == "ws") return tls ? "wss" : "ws";
  return tls ? "tls" : "tcp";
}

// One "label   value" line of the human table.
void AppendLine(const std::string& label, const std::string& value, std::string* out) {
  *out += fmt::format("  {:<28} {}\n", label, value);
}

// Adds the counts of `from` ({"name": n, ...}) to those of `into`, key by key.
void AddCounts(const Json& from, Json* into) {
  for (const auto& [k, v] : from.items()) (*into)[k] = U(*into, k.c_str()) + v.get<uint64_t>();
}

// "3 (NOT_CHANGEABLE 2, UNAVAILABLE 1)": the refusals whose key starts with `kind` and "_".
std::string RefusalsOf(const Json& refusals, const std::string& kind) {
  uint64_t total = 0;
  std::string by_code;
  for (const auto& [k, v] : refusals.items()) {
    if (k.rfind(kind + "_", 0) != 0) continue;
    total += v.get<uint64_t>();
    by_code += fmt::format("{}{} {}", by_code.empty() ? "" : ", ", k.substr(kind.size() + 1),
                           v.get<uint64_t>());
  }
  return by_code.empty() ? "0" : fmt::format("{} ({})", total, by_code);
}

// The lines of the requests besides the messages, when the run made any.
void FormatRequests(const Json& r, std::string* out) {
  auto line = [out](const std::string& label, const std::string& value) {
    AppendLine(label, value, out);
  };
  const Json& c = r["counters"];
  const Json refusals = r.value("refusals", Json::object());
  if (U(c, "typing_sent") > 0 || U(c, "typing_pushes") > 0) {
    line("typing sent / pushed",
         fmt::format("{} / {} (the cluster passes one per user and conversation per interval)",
                     U(c, "typing_sent"), U(c, "typing_pushes")));
  }
  if (U(c, "reads_sent") > 0) {
    line(
        "reads sent / ok / receipts pushed",
        fmt::format("{} / {} / {}", U(c, "reads_sent"), U(c, "reads_ok"), U(c, "receipts_pushed")));
  }
  if (U(c, "presence_watches") > 0) {
    line("presence watches / ok / refused uids / states pushed",
         fmt::format("{} / {} / {} / {}", U(c, "presence_watches"), U(c, "presence_watches_ok"),
                     U(c, "presence_refused"), U(c, "presence_pushes")));
  }
  if (U(c, "recalls_sent") > 0 || U(c, "edits_sent") > 0) {
    line("recalls sent / ok / refused",
         fmt::format("{} / {} / {}", U(c, "recalls_sent"), U(c, "recalls_ok"),
                     RefusalsOf(refusals, "recall")));
    line("edits sent / ok / refused", fmt::format("{} / {} / {}", U(c, "edits_sent"),
                                                  U(c, "edits_ok"), RefusalsOf(refusals, "edit")));
    line("changes delivered / resent",
         fmt::format("{} / {} (resent: cut off by a drop or refused for overload)",
                     U(c, "change_deliveries"), U(c, "changes_resent")));
  }
  if (U(c, "resume_attempts") > 0) {
    line(
        "resumes / ok / fell back",
        fmt::format("{} / {} / {} (refused: {})", U(c, "resume_attempts"), U(c, "resumes_accepted"),
                    U(c, "resume_fallbacks"), RefusalsOf(refusals, "resume")));
  }
}

}  // namespace

Json MergeResults(const BenchOptions& o, const std::vector<Json>& results, const Json& extra) {
  Json counters = Json::object(), maxima = Json::object(), errors = Json::object();
  Json refusals = Json::object(), disconnects = Json::object(), times = Json::object(),
       histograms = Json::object();
  Json samples = Json::array(), problems = Json::array();
  double cpu_total = 0, cpu_send = 0;
  uint64_t max_rss_kb = 0;
  bool interrupted = false;
  std::vector<Histogram> merged(std::size(kHistograms));
  for (const Json& r : results) {
    AddCounts(r["counters"], &counters);
    for (const auto& [k, v] : r["max"].items()) {
      maxima[k] = std::max(U(maxima, k.c_str()), v.get<uint64_t>());
    }
    AddCounts(r["errors"], &errors);
    AddCounts(r["refusals"], &refusals);
    AddCounts(r["disconnects"], &disconnects);
    for (const auto& [k, v] : r["times"].items())
      times[k] = std::max(D(times, k.c_str()), v.get<double>());
    for (size_t i = 0; i < std::size(kHistograms); ++i) {
      Histogram h;
      if (Histogram::FromJson(r["histograms"][kHistograms[i]], &h)) merged[i].Merge(h);
    }
    for (const Json& s : r["missing_samples"]) {
      if (samples.size() < 10) samples.push_back(s);
    }
    cpu_total += D(r["cpu"], "total_sec");
    cpu_send += D(r["cpu"], "send_phase_sec");
    max_rss_kb = std::max(max_rss_kb, U(r["cpu"], "max_rss_kb"));
    interrupted = interrupted || r.value("interrupted", false);
    if (!r.value("setup_error", std::string()).empty()) {
      problems.push_back(
          fmt::format("worker {}: {}", r.value("worker", 0), r["setup_error"].get<std::string>()));
    }
    if (r.value("unclosed_loops", 0) != 0) problems.push_back("a loop still had open handles");
  }
  Json latency = Json::object();
  for (size_t i = 0; i < std::size(kHistograms); ++i) {
    histograms[kHistograms[i]] = merged[i].ToJson();
    if (merged[i].count() > 0) latency[kHistograms[i]] = Percentiles(merged[i]);
  }

  const double send_sec = D(times, "send_sec");
  const double delivery_span = std::max(send_sec, D(times, "last_delivery_sec"));
  Json rates = {{"offered_per_sec", o.scenario == Scenario::kConnect ? 0.0 : o.rate}};
  if (o.scenario != Scenario::kConnect && send_sec > 0) {
    rates["sent_per_sec"] = U(counters, "sent") / send_sec;
    rates["acked_per_sec"] = U(counters, "acked") / send_sec;
    rates["delivered_per_sec"] = delivery_span > 0 ? U(counters, "delivered") / delivery_span : 0.0;
  }
  Json tool = {{"cpu_total_sec", cpu_total},
               {"cpu_send_phase_sec", cpu_send},
               {"cores_during_send", send_sec > 0 ? cpu_send / send_sec : 0.0},
               {"max_rss_kb_per_worker", max_rss_kb}};
  if (cpu_send > 0 && U(counters, "delivered") > 0) {
    tool["delivered_per_cpu_sec"] = U(counters, "delivered") / cpu_send;
  }

  const uint64_t missing = U(counters, "missing"), dups = U(counters, "duplicates");
  const uint64_t reordered = U(counters, "reordered");
  if (missing > 0) problems.push_back(fmt::format("{} missing messages", missing));
  // An SDK drops a seq it holds, so with --sdk-devices a repeated push is no problem: pushes are
  // at least once (a retried send is pushed again).
  if (dups > 0 && !o.sdk_devices) {
    problems.push_back(fmt::format("{} duplicated messages", dups));
  }
  if (reordered > 0) problems.push_back(fmt::format("{} reordered messages", reordered));
  if (o.sdk_devices) {
    if (U(counters, "stored_twice") > 0) {
      problems.push_back(
          fmt::format("{} messages held under a second seq", U(counters, "stored_twice")));
    }
    if (U(counters, "acked_after_drain") > 0) {
      problems.push_back(
          fmt::format("{} acknowledged messages reached a member only after the drain",
                      U(counters, "acked_after_drain")));
    }
    if (U(counters, "not_converged") > 0) {
      problems.push_back(fmt::format("{} devices did not converge", U(counters, "not_converged")));
    }
  }
  if (interrupted) problems.push_back("interrupted");
  if (U(counters, "self_pushes") > 0) problems.push_back("a sender was pushed its own message");
  if (U(counters, "unknown_messages") > 0) problems.push_back("messages of unknown conversations");
  if (o.scenario == Scenario::kConnect) {
    if (U(counters, "online_at_end") < o.connections) {
      problems.push_back(fmt::format("{} of {} connections online at the end",
                                     U(counters, "online_at_end"), o.connections));
    }
  } else if (U(counters, "delivered") == 0) {
    problems.push_back("nothing was delivered");
  }
  if (o.scenario == Scenario::kReconnect) {
    if (U(counters, "not_resumed") > 0) {
      problems.push_back(fmt::format("{} devices did not resume", U(counters, "not_resumed")));
    }
    if (U(counters, "planned_drops") == 0) problems.push_back("no connection was dropped");
  }
  if (!extra.is_null() && extra.contains("worker_exit_codes")) {
    for (const Json& code : extra["worker_exit_codes"]) {
      if (code.get<int>() != 0)
        problems.push_back(fmt::format("a worker exited with {}", code.get<int>()));
    }
  }

  Json report = {{"tool", "im-bench"},
                 {"scenario", ScenarioName(o.scenario)},
                 {"params", o.ToJson()},
                 {"ok", problems.empty()},
                 {"problems", problems},
                 {"counters", counters},
                 {"max", maxima},
                 {"rates", rates},
                 {"latency_ms", latency},
                 {"errors", errors},
                 {"refusals", refusals},
                 {"disconnects", disconnects},
                 {"times", times},
                 {"tool_cost", tool},
                 {"missing_samples", samples},
                 {"histograms", histograms}};
  if (!extra.is_null()) {
    for (const auto& [k, v] : extra.items()) report[k] = v;
  }
  return report;
}

std::string FormatTable(const Json& r) {
  std::string out;
  auto line = [&out](const std::string& label, const std::string& value) {
    AppendLine(label, value, &out);
  };
  const Json& c = r["counters"];
  const Json& p = r["params"];
  out += fmt::format(
      "im-bench {}: {} connections over {} gateway(s) ({}), {} proc(s) x {} loop(s)\n",
      r["scenario"].get<std::string>(), p["connections"].get<uint64_t>(), p["gateways"].size(),
      TransportLabel(p), p["procs"].get<uint64_t>(), p["threads"].get<uint64_t>());
  line("online at end / first logins",
       fmt::format("{} / {} (login failures {})", U(c, "online_at_end"), U(c, "first_logins"),
                   U(c, "login_failures")));
  if (r["scenario"] != "connect") {
    const Json& rates = r["rates"];
    line("offered msgs/s", fmt::format("{:.0f}", D(rates, "offered_per_sec")));
    line("sent / acked / errors",
         fmt::format("{} / {} / {} (resent {}, refused and resent {}, unanswered {})", U(c, "sent"),
                     U(c, "acked"), U(c, "send_errors"), U(c, "resent"), U(c, "refused_and_resent"),
                     U(c, "unanswered")));
    if (U(c, "syncs_refused_and_retried") > 0) {
      line("syncs refused, retried",
           fmt::format("{} (after the retry hint)", U(c, "syncs_refused_and_retried")));
    }
    line("acked msgs/s", fmt::format("{:.0f}", D(rates, "acked_per_sec")));
    line("delivered (msgs/s)",
         fmt::format("{} ({:.0f}/s), expected {}", U(c, "delivered"), D(rates, "delivered_per_sec"),
                     U(c, "expected_deliveries")));
    line("final sync",
         fmt::format("{} devices synced, {} messages found only then (not pushed in "
                     "time); {} sends still unanswered",
                     U(c, "final_syncs"), U(c, "found_by_final_sync"), U(c, "in_flight_at_end")));
    if (p.value("sdk_devices", false)) {
      line("sdk devices",
           fmt::format("{} sends retried after an error, {} gap syncs; {} held twice, {} acked "
                       "reached a member after the drain, {} devices not converged",
                       U(c, "errors_retried"), U(c, "gap_syncs"), U(c, "stored_twice"),
                       U(c, "acked_after_drain"), U(c, "not_converged")));
    }
  }
  line("missing / dup / reordered",
       fmt::format("{} / {} / {} (overtaken {}, held back past the window {}, max depth {}, "
                   "max wait {} ms)",
                   U(c, "missing"), U(c, "duplicates"), U(c, "reordered"), U(c, "overtaken"),
                   U(c, "held_back_past_window"), U(r["max"], "reorder_depth"),
                   U(r["max"], "reorder_wait_ms")));
  if (r["scenario"] == "reconnect" || U(c, "unplanned_drops") > 0) {
    line("drops planned / unplanned",
         fmt::format("{} / {}, resumed {}, not resumed {}", U(c, "planned_drops"),
                     U(c, "unplanned_drops"), U(c, "resumed"), U(c, "not_resumed")));
  }
  FormatRequests(r, &out);
  out += fmt::format("  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency (ms)", "count",
                     "p50", "p90", "p99", "p99.9", "max");
  for (const auto& [name, h] : r["latency_ms"].items()) {
    const std::string label = name.substr(0, name.size() - 3);  // "delivery_us" -> "delivery"
    out += fmt::format("  {:<28} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f}\n", label,
                       h["count"].get<uint64_t>(), h["p50"].get<double>(), h["p90"].get<double>(),
                       h["p99"].get<double>(), h["p999"].get<double>(), h["max"].get<double>());
  }
  if (!r["errors"].empty()) line("errors", r["errors"].dump());
  if (r.contains("memory")) {
    const Json& m = r["memory"];
    line("gateway user space / conn",
         fmt::format("{:.0f} B (RSS {} -> {} KiB over {} connections)",
                     D(m, "user_bytes_per_connection"), U(m, "gateway_rss_kb_before"),
                     U(m, "gateway_rss_kb_after"), U(m, "connections")));
    line("kernel / conn (both ends)", fmt::format("{:.0f} B slab, {:.0f} B TCP buffers",
                                                  D(m, "kernel_slab_bytes_per_connection"),
                                                  D(m, "kernel_tcp_buffer_bytes_per_connection")));
  }
  if (r.contains("server_cpu")) {
    const Json& s = r["server_cpu"];
    const bool per_login = s.contains("us_per_login");
    const char* per_unit = per_login ? "us_per_login" : "us_per_delivered";
    std::string parts;
    for (const Json& process : s["processes"]) {
      parts += fmt::format("{}{} {:.0f}", parts.empty() ? "" : ", ",
                           process["name"].get<std::string>(), process.value(per_unit, 0.0));
    }
    line(per_login ? "server cpu / login" : "server cpu / delivered msg",
         fmt::format("{:.1f} us ({}); {:.2f} cores over {:.1f} s", D(s, per_unit), parts,
                     D(s, "cores"), D(s, "window_sec")));
  }
  const Json& t = r["tool_cost"];
  line("tool cpu", fmt::format("{:.2f} s total, {:.2f} cores while sending", D(t, "cpu_total_sec"),
                               D(t, "cores_during_send")));
  line("verdict", r["ok"].get<bool>() ? "ok" : "PROBLEMS: " + r["problems"].dump());
  return out;
}

std::string FormatProgress(const std::vector<Json>& latest, Json* previous) {
  if (std::all_of(latest.begin(), latest.end(), [](const Json& p) { return p.is_null(); })) {
    return "";
  }
  Json sum = Json::object();
  std::string phase;
  double t = 0;
  uint64_t window_max = 0;
  for (const Json& p : latest) {
    if (p.is_null()) continue;
    for (const char* key :
         {"devices", "online", "login_failures", "sent", "acked", "errors", "retried", "delivered",
          "duplicates", "reordered", "drops", "resumed"}) {
      sum[key] = U(sum, key) + U(p, key);
    }
    window_max = std::max(window_max, U(p, "window_max_us"));
    phase = p.value("phase", "");
    t = std::max(t, D(p, "t"));
  }
  const double dt = std::max(1e-3, t - D(*previous, "t"));
  auto per_sec = [&](const char* key) {
    return static_cast<double>(U(sum, key) - std::min(U(sum, key), U(*previous, key))) / dt;
  };
  std::string line = fmt::format(
      "[{:6.1f}s] {:<5} online {}/{} fail {} | sent {} ({:.0f}/s) acked {} err {} retried {} | "
      "delivered {} ({:.0f}/s) worst {:.1f} ms | dup {} reord {} | drops {} resumed {}",
      t, phase, U(sum, "online"), U(sum, "devices"), U(sum, "login_failures"), U(sum, "sent"),
      per_sec("sent"), U(sum, "acked"), U(sum, "errors"), U(sum, "retried"), U(sum, "delivered"),
      per_sec("delivered"), static_cast<double>(window_max) / 1000.0, U(sum, "duplicates"),
      U(sum, "reordered"), U(sum, "drops"), U(sum, "resumed"));
  sum["t"] = t;
  *previous = std::move(sum);
  return line;
}

}  // namespace im::bench
