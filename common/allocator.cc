#include "common/allocator.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "prometheus/client_metric.h"

// jemalloc's control interface, resolved at run time: null when the process does not run on
// jemalloc (the symbol is weak, so nothing here makes a binary depend on it).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace im::common {
namespace {

template <typename T>
std::optional<T> Read(const char* name) {
  T value{};
  size_t length = sizeof(value);
  if (mallctl(name, &value, &length, nullptr, 0) != 0) return std::nullopt;
  return value;
}

void Add(prometheus::MetricFamily& family, std::string kind, std::optional<double> bytes) {
  if (!bytes) return;
  prometheus::ClientMetric metric;
  metric.label.push_back({"kind", std::move(kind)});
  metric.gauge.value = *bytes;
  family.metric.push_back(std::move(metric));
}

// "stats.arenas.<all arenas>.<what>" (jemalloc's MALLCTL_ARENAS_ALL is 4096).
std::string AllArenas(const char* what) { return std::string("stats.arenas.4096.") + what; }

}  // namespace

bool RunsOnJemalloc() { return mallctl != nullptr; }

void AppendHeapMetrics(std::vector<prometheus::MetricFamily>& families) {
  if (!RunsOnJemalloc()) return;
  // The statistics are a snapshot taken when the epoch advances.
  uint64_t epoch = 1;
  if (mallctl("epoch", &epoch, nullptr, &epoch, sizeof(epoch)) != 0) return;
  const auto page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::optional<double> dirty;
  if (auto pages = Read<size_t>(AllArenas("pdirty").c_str())) dirty = *pages * page_size;

  prometheus::MetricFamily family;
  family.name = "im_process_heap_bytes";
  family.help =
      "The allocator's heap: allocated (held by the program), active (pages with allocations), "
      "resident (in RSS), dirty (idle, not yet returned), thread_cache, metadata";
  family.type = prometheus::MetricType::Gauge;
  Add(family, "allocated", Read<size_t>("stats.allocated"));
  Add(family, "active", Read<size_t>("stats.active"));
  Add(family, "resident", Read<size_t>("stats.resident"));
  Add(family, "dirty", dirty);
  Add(family, "thread_cache", Read<size_t>(AllArenas("tcache_bytes").c_str()));
  Add(family, "metadata", Read<size_t>("stats.metadata"));
  if (!family.metric.empty()) families.push_back(std::move(family));
}

void ReleaseThreadCache() {
  if (RunsOnJemalloc()) mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
}

}  // namespace im::common
