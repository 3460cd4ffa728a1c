// im-bench: the load generator that measures the cluster (docs/benchmarks.md, "im-bench").
// main.cc parses the command line, forks the worker processes (--procs; each may hold at most
// ~20,000 open files), prints their merged progress once a second, measures gateway memory for
// `connect`, merges the results into a table on stdout and a JSON file, and sets the exit code:
// 0 when every check passed, 1 when something was missing, duplicated, reordered or did not
// resume, 2 when the run could not be carried out.
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/bench_options.h"
#include "bench/bench_report.h"
#include "bench/bench_worker.h"
#include "bench/echo_peer.h"
#include "bench/server_cpu.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace im::bench {
namespace {

using Json = nlohmann::json;

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true); }

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// A number from a "Key:   123 kB" line of a /proc file, or -1.
int64_t ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  }
  return -1;
}

// "mem" of the TCP line of /proc/net/sockstat: pages of socket buffers in use.
int64_t TcpBufferPages() {
  std::ifstream in("/proc/net/sockstat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      if (word == "mem" && words >> word) return std::stoll(word);
    }
  }
  return -1;
}

struct MemorySample {
  int64_t gateway_rss_kb = 0;
  int64_t slab_kb = 0;
  int64_t tcp_pages = 0;
};

MemorySample SampleMemory(const std::vector<int>& pids) {
  MemorySample s;
  for (int pid : pids) {
    s.gateway_rss_kb +=
        std::max<int64_t>(0, ProcField(fmt::format("/proc/{}/status", pid), "VmRSS:"));
  }
  s.slab_kb = ProcField("/proc/meminfo", "Slab:");
  s.tcp_pages = TcpBufferPages();
  return s;
}

Json MemoryReport(const MemorySample& before, const MemorySample& after, uint64_t connections) {
  const double n = static_cast<double>(std::max<uint64_t>(1, connections));
  const int64_t page = sysconf(_SC_PAGESIZE);
  return {
      {"connections", connections},
      {"gateway_rss_kb_before", before.gateway_rss_kb},
      {"gateway_rss_kb_after", after.gateway_rss_kb},
      {"user_bytes_per_connection", (after.gateway_rss_kb - before.gateway_rss_kb) * 1024.0 / n},
      {"slab_kb_before", before.slab_kb},
      {"slab_kb_after", after.slab_kb},
      {"kernel_slab_bytes_per_connection", (after.slab_kb - before.slab_kb) * 1024.0 / n},
      {"kernel_tcp_buffer_bytes_per_connection",
       static_cast<double>(after.tcp_pages - before.tcp_pages) * page / n},
      {"note",
       "kernel figures are machine-wide deltas of /proc/meminfo Slab and /proc/net/sockstat "
       "TCP mem over the ramp, divided by the connections: they cover both ends (the client "
       "socket in im-bench and the server socket in the gateway) and anything else the machine "
       "did meanwhile"}};
}

int RunScenario(BenchOptions o) {
  if (absl::Status s = o.Resolve(); !s.ok()) {
    std::fprintf(stderr, "im-bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (o.run_id.empty()) {
    o.run_id = fmt::format("b{:x}{:x}", static_cast<uint64_t>(std::time(nullptr)), getpid());
  }
  absl::StatusOr<std::vector<ServerProcess>> servers = ParseServerPids(o.server_pids);
  if (!servers.ok()) {
    std::fprintf(stderr, "im-bench: %s\n", std::string(servers.status().message()).c_str());
    return 2;
  }
  ServerCpu server_cpu(std::move(*servers));
  InstallStopHandlers();
  const MemorySample before = SampleMemory(o.gateway_pids);

  struct Child {
    pid_t pid = -1;
    int fd = -1;
    std::string buffer;
    Json latest;
    Json result;
    int exit_code = -1;
  };
  std::vector<Child> children(o.procs);
  for (uint32_t w = 0; w < o.procs; ++w) {
    int fds[2];
    if (pipe(fds) != 0) {
      std::perror("im-bench: pipe");
      return 2;
    }
    std::fflush(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("im-bench: fork");
      return 2;
    }
    if (pid == 0) {
      // A worker dies with im-bench, even by SIGKILL: left alone it would go on sending for the
      // whole --duration (a harness that kills im-bench kills only the process it started).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) std::_Exit(2);  // im-bench died before the line above
      close(fds[0]);
      for (uint32_t v = 0; v < w; ++v) close(children[v].fd);
      const int code = RunWorker(o, w, fds[1], &g_stop);
      close(fds[1]);
      std::exit(code);
    }
    close(fds[1]);
    children[w].pid = pid;
    children[w].fd = fds[0];
  }

  const bool tty = isatty(STDERR_FILENO);
  Json previous = Json::object();
  auto last_print = std::chrono::steady_clock::now();
  bool forwarded = false;
  bool sampled = false;
  std::chrono::steady_clock::time_point all_holding{};
  Json memory;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < children.size(); ++i) {
      if (children[i].fd >= 0) {
        fds.push_back({children[i].fd, POLLIN, 0});
        which.push_back(i);
      }
    }
    if (fds.empty()) break;
    if (g_stop.load() && !forwarded) {
      forwarded = true;
      for (const Child& c : children) kill(c.pid, SIGTERM);
    }
    poll(fds.data(), fds.size(), 200);
    for (size_t k = 0; k < fds.size(); ++k) {
      if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Child& c = children[which[k]];
      char buf[65536];
      const ssize_t n = read(c.fd, buf, sizeof(buf));
      if (n <= 0) {
        close(c.fd);
        c.fd = -1;
        continue;
      }
      c.buffer.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = c.buffer.find('\n')) != std::string::npos;) {
        Json line = Json::parse(c.buffer.substr(0, nl), nullptr, false);
        c.buffer.erase(0, nl + 1);
        if (line.is_discarded()) continue;
        if (line.value("type", "") == "progress")
          c.latest = std::move(line);
        else if (line.value("type", "") == "result")
          c.result = std::move(line);
        else if (line.value("type", "") == "error")
          std::fprintf(stderr, "im-bench: %s\n", line.dump().c_str());
      }
    }
    const auto now = std::chrono::steady_clock::now();
    // Connect measures its logins (from the first connection to the hold); the others their
    // send phase and drain.
    if (o.scenario == Scenario::kConnect && !server_cpu.started() && !server_cpu.empty()) {
      server_cpu.Start();
    }
    if (o.scenario != Scenario::kConnect && !server_cpu.started() && !server_cpu.empty() &&
        std::any_of(children.begin(), children.end(), [](const Child& c) {
          return !c.latest.is_null() && c.latest.value("phase", "") == "send";
        })) {
      server_cpu.Start();
    }
    if (o.scenario == Scenario::kConnect && !sampled) {
      bool holding = true;
      uint64_t online = 0;
      for (const Child& c : children) {
        holding = holding && !c.latest.is_null() && c.latest.value("phase", "") == "hold";
        if (!c.latest.is_null()) online += c.latest.value("online", uint64_t{0});
      }
      if (holding && all_holding == std::chrono::steady_clock::time_point{}) {
        all_holding = now;
        server_cpu.Stop();  // the logins' CPU; the idle hold is not theirs
      }
      // A second into the hold: logins done, the gateways' per-login work settled.
      if (holding && now - all_holding >= std::chrono::seconds(1)) {
        sampled = true;
        if (!o.gateway_pids.empty()) {
          memory = MemoryReport(before, SampleMemory(o.gateway_pids), online);
        }
      }
    }
    if (o.progress && now - last_print >= std::chrono::seconds(1)) {
      last_print = now;
      std::vector<Json> latest;
      for (const Child& c : children) latest.push_back(c.latest);
      const std::string line = FormatProgress(latest, &previous);
      if (!line.empty()) std::fprintf(stderr, tty ? "\r%s\033[K" : "%s\n", line.c_str());
    }
  }
  if (o.progress && tty) std::fprintf(stderr, "\n");
  server_cpu.Stop();

  std::vector<Json> results;
  Json exit_codes = Json::array();
  int worst = 0;
  for (Child& c : children) {
    int status = 0;
    waitpid(c.pid, &status, 0);
    c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    exit_codes.push_back(c.exit_code);
    worst = std::max(worst, c.exit_code);
    if (!c.result.is_null()) results.push_back(std::move(c.result));
  }
  if (results.size() != children.size()) {
    std::fprintf(stderr, "im-bench: %zu of %zu workers reported no result\n",
                 children.size() - results.size(), children.size());
    return 2;
  }
  Json extra = {{"worker_exit_codes", exit_codes}};
  if (!memory.is_null()) extra["memory"] = memory;
  Json report = MergeResults(o, results, extra);
  if (server_cpu.started() && o.scenario == Scenario::kConnect) {
    report["server_cpu"] = server_cpu.Report(
        report["counters"].value("first_logins", uint64_t{0}), "login",
        "CPU of the named processes from the first connection until every worker holds its "
        "connections, divided by the devices logged in");
  } else if (server_cpu.started()) {
    report["server_cpu"] = server_cpu.Report(
        report["counters"].value("delivered", uint64_t{0}), "delivered",
        "CPU of the named processes from the start of the send phase to the end of the drain, "
        "divided by the messages delivered");
  }
  std::printf("%s", FormatTable(report).c_str());
  std::fflush(stdout);
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << report.dump() << "\n";  // one line: histogram buckets would take thousands
    if (!out) {
      std::fprintf(stderr, "im-bench: cannot write %s\n", o.json_path.c_str());
      return 2;
    }
  }
  if (worst != 0) return 2;
  return report["ok"].get<bool>() ? 0 : 1;
}

void AddCommonFlags(CLI::App* app, BenchOptions* o) {
  app->add_option("--gateways", o->gateways, "gateway client addresses, host:port (IPv4)")
      ->delimiter(',');
  app->add_option("--sources", o->sources,
                  "source addresses to spread connections over (127.0.0.2,127.0.0.3,...)")
      ->delimiter(',');
  app->add_option("--secret", o->secret, "token secret shared with the cluster");
  app->add_option("--run-id", o->run_id, "prefix of every uid (default: a fresh one)");
  app->add_option("--procs", o->procs, "worker processes");
  app->add_option("--threads", o->threads, "event loops per worker process");
  app->add_option("--connections", o->connections, "devices (connections) in total");
  app->add_option("--duration", o->duration_sec, "seconds of sending (connect: of holding)");
  app->add_option("--login-rate", o->login_rate, "logins per second before the send phase");
  app->add_option("--drain", o->drain_sec, "seconds deliveries may take after sending ends");
  app->add_option("--setup-timeout", o->setup_timeout_sec, "seconds for logins and group setup");
  app->add_option("--body", o->body_bytes, "message body bytes (at least 32)");
  app->add_option("--window", o->window, "requests outstanding per connection");
  app->add_option("--reorder-window-ms", o->reorder_window_ms,
                  "an overtaken message later than this counts as reordered (with "
                  "--sdk-devices, which hold by seq as the SDK does: as held back)");
  app->add_option("--json", o->json_path, "write the report (every figure and parameter) here");
  app->add_option("--server-pids", o->server_pids,
                  "server processes to measure CPU per delivered message of: name=pid,...")
      ->delimiter(',');
  app->add_flag("!--no-progress", o->progress, "no progress line on stderr");
  app->add_option("--tls-ca", o->tls_ca,
                  "the gateways are TLS ports; trust the CA in this PEM file");
  app->add_flag("!--tls-no-resume", o->tls_resume,
                "with --tls-ca: every handshake a full one (no session tickets)");
  app->add_option("--transport", o->transport,
                  "tcp (default): the private protocol (length + Frame); ws: WebSocket, one Frame "
                  "per binary message (--gateways are gateway.ws_listen ports; with --tls-ca, "
                  "wss_listen ones)")
      ->transform(
          CLI::CheckedTransformer(std::map<std::string, Transport>{{"tcp", Transport::kTcp},
                                                                   {"ws", Transport::kWebSocket}})
              .description("tcp or ws"))
      ->option_text("tcp|ws");
}

// The requests a device makes besides its messages: chat, group and reconnect.
void AddTrafficFlags(CLI::App* app, BenchOptions* o) {
  app->add_option("--typing-every", o->typing_every,
                  "a TypingReq before every Nth message of a device (0: none)");
  app->add_option("--recall-share", o->recall_share,
                  "share of a device's acknowledged messages it recalls at once (0-1)");
  app->add_option("--edit-share", o->edit_share,
                  "share of a device's acknowledged messages it edits at once (0-1)");
  app->add_flag("--watch-presence", o->watch_presence,
                "each device watches its conversation's other members (PresenceSubscribeReq)");
  app->add_option("--read-every", o->read_every,
                  "a ReadReq after every Nth message a device receives (0: none)");
  app->add_flag("--sdk-devices", o->sdk_devices,
                "devices retry failed sends and sync on gaps as the SDK does, and must converge");
}

int Main(int argc, char** argv) {
  CLI::App app{"im-bench: load generator and correctness check for the im cluster"};
  app.require_subcommand(1);
  BenchOptions o;
  std::string echo_listen = "127.0.0.1:0";

  CLI::App* connect = app.add_subcommand("connect", "ramp connections, log them in, hold them");
  AddCommonFlags(connect, &o);
  connect->add_option("--rate", o.rate, "connections per second")->capture_default_str();
  connect->add_option("--gateway-pids", o.gateway_pids, "gateway PIDs: memory per connection")
      ->delimiter(',');

  CLI::App* chat = app.add_subcommand("chat", "pairs of users exchange single-chat messages");
  AddCommonFlags(chat, &o);
  chat->add_option("--rate", o.rate, "messages per second, all senders together");
  AddTrafficFlags(chat, &o);

  CLI::App* group = app.add_subcommand("group", "groups with a message rate");
  AddCommonFlags(group, &o);
  group->add_option("--rate", o.rate, "messages per second, all groups together");
  group->add_option("--group-size", o.group_size, "members per group (all online)");
  group->add_option("--senders", o.senders, "sending members per group");
  group->add_option("--join-chunk", o.join_chunk, "members per GroupCreate/GroupJoin request");
  AddTrafficFlags(group, &o);

  CLI::App* reconnect =
      app.add_subcommand("reconnect", "drop and reconnect connections under chat traffic");
  AddCommonFlags(reconnect, &o);
  reconnect->add_option("--rate", o.rate, "chat messages per second during the run");
  reconnect->add_option("--fraction", o.fraction, "share of the connections dropped");
  reconnect->add_option("--reconnect-rate", o.reconnect_rate,
                        "drops per second; 0: all at once (a storm)");
  reconnect->add_option("--storm-at", o.storm_at_sec, "storm: seconds into the send phase");
  reconnect->add_option("--down-ms", o.down_ms, "how long a dropped device stays away");
  reconnect->add_flag("--resume", o.resume,
                      "a dropped device resumes its last session (ResumeReq) after logging in "
                      "again; refused, it syncs as without");
  AddTrafficFlags(reconnect, &o);

  CLI::App* echo = app.add_subcommand("echo-peer", "a trivial peer to measure im-bench itself");
  echo->add_option("--listen", echo_listen, "host:port to listen on (port 0: any)");
  echo->add_option("--secret", o.secret, "token secret");
  EchoPeerFaults faults;
  echo->add_option("--drop-every", faults.drop_every, "fault: do not send every Nth push");
  echo->add_option("--duplicate-every", faults.duplicate_every, "fault: send every Nth push twice");

  CLI11_PARSE(app, argc, argv);
  if (echo->parsed()) return RunEchoPeer(echo_listen, o.secret, faults);
  if (connect->parsed()) {
    o.scenario = Scenario::kConnect;
    if (connect->count("--rate") == 0) o.rate = 1000;
  }
  if (chat->parsed()) o.scenario = Scenario::kChat;
  if (group->parsed()) o.scenario = Scenario::kGroup;
  if (reconnect->parsed()) o.scenario = Scenario::kReconnect;
  return RunScenario(std::move(o));
}

}  // namespace
}  // namespace im::bench

int main(int argc, char** argv) { return im::bench::Main(argc, argv); }
