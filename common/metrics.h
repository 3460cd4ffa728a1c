#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::common {

// Serves a registry's metrics in Prometheus text format at http://<address>/metrics.
// Port 0 picks a free port; port() tells which.
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();

  uint16_t port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                std::shared_ptr<prometheus::Registry> registry, uint16_t port)
      : exposer_(std::move(exposer)), registry_(std::move(registry)), port_(port) {}

  std::unique_ptr<prometheus::Exposer> exposer_;
  // The exposer holds the registry weakly; keep it alive as long as we serve it.
  std::shared_ptr<prometheus::Registry> registry_;
  uint16_t port_;
};

// Latency buckets in seconds from 100 us to 10 s, shared so that dashboards compare like with like.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace im::common
