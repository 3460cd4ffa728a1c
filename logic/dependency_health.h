#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/admin_http_server.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace im::logic {

// Whether a logic node's dependencies (Redis, MySQL, Kafka) answer, for /readyz's detail and
// im_logic_dependency_up. Each dependency
// is checked on a thread of its own, every `interval`, so that a probe only reads the last
// results and never waits on a dead dependency, and one slow dependency does not delay the
// verdict on the others. Each check bounds itself (the client's own timeouts).
class DependencyHealth {
 public:
  // Blocking; OK when the dependency answered.
  using Check = std::function<absl::Status()>;
  struct Dependency {
    std::string name;
    Check check;
  };

  // `registry` gets im_logic_dependency_up{dependency} (1 up, 0 down); it must outlive this.
  DependencyHealth(std::vector<Dependency> dependencies, std::chrono::milliseconds interval,
                   prometheus::Registry& registry);
  // Stops the threads (waits for checks under way).
  ~DependencyHealth();
  DependencyHealth(const DependencyHealth&) = delete;
  DependencyHealth& operator=(const DependencyHealth&) = delete;

  // Starts checking; each dependency counts as down until its first check answered.
  void Start();
  // Stops checking and waits for the threads; what the checks use may be destroyed after it.
  // Readiness then stays "shutting down". Idempotent.
  void Stop();
  // From now on readiness fails, before anything else stops, so that a load balancer stops
  // sending new work while calls in flight finish.
  void SetShuttingDown() { shutting_down_.store(true); }

  // Any thread; never blocks on a dependency. Not ready while shutting down and until every
  // dependency was checked once. A dependency down (or a check that hangs) leaves the node ready,
  // as they are shared by every node, and is named in the detail.
  common::HealthReport Readiness() const;
  // Any thread: every checking thread finished a round recently (the process is not wedged).
  common::HealthReport Liveness() const;

 private:
  struct State {
    Dependency dependency;
    prometheus::Gauge* up = nullptr;
    std::thread thread;
    mutable std::mutex mutex;
    absl::Status last = absl::UnavailableError("not checked yet");  // guarded by mutex
    bool checked = false;                                           // guarded by mutex
    std::chrono::steady_clock::time_point finished;                 // guarded by mutex
  };

  void Loop(State& state);

  const std::chrono::milliseconds interval_;
  // A check unfinished this long is reported as hanging (clients time out well before).
  const std::chrono::milliseconds stale_after_;
  prometheus::Family<prometheus::Gauge>& up_family_;
  std::vector<std::unique_ptr<State>> states_;
  std::atomic<bool> shutting_down_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_changed_;
  bool stopping_ = false;  // guarded by stop_mutex_
  bool started_ = false;
};

}  // namespace im::logic
