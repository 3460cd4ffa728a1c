#pragma once

#include "common/clock.h"
#include "logic/backends/logic_stores.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"

namespace im::logic {

// Every backend in this process's memory, the fan-out too: for tests, and for a node that serves
// alone with nothing to persist across restarts. `clock` drives the expiries.
LogicStores InProcessStores(const LogicOptions& options, LogicMetrics* metrics,
                            common::MillisClock clock);

}  // namespace im::logic
