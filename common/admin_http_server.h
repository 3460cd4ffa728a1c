#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "common/http_server_thread.h"
#include "prometheus/registry.h"

namespace im::common {

// The answer of a health check: ok, or why not (one line per failed check, plain text).
struct HealthReport {
  bool ok = true;
  std::string detail;
};

// A health check. Runs on an HTTP worker thread, must answer within about a second and must
// never wait on a dependency (report what a background prober last saw instead).
using HealthCheck = std::function<HealthReport()>;

// The HTTP side of every binary, on its metrics port (Kubernetes probes and Prometheus scrape the
// same port):
//   GET /metrics  the registry in Prometheus text format (0.0.4), and the allocator's heap
//                 (allocator.h)
//   GET /healthz  liveness: 200 "ok" when the liveness check passes (no check set: the HTTP
//                 server itself answers, which is all a process without loops can promise)
//   GET /readyz   readiness: 200 "ok" (and the check's detail, if any, on the lines after),
//                 else 503 with the failed checks; 503 "starting" until a readiness check is set
//   GET /config   the effective configuration (JSON, secrets hidden) once ShowConfig gave it
// Anything else is 404. Port 0 picks a free port; port() tells which. Stopping joins the server
// thread at once (no multi-second linger at exit).
class AdminHttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<AdminHttpServer>> Start(
      const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry);
  ~AdminHttpServer();
  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  uint16_t port() const { return listener_->port(); }

  // Any thread. Replacing or clearing (nullptr) a check waits until no call of the old one is
  // running, so that what it refers to may be destroyed right after.
  void SetLiveness(HealthCheck check);
  void SetReadiness(HealthCheck check);
  // Any thread: what GET /config answers from now on (Config::EffectiveJson()).
  void ShowConfig(std::string json);

 private:
  // A check and the mutex held while it runs (so that Set* can wait for a running call).
  struct CheckSlot {
    std::mutex mutex;
    HealthCheck check;
    HealthReport Run(const HealthReport& missing);
    void Set(HealthCheck replacement);
  };

  explicit AdminHttpServer(std::shared_ptr<prometheus::Registry> registry);

  std::shared_ptr<prometheus::Registry> registry_;
  CheckSlot liveness_;
  CheckSlot readiness_;
  std::mutex config_mutex_;
  std::string config_json_;  // guarded by config_mutex_; empty: /config is 404
  // Declared last: destroyed (stopped, its thread joined) before what the handlers use.
  std::unique_ptr<HttpServerThread> listener_;
};

}  // namespace im::common
