#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace im::bench {

enum class Scenario { kConnect, kChat, kGroup, kReconnect };

const char* ScenarioName(Scenario scenario);

// How a device's frames travel to a gateway: tcp, the private protocol (4-byte length + Frame);
// ws, a WebSocket (RFC 6455, subprotocol im.v1, one Frame per binary message) as web clients
// speak it.
enum class Transport { kTcp, kWebSocket };

const char* TransportName(Transport transport);

// Everything a run is told, as parsed from the command line (main.cc). Copied into every worker
// process; immutable once the run starts.
struct BenchOptions {
  Scenario scenario = Scenario::kChat;
  std::vector<std::string> gateways = {"127.0.0.1:7000", "127.0.0.1:7001"};
  // Source IPv4 addresses the connections are spread over; empty: the kernel's choice.
  std::vector<std::string> sources;
  std::string secret = "dev-secret-change-me";  // deploy/local/logic.yaml's token_secret
  std::string run_id;                           // prefix of every uid; empty: a fresh one
  uint32_t procs = 1;    // worker processes (each may hold at most ~20,000 open files)
  uint32_t threads = 1;  // libuv loops per worker process
  uint32_t connections = 100;
  // connect: connections per second; chat, group, reconnect: messages per second offered.
  double rate = 100;
  double duration_sec = 10;
  double login_rate = 5000;  // chat, group, reconnect: how fast the devices log in first
  double drain_sec = 10;     // after sending: how long deliveries may still come
  double setup_timeout_sec = 120;
  uint32_t body_bytes = 100;
  // Sends outstanding per connection at most (the gateway's max_in_flight); overload refusals
  // shrink a device's window below it for a while (common::SendWindow).
  uint32_t window = 64;
  uint32_t reorder_window_ms = 1000;
  // chat, group, reconnect: requests besides the messages. A TypingReq before every Nth message
  // a device sends (0: none); of the messages a device got acknowledged, these shares recalled
  // and edited at once (a SendReq of type RECALL or EDIT naming the acknowledged seq).
  uint32_t typing_every = 0;
  double recall_share = 0;
  double edit_share = 0;
  // Each device watches the presence of its conversation's other members (at most
  // kMaxPresenceWatch) once it has seen a message there in this session (before, they share no
  // conversation and the cluster refuses the watch), as the SDK renews a watch after a login.
  bool watch_presence = false;
  // A device marks its conversation read (ReadReq at the seq it holds up to) after every Nth
  // message it receives (0: never): its senders get read receipts (ReceiptsPush in groups of at
  // most logic.receipt_max_group_members, ReadPush in a single chat).
  uint32_t read_every = 0;
  // Devices that behave like the SDK under faults, checked as its user would see them
  // (tests/chaos): a send answered with a code the SDK retries (UNAVAILABLE, DEADLINE_EXCEEDED,
  // ABORTED, INTERNAL, ...) is sent again with the same client_msg_id after a back-off instead of
  // counting as failed; a gap in what a device holds that lasts the SDK's gap wait makes it sync;
  // and the end also counts devices that did not converge (a gap left after the final sync), the
  // same message held under two seqs, and acknowledged messages a device got only through the
  // final sync (it would not have shown them: no later message or reconnect made it sync).
  bool sdk_devices = false;
  // group
  uint32_t group_size = 100;
  uint32_t senders = 4;  // per group
  uint32_t join_chunk = 500;
  // reconnect
  double fraction = 0.1;      // of the connections, dropped and reconnected
  double reconnect_rate = 0;  // drops per second; 0: all at once (a storm)
  double storm_at_sec = 1;    // with reconnect_rate 0: when, into the send phase
  uint32_t down_ms = 0;       // how long a dropped device stays away
  // A dropped device resumes its last session (ResumeReq) after logging in again, and syncs only
  // if the conversation moved; refused, it syncs as without.
  bool resume = false;
  // connect: gateways whose memory per connection is measured
  std::vector<int> gateway_pids;
  // Server processes whose CPU per delivered message is measured ("name=pid" or "pid").
  std::vector<std::string> server_pids;
  std::string json_path;
  bool progress = true;
  // The gateways' addresses are TLS ports (gateway.tls_listen), whose certificate this CA file
  // signed; empty: plain TCP. tls_resume: reconnects resume their session with a ticket (as the
  // SDK does); off, every handshake is a full one.
  std::string tls_ca;
  bool tls_resume = true;
  // ws: the gateways' addresses are WebSocket ports (gateway.ws_listen; with tls_ca,
  // gateway.wss_listen).
  Transport transport = Transport::kTcp;

  // Parsed forms, filled by Resolve().
  std::vector<sockaddr_in> gateway_addrs;
  std::vector<sockaddr_in> source_addrs;

  // Checks the options against each other and parses addresses. Errors name the flag.
  absl::Status Resolve();
  // The groups of the group scenario: connections / group_size.
  uint32_t groups() const { return connections / group_size; }
  nlohmann::json ToJson() const;
};

// "host:port" with an IPv4 host.
absl::StatusOr<sockaddr_in> ParseIpv4Endpoint(const std::string& text);

}  // namespace im::bench
