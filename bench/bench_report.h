#pragma once

#include <string>
#include <vector>

#include "bench/bench_options.h"
#include "nlohmann/json.hpp"

namespace im::bench {

// Merges the result lines of every worker (RunWorker) into the run's report: summed counters,
// merged histograms with their percentiles in milliseconds, rates, the tool's own CPU, and a
// verdict ("ok", "problems"). `extra` (gateway memory for connect, worker exit codes) is copied
// in as is.
nlohmann::json MergeResults(const BenchOptions& options, const std::vector<nlohmann::json>& results,
                            const nlohmann::json& extra);

// The report as a human table, for stdout.
std::string FormatTable(const nlohmann::json& report);

// One progress line from the latest progress line of each worker and the previous sums (for
// per-second rates); updates `previous`.
std::string FormatProgress(const std::vector<nlohmann::json>& latest, nlohmann::json* previous);

}  // namespace im::bench
