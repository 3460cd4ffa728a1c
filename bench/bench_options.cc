#include "bench/bench_options.h"

#include <arpa/inet.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/tls/tls_context.h"

namespace im::bench {
namespace {

// 0.7 + 0.3 may add up to a little more than 1 in binary floating point.
constexpr double kShareSlack = 1e-9;

}  // namespace

const char* ScenarioName(Scenario scenario) {
  switch (scenario) {
    case Scenario::kConnect:
      return "connect";
    case Scenario::kChat:
      return "chat";
    case Scenario::kGroup:
      return "group";
    case Scenario::kReconnect:
      return "reconnect";
  }
  return "?";
}

const char* TransportName(Transport transport) {
  return transport == Transport::kWebSocket ? "ws" : "tcp";
}

absl::StatusOr<sockaddr_in> ParseIpv4Endpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  uint32_t port = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(colon + 1), &port) || port == 0 ||
      port > 65535 || inet_pton(AF_INET, text.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 host:port: '", text, "'"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

absl::Status BenchOptions::Resolve() {
  if (gateways.empty()) return absl::InvalidArgumentError("--gateways: at least one");
  gateway_addrs.clear();
  source_addrs.clear();
  for (const std::string& g : gateways) {
    absl::StatusOr<sockaddr_in> addr = ParseIpv4Endpoint(g);
    if (!addr.ok())
      return absl::InvalidArgumentError(absl::StrCat("--gateways: ", addr.status().message()));
    gateway_addrs.push_back(*addr);
  }
  for (const std::string& s : sources) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, s.c_str(), &addr.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--sources: not an IPv4 address: '", s, "'"));
    }
    source_addrs.push_back(addr);
  }
  if (procs == 0 || threads == 0)
    return absl::InvalidArgumentError("--procs/--threads: at least 1");
  if (connections == 0) return absl::InvalidArgumentError("--connections: at least 1");
  if (connections < procs * threads) {
    return absl::InvalidArgumentError("--connections: at least one per loop (--procs x --threads)");
  }
  if (!(rate > 0)) return absl::InvalidArgumentError("--rate: must be above 0");
  if (!(duration_sec > 0)) return absl::InvalidArgumentError("--duration: must be above 0");
  if (!(login_rate > 0)) return absl::InvalidArgumentError("--login-rate: must be above 0");
  if (window == 0) return absl::InvalidArgumentError("--window: at least 1");
  if (body_bytes < 32) return absl::InvalidArgumentError("--body: at least 32 bytes");
  switch (scenario) {
    case Scenario::kChat:
    case Scenario::kReconnect:
      if (connections % (2 * procs) != 0) {
        return absl::InvalidArgumentError(
            "--connections: pairs of users, an even number per process (2 x --procs divides it)");
      }
      break;
    case Scenario::kGroup:
      if (group_size < 2) return absl::InvalidArgumentError("--group-size: at least 2");
      if (connections % group_size != 0) {
        return absl::InvalidArgumentError("--connections: a multiple of --group-size");
      }
      if (groups() % procs != 0) {
        return absl::InvalidArgumentError("--procs: must divide the number of groups");
      }
      if (senders == 0 || senders > group_size) {
        return absl::InvalidArgumentError("--senders: 1 to --group-size");
      }
      if (join_chunk == 0) return absl::InvalidArgumentError("--join-chunk: at least 1");
      break;
    case Scenario::kConnect:
      break;
  }
  if (scenario == Scenario::kReconnect && !(fraction > 0 && fraction <= 1)) {
    return absl::InvalidArgumentError("--fraction: in (0, 1]");
  }
  if (!tls_ca.empty()) {
    tls::ClientTlsOptions trust;
    trust.ca_file = tls_ca;
    if (absl::StatusOr<std::shared_ptr<tls::ClientContext>> context =
            tls::ClientContext::Create(trust);
        !context.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tls-ca: ", context.status().message()));
    }
  }
  if (!(recall_share >= 0 && recall_share <= 1)) {
    return absl::InvalidArgumentError("--recall-share: in [0, 1]");
  }
  if (!(edit_share >= 0 && edit_share <= 1)) {
    return absl::InvalidArgumentError("--edit-share: in [0, 1]");
  }
  if (recall_share + edit_share > 1 + kShareSlack) {
    return absl::InvalidArgumentError(
        "--recall-share + --edit-share: at most 1 (a message is recalled or edited, not both)");
  }
  return absl::OkStatus();
}

nlohmann::json BenchOptions::ToJson() const {
  nlohmann::json j = {{"scenario", ScenarioName(scenario)},
                      {"gateways", gateways},
                      {"sources", sources},
                      {"run_id", run_id},
                      {"procs", procs},
                      {"threads", threads},
                      {"connections", connections},
                      {"rate", rate},
                      {"duration_sec", duration_sec},
                      {"login_rate", login_rate},
                      {"drain_sec", drain_sec},
                      {"body_bytes", body_bytes},
                      {"window", window},
                      {"reorder_window_ms", reorder_window_ms},
                      {"tls", !tls_ca.empty()},
                      {"transport", TransportName(transport)}};
  if (!tls_ca.empty()) j["tls_resume"] = tls_resume;
  if (scenario != Scenario::kConnect) {
    j["typing_every"] = typing_every;
    j["recall_share"] = recall_share;
    j["edit_share"] = edit_share;
    j["watch_presence"] = watch_presence;
    j["read_every"] = read_every;
    j["sdk_devices"] = sdk_devices;
  }
  if (scenario == Scenario::kGroup) {
    j["group_size"] = group_size;
    j["groups"] = groups();
    j["senders"] = senders;
  }
  if (scenario == Scenario::kReconnect) {
    j["fraction"] = fraction;
    j["reconnect_rate"] = reconnect_rate;
    j["storm_at_sec"] = storm_at_sec;
    j["down_ms"] = down_ms;
    j["resume"] = resume;
  }
  if (!gateway_pids.empty()) j["gateway_pids"] = gateway_pids;
  return j;
}

}  // namespace im::bench
