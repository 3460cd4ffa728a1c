#include "logic/dependency_health.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace im::logic {

DependencyHealth::DependencyHealth(std::vector<Dependency> dependencies,
                                   std::chrono::milliseconds interval,
                                   prometheus::Registry& registry)
    : interval_(interval),
      stale_after_(interval * 3 + std::chrono::seconds(30)),
      up_family_(prometheus::BuildGauge()
                     .Name("im_logic_dependency_up")
                     .Help("1 when the dependency answered its last health check, else 0")
                     .Register(registry)) {
  for (Dependency& dependency : dependencies) {
    auto state = std::make_unique<State>();
    state->up = &up_family_.Add({{"dependency", dependency.name}});
    state->dependency = std::move(dependency);
    state->finished = std::chrono::steady_clock::now();
    states_.push_back(std::move(state));
  }
}

DependencyHealth::~DependencyHealth() { Stop(); }

void DependencyHealth::Start() {
  if (started_) return;
  started_ = true;
  for (auto& state : states_) {
    State* raw = state.get();
    state->thread = std::thread([this, raw] { Loop(*raw); });
  }
}

void DependencyHealth::Stop() {
  shutting_down_.store(true);
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_changed_.notify_all();
  for (auto& state : states_) {
    if (state->thread.joinable()) state->thread.join();
  }
}

void DependencyHealth::Loop(State& state) {
  for (;;) {
    absl::Status status = state.dependency.check();
    state.up->Set(status.ok() ? 1 : 0);
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      // Changes only, so that a long outage is one line, not one per check.
      if (!status.ok() && (!state.checked || state.last.ok())) {
        spdlog::warn("{} is unreachable: {}", state.dependency.name, status.ToString());
      } else if (status.ok() && state.checked && !state.last.ok()) {
        spdlog::info("{} is reachable again", state.dependency.name);
      }
      state.checked = true;
      state.last = std::move(status);
      state.finished = std::chrono::steady_clock::now();
    }
    std::unique_lock<std::mutex> lock(stop_mutex_);
    if (stop_changed_.wait_for(lock, interval_, [this] { return stopping_; })) return;
  }
}

common::HealthReport DependencyHealth::Readiness() const {
  if (shutting_down_.load()) return {false, "shutting down\n"};
  // Redis, MySQL and Kafka are shared by every logic node: one down makes every node fail alike,
  // and readiness that followed it would take every node out of the gateways' DNS at once (a
  // gateway started then finds no logic at all, and recovery waits on probes). So a dependency
  // down is reported here and in im_logic_dependency_up, and calls that need it fail fast with
  // UNAVAILABLE, but the node stays ready (docs/architecture.md, "Readiness").
  common::HealthReport report;
  std::string degraded;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& state : states_) {
    std::lock_guard<std::mutex> lock(state->mutex);
    const std::string& name = state->dependency.name;
    if (!state->checked) {
      report.ok = false;  // a moment after start: not yet known
      absl::StrAppend(&report.detail, name, ": not checked yet\n");
    } else if (!state->last.ok()) {
      absl::StrAppend(&degraded, name, ": ", state->last.ToString(), "\n");
    } else if (now - state->finished > stale_after_) {
      absl::StrAppend(&degraded, name, ": check hangs\n");
    }
  }
  if (report.ok && !degraded.empty()) {
    report.detail =
        absl::StrCat("degraded (shared dependencies, not counted for readiness):\n", degraded);
  }
  return report;
}

common::HealthReport DependencyHealth::Liveness() const {
  common::HealthReport report;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& state : states_) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (now - state->finished > stale_after_) {
      report.ok = false;
      absl::StrAppend(
          &report.detail, state->dependency.name, " check thread: no round for ",
          std::chrono::duration_cast<std::chrono::seconds>(now - state->finished).count(), " s\n");
    }
  }
  return report;
}

}  // namespace im::logic
