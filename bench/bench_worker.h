#pragma once

#include <atomic>
#include <cstdint>

#include "bench/bench_options.h"

namespace im::bench {

// One worker process of a run: its share of the devices (connections / procs; whole pairs and
// whole groups, so every check stays inside the process) on options.threads loops. Writes a JSON
// progress line ({"type":"progress",...}) to `out_fd` every second and one result line
// ({"type":"result",...}) at the end; main.cc merges the lines of every worker.
// Returns the worker's exit code: 0 when it ran to the end (whatever it found), 2 when it could
// not (setup failed or timed out, a loop did not close). `stop` (set by SIGTERM/SIGINT) ends the
// current phase early; the result then says "interrupted".
int RunWorker(const BenchOptions& options, uint32_t worker, int out_fd,
              const std::atomic<bool>* stop);

}  // namespace im::bench
