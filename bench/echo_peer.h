#pragma once

#include <cstdint>
#include <string>

namespace im::bench {

// A trivial stand-in for the cluster, to measure what im-bench itself costs: one libuv loop that
// answers LoginReq (the token checked with `secret`), Ping, single-chat SendReq (a SendResp
// with the conversation's next seq, and a MessagePush to the peer when it is connected) and
// SyncReq (with no messages: it keeps none), and nothing else. Prints "im-bench echo-peer ready
// port=<port>" on stdout once it listens. Runs until SIGTERM or SIGINT; returns the exit code (0
// after a clean stop).
//
// Faults, to prove that im-bench's checks catch them (bench/tests): with drop_every N > 0 every
// Nth push is not sent (a lost message), with duplicate_every N > 0 every Nth push is sent twice.
struct EchoPeerFaults {
  uint32_t drop_every = 0;
  uint32_t duplicate_every = 0;
};
int RunEchoPeer(const std::string& listen, const std::string& secret, EchoPeerFaults faults = {});

}  // namespace im::bench
