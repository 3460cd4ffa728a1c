#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace im::bench {

// A server process whose CPU a run measures, named for the report ("logic", "gw-1", "redis").
struct ServerProcess {
  std::string name;
  pid_t pid = 0;
};

// "name=pid" items of --server-pids; a bare pid is named after its /proc/<pid>/comm.
absl::StatusOr<std::vector<ServerProcess>> ParseServerPids(const std::vector<std::string>& items);

// CPU seconds (user + system, from /proc/<pid>/stat) the server processes spend between Start()
// and Stop(), reported per process and per unit of work (a delivered message; for the connect
// scenario, a login): what one costs the whole cluster, not only what the tool sees. Used by the
// run's main thread only.
class ServerCpu {
 public:
  explicit ServerCpu(std::vector<ServerProcess> processes) : processes_(std::move(processes)) {}

  bool empty() const { return processes_.empty(); }
  void Start();
  // The first call after Start() takes the sample; later ones do nothing.
  void Stop();
  bool started() const { return started_; }
  // {"window_sec", "total_cpu_sec", "us_per_<unit>", "processes": [{"name", "pid", "cpu_sec",
  // "us_per_<unit>"}], "note"}, `units` of work done in the window; a process that was gone at
  // either sample has "gone": true. `unit`: "delivered" (messages) or "login".
  nlohmann::json Report(uint64_t units, const std::string& unit, const std::string& note) const;

 private:
  std::vector<ServerProcess> processes_;
  std::vector<double> start_sec_;
  std::vector<double> stop_sec_;
  double start_wall_ = 0;
  double stop_wall_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

// CPU seconds (utime + stime) of a process, or a negative number when it cannot be read.
double ProcessCpuSeconds(pid_t pid);

}  // namespace im::bench
