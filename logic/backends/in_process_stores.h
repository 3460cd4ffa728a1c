#pragma once

#include "common/clock.h"
#include "logic/backends/logic_stores.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"

namespace im::logic {

// The stores that outlive the process, when it has them (the embedded node's SQLite ones).
struct DurableStores {
  std::shared_ptr<store::SqliteDatabase> database;  // what the stores below borrow, if anything
  std::unique_ptr<store::MessageStore> messages;
  std::unique_ptr<store::GroupStore> groups;
  std::unique_ptr<store::RestrictionStore> restrictions;
};

// Every backend in this process: sessions, seq counters, dedup entries, member lists and the
// fan-out in its memory; messages and groups in `durable` when given (the embedded node, whose
// seq counters then restart from the stored messages, without a gap: no other process can have
// a write in flight), else in memory too (tests). `clock` drives the expiries.
LogicStores InProcessStores(const LogicOptions& options, LogicMetrics* metrics,
                            common::MillisClock clock, DurableStores durable = {});

}  // namespace im::logic
