#include "common/admin_http_server.h"

#include <httplib.h>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/allocator.h"
#include "prometheus/text_serializer.h"

namespace im::common {
namespace {

// Probes and scrapes are a few requests a second: a few threads, not httplib's default of one per
// core (a liveness check may take up to a second).
constexpr size_t kHttpThreads = 4;

void Answer(const HealthReport& report, httplib::Response& response) {
  response.status = report.ok ? 200 : 503;
  // A passing check may still say something (logic: a shared dependency is down).
  std::string body =
      report.ok ? (report.detail.empty() ? "ok" : "ok\n" + report.detail) : report.detail;
  if (body.empty() || body.back() != '\n') body += '\n';
  response.set_content(std::move(body), "text/plain; charset=utf-8");
}

}  // namespace

HealthReport AdminHttpServer::CheckSlot::Run(const HealthReport& missing) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!check) return missing;
  return check();
}

void AdminHttpServer::CheckSlot::Set(HealthCheck replacement) {
  std::lock_guard<std::mutex> lock(mutex);
  check = std::move(replacement);
}

AdminHttpServer::AdminHttpServer(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {}

absl::StatusOr<std::unique_ptr<AdminHttpServer>> AdminHttpServer::Start(
    const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("admin http: no registry");
  std::unique_ptr<AdminHttpServer> self(new AdminHttpServer(std::move(registry)));
  auto owned_server = std::make_unique<httplib::Server>();
  httplib::Server& server = *owned_server;
  server.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  // One request per connection: an idle keep-alive connection (a scraper between scrapes) would
  // hold one of the few threads for the keep-alive timeout, and probes would queue behind it.
  server.set_keep_alive_max_count(1);
  server.set_read_timeout(std::chrono::seconds(2));  // a silent connection holds a thread
  server.set_write_timeout(std::chrono::seconds(5));
  AdminHttpServer* raw = self.get();
  server.Get("/metrics", [raw](const httplib::Request&, httplib::Response& response) {
    std::vector<prometheus::MetricFamily> families = raw->registry_->Collect();
    AppendHeapMetrics(families);
    response.set_content(prometheus::TextSerializer().Serialize(families),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [raw](const httplib::Request&, httplib::Response& response) {
    Answer(raw->liveness_.Run(HealthReport{}), response);
  });
  server.Get("/readyz", [raw](const httplib::Request&, httplib::Response& response) {
    Answer(raw->readiness_.Run(HealthReport{false, "starting"}), response);
  });
  server.Get("/config", [raw](const httplib::Request&, httplib::Response& response) {
    std::lock_guard<std::mutex> lock(raw->config_mutex_);
    if (raw->config_json_.empty()) {
      response.status = 404;
      response.set_content("no configuration shown\n", "text/plain; charset=utf-8");
      return;
    }
    response.set_content(raw->config_json_, "application/json");
  });

  absl::StatusOr<std::unique_ptr<HttpServerThread>> listener =
      HttpServerThread::Start(std::move(owned_server), bind_address, "metrics");
  if (!listener.ok()) return listener.status();
  self->listener_ = std::move(*listener);
  return self;
}

AdminHttpServer::~AdminHttpServer() = default;

void AdminHttpServer::SetLiveness(HealthCheck check) { liveness_.Set(std::move(check)); }

void AdminHttpServer::SetReadiness(HealthCheck check) { readiness_.Set(std::move(check)); }

void AdminHttpServer::ShowConfig(std::string json) {
  std::lock_guard<std::mutex> lock(config_mutex_);
  config_json_ = std::move(json);
}

}  // namespace im::common
