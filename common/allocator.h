#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "prometheus/metric_family.h"

namespace im::common {

// The process's allocator (jemalloc in the servers, found at run time; without it, as in sanitizer
// builds, these do nothing).

// The allocator's view of the process heap, read when /metrics is scraped:
// im_process_heap_bytes{kind=...}, where kind is
//   allocated  bytes the program holds (what a leak grows)
//   active     bytes in pages holding at least one allocation (allocated + fragmentation)
//   resident   bytes of the allocator's pages in RSS (active + idle dirty pages + metadata)
//   dirty      idle pages not yet returned to the kernel (returned after the decay time)
//   thread_cache  freed blocks cached by threads for their next allocations
//   metadata   the allocator's own bookkeeping
// so that an RSS that stays high after a storm can be told apart: the program's data, pages the
// allocator keeps, or neither (thread stacks, libraries).
void AppendHeapMetrics(std::vector<prometheus::MetricFamily>& families);

// Whether the process runs on jemalloc (else the functions here do nothing).
bool RunsOnJemalloc();

// Returns the blocks the calling thread's allocator cache holds to the shared heap, whose idle
// pages then go back to the kernel. For a pool thread that has gone idle: a storm fills the caches
// of every pool thread, and a thread keeps its cache until it allocates again (in logic, sixteen
// store threads kept ~6 MB after a 100,000-login storm).
void ReleaseThreadCache();

// What a pool thread waits with: on `wake` until `ready()` (under `lock`), releasing its allocator
// cache once it has been idle for `idle_after` (two seconds: soon enough for a storm's memory to
// come back, late enough that a busy pool never pays for it).
template <typename Ready>
void WaitReleasingCacheWhenIdle(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                                Ready ready,
                                std::chrono::milliseconds idle_after = std::chrono::seconds(2)) {
  if (wake.wait_for(lock, idle_after, ready)) return;
  lock.unlock();
  ReleaseThreadCache();
  lock.lock();
  wake.wait(lock, ready);
}

}  // namespace im::common
