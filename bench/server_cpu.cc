#include "bench/server_cpu.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "common/clock.h"
#include "fmt/format.h"

namespace im::bench {
namespace {

double WallSeconds() { return static_cast<double>(common::SteadyMillis()) / 1000.0; }

std::string CommOf(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/comm", pid));
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

absl::StatusOr<std::vector<ServerProcess>> ParseServerPids(const std::vector<std::string>& items) {
  std::vector<ServerProcess> processes;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    ServerProcess process;
    const std::string pid_text = eq == std::string::npos ? item : item.substr(eq + 1);
    int pid = 0;
    if (!absl::SimpleAtoi(pid_text, &pid) || pid <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("--server-pids: '{}' is not name=pid or pid", item));
    }
    process.pid = pid;
    process.name = eq == std::string::npos ? CommOf(pid) : item.substr(0, eq);
    if (ProcessCpuSeconds(pid) < 0) {
      return absl::InvalidArgumentError(
          fmt::format("--server-pids: no process {} ({})", pid, process.name));
    }
    processes.push_back(std::move(process));
  }
  return processes;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) is in parentheses and may hold spaces: fields count from its end.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After ")": state(3) ... utime is field 14, stime 15; fields(0) is field 3.
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void ServerCpu::Start() {
  start_sec_.clear();
  for (const ServerProcess& p : processes_) start_sec_.push_back(ProcessCpuSeconds(p.pid));
  start_wall_ = WallSeconds();
  started_ = true;
}

void ServerCpu::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stop_sec_.clear();
  for (const ServerProcess& p : processes_) stop_sec_.push_back(ProcessCpuSeconds(p.pid));
  stop_wall_ = WallSeconds();
}

nlohmann::json ServerCpu::Report(uint64_t units, const std::string& unit,
                                 const std::string& note) const {
  const std::string per_unit = "us_per_" + unit;
  nlohmann::json processes = nlohmann::json::array();
  double total = 0;
  const double per = units > 0 ? 1e6 / static_cast<double>(units) : 0;
  for (size_t i = 0; i < processes_.size() && i < stop_sec_.size(); ++i) {
    nlohmann::json entry = {{"name", processes_[i].name}, {"pid", processes_[i].pid}};
    if (start_sec_[i] < 0 || stop_sec_[i] < 0) {
      entry["gone"] = true;
    } else {
      const double cpu = stop_sec_[i] - start_sec_[i];
      total += cpu;
      entry["cpu_sec"] = cpu;
      entry[per_unit] = cpu * per;
    }
    processes.push_back(std::move(entry));
  }
  return {{"window_sec", stop_wall_ - start_wall_},
          {"total_cpu_sec", total},
          {"cores", stop_wall_ > start_wall_ ? total / (stop_wall_ - start_wall_) : 0.0},
          {per_unit, total * per},
          {"processes", processes},
          {"note", note}};
}

}  // namespace im::bench
